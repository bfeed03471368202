//! Errors of the stream parser and of payload decoding.

use thiserror::Error;

/// A problem in the nettrace stream. `offset` is the absolute byte offset in the stream
/// (0 = the `N` of the `Nettrace` magic) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("nettrace: {kind} at byte offset {offset}")]
pub struct ParseError {
    pub offset: u64,
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: u64, kind: ErrorKind) -> Self {
        ParseError { offset, kind }
    }
}

/// What went wrong; see [`ParseError`] for where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    #[error("not a nettrace stream (bad magic)")]
    BadMagic,
    #[error("unsupported serialization header")]
    BadSerializationHeader,
    #[error("expected tag {expected} but found tag {found}")]
    UnexpectedTag { expected: &'static str, found: u8 },
    #[error("bad object type name length {0}")]
    BadTypeNameLength(i32),
    #[error("unknown object type {0:?}")]
    UnknownObject(String),
    #[error("the first object is {0:?}, expected \"Trace\"")]
    MissingTraceObject(String),
    #[error("unsupported {object} version {version} (min reader version {min_reader})")]
    UnsupportedVersion {
        object: String,
        version: i32,
        min_reader: i32,
    },
    #[error("bad block size {0}")]
    BadBlockSize(i64),
    #[error("{0}")]
    Malformed(&'static str),
    #[error("event references unknown metadata id {0}")]
    UnknownMetadataId(u32),
    #[error("data after the end-of-stream marker")]
    DataAfterEnd,
    #[error("stream ends inside {0}")]
    Truncated(&'static str),
    #[error("read failed: {message}")]
    Io {
        kind: std::io::ErrorKind,
        message: String,
    },
}

/// A payload that does not match its event's field list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot decode field {field:?} at payload offset {offset}: {reason}")]
pub struct DecodeError {
    /// Name of the field being decoded ("" for unnamed top-level objects).
    pub field: String,
    /// Offset inside the event payload.
    pub offset: usize,
    pub reason: &'static str,
}
