//! A fixed-size bit set over node ids.

use crate::NodeId;

/// A set of node ids `0..len`, one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitSet {
    words: Vec<u64>,
    len: usize,
}

impl BitSet {
    /// An empty set able to hold ids `0..len`.
    pub fn new(len: usize) -> Self {
        BitSet {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// A set over `0..len` from its words (bit `i % 64` of word `i / 64` is id `i`); bits past
    /// `len` are cleared.
    pub(crate) fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        words.resize(len.div_ceil(64), 0);
        if len % 64 != 0 {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
        BitSet { words, len }
    }

    /// The number of ids the set can hold (not the number of members).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the set can hold no id at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if `id` is a member; false for ids out of range.
    #[inline]
    pub fn contains(&self, id: NodeId) -> bool {
        let i = id as usize;
        i < self.len && self.words[i >> 6] & (1 << (i & 63)) != 0
    }

    /// Adds `id`; returns true if it was not a member. Panics if `id` is out of range.
    #[inline]
    pub fn insert(&mut self, id: NodeId) -> bool {
        let i = id as usize;
        assert!(i < self.len, "bit {i} out of range {}", self.len);
        let word = &mut self.words[i >> 6];
        let mask = 1 << (i & 63);
        let fresh = *word & mask == 0;
        *word |= mask;
        fresh
    }

    /// Removes `id`; returns true if it was a member.
    pub fn remove(&mut self, id: NodeId) -> bool {
        let i = id as usize;
        if i >= self.len {
            return false;
        }
        let word = &mut self.words[i >> 6];
        let mask = 1 << (i & 63);
        let was = *word & mask != 0;
        *word &= !mask;
        was
    }

    /// The number of members.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((wi * 64) as NodeId + bit)
            })
        })
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}
