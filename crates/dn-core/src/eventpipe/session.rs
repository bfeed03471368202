//! A live EventPipe session: started with CollectTracing2 (or CollectTracing on runtimes that do
//! not know it; CollectTracing6 first when the config asks for Block mode), its stream drained on a thread of its own, stopped with StopTracing on a new
//! connection. Dropping a [`Session`] stops it, so every exit path of a tool ends the session.
//!
//! Draining matters: the runtime answers StopTracing only once it has written out the rest of the
//! stream, so a client that stops reading while it waits for the answer deadlocks.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::{
    encode_collect_tracing, encode_collect_tracing2, encode_collect_tracing6, BufferingMode,
    SessionConfig,
};
use crate::ipc::process::CommandChannel;
use crate::ipc::protocol::{commands, PayloadReader, PayloadWriter};
use crate::ipc::IpcError;

/// Where commands for the session go; StopTracing needs a connection of its own, so the session
/// keeps the channel.
pub type SharedChannel = Arc<dyn CommandChannel + Send + Sync>;

/// What the drain thread hands to the consumer.
#[derive(Debug)]
pub enum Chunk<'a> {
    /// Stream bytes, in whatever pieces the socket delivered them.
    Data(&'a [u8]),
    /// The runtime closed the stream (session stopped or process gone), or reading failed.
    End(Option<std::io::Error>),
}

/// How long [`Drop`] waits for the runtime to finish the stream after StopTracing.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the drain thread looks up from a blocked read to see whether it was abandoned.
const READ_POLL: Duration = Duration::from_millis(200);

struct Shared {
    ended: AtomicBool,
    abandon: AtomicBool,
}

/// A running session. Stopped (and its stream drained to the end) by [`Session::stop`] or on drop.
pub struct Session {
    id: u64,
    channel: SharedChannel,
    shared: Arc<Shared>,
    drain: Option<JoinHandle<()>>,
    stopped: bool,
    command: &'static str,
    buffering: BufferingMode,
}

impl Session {
    /// Starts a session and a thread that feeds every byte of its stream to `sink` (on that
    /// thread), ending with one [`Chunk::End`].
    pub fn start<F>(
        channel: SharedChannel,
        config: &SessionConfig,
        sink: F,
    ) -> Result<Session, IpcError>
    where
        F: FnMut(Chunk<'_>) + Send + 'static,
    {
        let (reply, command, buffering) = start_command(channel.as_ref(), config)?;
        let id = PayloadReader::new(&reply.payload, "CollectTracing").u64("the session id")?;
        let shared = Arc::new(Shared {
            ended: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
        });
        let stream = reply.stream;
        stream.set_read_timeout(Some(READ_POLL))?;
        let drain_shared = shared.clone();
        let drain = std::thread::Builder::new()
            .name("eventpipe-drain".into())
            .spawn(move || drain_stream(stream, sink, &drain_shared))?;
        Ok(Session {
            id,
            channel,
            shared,
            drain: Some(drain),
            stopped: false,
            command,
            buffering,
        })
    }

    /// The mode the runtime agreed to: Block only when CollectTracing6 was asked for and known.
    pub fn buffering(&self) -> BufferingMode {
        self.buffering
    }

    /// The runtime's id for this session.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Which command started it (`CollectTracing6`, `CollectTracing2`, or `CollectTracing` on old
    /// runtimes).
    pub fn start_command(&self) -> &'static str {
        self.command
    }

    /// True once the stream has ended (stopped, or the target went away).
    pub fn has_ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }

    /// Sends StopTracing (unless the stream already ended) and waits up to `timeout` for the
    /// runtime to finish the stream, draining it all the while. Idempotent.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), IpcError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let deadline = Instant::now() + timeout;
        let mut result = Ok(());
        if !self.has_ended() {
            let mut w = PayloadWriter::new();
            w.u64(self.id);
            match self.channel.exchange(commands::STOP_TRACING, w.bytes()) {
                Ok(_) => {}
                // The process went away meanwhile: its sessions went with it.
                Err(e) if e.is_stale() => {}
                Err(e) => result = Err(e),
            }
        }
        while !self.has_ended() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.has_ended() {
            if let Some(h) = self.drain.take() {
                let _ = h.join();
            }
        } else {
            // A runtime that never finishes the stream must not hold the tool: closing the
            // socket ends the session at the runtime's next write.
            self.shared.abandon.store(true, Ordering::Release);
            if result.is_ok() {
                result = Err(IpcError::Timeout {
                    what: "waiting for the runtime to end the EventPipe stream".into(),
                    after: timeout,
                });
            }
        }
        result
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.stop(DEFAULT_STOP_TIMEOUT);
    }
}

type Started = (crate::ipc::client::Reply, &'static str, BufferingMode);

/// Sends the newest command the config needs, falling back to older ones on runtimes that answer
/// "unknown command" (each attempt is a connection of its own; a refused one starts nothing).
fn start_command(
    channel: &dyn CommandChannel,
    config: &SessionConfig,
) -> Result<Started, IpcError> {
    if config.buffering == BufferingMode::Block {
        match channel.exchange(commands::COLLECT_TRACING6, &encode_collect_tracing6(config)) {
            Ok(r) => return Ok((r, commands::COLLECT_TRACING6.name, BufferingMode::Block)),
            Err(e) if e.is_unknown_command() => {}
            Err(e) => return Err(e),
        }
    }
    match channel.exchange(commands::COLLECT_TRACING2, &encode_collect_tracing2(config)) {
        Ok(r) => Ok((r, commands::COLLECT_TRACING2.name, BufferingMode::Drop)),
        Err(e) if e.is_unknown_command() => Ok((
            channel.exchange(commands::COLLECT_TRACING, &encode_collect_tracing(config))?,
            commands::COLLECT_TRACING.name,
            BufferingMode::Drop,
        )),
        Err(e) => Err(e),
    }
}

fn drain_stream<F: FnMut(Chunk<'_>)>(mut stream: UnixStream, mut sink: F, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        if shared.abandon.load(Ordering::Acquire) {
            break None;
        }
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => sink(Chunk::Data(&buf[..n])),
            Err(e) if crate::ipc::transport::is_timeout(&e) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    shared.ended.store(true, Ordering::Release);
    sink(Chunk::End(end));
}
