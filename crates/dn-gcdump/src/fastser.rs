//! FastSerialization, the container of `.gcdump` files: primitives, strings, object framing
//! and the forward-reference trailer, with 4-byte stream labels (as GCHeapDump uses).
//! The reader checks every length and offset against the input before using it.

use std::io::{self, Write};

use crate::error::FormatError;

pub const HEADER: &[u8] = b"!FastSerialization.1";

pub mod tag {
    pub const NULL: u8 = 1;
    pub const OBJECT_REF: u8 = 2;
    pub const FORWARD_REF: u8 = 3;
    pub const BEGIN_OBJECT: u8 = 4;
    pub const BEGIN_PRIVATE: u8 = 5;
    pub const END_OBJECT: u8 = 6;
    pub const FORWARD_DEF: u8 = 7;
    pub const BYTE: u8 = 8;
    pub const INT16: u8 = 9;
    pub const INT32: u8 = 10;
    pub const INT64: u8 = 11;
    pub const SKIP_REGION: u8 = 12;
    pub const STRING: u8 = 13;
    pub const BLOB: u8 = 14;
}

/// Writes primitives and keeps the stream position (labels are offsets).
pub struct Writer<W: Write> {
    out: W,
    pos: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out, pos: 0 }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The current position as a 4-byte label; a file past 4 GiB cannot be written.
    pub fn label(&self) -> io::Result<u32> {
        u32::try_from(self.pos).map_err(|_| {
            io::Error::other("the snapshot does not fit the .gcdump format's 4 GiB limit")
        })
    }

    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.bytes(&[v])
    }

    pub fn i32(&mut self, v: i32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn i64(&mut self, v: i64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn f32(&mut self, v: f32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// A string: UTF-16 unit count (-1 for null), then each unit in 1-3 bytes on its own.
    pub fn string(&mut self, s: Option<&str>) -> io::Result<()> {
        let Some(s) = s else {
            return self.i32(-1);
        };
        let units: Vec<u16> = s.encode_utf16().collect();
        let n = i32::try_from(units.len()).map_err(|_| io::Error::other("string too long"))?;
        self.i32(n)?;
        let mut buf = Vec::with_capacity(units.len() * 3);
        for u in units {
            if u < 0x80 {
                buf.push(u as u8);
            } else if u < 0x800 {
                buf.push(0xC0 | (u >> 6) as u8);
                buf.push(0x80 | (u & 0x3F) as u8);
            } else {
                buf.push(0xE0 | (u >> 12) as u8);
                buf.push(0x80 | ((u >> 6) & 0x3F) as u8);
                buf.push(0x80 | (u & 0x3F) as u8);
            }
        }
        self.bytes(&buf)
    }

    /// `04`, then the type written in full: `04 01 version minReader name 06`.
    pub fn begin_object(
        &mut self,
        type_name: &str,
        version: i32,
        min_reader: i32,
    ) -> io::Result<()> {
        self.u8(tag::BEGIN_OBJECT)?;
        self.u8(tag::BEGIN_OBJECT)?;
        self.u8(tag::NULL)?;
        self.i32(version)?;
        self.i32(min_reader)?;
        self.string(Some(type_name))?;
        self.u8(tag::END_OBJECT)
    }

    pub fn end_object(&mut self) -> io::Result<()> {
        self.u8(tag::END_OBJECT)
    }

    /// Ends the stream: the unbalanced `06`, an empty forward-reference table, trailer, suffix.
    pub fn finish(mut self) -> io::Result<W> {
        self.u8(tag::END_OBJECT)?;
        let table = self.label()?;
        self.u32(0)?;
        let trailer = self.label()?;
        self.u32(table)?;
        self.u32(trailer)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads primitives from a whole file held in memory.
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    pub fn pos(&self) -> usize {
        self.at
    }

    pub fn seek(&mut self, at: usize, what: &str) -> Result<(), FormatError> {
        if at > self.buf.len() {
            return Err(self.truncated_at(at, what));
        }
        self.at = at;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    fn truncated_at(&self, at: usize, what: &str) -> FormatError {
        FormatError::Truncated {
            offset: at as u64,
            what: what.to_string(),
            len: self.buf.len() as u64,
        }
    }

    pub fn corrupt(&self, what: impl Into<String>) -> FormatError {
        FormatError::Corrupt {
            offset: self.at as u64,
            what: what.into(),
        }
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.truncated_at(self.at, what))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, FormatError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.at).copied()
    }

    pub fn i32(&mut self, what: &str) -> Result<i32, FormatError> {
        let s = self.take(4, what)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, FormatError> {
        Ok(self.i32(what)? as u32)
    }

    pub fn i64(&mut self, what: &str) -> Result<i64, FormatError> {
        let s = self.take(8, what)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(i64::from_le_bytes(b))
    }

    pub fn f32(&mut self, what: &str) -> Result<f32, FormatError> {
        Ok(f32::from_bits(self.u32(what)?))
    }

    /// A count the rest of the file must be able to back at `min_bytes` per item.
    pub fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize, FormatError> {
        let at = self.at;
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| FormatError::Corrupt {
            offset: at as u64,
            what: format!("negative {what} {n}"),
        })?;
        if n.saturating_mul(min_bytes.max(1)) > self.remaining() {
            return Err(FormatError::Truncated {
                offset: at as u64,
                what: format!("{what} {n}"),
                len: self.buf.len() as u64,
            });
        }
        Ok(n)
    }

    /// A string (see [`Writer::string`]); `None` for null.
    pub fn string(&mut self, what: &str) -> Result<Option<String>, FormatError> {
        let at = self.at;
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| FormatError::Corrupt {
            offset: at as u64,
            what: format!("{what} has length {n}"),
        })?;
        if n > self.remaining() {
            return Err(self.truncated_at(at, what));
        }
        let mut units = Vec::with_capacity(n);
        for _ in 0..n {
            let b = self.u8(what)?;
            let u = if b < 0x80 {
                u16::from(b)
            } else if b < 0xE0 {
                let c = self.u8(what)?;
                (u16::from(b & 0x1F) << 6) | u16::from(c & 0x3F)
            } else {
                let c = self.take(2, what)?;
                (u16::from(b & 0x0F) << 12) | (u16::from(c[0] & 0x3F) << 6) | u16::from(c[1] & 0x3F)
            };
            units.push(u);
        }
        Ok(Some(String::from_utf16_lossy(&units)))
    }

    /// Expects tag `t`.
    pub fn expect(&mut self, t: u8, what: &str) -> Result<(), FormatError> {
        let at = self.at;
        let got = self.u8(what)?;
        if got != t {
            return Err(FormatError::Corrupt {
                offset: at as u64,
                what: format!("expected {what} (tag {t}), found byte {got:#04x}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_with_surrogates() {
        let mut w = Writer::new(Vec::new());
        w.string(Some("Bär ∑ 😀")).unwrap();
        w.string(None).unwrap();
        let buf = w.out;
        let mut r = Reader::new(&buf);
        assert_eq!(r.string("s").unwrap().as_deref(), Some("Bär ∑ 😀"));
        assert_eq!(r.string("s").unwrap(), None);
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let buf = [0xff, 0xff, 0xff, 0x7f, 0];
        let e = Reader::new(&buf).count("nodes", 4).unwrap_err();
        assert!(e.to_string().contains("offset 0"), "{e}");
    }
}
