//! Byte mutations for the readers' property tests: each test finds where the structure of a
//! real input is (fields, records, boundaries) and damages it there with these.

use std::ops::Range;

/// Cases per property: `PROPTEST_CASES` when set (a longer developer run), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of the input: offset and width in bytes (1 to 8, little-endian).
pub type Field = (usize, usize);

/// Flips bit `bit` (modulo the field's width) of `field`; nothing if it lies past the end.
pub fn flip(b: &mut [u8], (at, width): Field, bit: usize) {
    let bit = bit % (width * 8);
    if let Some(x) = b.get_mut(at + bit / 8) {
        *x ^= 1 << (bit % 8);
    }
}

/// Sets `field` to `value` (its low bytes); nothing if it lies past the end.
pub fn set(b: &mut [u8], (at, width): Field, value: u64) {
    if at + width <= b.len() {
        b[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// Cuts the input at `at` moved by `delta` bytes.
pub fn cut(b: &mut Vec<u8>, at: usize, delta: isize) {
    b.truncate(at.saturating_add_signed(delta));
}

/// Exchanges two records (ranges that do not overlap; their lengths may differ), keeping
/// what lies between them; nothing if either lies past the end.
pub fn swap(b: &mut [u8], x: Range<usize>, y: Range<usize>) {
    let (x, y) = if x.start <= y.start { (x, y) } else { (y, x) };
    if x.end > y.start || y.end > b.len() {
        return;
    }
    let mut seg = b[y.clone()].to_vec();
    seg.extend_from_slice(&b[x.end..y.start]);
    seg.extend_from_slice(&b[x.clone()]);
    b[x.start..y.end].copy_from_slice(&seg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_keeps_the_middle_and_flip_and_set_stay_in_bounds() {
        let mut b = b"aaXbbbb".to_vec();
        swap(&mut b, 3..7, 0..2);
        assert_eq!(b, b"bbbbXaa");
        set(&mut b, (5, 4), u64::MAX);
        assert_eq!(b, b"bbbbXaa");
        set(&mut b, (0, 2), 0x4142);
        assert_eq!(&b[..2], b"BA");
        flip(&mut b, (6, 1), 9);
        assert_eq!(b[6], b'a' ^ 2);
        cut(&mut b, 2, -5);
        assert!(b.is_empty());
    }
}
