//! The dominator tree under a virtual root whose children are the root nodes, and retained
//! sizes.
//!
//! Steps: DFS and predecessor rows (`dfs`), semidominators, then immediate dominators by
//! SEMI-NCA with a work limit, falling back to simple Lengauer–Tarjan (`lt`), then retained
//! sizes in one reverse-preorder pass.

use crate::csr::Offsets;
use crate::error::CancelCheck;
use crate::tree::ChildIndex;
use crate::{dfs, lt, Cancelled, HeapGraph, NodeId};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `idom` sentinel: the node's immediate dominator is the virtual root.
pub(crate) const ROOT: u32 = u32::MAX - 1;
/// `idom` sentinel: the node is unreachable.
pub(crate) const UNREACHABLE: u32 = u32::MAX;
/// Retained sizes at or above this are kept in the side table.
const BIG: u32 = u32::MAX;

/// A retained size as stored: below [`BIG`] inline, else [`BIG`] and an entry in `big`.
#[inline]
fn narrow(id: NodeId, bytes: u64, big: &mut Vec<(NodeId, u64)>) -> u32 {
    if bytes >= u64::from(BIG) {
        big.push((id, bytes));
        BIG
    } else {
        bytes as u32
    }
}

/// Immediate dominator of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Idom {
    /// Dominated only by the virtual root: a top-level dominator (every root node is one).
    Root,
    /// Dominated by this node.
    Node(NodeId),
    /// Not reachable from any root.
    Unreachable,
}

/// Which algorithm finds immediate dominators once the semidominators are known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Algorithm {
    /// SEMI-NCA, falling back to simple Lengauer–Tarjan after about 8 climb steps per node.
    #[default]
    Auto,
    /// SEMI-NCA without a work limit (quadratic on some graphs; for tests).
    SemiNca,
    /// Simple Lengauer–Tarjan.
    SimpleLt,
}

/// What a [`Dominators::compute`] run did, for diagnostics and benchmarks.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ComputeStats {
    /// The algorithm that produced the result ([`Algorithm::SimpleLt`] after a fallback).
    pub algorithm: Algorithm,
    /// True if SEMI-NCA gave up on its work limit.
    pub fell_back: bool,
    /// SEMI-NCA climb steps taken.
    pub climb_steps: u64,
    /// Predecessor edges that needed an EVAL (backward and cross edges).
    pub backward_edges: u64,
    /// DFS and predecessor rows.
    pub dfs: Duration,
    /// Semidominators.
    pub semi: Duration,
    /// Immediate dominators.
    pub idom: Duration,
    /// Retained sizes and the node-space idom array.
    pub retained: Duration,
}

/// The dominator tree under a virtual root whose children are the root nodes, and retained
/// sizes.
///
/// Memory kept: 4 bytes (idom) + 4 bytes (retained, with a side table for 4 GiB and more)
/// per node. Leaves referenced once are folded into their referrer by the DFS and take no
/// scratch. Scratch at the peak, per other reachable node: preorder->node, parent and semidominator (12 bytes) throughout; during the
/// DFS also node->preorder (4), 8 per edge to an already visited node and 12 per DFS level;
/// during the semidominator pass the link forest (8) and the backward predecessor rows (4 +
/// 4 per backward edge). About 26 bytes per node on heap-like graphs, at most 28 per node +
/// 8 per edge. [`Dominators::children`] and the per-type walks build a child index on first
/// use (4 bytes per reachable node, 4 per node with children, a bit per node).
///
/// Time is memory latency: a DFS, one pass over the backward edges, one over the nodes. Where
/// first-touch page faults are expensive (some virtual machines), dead scratch buffers are
/// reused; transparent huge pages for the process (e.g. glibc's `glibc.malloc.hugetlb=1`
/// tunable, when the kernel has huge pages to give) cut the rest of that cost.
#[derive(Debug)]
pub struct Dominators {
    /// Node id -> idom node id, or [`ROOT`] / [`UNREACHABLE`].
    pub(crate) idom: Vec<u32>,
    /// Node id -> retained size; [`BIG`] means "in `big_retained`".
    retained: Vec<u32>,
    /// Retained sizes of [`BIG`] bytes or more, sorted by node id.
    big_retained: Vec<(NodeId, u64)>,
    live_bytes: u64,
    live_count: u64,
    stats: ComputeStats,
    pub(crate) children: OnceLock<ChildIndex>,
}

impl Dominators {
    /// Computes the dominator tree with [`Algorithm::Auto`]. The cancel flag is checked every
    /// ~64K steps.
    pub fn compute(graph: &HeapGraph, cancel: &AtomicBool) -> Result<Dominators, Cancelled> {
        Self::compute_with(graph, Algorithm::Auto, cancel)
    }

