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
        // The BFS queue is also the search tree: each entry is (node, queue index of the entry
        // it was reached from; NONE for a start node). It stops once every asked-for node is
        // reached, so memory follows the part of the heap searched, not the heap.
        let mut wanted: FxHashMap<NodeId, u32> = nodes
            .iter()
            .filter(|&&y| (y as usize) < n)
            .map(|&y| (y, NONE))
            .collect();
        let mut pending = wanted.len();
        let mut seen = BitSet::new(n);
        let mut queue: Vec<(NodeId, u32)> = Vec::new();
        let mut reach =
            |v: NodeId, from: u32, queue: &mut Vec<(NodeId, u32)>, pending: &mut usize| {
                if let Some(at) = wanted.get_mut(&v) {
                    *at = queue.len() as u32;
                    *pending -= 1;
                }
                queue.push((v, from));
            };
        for finalizer_pass in [false, true] {
            if pending == 0 {
                break;
            }
            let mut head = queue.len();
            for r in &self.roots {
                if r.kind.is_finalizer() == finalizer_pass && seen.insert(r.node) {
                    reach(r.node, NONE, &mut queue, &mut pending);
                }
            }
            while head < queue.len() && pending > 0 {
                let u = queue[head].0;
                for &v in self.edges.targets(u) {
                    if seen.insert(v) {
                        reach(v, head as u32, &mut queue, &mut pending);
                    }
                }
                head += 1;
            }
        }
        nodes
            .iter()
            .map(|&y| {
                let at = *wanted.get(&y)?;
                if at == NONE {
                    return None;
                }
                let mut path = Vec::new();
                let mut i = at;
                while i != NONE {
                    let (x, from) = queue[i as usize];
                    path.push(x);
                    i = from;
                }
                path.reverse();
                Some((record[&path[0]], path))
            })
            .collect()
    }
}
