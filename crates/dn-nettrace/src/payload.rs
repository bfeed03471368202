//! The payload bytes of an owned [`Event`](crate::Event), without a heap allocation per event:
//! short payloads are stored inline, longer ones share one reference-counted copy of the
//! EventBlock they came from.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Payloads up to this many bytes are stored inline (this fills the size of the shared form, so
/// inlining costs no space).
const INLINE: usize = 30;

/// Raw payload bytes of an owned event; dereferences to `&[u8]`.
///
/// A long payload keeps its whole EventBlock (the runtime writes ≤ 100 KiB) alive while the
/// event lives; use [`to_vec`](slice::to_vec) to keep only the bytes.
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    /// A range of the parser's buffer holding the EventBlock.
    Shared {
        block: Arc<Vec<u8>>,
        start: u32,
        end: u32,
    },
    /// A copy made from a borrowed event.
    Boxed(Box<[u8]>),
}

impl Payload {
    /// A copy of `bytes` (inline, or in its own heap buffer when long).
    #[inline]
    pub fn copy_from(bytes: &[u8]) -> Payload {
        match Self::inline(bytes) {
            Some(p) => p,
            None => Payload(Repr::Boxed(bytes.into())),
        }
    }

    /// `bytes` inline, if short enough.
    #[inline]
    pub(crate) fn inline(bytes: &[u8]) -> Option<Payload> {
        if bytes.len() > INLINE {
            return None;
        }
        let mut inline = [0u8; INLINE];
        inline[..bytes.len()].copy_from_slice(bytes);
        Some(Payload(Repr::Inline {
            len: bytes.len() as u8,
            bytes: inline,
        }))
    }

    /// `range` of a shared buffer (< 4 GiB: it holds one block of ≤ 64 MiB plus one read).
    #[inline]
    pub(crate) fn shared(block: &Arc<Vec<u8>>, range: Range<usize>) -> Payload {
        debug_assert!(range.end <= block.len());
        Payload(Repr::Shared {
            block: Arc::clone(block),
            start: range.start as u32,
            end: range.end as u32,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        self
    }
}

impl Deref for Payload {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared { block, start, end } => &block[*start as usize..*end as usize],
            Repr::Boxed(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        **self == **other
    }
}

impl Eq for Payload {}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<Vec<u8>> for Payload {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Payload {
        Payload::copy_from(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload::copy_from(&bytes)
    }
}

impl From<Payload> for Vec<u8> {
    fn from(p: Payload) -> Vec<u8> {
        p.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inline_long_shared_both_read_back() {
        for len in [0, 1, INLINE, INLINE + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let p = Payload::copy_from(&bytes);
            assert_eq!(&*p, &bytes[..]);
            assert_eq!(p.clone(), bytes);
            assert_eq!(matches!(p.0, Repr::Inline { .. }), len <= INLINE);
        }
        let block = Arc::new((0..100u8).collect::<Vec<_>>());
        let p = Payload::shared(&block, 10..40);
        assert_eq!(&*p, &block[10..40]);
        assert_eq!(format!("{p:?}"), format!("{:?}", &block[10..40]));
    }
}
