//! Navigating the dominator tree: children, accumulation points, subtree walks.

use crate::csr::{Edges, Scatter};
use crate::dominators::{ROOT, UNREACHABLE};
use crate::{Dominators, NodeId};

/// MAT's `MAX_DEPTH` for the accumulation-point walk.
const MAX_ACCUMULATION_STEPS: u32 = 1000;

/// Dominator-tree children as CSR: row `id` for a node, row `n` for the virtual root; each row
/// in increasing id order. 4 bytes per node of offsets + 4 per reachable node.
#[derive(Debug)]
pub(crate) struct ChildIndex {
    rows: Edges,
}

impl ChildIndex {
    fn build(idom: &[u32]) -> ChildIndex {
        let n = idom.len();
        let row = |d: u32| if d == ROOT { n } else { d as usize };
        let mut counts = vec![0u32; n + 1];
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
            rows: scatter.finish(),
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.rows.memory_bytes()
    }
}

impl Dominators {
    fn child_index(&self) -> &ChildIndex {
        self.children.get_or_init(|| ChildIndex::build(&self.idom))
    }

    /// Children of `parent` (None: the virtual root) in increasing id order.
    fn child_slice(&self, parent: Option<NodeId>) -> &[NodeId] {
        let row = parent.unwrap_or(self.idom.len() as NodeId);
        self.child_index().rows.targets(row)
    }

    /// Dominator-tree children of `parent` (None: the virtual root, i.e. the top-level
    /// dominators), sorted by retained size descending, ties by increasing id. The child index
    /// is built once, on first use (8 bytes per node).
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
        let (offsets, kids) = self.child_index().rows.parts();
        let mut stack: Vec<u32> = Vec::new();
        visit(start, true);
        let mut cur = start;
        let mut row = offsets.range(cur as usize);
        let mut pos = row.start;
        loop {
            if pos < row.end {
                let k = kids[pos];
                pos += 1;
                stack.push((pos - row.start) as u32);
                visit(k, true);
                cur = k;
                row = offsets.range(cur as usize);
                pos = row.start;
            } else {
                visit(cur, false);
                let Some(rel) = stack.pop() else { break };
                cur = self.idom[cur as usize];
                row = offsets.range(cur as usize);
                pos = row.start + rel as usize;
            }
        }
    }

    /// The top-level dominators (children of the virtual root) in increasing id order.
    pub(crate) fn top_level(&self) -> &[NodeId] {
        self.child_slice(None)
    }
}
