//! Decoded payload values.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A GUID as stored on the wire (Windows layout: first three groups little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Windows FILETIME: 100 ns ticks since 1601-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileTime(pub i64);

/// FILETIME ticks between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

impl FileTime {
    pub fn to_system_time(&self) -> Option<SystemTime> {
        let ticks = self.0.checked_sub(FILETIME_UNIX_EPOCH)?;
        let d = Duration::new(
            ticks.unsigned_abs() / 10_000_000,
            ((ticks.unsigned_abs() % 10_000_000) * 100) as u32,
        );
        if ticks >= 0 {
            UNIX_EPOCH.checked_add(d)
        } else {
            UNIX_EPOCH.checked_sub(d)
        }
    }
}

impl fmt::Display for FileTime {
    /// ISO 8601 UTC with 100 ns precision, e.g. `2026-11-25T11:17:01.1234567Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Saturating: garbage values must still print, not overflow.
        let ticks = self.0.saturating_sub(FILETIME_UNIX_EPOCH);
        let secs = ticks.div_euclid(10_000_000);
        let frac = ticks.rem_euclid(10_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:07}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl Serialize for FileTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Inverse of `days_from_civil` (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One decoded payload value. Serializes to plain JSON: numbers, strings, arrays, and objects
/// (field order kept); DateTime as an ISO 8601 string, Guid as its usual text form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Char(char),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    /// Raw 16 bytes of a System.Decimal (practically never used by events).
    Decimal([u8; 16]),
    DateTime(FileTime),
    Guid(Guid),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// Field of an object value by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => field(fields, name),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any numeric value as f64 (bool as 0/1).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            // Every integer fits i128 exactly, so this rounds as a direct cast would.
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    /// Any integer value as i128 (lossless for every integer width).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::Bool(b) => i128::from(b),
            Value::I8(v) => v.into(),
            Value::U8(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I64(v) => v.into(),
            Value::U64(v) => v.into(),
            _ => return None,
        })
    }
}

/// Field of a decoded payload by name.
pub fn field<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Serializes a field list as a JSON object, keeping the order.
pub struct Fields<'a>(pub &'a [(String, Value)]);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Char(v) => s.serialize_char(*v),
            Value::I8(v) => s.serialize_i8(*v),
            Value::U8(v) => s.serialize_u8(*v),
            Value::I16(v) => s.serialize_i16(*v),
            Value::U16(v) => s.serialize_u16(*v),
            Value::I32(v) => s.serialize_i32(*v),
            Value::U32(v) => s.serialize_u32(*v),
            Value::I64(v) => s.serialize_i64(*v),
            Value::U64(v) => s.serialize_u64(*v),
            Value::F32(v) => s.serialize_f32(*v),
            Value::F64(v) => s.serialize_f64(*v),
            Value::Decimal(b) => s.serialize_bytes(b),
            Value::DateTime(t) => t.serialize(s),
            Value::Guid(g) => g.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(fields) => Fields(fields).serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_uses_the_windows_byte_order() {
        let g = Guid([
            0x0c, 0x0d, 0x0e, 0x0f, 0x0a, 0x0b, 0x08, 0x09, 7, 6, 5, 4, 3, 2, 1, 0,
        ]);
        assert_eq!(g.to_string(), "0f0e0d0c-0b0a-0908-0706-050403020100");
    }

    #[test]
    fn filetime_text_and_system_time() {
        // 2024-02-29T12:34:56.0000017Z as written by DateTime.ToFileTimeUtc.
        let t = FileTime(133_536_836_960_000_017);
        assert_eq!(t.to_string(), "2024-02-29T12:34:56.0000017Z");
        let st = t.to_system_time().unwrap();
        assert_eq!(
            st.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_709_210_096, 1_700)
        );
        assert_eq!(FileTime(0).to_string(), "1601-01-01T00:00:00.0000000Z");
        // Nonsense values (corrupt payloads) still print.
        assert!(!FileTime(i64::MIN).to_string().is_empty());
        assert!(!FileTime(i64::MAX).to_string().is_empty());
        assert!(FileTime(i64::MIN).to_system_time().is_none());
    }

    #[test]
    fn values_serialize_as_plain_json_objects_in_order() {
        let v = Value::Object(vec![
            ("b".into(), Value::I32(1)),
            (
                "a".into(),
                Value::Array(vec![Value::Bool(true), Value::String("x".into())]),
            ),
        ]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"b":1,"a":[true,"x"]}"#
        );
    }
}
