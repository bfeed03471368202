//! Reverse diagnostic ports: we listen, the runtime connects (`DOTNET_DiagnosticPorts=PATH`) and
//! announces itself with a 34-byte `ADVR_V1` message. Each connection carries one command; after it
//! the runtime reconnects and advertises again. Used to watch an app from its first instruction.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::client::{send_request, Reply, Timeouts};
use super::process::CommandChannel;
use super::protocol::{Command, Guid};
use super::{transport, IpcError};

const ADVERTISE_MAGIC: &[u8; 8] = b"ADVR_V1\0";
const ADVERTISE_LEN: usize = 34;

/// What a runtime says when it connects to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertise {
    pub runtime_cookie: Guid,
    pub pid: u64,
}

impl Advertise {
    pub fn parse(b: &[u8; ADVERTISE_LEN]) -> Result<Self, IpcError> {
        if &b[..8] != ADVERTISE_MAGIC {
            return Err(IpcError::Protocol(
                "a connection to the reverse port did not start with ADVR_V1".into(),
            ));
        }
        Ok(Advertise {
            runtime_cookie: Guid(b[8..24].try_into().expect("16 bytes")),
            pid: u64::from_le_bytes(b[24..32].try_into().expect("8 bytes")),
        })
    }
}

/// A listening reverse port; the socket file is removed on drop.
pub struct ReversePort {
    listener: UnixListener,
    path: PathBuf,
    timeouts: Timeouts,
    /// Only connections advertising this pid are used (another runtime may share the path).
    expect_pid: Option<u64>,
}

impl ReversePort {
    pub fn bind(path: &Path) -> Result<Self, IpcError> {
        let listener = UnixListener::bind(path).map_err(|e| IpcError::connect(path, e))?;
        listener.set_nonblocking(true)?;
        Ok(ReversePort {
            listener,
            path: path.to_path_buf(),
            timeouts: Timeouts::default(),
            expect_pid: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn expect_pid(&mut self, pid: u64) {
        self.expect_pid = Some(pid);
    }

    /// Waits up to `timeout` for a runtime to connect and advertise itself.
    pub fn accept(&self, timeout: Duration) -> Result<(Advertise, UnixStream), IpcError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false)?;
                    stream.set_read_timeout(Some(self.timeouts.io))?;
                    stream.set_write_timeout(Some(self.timeouts.io))?;
                    let mut buf = [0u8; ADVERTISE_LEN];
                    transport::read_exact(
                        &mut stream,
                        &mut buf,
                        "the runtime's advertise message",
                    )?;
                    let adv = Advertise::parse(&buf)?;
                    if self.expect_pid.is_none_or(|p| p == adv.pid) {
                        return Ok((adv, stream));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(IpcError::Timeout {
                            what: format!(
                                "waiting for the runtime to connect to {}",
                                self.path.display()
                            ),
                            after: timeout,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(IpcError::Io(e)),
            }
        }
    }
}

impl CommandChannel for ReversePort {
    fn exchange(&self, cmd: Command, payload: &[u8]) -> Result<Reply, IpcError> {
        let (_, stream) = self.accept(self.timeouts.connect.max(Duration::from_secs(10)))?;
        send_request(stream, cmd, payload)
    }
}

impl Drop for ReversePort {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
