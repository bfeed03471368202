//! Metadata records: what an event is (provider, id, name, version, ...) and its payload layout.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::cursor::Cursor;
use crate::error::{ErrorKind, ParseError};

/// Nested objects deeper than this are rejected (protects against corrupt, self-nesting input).
const MAX_NESTING: u32 = 16;

/// Metadata ids are small integers: hash them with one multiplication instead of SipHash.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type MetadataMap =
    HashMap<u32, Arc<EventMetadata>, std::hash::BuildHasherDefault<IdHasher>>;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn wstr(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn header(out: &mut Vec<u8>) {
        out.extend(7u32.to_le_bytes());
        out.extend(wstr("P"));
        out.extend(3u32.to_le_bytes());
        out.extend(wstr("E"));
        out.extend(0x10u64.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend(4u32.to_le_bytes());
    }

    // No runtime here emitted a V2Params tag (it appears only for array parameters, which the
    // EventSources we could run reject), so this layout comes from the format description.
    #[test]
    fn v2_params_tag_replaces_the_v1_list() {
        let mut rec = Vec::new();
        header(&mut rec);
        rec.extend(0u32.to_le_bytes()); // V1 field count
        let mut v2 = Vec::new();
        v2.extend(2u32.to_le_bytes());
        // field "Ids": Array of UInt32
        let mut f = wstr("Ids");
        f.extend(19u32.to_le_bytes());
        f.extend(10u32.to_le_bytes());
        v2.extend((f.len() as u32 + 4).to_le_bytes());
        v2.extend(&f);
        // field "S": Object { "X": Int32 } with 2 bytes of padding before Size is reached
        let mut inner = wstr("X");
        inner.extend(9u32.to_le_bytes());
        let mut f = wstr("S");
        f.extend(1u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        f.extend((inner.len() as u32 + 4).to_le_bytes());
        f.extend(&inner);
        f.extend([0, 0]);
        v2.extend((f.len() as u32 + 4).to_le_bytes());
        v2.extend(&f);
        rec.extend((v2.len() as i32).to_le_bytes());
        rec.push(2);
        rec.extend(&v2);
        rec.extend(1i32.to_le_bytes());
        rec.push(1);
        rec.push(1); // opcode Start
        let md = EventMetadata::parse(&mut Cursor::new(&rec, 1000)).unwrap();
        assert_eq!(md.opcode, Some(1));
        assert_eq!(md.event_keywords(), 0x10);
        assert_eq!(
            md.fields,
            vec![
                FieldDef {
                    name: "Ids".into(),
                    ty: FieldType::Array(Box::new(FieldType::UInt32))
                },
                FieldDef {
                    name: "S".into(),
                    ty: FieldType::Object(vec![FieldDef {
                        name: "X".into(),
                        ty: FieldType::Int32
                    }])
                },
            ]
        );
        let mut payload = Vec::new();
        payload.extend(2u16.to_le_bytes());
        payload.extend(5u32.to_le_bytes());
        payload.extend(6u32.to_le_bytes());
        payload.extend((-3i32).to_le_bytes());
        let values = crate::decode::decode_payload(&md.fields, &payload).unwrap();
        use crate::value::Value;
        assert_eq!(
            values[0].1,
            Value::Array(vec![Value::U32(5), Value::U32(6)])
        );
        assert_eq!(
            values[1].1,
            Value::Object(vec![("X".into(), Value::I32(-3))])
        );
        // An array count beyond the payload is a decode error, not a huge allocation.
        payload[0] = 0xff;
        payload[1] = 0xff;
        assert!(crate::decode::decode_payload(&md.fields, &payload).is_err());
    }

    #[test]
    fn a_record_ending_after_level_has_no_fields() {
        let mut rec = Vec::new();
        header(&mut rec);
        let md = EventMetadata::parse(&mut Cursor::new(&rec, 0)).unwrap();
        assert!(md.fields.is_empty() && md.opcode.is_none());
        assert_eq!(
            (
                md.provider_name.as_str(),
                md.event_id,
                md.event_name.as_str()
            ),
            ("P", 3, "E")
        );
    }

    #[test]
    fn self_nesting_objects_are_cut_off() {
        let mut rec = Vec::new();
        header(&mut rec);
        for _ in 0..40 {
            rec.extend(1u32.to_le_bytes()); // count 1
            rec.extend(1u32.to_le_bytes()); // Object
        }
        rec.extend([0u8; 200]);
        let e = EventMetadata::parse(&mut Cursor::new(&rec, 0)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed("fields nested too deeply"));
    }
}
