//! EventPipe sessions over the diagnostics IPC channel: asking a runtime to stream events from
//! chosen providers (EventSources, the runtime itself) and ending that stream cleanly.
//!
//! The stream is in the nettrace format; parsing it is left to the consumer.

pub mod config;
pub mod session;

pub use config::{BufferingMode, Provider, SessionConfig};
pub use session::{Chunk, Session, SharedChannel, DEFAULT_STOP_TIMEOUT};
