//! Paths from GC roots, by breadth-first search over the CSR (shortest in edge count).

use crate::error::CancelCheck;
use crate::{BitSet, Cancelled, Edges, HeapGraph, NodeId};
use rustc_hash::FxHashMap;
use std::sync::atomic::AtomicBool;

const NONE: u32 = u32::MAX;

/// Follows `next` from `from` until `to` (inclusive).
fn follow(next: &[u32], from: NodeId, to: NodeId) -> Vec<NodeId> {
    let mut path = vec![from];
    let mut x = from;
    while x != to {
        x = next[x as usize];
        path.push(x);
    }
    path
}

impl HeapGraph {
    /// For every root record (in the given order) whose node reaches `target`: a shortest path
    /// `root node -> ... -> target`. One reverse BFS from `target` over `preds` (from
    /// [`Edges::reverse`]) records each node's next hop towards `target`; it stops early once
    /// every root node is found. One entry per root record: a node rooted twice gives two
    /// entries with the same path. The cancel flag is checked every ~64K steps.
    pub fn paths_to(
        &self,
        preds: &Edges,
        target: NodeId,
        cancel: &AtomicBool,
    ) -> Result<Vec<(usize, Vec<NodeId>)>, Cancelled> {
        let n = self.nodes.len();
        assert_eq!(
            preds.node_count(),
            n,
            "paths_to: predecessor rows do not match"
        );
        let mut cancel = CancelCheck::new(cancel);
        let mut is_root = BitSet::new(n);
        let mut pending = 0usize;
        for r in &self.roots {
            if is_root.insert(r.node) {
                pending += 1;
            }
        }
        let mut next = vec![NONE; n];
        next[target as usize] = target;
        if is_root.contains(target) {
            pending -= 1;
        }
        let mut queue = vec![target];
        let mut head = 0;
        while head < queue.len() && pending > 0 {
            let u = queue[head];
            head += 1;
            for &v in preds.targets(u) {
                cancel.step()?;
                if next[v as usize] == NONE {
                    next[v as usize] = u;
                    queue.push(v);
                    if is_root.contains(v) {
                        pending -= 1;
                    }
                }
            }
        }
        drop(queue);
        Ok(self
            .roots
            .iter()
            .enumerate()
            .filter(|(_, r)| next[r.node as usize] != NONE)
            .map(|(i, r)| (i, follow(&next, r.node, target)))
            .collect())
    }

    /// For each requested node, a shortest path from some root to it, preferring
    /// non-finalizer roots: one BFS from all non-finalizer root nodes first, then one from
    /// the finalizer root nodes over what the first did not reach. Returns the index of the
    /// root record (the first non-finalizer record of the start node if it has one, else its
    /// first record) and the path `root node -> ... -> node`; None if unreachable or out of
    /// range.
    pub fn shortest_root_paths(&self, nodes: &[NodeId]) -> Vec<Option<(usize, Vec<NodeId>)>> {
        let n = self.nodes.len();
        // Preferred record per root node.
        let mut record: FxHashMap<NodeId, usize> = FxHashMap::default();
        for (i, r) in self.roots.iter().enumerate() {
            let best = record.entry(r.node).or_insert(i);
            if self.roots[*best].kind.is_finalizer() && !r.kind.is_finalizer() {
                *best = i;
            }
        }
        // from[x]: BFS predecessor of x; a start node points at itself.
        let mut from = vec![NONE; n];
        let mut queue: Vec<NodeId> = Vec::new();
        for finalizer_pass in [false, true] {
            queue.clear();
            for r in &self.roots {
                if r.kind.is_finalizer() == finalizer_pass && from[r.node as usize] == NONE {
                    from[r.node as usize] = r.node;
                    queue.push(r.node);
                }
            }
            let mut head = 0;
            while head < queue.len() {
                let u = queue[head];
                head += 1;
                for &v in self.edges.targets(u) {
                    if from[v as usize] == NONE {
                        from[v as usize] = u;
                        queue.push(v);
                    }
                }
            }
        }
        drop(queue);
        nodes
            .iter()
            .map(|&y| {
                if y as usize >= n || from[y as usize] == NONE {
                    return None;
                }
                let mut path = vec![y];
                let mut x = y;
                while from[x as usize] != x {
                    x = from[x as usize];
                    path.push(x);
                }
                path.reverse();
                Some((record[&x], path))
            })
            .collect()
    }
}
