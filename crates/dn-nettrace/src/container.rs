//! The FastSerialization container around the blocks: stream header, object headers and tags.

use crate::error::{ErrorKind, ParseError};

pub(crate) const MAGIC: &[u8; 8] = b"Nettrace";
pub(crate) const SERIALIZATION_HEADER: &[u8] = b"\x14\x00\x00\x00!FastSerialization.1";
pub(crate) const STREAM_HEADER_LEN: usize = 8 + 24;

/// Blocks larger than this are treated as corruption (the runtime writes ≤ 100 KiB).
pub const MAX_BLOCK_SIZE: usize = 64 * 1024 * 1024;
/// Longest object type name accepted ("MetadataBlock" is the longest known one).
pub(crate) const MAX_TYPE_NAME: i32 = 64;

pub(crate) const TAG_NULL_REFERENCE: u8 = 1;
pub(crate) const TAG_BEGIN_OBJECT: u8 = 4;
pub(crate) const TAG_BEGIN_PRIVATE_OBJECT: u8 = 5;
pub(crate) const TAG_END_OBJECT: u8 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Trace,
    EventBlock,
    MetadataBlock,
    StackBlock,
    SequencePointBlock,
}

pub(crate) fn expect_tag(
    found: u8,
    expected: u8,
    name: &'static str,
    at: u64,
) -> Result<(), ParseError> {
    if found == expected {
        Ok(())
    } else {
        Err(ParseError::new(
            at,
            ErrorKind::UnexpectedTag {
                expected: name,
                found,
            },
        ))
    }
}

/// Parses `05 05 01 i32 version, i32 minReaderVersion, i32 nameLen, name, 06` from the start of
/// `b`. Returns `None` if `b` is too short to decide, else the header length, kind and versions.
pub(crate) fn parse_object_header(
    b: &[u8],
    at: u64,
) -> Result<Option<(usize, ObjectKind, i32, i32)>, ParseError> {
    let begin = |i: usize| -> Result<(), ParseError> {
        let t = b[i];
        if t == TAG_BEGIN_PRIVATE_OBJECT || t == TAG_BEGIN_OBJECT {
            Ok(())
        } else {
            Err(ParseError::new(
                at + i as u64,
                ErrorKind::UnexpectedTag {
                    expected: "BeginObject",
                    found: t,
                },
            ))
        }
    };
    let i32_at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    for i in 0..2 {
        if b.len() <= i {
            return Ok(None);
        }
        begin(i)?;
    }
    if b.len() <= 2 {
        return Ok(None);
    }
    expect_tag(b[2], TAG_NULL_REFERENCE, "NullReference", at + 2)?;
    if b.len() < 15 {
        return Ok(None);
    }
    let version = i32_at(3);
    let min_reader = i32_at(7);
    let name_len = i32_at(11);
    if !(0..=MAX_TYPE_NAME).contains(&name_len) {
        return Err(ParseError::new(
            at + 11,
            ErrorKind::BadTypeNameLength(name_len),
        ));
    }
    let name_end = 15 + name_len as usize;
    if b.len() <= name_end {
        return Ok(None);
    }
    let name = &b[15..name_end];
    expect_tag(
        b[name_end],
        TAG_END_OBJECT,
        "EndObject",
        at + name_end as u64,
    )?;
    let kind = match name {
        b"Trace" => ObjectKind::Trace,
        b"EventBlock" => ObjectKind::EventBlock,
        b"MetadataBlock" => ObjectKind::MetadataBlock,
        b"StackBlock" => ObjectKind::StackBlock,
        b"SPBlock" => ObjectKind::SequencePointBlock,
        other => {
            return Err(ParseError::new(
                at + 15,
                ErrorKind::UnknownObject(String::from_utf8_lossy(other).into_owned()),
            ))
        }
    };
    Ok(Some((name_end + 1, kind, version, min_reader)))
}
