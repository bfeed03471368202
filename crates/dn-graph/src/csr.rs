//! Compressed sparse rows: outgoing references, predecessors, dominator-tree children.

use crate::{BitSet, NodeId};
use rayon::prelude::*;
use std::ops::Range;

/// Row offsets: `u32` while the total fits, else `u64`.
#[derive(Clone, Debug)]
pub(crate) enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Offsets {
    /// The index range of row `row` in the targets array.
    #[inline]
    pub(crate) fn range(&self, row: usize) -> Range<usize> {
        match self {
            Offsets::Narrow(o) => o[row] as usize..o[row + 1] as usize,
            Offsets::Wide(o) => o[row] as usize..o[row + 1] as usize,
        }
    }

    fn rows(&self) -> usize {
        match self {
            Offsets::Narrow(o) => o.len().saturating_sub(1),
            Offsets::Wide(o) => o.len().saturating_sub(1),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Offsets::Narrow(o) => o.capacity() * 4,
            Offsets::Wide(o) => o.capacity() * 8,
        }
    }
}

/// An integer type usable as a row offset.
pub(crate) trait OffsetInt: Copy + Default {
    fn to_usize(self) -> usize;
    fn from_usize(v: usize) -> Self;
    fn wrap(v: Vec<Self>) -> Offsets;
    /// Row ends `[0, c0, c0 + c1, ...]` (one more than `counts`), reusing `counts` if possible.
    fn ends_from_counts(counts: Vec<u32>) -> Vec<Self> {
        let mut ends = Vec::with_capacity(counts.len() + 1);
        ends.push(Self::default());
        let mut acc = 0usize;
        for c in counts {
            acc += c as usize;
            ends.push(Self::from_usize(acc));
        }
        ends
    }
}

impl OffsetInt for u32 {
    #[inline]
    fn to_usize(self) -> usize {
        self as usize
    }
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as u32
    }
    fn wrap(v: Vec<Self>) -> Offsets {
        Offsets::Narrow(v)
    }
    /// In place: fresh pages are expensive on some virtual machines.
    fn ends_from_counts(mut counts: Vec<u32>) -> Vec<Self> {
        // Exclusive prefix sums over counts + [0]: [0, c0, c0 + c1, ..., total]. Grown by
        // exactly one: a plain push would double the capacity of a full buffer.
        counts.reserve_exact(1);
        counts.push(0);
        let mut acc = 0u32;
        for c in counts.iter_mut() {
            let here = *c;
            *c = acc;
            acc += here;
        }
        counts
    }
}

impl OffsetInt for u64 {
    #[inline]
    fn to_usize(self) -> usize {
        self as usize
    }
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as u64
    }
    fn wrap(v: Vec<Self>) -> Offsets {
        Offsets::Wide(v)
    }
}

/// True if offsets up to `total` fit in `u32`.
#[inline]
pub(crate) fn fits_narrow(total: usize) -> bool {
    total <= u32::MAX as usize
}

/// Counting-sort scatter: `new` from per-row counts, `put` every (row, value) once, `finish`.
/// Rows are filled from their end, so a row lists its values in the reverse of the put order.
pub(crate) struct Scatter<T> {
    ends: Vec<T>,
    targets: Vec<u32>,
}

impl<T: OffsetInt> Scatter<T> {
    /// From per-row counts (their buffer becomes the row offsets when `T` is `u32`).
    pub(crate) fn new(counts: Vec<u32>) -> Self {
        let ends = T::ends_from_counts(counts);
        let total = ends.last().map_or(0, |e| e.to_usize());
        Scatter {
            ends,
            targets: vec![0; total],
        }
    }

    #[inline]
    pub(crate) fn put(&mut self, row: usize, value: u32) {
        let slot = &mut self.ends[row + 1];
        let at = slot.to_usize() - 1;
        *slot = T::from_usize(at);
        self.targets[at] = value;
    }

    pub(crate) fn finish(mut self) -> Edges {
        // Every ends[r + 1] has come down to the start of row r.
        let total = self.targets.len();
        let last = self.ends.len() - 1;
        self.ends.copy_within(1.., 0);
        self.ends[last] = T::from_usize(total);
        Edges {
            offsets: T::wrap(self.ends),
            targets: self.targets,
        }
    }
}

/// Outgoing references of every node as compressed sparse rows.
///
/// Memory: 4 bytes per node of offsets (8 once there are 2^32 edges or more) plus 4 bytes per
/// edge. Each row holds distinct targets in the order the builder gave them (first occurrence
/// kept); self-loops are kept (they change no dominator, retained size or shortest path).
#[derive(Clone, Debug)]
pub struct Edges {
    offsets: Offsets,
    targets: Vec<NodeId>,
}

/// Nodes per parallel build chunk.
const CHUNK: usize = 1 << 16;
/// Rows longer than this are deduplicated with a bit set instead of a linear scan.
const SMALL_ROW: usize = 16;

