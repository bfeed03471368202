//! A set of object addresses for searches over the heap.

use super::GcHeap;

/// A set of object addresses: one bit per 8 heap bytes for addresses inside the GC's segments
/// (far cheaper than hashing millions of addresses), a hash set for anything else.
pub struct ObjectSet {
    /// (start, end, first bit) of each segment, sorted by start.
    ranges: Vec<(u64, u64, usize)>,
    bits: Vec<u64>,
    other: rustc_hash::FxHashSet<u64>,
}

impl ObjectSet {
    pub fn new(heap: &GcHeap) -> ObjectSet {
        let mut segs: Vec<(u64, u64)> = heap
            .segments
            .iter()
            .filter(|s| s.end > s.start)
            .map(|s| (s.start, s.end))
            .collect();
        segs.sort();
        let mut ranges = Vec::with_capacity(segs.len());
        let mut next_bit = 0usize;
        for (start, end) in segs {
            ranges.push((start, end, next_bit));
            next_bit += ((end - start) / 8) as usize + 1;
        }
        ObjectSet {
            ranges,
            bits: vec![0; next_bit.div_ceil(64)],
            other: Default::default(),
        }
    }

    fn bit(&self, addr: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= addr);
        let (start, end, first) = *self.ranges.get(i.checked_sub(1)?)?;
        (addr < end && addr % 8 == 0).then(|| first + ((addr - start) / 8) as usize)
    }

    /// Adds `addr`; false if it was already there.
    pub fn insert(&mut self, addr: u64) -> bool {
        match self.bit(addr) {
            Some(b) => {
                let (w, m) = (b / 64, 1u64 << (b % 64));
                let was = self.bits[w] & m != 0;
                self.bits[w] |= m;
                !was
            }
            None => self.other.insert(addr),
        }
    }

    pub fn remove(&mut self, addr: u64) {
        match self.bit(addr) {
            Some(b) => self.bits[b / 64] &= !(1u64 << (b % 64)),
            None => {
                self.other.remove(&addr);
            }
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        match self.bit(addr) {
            Some(b) => self.bits[b / 64] & (1u64 << (b % 64)) != 0,
            None => self.other.contains(&addr),
        }
    }
}
