//! Connecting to a runtime's diagnostics socket without ever blocking forever: a hung or dying
//! runtime must not hang a tool.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};

use super::IpcError;

/// Longest path a `sockaddr_un` can carry (108 bytes including the NUL).
const SUN_PATH_MAX: usize = 107;

/// Connects to the Unix socket at `path` within `timeout`, then applies `io_timeout` to reads and
/// writes of the returned stream.
pub fn connect(
    path: &Path,
    timeout: Duration,
    io_timeout: Duration,
) -> Result<UnixStream, IpcError> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| IpcError::connect(path, e.into()))?;

    // Paths under /proc/PID/root/... (containers) can exceed sun_path; reach them through an
    // O_PATH descriptor of the directory instead.
    let _dir_guard;
    let addr = if path.as_os_str().len() > SUN_PATH_MAX {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let name = path.file_name().unwrap_or_default();
        let dir_fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| IpcError::connect(path, e.into()))?;
        let short = format!(
            "/proc/self/fd/{}/{}",
            dir_fd.as_raw_fd(),
            name.to_string_lossy()
        );
        _dir_guard = dir_fd;
        UnixAddr::new(short.as_str())
    } else {
        UnixAddr::new(path)
    }
    .map_err(|e| IpcError::connect(path, e.into()))?;

    let deadline = Instant::now() + timeout;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            // A full backlog answers EAGAIN on Unix sockets: retry until the deadline.
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {
                if Instant::now() >= deadline {
                    return Err(IpcError::Timeout {
                        what: format!("connecting to {}", path.display()),
                        after: timeout,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(nix::errno::Errno::EINPROGRESS) => {
                wait_writable(&fd, deadline, path, timeout)?;
                let err = socket::getsockopt(&fd, socket::sockopt::SocketError)
                    .map_err(|e| IpcError::connect(path, e.into()))?;
                if err != 0 {
                    return Err(IpcError::connect(
                        path,
                        std::io::Error::from_raw_os_error(err),
                    ));
                }
                break;
            }
            Err(e) => return Err(IpcError::connect(path, e.into())),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    Ok(stream)
}

fn wait_writable(
    fd: &OwnedFd,
    deadline: Instant,
    path: &Path,
    timeout: Duration,
) -> Result<(), IpcError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
        .unwrap_or(PollTimeout::ZERO);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, ms) {
        Ok(0) => Err(IpcError::Timeout {
            what: format!("connecting to {}", path.display()),
            after: timeout,
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(IpcError::connect(path, e.into())),
    }
}

/// Reads exactly `buf.len()` bytes, mapping a read timeout to [`IpcError::Timeout`] and an early
/// EOF to a protocol error naming `what`.
pub fn read_exact(stream: &mut UnixStream, buf: &mut [u8], what: &str) -> Result<(), IpcError> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(IpcError::Protocol(format!(
                    "{what}: the runtime closed the connection after {got} of {} bytes",
                    buf.len()
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                return Err(IpcError::Timeout {
                    what: what.to_string(),
                    after: stream.read_timeout().ok().flatten().unwrap_or_default(),
                })
            }
            Err(e) => return Err(IpcError::Io(e)),
        }
    }
    Ok(())
}

pub fn write_all(stream: &mut UnixStream, buf: &[u8], what: &str) -> Result<(), IpcError> {
    stream.write_all(buf).map_err(|e| {
        if is_timeout(&e) {
            IpcError::Timeout {
                what: what.to_string(),
                after: stream.write_timeout().ok().flatten().unwrap_or_default(),
            }
        } else {
            IpcError::Io(e)
        }
    })
}

pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