    /// Computes the dominator tree with the given algorithm.
    pub fn compute_with(
        graph: &HeapGraph,
        algorithm: Algorithm,
        cancel: &AtomicBool,
    ) -> Result<Dominators, Cancelled> {
        let mut cancel = CancelCheck::new(cancel);
        let mut stats = ComputeStats {
            algorithm,
            ..ComputeStats::default()
        };
        let t = Instant::now();
        let dfs::Preorder {
            vertex,
            parent,
            mut semi,
            preds,
            spare,
            leaf_idom,
        } = dfs::preorder(graph, &mut cancel)?;
        stats.backward_edges = preds.len() as u64;
        stats.dfs = t.elapsed();

        let t = Instant::now();
        let mut forest = lt::semidominators(&parent, &preds, &mut semi, spare, &mut cancel)?;
        stats.semi = t.elapsed();

        // Fresh pages are slow on some virtual machines: dead buffers are reused below.
        let t = Instant::now();
        let r = parent.len();
        let mut idom = match preds.into_parts().0 {
            Offsets::Narrow(v) => v,
            Offsets::Wide(_) => Vec::new(),
        };
        idom.clear();
        idom.resize(r, 0);
        let limit = match algorithm {
            Algorithm::Auto => Some(8 * r as u64 + 65_536),
            Algorithm::SemiNca => Some(u64::MAX),
            Algorithm::SimpleLt => None,
        };
        let nca = match limit {
            Some(limit) => lt::nca(&parent, &semi, &mut idom, limit, &mut cancel)?,
            None => Err(0),
        };
        match nca {
            Ok(steps) => {
                stats.climb_steps = steps;
                stats.algorithm = Algorithm::SemiNca;
            }
            Err(steps) => {
                stats.climb_steps = steps;
                stats.fell_back = algorithm == Algorithm::Auto;
                stats.algorithm = Algorithm::SimpleLt;
                lt::slt(&parent, &semi, &mut idom, &mut forest, &mut cancel)?;
            }
        }
        drop(semi);
        drop(parent);
        stats.idom = t.elapsed();

        let t = Instant::now();
        let mut dom = Self::finish(graph, vertex, idom, forest, leaf_idom, stats);
        dom.stats.retained = t.elapsed();
        Ok(dom)
    }

    /// Retained sizes bottom-up in reverse preorder (a dominator is numbered before the nodes
    /// it dominates), in preorder space, after adding each folded leaf to its referrer; then the
    /// idoms and retained sizes are moved into node space. `sums` is a dead buffer, reused;
    /// `node_idom` holds the folded leaves' idoms and receives everyone else's.
    fn finish(
        graph: &HeapGraph,
        vertex: Vec<NodeId>,
        idom_pre: Vec<u32>,
        mut sums: Vec<u64>,
        mut node_idom: Vec<u32>,
        stats: ComputeStats,
    ) -> Self {
        let n = graph.nodes.len();
        let r = vertex.len();
        // Node -> preorder number of the numbered nodes, kept for now in the buffer that
        // becomes the retained sizes.
        let mut retained = vec![0u32; n];
        for (p, &v) in vertex.iter().enumerate().skip(1) {
            retained[v as usize] = p as u32;
        }
        sums.clear();
        sums.push(0);
        sums.extend(vertex[1..].iter().map(|&v| graph.nodes.size(v)));
        let mut big = Vec::new();
        let mut leaves = 0u64;
        for (t, &d) in node_idom.iter().enumerate() {
            // Only the folded leaves have an idom yet; a leaf's slot holds no preorder number.
            if d != UNREACHABLE {
                let size = graph.nodes.size(t as NodeId);
                sums[retained[d as usize] as usize] += size;
                retained[t] = narrow(t as NodeId, size, &mut big);
                leaves += 1;
            }
        }
        let live_bytes = sums.iter().sum();
        for p in (1..r).rev() {
            let c = sums[p];
            sums[idom_pre[p] as usize] += c;
        }
        for p in 1..r {
            let v = vertex[p];
            retained[v as usize] = narrow(v, sums[p], &mut big);
            let d = idom_pre[p] as usize;
            node_idom[v as usize] = if d == 0 { ROOT } else { vertex[d] };
        }
        big.sort_unstable_by_key(|&(id, _)| id);
        Dominators {
            idom: node_idom,
            retained,
            big_retained: big,
            live_bytes,
            live_count: (r - 1) as u64 + leaves,
            stats,
            children: OnceLock::new(),
        }
    }

    /// Number of nodes (reachable or not).
    pub fn node_count(&self) -> usize {
        self.idom.len()
    }

    /// The immediate dominator of `id`.
    #[inline]
    pub fn idom(&self, id: NodeId) -> Idom {
        match self.idom[id as usize] {
            ROOT => Idom::Root,
            UNREACHABLE => Idom::Unreachable,
            d => Idom::Node(d),
        }
    }

    /// Bytes kept alive by `id` alone (its dominator subtree): 0 for an unreachable node, its
    /// own size for a leaf of the dominator tree.
    #[inline]
    pub fn retained(&self, id: NodeId) -> u64 {
        let r = self.retained[id as usize];
        if r != BIG {
            return u64::from(r);
        }
        match self.big_retained.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(k) => self.big_retained[k].1,
            Err(_) => u64::from(r),
        }
    }

    /// Sum of the sizes of all reachable nodes (the virtual root's retained size).
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Number of reachable nodes.
    pub fn live_count(&self) -> u64 {
        self.live_count
    }

    /// True if `id` is reachable from a root.
    #[inline]
    pub fn is_reachable(&self, id: NodeId) -> bool {
        self.idom[id as usize] != UNREACHABLE
    }

    /// What the computation did.
    pub fn stats(&self) -> &ComputeStats {
        &self.stats
    }

    /// Heap bytes used (including the child index once built).
    pub fn memory_bytes(&self) -> usize {
        self.idom.capacity() * 4
            + self.retained.capacity() * 4
            + self.big_retained.capacity() * 16
            + self.children.get().map_or(0, |c| c.memory_bytes())
    }
}
