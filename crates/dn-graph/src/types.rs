//! Per-type figures from the dominator tree: minimum retained sizes of all instances of a
//! type, and a by-type histogram of one dominator subtree.
//!
//! The minimum retained size of a set (MAT's quick approximation) is the sum of the retained
//! sizes of its members that have no other member above them on their dominator chain. For
//! every type at once, one walk of the dominator tree keeps, per type, how many nodes of that
//! type are on the current path: a node adds its retained size when that count is zero.

use crate::{Dominators, HeapGraph, NodeId};
use rustc_hash::FxHashMap;

/// Totals of one type over the reachable heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TypeRetained {
    /// Reachable instances.
    pub instances: u64,
    /// Sum of their sizes.
    pub shallow_bytes: u64,
    /// Minimum retained size of all instances together (nested instances counted once).
    pub min_retained: u64,
}

/// One row of [`Dominators::subtree_histogram`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TypeHistogramRow {
    /// The type index.
    pub type_index: u32,
    /// Instances in the subtree.
    pub count: u64,
    /// Sum of their sizes.
    pub shallow_bytes: u64,
    /// Minimum retained size of those instances, within the subtree.
    pub retained_bytes: u64,
}

impl Dominators {
    /// Per type index `0..type_count`: reachable instances, their shallow bytes, and MAT's
    /// minimum retained size of all of them. Nodes whose type index is `>= type_count` are
    /// ignored. O(n) time plus 4 bytes per type; builds the child index on first use.
    pub fn retained_by_type(&self, graph: &HeapGraph, type_count: usize) -> Vec<TypeRetained> {
        let mut totals = vec![TypeRetained::default(); type_count];
        let mut on_path = vec![0u32; type_count];
        let nodes = &graph.nodes;
        for &top in self.top_level() {
            self.walk_subtree(top, |x, entering| {
                let t = nodes.type_index(x) as usize;
                let Some(total) = totals.get_mut(t) else {
                    return;
                };
                if !entering {
                    on_path[t] -= 1;
                    return;
                }
                if on_path[t] == 0 {
                    total.min_retained += self.retained(x);
                }
                on_path[t] += 1;
                total.instances += 1;
                total.shallow_bytes += nodes.size(x);
            });
        }
        totals
    }

    /// The dominator subtree of `node` (itself included) grouped by type: count, shallow
    /// bytes, and minimum retained size within the subtree; sorted by retained bytes
    /// descending, ties by type index. Empty for an unreachable node.
    pub fn subtree_histogram(&self, graph: &HeapGraph, node: NodeId) -> Vec<TypeHistogramRow> {
        // type -> (row, same-type nodes on the current path)
        let mut rows: FxHashMap<u32, (TypeHistogramRow, u32)> = FxHashMap::default();
        let nodes = &graph.nodes;
        self.walk_subtree(node, |x, entering| {
            let t = nodes.type_index(x);
            let (row, on_path) = rows.entry(t).or_insert((
                TypeHistogramRow {
                    type_index: t,
                    count: 0,
                    shallow_bytes: 0,
                    retained_bytes: 0,
                },
                0,
            ));
            if !entering {
                *on_path -= 1;
                return;
            }
            if *on_path == 0 {
                row.retained_bytes += self.retained(x);
            }
            *on_path += 1;
            row.count += 1;
            row.shallow_bytes += nodes.size(x);
        });
        let mut out: Vec<TypeHistogramRow> = rows.into_values().map(|(row, _)| row).collect();
        out.sort_unstable_by(|a, b| {
            b.retained_bytes
                .cmp(&a.retained_bytes)
                .then(a.type_index.cmp(&b.type_index))
        });
        out
    }
}
