//! Sending one command per connection and reading its reply, with timeouts everywhere.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{self, Command, PayloadReader, HEADER_LEN};
use super::transport;
use super::{discovery, IpcError};

/// How long we wait on a runtime before giving up on it.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Applies to each read or write of a reply (not to long-running streams).
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            io: Duration::from_secs(10),
        }
    }
}

/// A reply the runtime answered with OK. The connection stays open for commands that continue
/// with a stream (EventPipe sessions, the environment block).
pub struct Reply {
    pub payload: Vec<u8>,
    pub stream: UnixStream,
}

/// A client for one runtime's diagnostics socket. Each command opens a fresh connection, as the
/// runtime serves exactly one command per connection.
#[derive(Debug, Clone)]
pub struct DiagnosticsClient {
    socket: PathBuf,
    timeouts: Timeouts,
}

impl DiagnosticsClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        DiagnosticsClient {
            socket: socket.into(),
            timeouts: Timeouts::default(),
        }
    }

    /// Finds the socket of `pid` and returns a client for it.
    pub fn for_pid(pid: i32) -> Result<Self, IpcError> {
        Ok(Self::new(discovery::find_endpoint(pid)?.socket))
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    pub fn connect(&self) -> Result<UnixStream, IpcError> {
        transport::connect(&self.socket, self.timeouts.connect, self.timeouts.io)
    }

    /// Sends `cmd` with `payload` on a new connection and reads the reply header and payload.
    pub fn request(&self, cmd: Command, payload: &[u8]) -> Result<Reply, IpcError> {
        let stream = self.connect()?;
        send_request(stream, cmd, payload)
    }
}

/// Sends one command on an open connection (ours, or a reverse connection a runtime opened to
/// us) and reads its reply. An error reply becomes [`IpcError::Runtime`] naming the command.
pub fn send_request(
    mut stream: UnixStream,
    cmd: Command,
    payload: &[u8],
) -> Result<Reply, IpcError> {
    let msg = protocol::encode_request(cmd, payload)?;
    transport::write_all(&mut stream, &msg, cmd.name)?;
    let mut header = [0u8; HEADER_LEN];
    transport::read_exact(&mut stream, &mut header, cmd.name)?;
    let h = protocol::decode_response_header(cmd, &header)?;
    let mut body = vec![0u8; h.payload_len];
    transport::read_exact(&mut stream, &mut body, cmd.name)?;
    if !h.ok {
        let mut r = PayloadReader::new(&body, cmd.name);
        let hresult = r.u32("the error code")?;
        // GenerateCoreDump3 appends a message; others have nothing more.
        let message = if r.remaining() >= 4 {
            r.string("the error message").ok().filter(|m| !m.is_empty())
        } else {
            None
        };
        return Err(IpcError::Runtime {
            command: cmd.name,
            hresult,
            message,
        });
    }
    Ok(Reply {
        payload: body,
        stream,
    })
}
