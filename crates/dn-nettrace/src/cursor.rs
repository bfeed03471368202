//! Bounds-checked little-endian reading over a byte slice that knows its absolute stream offset,
//! so every error can name the byte where it happened.

use crate::error::{ErrorKind, ParseError};

pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute stream offset of `data[0]`.
    base: u64,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Cursor { data, pos: 0, base }
    }

    /// A cursor over `data` (based at `base`) positioned at `pos`.
    pub fn at(data: &'a [u8], base: u64, pos: usize) -> Self {
        Cursor {
            data,
            pos: pos.min(data.len()),
            base,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Absolute stream offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[cold]
    #[inline(never)]
    pub fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError::new(self.offset(), kind)
    }

    #[cold]
    fn malformed(&self, what: &'static str) -> ParseError {
        self.error(ErrorKind::Malformed(what))
    }

    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        if n > self.remaining() {
            return Err(self.malformed(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), ParseError> {
        self.bytes(n, what).map(|_| ())
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ParseError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, what)?);
        Ok(a)
    }

    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn i32(&mut self, what: &'static str) -> Result<i32, ParseError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, ParseError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub fn guid(&mut self, what: &'static str) -> Result<[u8; 16], ParseError> {
        self.array(what)
    }

    /// LEB128 unsigned integer of at most `max_bytes` bytes.
    #[inline]
    fn varuint(&mut self, max_bytes: usize, what: &'static str) -> Result<u64, ParseError> {
        let rest = &self.data[self.pos..];
        let mut value = 0u64;
        for (i, &b) in rest.iter().take(max_bytes).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(value);
            }
        }
        if rest.len() < max_bytes {
            self.pos += rest.len();
            return Err(self.malformed(what));
        }
        self.pos += max_bytes;
        Err(self.malformed("variable-length integer too long"))
    }

    #[inline]
    pub fn varu32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        // 5 bytes carry 35 bits; the writer never sets the excess, a corrupt stream may: truncate.
        Ok(self.varuint(5, what)? as u32)
    }

    #[inline]
    pub fn varu64(&mut self, what: &'static str) -> Result<u64, ParseError> {
        self.varuint(10, what)
    }

    /// UTF-16LE string terminated by U+0000 (the terminator is consumed, not returned).
    pub fn utf16z(&mut self, what: &'static str) -> Result<String, ParseError> {
        match utf16z_prefix(&self.data[self.pos..]) {
            (s, used, true) => {
                self.pos += used;
                Ok(s)
            }
            (_, _, false) => Err(self.malformed(what)),
        }
    }
}

/// Decodes the NUL-terminated UTF-16LE string at the start of `bytes` (unpaired surrogates
/// become U+FFFD). Returns it, the bytes it used (terminator included), and whether a
/// terminator was found; without one the string runs to the last whole code unit.
pub(crate) fn utf16z_prefix(bytes: &[u8]) -> (String, usize, bool) {
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let (len, terminated) = match units.clone().position(|u| u == 0) {
        Some(n) => (n, true),
        None => (bytes.len() / 2, false),
    };
    let s = char::decode_utf16(units.take(len))
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    (s, 2 * (len + usize::from(terminated)), terminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_and_errors_carry_the_absolute_offset() {
        let data = [0xE5, 0x8E, 0x26, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x80];
        let mut c = Cursor::new(&data, 100);
        assert_eq!(c.varu32("a").unwrap(), 624_485);
        assert_eq!(c.varu32("b").unwrap(), u32::MAX);
        let e = c.varu64("c").unwrap_err();
        assert_eq!(e.offset, 109);
        let mut c = Cursor::new(&[0xff; 11], 0);
        assert_eq!(
            c.varu64("d").unwrap_err().kind,
            ErrorKind::Malformed("variable-length integer too long")
        );
    }
}
