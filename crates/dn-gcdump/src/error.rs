//! Errors reading a `.gcdump` file: each names the byte offset where the file stopped making
//! sense.

/// A `.gcdump` file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a .gcdump file: {what} at offset {offset}")]
    Foreign { offset: u64, what: String },
    #[error("truncated .gcdump file: {what} at offset {offset} runs past the end ({len} bytes)")]
    Truncated { offset: u64, what: String, len: u64 },
    #[error("corrupt .gcdump file: {what} at offset {offset}")]
    Corrupt { offset: u64, what: String },
    #[error("unsupported .gcdump file: {what} at offset {offset}")]
    Unsupported { offset: u64, what: String },
}
