//! The heap graph: nodes, outgoing edges, root records.

use crate::{BitSet, Edges, GraphError, NodeId, Nodes, Root};

/// A heap as a graph. Build it with [`HeapGraph::new`], which checks that the parts agree;
/// methods panic on a graph assembled by hand whose edges or roots name missing nodes.
#[derive(Clone, Debug)]
pub struct HeapGraph {
    /// The objects.
    pub nodes: Nodes,
    /// Outgoing references, one row per object.
    pub edges: Edges,
    /// Root records, in the caller's order (path queries report them in this order).
    pub roots: Vec<Root>,
}

impl HeapGraph {
    /// Assembles a graph, checking that `edges` has one row per node and that every root
    /// names an existing node.
    pub fn new(nodes: Nodes, edges: Edges, roots: Vec<Root>) -> Result<HeapGraph, GraphError> {
        let n = nodes.len();
        if edges.node_count() != n {
            return Err(GraphError::NodeCountMismatch {
                nodes: n,
                edges: edges.node_count(),
            });
        }
        if let Some((index, r)) = roots.iter().enumerate().find(|(_, r)| r.node as usize >= n) {
            return Err(GraphError::RootOutOfRange {
                index,
                node: r.node,
                nodes: n,
            });
        }
        Ok(HeapGraph {
            nodes,
            edges,
            roots,
        })
    }

    /// Number of objects.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// An upper bound of the bytes the graph and a [`crate::Dominators`] computation need at
    /// their peak for `n` objects and `m` references, so a caller can refuse before allocating.
    ///
    /// Graph: 12 bytes per object of columns, about 2 of address index (1/64 of the heap
    /// bytes, assuming objects of ~100 bytes on average), 4 (or 8) of edge offsets and 4 per
    /// edge. Dominators at their peak: at most 28 bytes per object + 8 per edge of scratch
    /// (see [`crate::Dominators`]; heap-like graphs need about 26 per object + 2 per edge).
    /// The address index grows with heap bytes, not objects: for unusually large objects
    /// add heap_bytes / 60.
    pub fn estimate_bytes(n: usize, m: usize) -> u64 {
        let (n, m) = (n as u64, m as u64);
        let offsets = if m <= u64::from(u32::MAX) { 4 } else { 8 };
        let graph = 14 * n + offsets * (n + 1) + 4 * m;
        let dominators = 28 * n + 8 * m;
        graph + dominators
    }

    /// The nodes reachable from the roots.
    pub fn reachable(&self) -> BitSet {
        let mut seen = BitSet::new(self.nodes.len());
        let mut stack: Vec<NodeId> = Vec::new();
        for root in &self.roots {
            if seen.insert(root.node) {
                stack.push(root.node);
            }
            while let Some(x) = stack.pop() {
                for &t in self.edges.targets(x) {
                    if seen.insert(t) {
                        stack.push(t);
                    }
                }
            }
        }
        seen
    }

    /// Heap bytes used by nodes and edges.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.memory_bytes()
            + self.edges.memory_bytes()
            + self.roots.capacity() * std::mem::size_of::<Root>()
    }
}
