//! Payload decoding driven by the metadata field list.

use crate::cursor::utf16z_prefix;
use crate::error::DecodeError;
use crate::metadata::{FieldDef, FieldType};
use crate::value::{FileTime, Guid, Value};

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.data.len() - self.pos {
            return Err(DecodeError {
                field: field.to_string(),
                offset: self.pos,
                reason: "payload too short",
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, field: &str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    /// NUL-terminated UTF-16LE; like TraceEvent, a missing terminator ends the string at the
    /// end of the payload.
    fn utf16z(&mut self) -> String {
        let (s, used, _) = utf16z_prefix(&self.data[self.pos..]);
        self.pos += used;
        s
    }
}

/// Decodes `payload` by `fields`. Bytes left after the last field are ignored (newer event
/// versions append fields).
pub fn decode_payload(
    fields: &[FieldDef],
    payload: &[u8],
) -> Result<Vec<(String, Value)>, DecodeError> {
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    decode_fields(fields, &mut r)
}

fn decode_fields(fields: &[FieldDef], r: &mut Reader) -> Result<Vec<(String, Value)>, DecodeError> {
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let v = decode_value(&f.ty, &f.name, r)?;
        out.push((f.name.clone(), v));
    }
    Ok(out)
}

fn decode_value(ty: &FieldType, name: &str, r: &mut Reader) -> Result<Value, DecodeError> {
    Ok(match ty {
        FieldType::Object(fields) => Value::Object(decode_fields(fields, r)?),
        FieldType::Boolean => Value::Bool(u32::from_le_bytes(r.arr(name)?) != 0),
        FieldType::Char => {
            let u = u16::from_le_bytes(r.arr(name)?);
            Value::Char(char::from_u32(u32::from(u)).unwrap_or(char::REPLACEMENT_CHARACTER))
        }
        FieldType::SByte => Value::I8(i8::from_le_bytes(r.arr(name)?)),
        FieldType::Byte => Value::U8(r.arr::<1>(name)?[0]),
        FieldType::Int16 => Value::I16(i16::from_le_bytes(r.arr(name)?)),
        FieldType::UInt16 => Value::U16(u16::from_le_bytes(r.arr(name)?)),
        FieldType::Int32 => Value::I32(i32::from_le_bytes(r.arr(name)?)),
        FieldType::UInt32 => Value::U32(u32::from_le_bytes(r.arr(name)?)),
        FieldType::Int64 => Value::I64(i64::from_le_bytes(r.arr(name)?)),
        FieldType::UInt64 => Value::U64(u64::from_le_bytes(r.arr(name)?)),
        FieldType::Single => Value::F32(f32::from_le_bytes(r.arr(name)?)),
        FieldType::Double => Value::F64(f64::from_le_bytes(r.arr(name)?)),
        FieldType::Decimal => Value::Decimal(r.arr(name)?),
        FieldType::DateTime => Value::DateTime(FileTime(i64::from_le_bytes(r.arr(name)?))),
        FieldType::Guid => Value::Guid(Guid(r.arr(name)?)),
        FieldType::String => Value::String(r.utf16z()),
        FieldType::Array(elem) => {
            let at = r.pos;
            let count = u16::from_le_bytes(r.arr(name)?) as usize;
            // Every element takes at least one byte except empty objects; cap the allocation.
            if count > r.data.len() - r.pos
                && !matches!(**elem, FieldType::Object(ref f) if f.is_empty())
            {
                return Err(DecodeError {
                    field: name.to_string(),
                    offset: at,
                    reason: "array count larger than the payload",
                });
            }
            let mut items = Vec::with_capacity(count.min(r.data.len() - r.pos));
            for _ in 0..count {
                items.push(decode_value(elem, name, r)?);
            }
            Value::Array(items)
        }
        FieldType::Unsupported(_) => {
            return Err(DecodeError {
                field: name.to_string(),
                offset: r.pos,
                reason: "unsupported type code",
            })
        }
    })
}
