//! Address -> dense id, without a binary search over all addresses.
//!
//! The heap is a few (up to some thousands) regions, kept in a small sorted table that stays in
//! cache. A region dense in objects gets a bitmap with one bit per 8-byte slot; the bitmaps
//! share one [`RankedBits`], so an object's id is its region's first id plus the set bits before
//! it in its region: about heap_bytes / 64 * 1.06. A sparse region (objects more than
//! [`MAX_BITMAP_SPACING`] bytes apart on average, e.g. large objects) is searched in the
//! address array instead, which costs no memory and few steps there.

use crate::addresses::Addresses;
use crate::rank::RankedBits;
use crate::{GraphError, NodeId};
use std::ops::Range;

/// Average object spacing (bytes) above which a region is binary-searched instead.
const MAX_BITMAP_SPACING: u64 = 512;

#[derive(Clone, Copy, Debug)]
struct Bitmap {
    /// Address of slot 0 (the region's first object).
    base: u64,
    /// Position of slot 0 in the shared bits (a multiple of 64).
    bit: u64,
    /// Set bits before `bit` (the objects of the bitmaps before this one).
    rank: u32,
    /// Number of 8-byte slots covered.
    slots: u64,
}

#[derive(Clone, Copy, Debug)]
struct Region {
    start: u64,
    end: u64,
    first: NodeId,
    count: u32,
    bitmap: Option<Bitmap>,
}

/// Finds objects by address; see the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddressIndex {
    regions: Vec<Region>,
    bits: RankedBits,
    /// Region lookup without a binary search: blocks of `1 << shift` bytes from the first
    /// region's start, each with the first region that ends after the block's start.
    blocks: Vec<u32>,
    shift: u32,
}

/// The most entries of the region lookup table (4 MiB of `u32`).
const MAX_BLOCKS: u64 = 1 << 20;

/// Sorts `ranges`, drops empty ones, and rejects inverted or overlapping ones.
pub(crate) fn normalize_ranges(ranges: &[(u64, u64)]) -> Result<Vec<(u64, u64)>, GraphError> {
    let mut sorted = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges {
        if end < start {
            return Err(GraphError::InvalidRange { start, end });
        }
        if end > start {
            sorted.push((start, end));
        }
    }
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(GraphError::OverlappingRanges {
                first: pair[0].0,
                second: pair[1].0,
            });
        }
    }
    Ok(sorted)
}

impl AddressIndex {
    /// `addresses` strictly increasing and 8-aligned; `ranges` from [`normalize_ranges`].
    pub(crate) fn build(addresses: &Addresses, ranges: &[(u64, u64)]) -> Result<Self, GraphError> {
        let mut index = AddressIndex::default();
        let mut bits = Vec::new();
        let n = addresses.len();
        let at = |i: usize| addresses.get(i as NodeId);
        let mut i = 0usize;
        for &(start, end) in ranges {
            if i < n && at(i) < start {
                return Err(GraphError::OutsideRanges { address: at(i) });
            }
            let first = i;
            while i < n && at(i) < end {
                i += 1;
            }
            if i > first {
                index.add_region(start, end, first..i, addresses, &mut bits);
            }
        }
        if i < n {
            return Err(GraphError::OutsideRanges { address: at(i) });
        }
        index.bits = RankedBits::new(bits);
        index.build_blocks();
        Ok(index)
    }

    /// Fills the region lookup table: blocks of at least 4 KiB, at most [`MAX_BLOCKS`] of them.
    fn build_blocks(&mut self) {
        let (Some(first), Some(last)) = (self.regions.first(), self.regions.last()) else {
            return;
        };
        let (min, span) = (first.start, last.end - first.start);
        let mut shift = 12;
        while (span >> shift) >= MAX_BLOCKS {
            shift += 1;
        }
        self.shift = shift;
        let count = (span >> shift) + 1;
        self.blocks = Vec::with_capacity(count as usize);
        let mut r = 0usize;
        for b in 0..count {
            let start = min + (b << shift);
            while r < self.regions.len() && self.regions[r].end <= start {
                r += 1;
            }
            self.blocks.push(r as u32);
        }
    }

