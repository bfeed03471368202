//! A session on the runtime's own provider (`Microsoft-Windows-DotNETRuntime`) for some keywords,
//! parsed as it streams; shared by the GC check and the exception trigger.

use std::sync::Arc;

use dn_core::eventpipe::{Chunk, Provider, Session, SessionConfig, SharedChannel};
use dn_core::ipc::{DiagnosticsClient, IpcError};
use dn_nettrace::{Event, NettraceParser};

pub const RUNTIME_PROVIDER: &str = "Microsoft-Windows-DotNETRuntime";
const LEVEL_INFORMATIONAL: u32 = 4;
/// Small: these sessions carry a few events a second.
const BUFFER_MB: u32 = 16;

/// What the drain thread hands over.
pub enum Feed<'a> {
    /// One event of the runtime provider.
    Event(&'a Event),
    /// The stream ended; `broken` if it could not be read to its end.
    End { broken: bool },
}

/// Starts the session; `on` runs on the drain thread for each runtime event and once at the end.
pub fn start(
    pid: i32,
    keywords: u64,
    mut on: impl FnMut(Feed<'_>) + Send + 'static,
) -> Result<Session, IpcError> {
    let client = DiagnosticsClient::for_pid(pid)?;
    let channel: SharedChannel = Arc::new(client);
    let mut config = SessionConfig::new(vec![Provider::new(
        RUNTIME_PROVIDER,
        keywords,
        LEVEL_INFORMATIONAL,
    )]);
    config.circular_buffer_mb = BUFFER_MB;
    let mut parser = NettraceParser::new();
    let mut broken = false;
    Session::start(channel, &config, move |chunk| match chunk {
        Chunk::Data(bytes) if !broken => {
            if parser.feed(bytes).is_err() {
                broken = true;
                return;
            }
            loop {
                match parser.next_event() {
                    Ok(Some(ev)) if ev.provider_name() == RUNTIME_PROVIDER => on(Feed::Event(&ev)),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
        }
        Chunk::Data(_) => {}
        Chunk::End(err) => on(Feed::End {
            broken: broken || err.is_some(),
        }),
    })
}
