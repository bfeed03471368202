//! Streaming, incremental parser for the EventPipe **nettrace** format (the FastSerialization
//! container, Trace object version 3/4 with V5 metadata tags) as .NET runtimes send it over the
//! diagnostics IPC socket and as `.nettrace` files store it.
//!
//! * [`NettraceParser`] is a push parser: [`feed`](NettraceParser::feed) bytes in pieces of any
//!   size, take [`Event`]s with [`next_event`](NettraceParser::next_event).
//! * [`EventReader`] wraps any `std::io::Read` as an iterator of events.
//! * [`Event::decode`] turns a payload into named [`Value`]s using the stream's metadata;
//!   [`Event::counter_payload`] gives the fields of an EventCounters `Payload` object.
//!
//! Memory is bounded by one block (the runtime writes ≤ 100 KiB, this reader rejects > 64 MiB)
//! plus the events of that block; no old blocks are kept. Corrupt or truncated input yields a
//! [`ParseError`] naming the absolute stream offset.

#![forbid(unsafe_code)]

mod blocks;
mod container;
mod cursor;
mod decode;
mod error;
mod event;
mod metadata;
mod parser;
mod payload;
mod reader;
mod trace_info;
mod value;

pub use blocks::SequencePoint;
pub use container::MAX_BLOCK_SIZE;
pub use decode::decode_payload;
pub use error::{DecodeError, ErrorKind, ParseError};
pub use event::{Event, EventRef};
pub use metadata::{EventMetadata, FieldDef, FieldType};
pub use parser::NettraceParser;
pub use payload::Payload;
pub use reader::EventReader;
pub use trace_info::{SyncTime, TraceInfo};
pub use value::{field, Fields, FileTime, Guid, Value};
