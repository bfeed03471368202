//! Navigating the dominator tree: children, accumulation points, subtree walks.

use crate::csr::{Edges, Scatter};
use crate::dominators::{ROOT, UNREACHABLE};
use crate::rank::RankedBits;
use crate::{Dominators, NodeId};
use std::ops::Range;

/// MAT's `MAX_DEPTH` for the accumulation-point walk.
const MAX_ACCUMULATION_STEPS: u32 = 1000;

/// Dominator-tree children as CSR, with rows only for the nodes that have children (found by
/// rank in a bit per node) and a last row for the virtual root; each row in increasing id
/// order. 4 bytes per reachable node, 4 per inner node and a bit per node: most objects of a
/// heap are leaves of the dominator tree.
#[derive(Debug)]
pub(crate) struct ChildIndex {
    /// The nodes with at least one child.
    inner: RankedBits,
    /// Rows: the inner nodes by rank, then the virtual root.
    rows: Edges,
    root_row: usize,
}

impl ChildIndex {
    fn build(idom: &[u32]) -> ChildIndex {
        let n = idom.len();
        let mut words = vec![0u64; n.div_ceil(64)];
        for &d in idom {
            if d != UNREACHABLE && d != ROOT {
                words[d as usize / 64] |= 1 << (d % 64);
            }
        }
        let root_row = words.iter().map(|w| w.count_ones() as usize).sum();
        let inner = RankedBits::new(words);
        let row = |d: u32| {
            if d == ROOT {
                root_row
            } else {
                inner.rank(u64::from(d)) as usize
            }
        };
        let mut counts = vec![0u32; root_row + 1];
        for &d in idom {
            if d != UNREACHABLE {
                counts[row(d)] += 1;
            }
        }
        // Reachable nodes < 2^32, so u32 offsets always fit.
        let mut scatter = Scatter::<u32>::new(counts);
        for v in (0..n).rev() {
            let d = idom[v];
            if d != UNREACHABLE {
                scatter.put(row(d), v as u32);
            }
        }
        ChildIndex {
            inner,
            rows: scatter.finish(),
            root_row,
        }
    }

    /// The row of `parent` (None: the virtual root), or None for a node without children.
    #[inline]
    fn row(&self, parent: Option<NodeId>) -> Option<usize> {
        match parent {
            None => Some(self.root_row),
            Some(p) => {
                let p = u64::from(p);
                self.inner.get(p).then(|| self.inner.rank(p) as usize)
            }
        }
    }

    /// The index range of `node`'s children in the flat child array.
    #[inline]
    fn range(&self, node: NodeId) -> Range<usize> {
        match self.row(Some(node)) {
            Some(r) => self.rows.parts().0.range(r),
            None => 0..0,
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes() + self.rows.memory_bytes()
    }
}

impl Dominators {
    fn child_index(&self) -> &ChildIndex {
        self.children.get_or_init(|| ChildIndex::build(&self.idom))
    }

    /// Children of `parent` (None: the virtual root) in increasing id order.
    fn child_slice(&self, parent: Option<NodeId>) -> &[NodeId] {
        let index = self.child_index();
        match index.row(parent) {
            Some(r) => index.rows.targets(r as NodeId),
            None => &[],
        }
    }

    /// Dominator-tree children of `parent` (None: the virtual root, i.e. the top-level
    /// dominators), sorted by retained size descending, ties by increasing id. The child index
    /// is built once, on first use (see [`ChildIndex`]).
    pub fn children(&self, parent: Option<NodeId>) -> Vec<NodeId> {
        let mut kids = self.child_slice(parent).to_vec();
        kids.sort_unstable_by(|&a, &b| {
            self.retained(b)
                .cmp(&self.retained(a))
                .then_with(|| a.cmp(&b))
        });
        kids
    }

    /// The biggest child of `parent` (largest retained size, ties by smallest id).
    fn biggest_child(&self, parent: NodeId) -> Option<NodeId> {
        let mut best: Option<NodeId> = None;
        for &k in self.child_slice(Some(parent)) {
            if best.is_none_or(|b| self.retained(k) > self.retained(b)) {
                best = Some(k);
            }
        }
        best
    }

    /// MAT's accumulation point below `node`: step into the biggest child while its retained
    /// size is at least 70% of the current node's (`child * 10 >= current * 7`); a node
    /// without children is the point. None if `node` is unreachable, or if the walk is still
    /// going after 1000 steps.
    pub fn accumulation_point(&self, node: NodeId) -> Option<NodeId> {
        if !self.is_reachable(node) {
            return None;
        }
        let mut cur = node;
        let mut steps = 0;
        loop {
            let Some(child) = self.biggest_child(cur) else {
                return Some(cur);
            };
            if steps >= MAX_ACCUMULATION_STEPS {
                return None;
            }
            let (c, p) = (self.retained(child) as u128, self.retained(cur) as u128);
            if c * 10 < p * 7 {
                return Some(cur);
            }
            cur = child;
            steps += 1;
        }
    }

    /// Depth-first walk of the dominator subtree of `start` (itself included): `visit(x,
    /// true)` on the way down, `visit(x, false)` on the way up. Iterative; only an edge cursor per level is kept,
    /// the node of a level is found again through its idom.
    pub(crate) fn walk_subtree(&self, start: NodeId, mut visit: impl FnMut(NodeId, bool)) {
        if !self.is_reachable(start) {
            return;
        }
        let index = self.child_index();
        let kids = index.rows.parts().1;
        let mut stack: Vec<u32> = Vec::new();
        visit(start, true);
        let mut cur = start;
        let mut row = index.range(cur);
        let mut pos = row.start;
        loop {
            if pos < row.end {
                let k = kids[pos];
                pos += 1;
                stack.push((pos - row.start) as u32);
                visit(k, true);
                cur = k;
                row = index.range(cur);
                pos = row.start;
            } else {
                visit(cur, false);
                let Some(rel) = stack.pop() else { break };
                cur = self.idom[cur as usize];
                row = index.range(cur);
                pos = row.start + rel as usize;
            }
        }
    }

    /// The top-level dominators (children of the virtual root) in increasing id order.
    pub(crate) fn top_level(&self) -> &[NodeId] {
        self.child_slice(None)
    }
}