    /// Adds the region `[start, end)` holding the (non-empty) ids `ids`; a bitmap goes to the
    /// end of `bits`.
    fn add_region(
        &mut self,
        start: u64,
        end: u64,
        ids: Range<usize>,
        addresses: &Addresses,
        bits: &mut Vec<u64>,
    ) {
        let (first, count) = (ids.start, ids.len());
        let base = addresses.get(first as NodeId);
        let slots = (addresses.get((first + count - 1) as NodeId) - base) / 8 + 1;
        let dense = slots / 8 <= count as u64 * (MAX_BITMAP_SPACING / 64);
        let bitmap = dense.then(|| {
            let word = bits.len();
            bits.resize(word + (slots as usize).div_ceil(64), 0);
            for a in ids.map(|i| addresses.get(i as NodeId)) {
                let slot = ((a - base) / 8) as usize;
                bits[word + slot / 64] |= 1 << (slot % 64);
            }
            // Ids are dense and the bitmaps come in id order: the objects before this bitmap
            // are those of the dense regions before it.
            let rank = self
                .regions
                .iter()
                .rev()
                .find_map(|r| r.bitmap.map(|b| b.rank + r.count))
                .unwrap_or(0);
            Bitmap {
                base,
                bit: word as u64 * 64,
                rank,
                slots,
            }
        });
        self.regions.push(Region {
            start,
            end,
            first: first as NodeId,
            count: count as u32,
            bitmap,
        });
    }

    #[inline]
    fn region(&self, address: u64) -> Option<&Region> {
        let off = address.checked_sub(self.regions.first()?.start)?;
        let mut i = *self.blocks.get((off >> self.shift) as usize)? as usize;
        // Regions sharing the block that end before `address`: none or a few.
        while self.regions.get(i)?.end <= address {
            i += 1;
        }
        let region = &self.regions[i];
        (region.start <= address).then_some(region)
    }

    /// Set bits strictly before `slot` in the region's bitmap.
    #[inline]
    fn rank(&self, bm: &Bitmap, slot: u64) -> u32 {
        self.bits.rank(bm.bit + slot) - bm.rank
    }

    #[inline]
    fn bit(&self, bm: &Bitmap, slot: u64) -> bool {
        self.bits.get(bm.bit + slot)
    }

    /// The object starting exactly at `address`.
    #[inline]
    pub(crate) fn exact(&self, addresses: &Addresses, address: u64) -> Option<NodeId> {
        let r = self.region(address)?;
        match &r.bitmap {
            Some(bm) => {
                let off = address.checked_sub(bm.base)?;
                if off % 8 != 0 || off / 8 >= bm.slots || !self.bit(bm, off / 8) {
                    return None;
                }
                Some(r.first + self.rank(bm, off / 8))
            }
            None => {
                let k = addresses.partition_point(r.first, r.first + r.count, |a| a < address);
                (k < r.first + r.count && addresses.get(k) == address).then_some(k)
            }
        }
    }

    /// The last object of `address`'s region that starts at or before `address`.
    #[inline]
    pub(crate) fn floor(&self, addresses: &Addresses, address: u64) -> Option<NodeId> {
        let r = self.region(address)?;
        match &r.bitmap {
            Some(bm) => {
                let off = address.checked_sub(bm.base)?;
                let slot = (off / 8).min(bm.slots - 1);
                // Slot 0 holds the region's first object, so at least one bit is counted.
                let upto = self.rank(bm, slot) + u32::from(self.bit(bm, slot));
                Some(r.first + upto - 1)
            }
            None => {
                let k = addresses.partition_point(r.first, r.first + r.count, |a| a <= address);
                (k > r.first).then(|| k - 1)
            }
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.regions.capacity() * std::mem::size_of::<Region>()
            + self.bits.memory_bytes()
            + self.blocks.capacity() * 4
    }
}