impl Edges {
    /// Builds the rows by calling `f(node, &mut out)` for every node `0..n`; `f` pushes target
    /// ids in the order they should be kept. Duplicate targets of one node are removed keeping
    /// the first occurrence; targets `>= n` are dropped. With `parallel`, contiguous chunks of
    /// nodes are built on the rayon pool a few at a time and appended in node order: the
    /// result is identical to the serial one, and at most a few chunks' buffers exist at once
    /// (holding every chunk until the end would double the peak, and the allocator keeps
    /// freed medium-sized blocks resident).
    pub fn build<F>(n: usize, parallel: bool, f: F) -> Edges
    where
        F: Fn(NodeId, &mut Vec<NodeId>) + Sync,
    {
        assert!(n <= crate::MAX_NODES, "too many nodes: {n}");
        let (degrees, mut targets) = if parallel && n > CHUNK {
            let chunks = n.div_ceil(CHUNK);
            let group = 4 * rayon::current_num_threads().max(1);
            let mut degrees: Vec<u32> = Vec::with_capacity(n + 1);
            let mut targets: Vec<NodeId> = Vec::new();
            for first in (0..chunks).step_by(group) {
                let parts: Vec<_> = (first..(first + group).min(chunks))
                    .into_par_iter()
                    .map_init(
                        || None,
                        |seen, c| build_chunk(c * CHUNK..((c + 1) * CHUNK).min(n), n, &f, seen),
                    )
                    .collect();
                for (d, t) in parts {
                    degrees.extend_from_slice(&d);
                    targets.extend_from_slice(&t);
                }
            }
            (degrees, targets)
        } else {
            build_chunk(0..n, n, &f, &mut None)
        };
        targets.shrink_to_fit();
        let offsets = if fits_narrow(targets.len()) {
            Offsets::Narrow(u32::ends_from_counts(degrees))
        } else {
            Offsets::Wide(u64::ends_from_counts(degrees))
        };
        Edges { offsets, targets }
    }

    /// The targets of `id`, in builder order. Panics if `id` is out of range.
    #[inline]
    pub fn targets(&self, id: NodeId) -> &[NodeId] {
        &self.targets[self.offsets.range(id as usize)]
    }

    /// Number of edges.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True if there are no edges.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Number of rows (nodes).
    pub fn node_count(&self) -> usize {
        self.offsets.rows()
    }

    /// The predecessor rows (who references each node), by counting sort. Each row lists its
    /// predecessors in increasing id order. `n` must equal [`Edges::node_count`].
    pub fn reverse(&self, n: usize) -> Edges {
        assert_eq!(n, self.node_count(), "reverse: wrong node count");
        if fits_narrow(self.len()) {
            self.reverse_with::<u32>(n)
        } else {
            self.reverse_with::<u64>(n)
        }
    }

    fn reverse_with<T: OffsetInt>(&self, n: usize) -> Edges {
        let mut counts = vec![0u32; n];
        for &t in &self.targets {
            counts[t as usize] += 1;
        }
        let mut scatter = Scatter::<T>::new(counts);
        for u in (0..n).rev() {
            for &t in self.targets(u as NodeId).iter().rev() {
                scatter.put(t as usize, u as u32);
            }
        }
        scatter.finish()
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.offsets.memory_bytes() + self.targets.capacity() * 4
    }

    /// Takes the rows apart, to reuse their buffers.
    pub(crate) fn into_parts(self) -> (Offsets, Vec<NodeId>) {
        (self.offsets, self.targets)
    }

    /// Row offsets and the flat target array, for hot loops inside the crate.
    #[inline]
    pub(crate) fn parts(&self) -> (&Offsets, &[NodeId]) {
        (&self.offsets, &self.targets)
    }
}

/// The rows of `nodes`: degrees and targets. `seen` is scratch for long rows (a bit per node,
/// all clear between rows), made on first use and reused across the chunks of a thread.
fn build_chunk<F>(
    nodes: Range<usize>,
    n: usize,
    f: &F,
    seen: &mut Option<BitSet>,
) -> (Vec<u32>, Vec<NodeId>)
where
    F: Fn(NodeId, &mut Vec<NodeId>),
{
    let mut degrees = Vec::with_capacity(nodes.len());
    let mut targets = Vec::with_capacity(nodes.len() * 2);
    let mut out = Vec::new();
    for node in nodes {
        out.clear();
        f(node as NodeId, &mut out);
        let start = targets.len();
        if out.len() <= SMALL_ROW {
            for &t in &out {
                if (t as usize) < n && !targets[start..].contains(&t) {
                    targets.push(t);
                }
            }
        } else {
            let seen = seen.get_or_insert_with(|| BitSet::new(n));
            for &t in &out {
                if (t as usize) < n && seen.insert(t) {
                    targets.push(t);
                }
            }
            for &t in &targets[start..] {
                seen.remove(t);
            }
        }
        degrees.push((targets.len() - start) as u32);
    }
    (degrees, targets)
}
