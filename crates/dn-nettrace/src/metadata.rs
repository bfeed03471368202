//! Metadata records: what an event is (provider, id, name, version, ...) and its payload layout.

use serde::Serialize;

use crate::cursor::Cursor;
use crate::error::{ErrorKind, ParseError};

/// Nested objects deeper than this are rejected (protects against corrupt, self-nesting input).
const MAX_NESTING: u32 = 16;

/// Type of one payload field (System.TypeCode numbering on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FieldType {
    /// TypeCode 1: the nested fields, concatenated in the payload.
    Object(Vec<FieldDef>),
    Boolean,
    Char,
    SByte,
    Byte,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Single,
    Double,
    Decimal,
    /// Windows FILETIME (8 bytes).
    DateTime,
    Guid,
    /// UTF-16LE, NUL-terminated.
    String,
    /// TypeCode 19 (V2 parameters only): u16 count, then the elements.
    Array(Box<FieldType>),
    /// A type code this reader does not know; events using it cannot be decoded.
    Unsupported(u32),
}

impl FieldType {
    fn from_simple_code(code: u32) -> FieldType {
        match code {
            3 => FieldType::Boolean,
            4 => FieldType::Char,
            5 => FieldType::SByte,
            6 => FieldType::Byte,
            7 => FieldType::Int16,
            8 => FieldType::UInt16,
            9 => FieldType::Int32,
            10 => FieldType::UInt32,
            11 => FieldType::Int64,
            12 => FieldType::UInt64,
            13 => FieldType::Single,
            14 => FieldType::Double,
            15 => FieldType::Decimal,
            16 => FieldType::DateTime,
            17 => FieldType::Guid,
            18 => FieldType::String,
            other => FieldType::Unsupported(other),
        }
    }
}

/// One named payload field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDef {
    pub name: String,
    pub ty: FieldType,
}

/// Everything the stream says about one kind of event. Keyed by `metadata_id`: the same
/// provider + event id may appear under several metadata ids (e.g. different versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventMetadata {
    pub metadata_id: u32,
    pub provider_name: String,
    pub event_id: u32,
    /// Empty for native runtime events, which carry only minimal metadata.
    pub event_name: String,
    /// As written; EventSource keywords carry session bits above bit 44 (see [`Self::event_keywords`]).
    pub keywords: u64,
    pub version: u32,
    pub level: u32,
    /// From the V5 opcode tag; `None` when absent (Info).
    pub opcode: Option<u8>,
    /// Payload layout; empty when the stream did not describe it.
    pub fields: Vec<FieldDef>,
}

impl EventMetadata {
    /// Keywords without the EventSource session bits.
    pub fn event_keywords(&self) -> u64 {
        self.keywords & 0x0000_0FFF_FFFF_FFFF
    }

    /// Parses a metadata record (the payload of a MetadataBlock blob).
    pub(crate) fn parse(c: &mut Cursor) -> Result<EventMetadata, ParseError> {
        let metadata_id = c.u32("metadata id")?;
        let provider_name = c.utf16z("metadata provider name")?;
        let event_id = c.u32("metadata event id")?;
        let event_name = c.utf16z("metadata event name")?;
        let keywords = c.u64("metadata keywords")?;
        let version = c.u32("metadata version")?;
        let level = c.u32("metadata level")?;
        let mut fields = Vec::new();
        if !c.is_empty() {
            fields = parse_v1_fields(c, 0)?;
        }
        let mut opcode = None;
        while !c.is_empty() {
            let at = c.offset();
            let size = c.i32("metadata tag size")?;
            let kind = c.u8("metadata tag kind")?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= c.remaining())
                .ok_or(ParseError::new(
                    at,
                    ErrorKind::Malformed("bad metadata tag size"),
                ))?;
            let body = c.bytes(size, "metadata tag")?;
            let mut tag = Cursor::new(body, c.offset() - size as u64);
            match kind {
                1 => opcode = Some(tag.u8("opcode tag")?),
                2 => {
                    let count = tag.u32("V2 parameter count")?;
                    fields = parse_v2_fields(&mut tag, count, 0)?;
                }
                _ => {} // unknown tags are skippable by design
            }
        }
        Ok(EventMetadata {
            metadata_id,
            provider_name,
            event_id,
            event_name,
            keywords,
            version,
            level,
            opcode,
            fields,
        })
    }
}

fn check_count(c: &Cursor, count: u32, min_item: usize) -> Result<(), ParseError> {
    if count as usize > c.remaining() / min_item {
        return Err(c.error(ErrorKind::Malformed("field count larger than the metadata")));
    }
    Ok(())
}

fn check_depth(c: &Cursor, depth: u32) -> Result<(), ParseError> {
    if depth > MAX_NESTING {
        return Err(c.error(ErrorKind::Malformed("fields nested too deeply")));
    }
    Ok(())
}

/// V1 field list: `u32 count`, then per field `u32 TypeCode` [+ nested list for Object], `wstr name`.
fn parse_v1_fields(c: &mut Cursor, depth: u32) -> Result<Vec<FieldDef>, ParseError> {
    check_depth(c, depth)?;
    let count = c.u32("field count")?;
    check_count(c, count, 6)?;
    let mut fields = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let code = c.u32("field type code")?;
        let ty = if code == 1 {
            FieldType::Object(parse_v1_fields(c, depth + 1)?)
        } else {
            FieldType::from_simple_code(code)
        };
        let name = c.utf16z("field name")?;
        fields.push(FieldDef { name, ty });
    }
    Ok(fields)
}

/// V2 fields: per field `u32 size` (including itself), `wstr name`, type; bytes left before
/// `size` is reached are skipped.
fn parse_v2_fields(c: &mut Cursor, count: u32, depth: u32) -> Result<Vec<FieldDef>, ParseError> {
    check_depth(c, depth)?;
    check_count(c, count, 10)?;
    let mut fields = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let start = c.pos();
        let at = c.offset();
        let size = c.u32("V2 field size")? as usize;
        if size < 4 || size - 4 > c.remaining() {
            return Err(ParseError::new(
                at,
                ErrorKind::Malformed("bad V2 field size"),
            ));
        }
        let name = c.utf16z("V2 field name")?;
        let ty = parse_v2_type(c, depth)?;
        let used = c.pos() - start;
        if used > size {
            return Err(ParseError::new(
                at,
                ErrorKind::Malformed("V2 field longer than its size"),
            ));
        }
        c.skip(size - used, "V2 field")?;
        fields.push(FieldDef { name, ty });
    }
    Ok(fields)
}

fn parse_v2_type(c: &mut Cursor, depth: u32) -> Result<FieldType, ParseError> {
    check_depth(c, depth)?;
    let code = c.u32("V2 type code")?;
    Ok(match code {
        1 => {
            let count = c.u32("V2 object field count")?;
            FieldType::Object(parse_v2_fields(c, count, depth + 1)?)
        }
        19 => FieldType::Array(Box::new(parse_v2_type(c, depth + 1)?)),
        other => FieldType::from_simple_code(other),
    })
}
