//! A bit array with constant-time rank (set bits before a position): the words, plus one `u32`
//! per 512 bits holding the count before that block (6% more than the bits). It maps a sparse
//! subset of positions to dense numbers: the address index's object starts to node ids, the
//! dominator tree's inner nodes to their child rows.

/// Words per rank block: one cache line.
const WORDS_PER_BLOCK: usize = 8;

/// Bits with a rank directory; see the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct RankedBits {
    words: Vec<u64>,
    /// Set bits before each block of [`WORDS_PER_BLOCK`] words.
    blocks: Vec<u32>,
}

impl RankedBits {
    /// From the words (bit `i % 64` of word `i / 64` is position `i`); at most `u32::MAX` bits
    /// may be set.
    pub(crate) fn new(mut words: Vec<u64>) -> RankedBits {
        words.resize(words.len().next_multiple_of(WORDS_PER_BLOCK), 0);
        words.shrink_to_fit();
        let mut blocks = Vec::with_capacity(words.len() / WORDS_PER_BLOCK);
        let mut rank = 0u32;
        for block in words.chunks(WORDS_PER_BLOCK) {
            blocks.push(rank);
            rank += block.iter().map(|w| w.count_ones()).sum::<u32>();
        }
        RankedBits { words, blocks }
    }

    /// Whether position `i` is set; false past the end.
    #[inline]
    pub(crate) fn get(&self, i: u64) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    /// Set bits strictly before position `i`, which must be within the words.
    #[inline]
    pub(crate) fn rank(&self, i: u64) -> u32 {
        let w = (i / 64) as usize;
        let block = w / WORDS_PER_BLOCK;
        let mut rank = self.blocks[block];
        for &word in &self.words[block * WORDS_PER_BLOCK..w] {
            rank += word.count_ones();
        }
        rank + (self.words[w] & ((1u64 << (i % 64)) - 1)).count_ones()
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8 + self.blocks.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_the_bits_before() {
        let mut words = vec![0u64; 37];
        let mut set = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..37 * 64u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 {
                words[(i / 64) as usize] |= 1 << (i % 64);
                set.push(i);
            }
        }
        let r = RankedBits::new(words);
        let mut before = 0u32;
        for i in 0..37 * 64u64 {
            assert_eq!(r.rank(i), before, "rank {i}");
            let is_set = set.binary_search(&i).is_ok();
            assert_eq!(r.get(i), is_set);
            before += u32::from(is_set);
        }
        assert!(!r.get(1 << 40));
    }
}
