//! The address column: one `u32` per object instead of a `u64`.
//!
//! Addresses are 8-aligned and increasing, so an address is kept as its distance in 8-byte
//! slots from the base of its span: a span covers up to 32 GiB of address space and starts at
//! the first object past the previous span's reach. A heap has one span or a few, so finding
//! an object's span is a comparison or a short binary search over a table that stays in cache.

use crate::NodeId;

/// Slots a span's offsets reach (`u32::MAX` slots of 8 bytes: just under 32 GiB).
const SPAN_SLOTS: u64 = u32::MAX as u64;

#[derive(Clone, Copy, Debug)]
struct Span {
    /// First id of the span.
    first: NodeId,
    /// Address of that id; every address of the span is `base + 8 * offset`.
    base: u64,
}

/// Increasing, 8-aligned addresses by dense id; see the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Addresses {
    offsets: Vec<u32>,
    spans: Vec<Span>,
}

impl Addresses {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Addresses {
            offsets: Vec::with_capacity(n),
            spans: Vec::new(),
        }
    }

    /// Appends `address`. The caller has checked that it is 8-aligned and greater than the
    /// last one.
    pub(crate) fn push(&mut self, address: u64) {
        let id = self.offsets.len() as NodeId;
        let slot = match self.spans.last() {
            Some(s) if (address - s.base) / 8 <= SPAN_SLOTS => (address - s.base) / 8,
            _ => {
                self.spans.push(Span {
                    first: id,
                    base: address,
                });
                0
            }
        };
        self.offsets.push(slot as u32);
    }

    pub(crate) fn len(&self) -> usize {
        self.offsets.len()
    }

    pub(crate) fn last(&self) -> Option<u64> {
        self.len().checked_sub(1).map(|i| self.get(i as NodeId))
    }

    /// The address of `id`; panics if out of range, like slice indexing.
    #[inline]
    pub(crate) fn get(&self, id: NodeId) -> u64 {
        let offset = u64::from(self.offsets[id as usize]);
        let span = if self.spans.len() == 1 {
            &self.spans[0]
        } else {
            // `first` of span 0 is 0, so the point is at least 1.
            &self.spans[self.spans.partition_point(|s| s.first <= id) - 1]
        };
        span.base + offset * 8
    }

    /// Within ids `lo..hi`, the number of leading ids whose address satisfies `pred` (which
    /// must be true for a prefix and false after it), plus `lo`.
    pub(crate) fn partition_point(
        &self,
        lo: NodeId,
        hi: NodeId,
        pred: impl Fn(u64) -> bool,
    ) -> NodeId {
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.offsets.shrink_to_fit();
        self.spans.shrink_to_fit();
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.spans.capacity() * std::mem::size_of::<Span>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_spans() {
        let gib = 1u64 << 30;
        let addrs = [
            0x1000,
            0x1008,
            0x1000 + 32 * gib - 8, // the last slot of span 0
            0x1000 + 32 * gib,     // one slot too far: span 1
            0x7f00_0000_0000,
            0x7f00_0000_0000 + 31 * gib,
            u64::MAX - 7,
        ];
        let mut a = Addresses::with_capacity(0);
        for &x in &addrs {
            a.push(x);
        }
        assert_eq!(a.spans.len(), 4);
        for (i, &x) in addrs.iter().enumerate() {
            assert_eq!(a.get(i as NodeId), x);
        }
        assert_eq!(a.last(), Some(u64::MAX - 7));
        let n = addrs.len() as NodeId;
        for (i, &x) in addrs.iter().enumerate() {
            assert_eq!(a.partition_point(0, n, |v| v < x), i as NodeId);
            assert_eq!(a.partition_point(0, n, |v| v <= x), i as NodeId + 1);
        }
        assert_eq!(a.partition_point(2, 5, |v| v < 0x1008), 2);
    }
}
