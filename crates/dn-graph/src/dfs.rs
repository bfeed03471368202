//! Step 1 of the dominator computation: a depth-first search from the virtual root, and the
//! predecessor rows the semidominator pass needs, renumbered into preorder space.
//!
//! Preorder number 0 is the virtual root, whose children are the root nodes (each once, in
//! root-record order). A node is numbered when it is first reached (a real DFS: the frame of
//! a node is suspended at its edge cursor while its child is explored), so numbers of DFS-tree
//! ancestors are smaller. Unreached nodes get no number and are left out of everything.
//!
//! The DFS itself only tests a visited bit per target (the bitset stays in cache) and writes
//! preorder numbers; each edge to an already visited node is set aside as (target, source)
//! and classified afterwards in one pass of independent lookups. Of the edges p -> q
//! (preorder numbers) only some need keeping:
//! * tree edges (p = parent(q)) and forward edges (p < q) give the semidominator candidate p
//!   directly: they are folded into the initial semidominator of q, which starts at parent(q);
//! * a rooted node's semidominator is 0 (the virtual root) and nothing can lower it: its
//!   other predecessors are dropped (MAT treats a GC root's only predecessor as the root);
//! * self-loops change nothing;
//! * only backward and cross edges (p > q) remain, each needing an EVAL later; they are
//!   counting-sorted by q into predecessor rows.
//!
//! Leaves referenced exactly once (strings, byte arrays and other objects without references,
//! held by one object and by no root: most of a typical heap) are not numbered at all: no path
//! runs through a leaf, so they change no other node's dominator, and the immediate dominator of
//! such a leaf is its only referrer. The DFS writes that referrer into the node-space idom
//! array when it meets the edge, and the scratch arrays below shrink to the other nodes.
//!
//! Fresh pages are slow on some virtual machines, so dead buffers are handed on for reuse:
//! the node -> preorder array becomes the predecessor row offsets (and later the idom array),
//! the edge list becomes the link forest (and later the retained-size sums).

use crate::csr::{fits_narrow, OffsetInt, Offsets, Scatter};
use crate::dominators::UNREACHABLE;
use crate::error::CancelCheck;
use crate::{BitSet, Cancelled, Edges, HeapGraph, NodeId};

/// No preorder number yet.
const UNSEEN: u32 = u32::MAX;

/// The DFS result, in preorder space (index 0 is the virtual root).
pub(crate) struct Preorder {
    /// Preorder number -> node id (`vertex[0]` unused).
    pub vertex: Vec<NodeId>,
    /// Preorder number -> DFS parent's preorder number (`parent[0] = 0`).
    pub parent: Vec<u32>,
    /// Initial semidominators: 0 for rooted nodes, else min(parent, forward predecessors).
    pub semi: Vec<u32>,
    /// Backward/cross predecessors (all numbered higher than their row), per preorder number.
    pub preds: Edges,
    /// A dead buffer (any contents) for the caller to reuse: fresh pages are expensive.
    pub spare: Vec<u64>,
    /// Node id -> immediate dominator (a node id) of every reached leaf referenced once;
    /// [`UNREACHABLE`] for every other node.
    pub leaf_idom: Vec<u32>,
}

/// An edge as one word: `a` in the low half, `b` in the high half.
#[inline]
fn pair(a: u32, b: u32) -> u64 {
    u64::from(a) | u64::from(b) << 32
}

#[inline]
fn unpair(x: u64) -> (u32, u32) {
    (x as u32, (x >> 32) as u32)
}

/// Runs the DFS and builds the predecessor rows.
pub(crate) fn preorder(graph: &HeapGraph, cancel: &mut CancelCheck) -> Result<Preorder, Cancelled> {
    match graph.edges.parts().0 {
        Offsets::Narrow(o) => run(graph, o, cancel),
        Offsets::Wide(o) => run(graph, o, cancel),
    }
}

/// A suspended DFS level with edges left: the node's preorder number and its remaining edge
/// range.
struct Frame<T> {
    p: u32,
    pos: T,
    end: T,
}

fn run<T: OffsetInt>(
    graph: &HeapGraph,
    offsets: &[T],
    cancel: &mut CancelCheck,
) -> Result<Preorder, Cancelled> {
    let n = graph.nodes.len();
    let targets = graph.edges.parts().1;
    let mut rooted = BitSet::new(n);
    for r in &graph.roots {
        rooted.insert(r.node);
    }
    let single = single_referrer_leaves(graph, offsets, &rooted);
    let mut leaf_idom: Vec<u32> = vec![UNREACHABLE; n];
    // Two spare slots: this buffer becomes the predecessor row offsets (up to n + 2 entries).
    let mut pre: Vec<u32> = Vec::with_capacity(n + 2);
    pre.resize(n, UNSEEN);
    // Capacity n + 1: the untouched pages of never-reached nodes cost no memory.
    let mut vertex: Vec<NodeId> = Vec::with_capacity(n + 1);
    let mut parent: Vec<u32> = Vec::with_capacity(n + 1);
    let mut semi: Vec<u32> = Vec::with_capacity(n + 1);
    vertex.push(NodeId::MAX);
    parent.push(0);
    semi.push(0);
    // Visited nodes: a bit each, so the DFS itself touches `pre` only to write it.
    let mut seen = BitSet::new(n);
    // Edges to already visited nodes, as pair(target node, source p); classified afterwards.
    let mut other: Vec<u64> = Vec::new();
    let mut stack: Vec<Frame<T>> = Vec::new();

    macro_rules! number {
        ($node:expr, $p:expr) => {{
            let (node, p): (NodeId, u32) = ($node, $p);
            let q = vertex.len() as u32;
            pre[node as usize] = q;
            seen.insert(node);
            vertex.push(node);
            parent.push(p);
            semi.push(if rooted.contains(node) { 0 } else { p });
            q
        }};
    }

    for root in &graph.roots {
        if seen.contains(root.node) {
            continue;
        }
        let mut p = number!(root.node, 0);
        let mut pos = offsets[root.node as usize].to_usize();
        let mut end = offsets[root.node as usize + 1].to_usize();
        loop {
            cancel.step()?;
            if pos < end {
                let t = targets[pos];
                pos += 1;
                if single.contains(t) {
                    // Its only referrer, met once.
                    leaf_idom[t as usize] = vertex[p as usize];
                } else if !seen.contains(t) {
                    // Nothing happens when a node is left, so a node whose last edge this
                    // was needs no frame: a chain runs with an empty stack.
                    if pos < end {
                        stack.push(Frame {
                            p,
                            pos: T::from_usize(pos),
                            end: T::from_usize(end),
                        });
                    }
                    p = number!(t, p);
                    pos = offsets[t as usize].to_usize();
                    end = offsets[t as usize + 1].to_usize();
                } else {
                    other.push(pair(t, p));
                }
            } else {
                let Some(f) = stack.pop() else { break };
                p = f.p;
                pos = f.pos.to_usize();
                end = f.end.to_usize();
            }
        }
    }
    drop(stack);
    drop(seen);
    drop(single);

    // Classify the non-tree edges; independent lookups, so the memory system overlaps them.
    let mut back = other;
    let mut kept = 0;
    for i in 0..back.len() {
        cancel.step()?;
        let (t, p) = unpair(back[i]);
        let q = pre[t as usize];
        if q > p {
            // Forward edge to a descendant: candidate p for q.
            let s = &mut semi[q as usize];
            if *s > p {
                *s = p;
            }
        } else if q < p && !rooted.contains(t) {
            back[kept] = pair(q, p);
            kept += 1;
        }
    }
    back.truncate(kept);
    drop(rooted);

    let preds = if fits_narrow(back.len()) {
        sort_by_target::<u32>(vertex.len(), &back, pre)
    } else {
        sort_by_target::<u64>(vertex.len(), &back, pre)
    };
    Ok(Preorder {
        vertex,
        parent,
        semi,
        preds,
        spare: back,
        leaf_idom,
    })
}

/// Leaves (no outgoing reference) that exactly one reference points at and no root names.
fn single_referrer_leaves<T: OffsetInt>(
    graph: &HeapGraph,
    offsets: &[T],
    rooted: &BitSet,
) -> BitSet {
    let n = graph.nodes.len();
    let targets = graph.edges.parts().1;
    let mut once = BitSet::new(n);
    let mut many = BitSet::new(n);
    for &t in targets {
        if !once.insert(t) {
            many.insert(t);
        }
    }
    let mut single = once;
    for v in 0..n {
        let id = v as NodeId;
        if single.contains(id)
            && (many.contains(id)
                || rooted.contains(id)
                || offsets[v + 1].to_usize() != offsets[v].to_usize())
        {
            single.remove(id);
        }
    }
    single
}

/// Counting sort of pair(q, p) into rows q, each row in DFS discovery order. `buffer` (any
/// contents) is reused for the counts.
fn sort_by_target<T: OffsetInt>(rows: usize, pairs: &[u64], buffer: Vec<u32>) -> Edges {
    let mut counts = buffer;
    counts.clear();
    // The node -> preorder buffer is longer than the rows when nodes went unnumbered: give the
    // surplus pages back (two spare slots for the row offsets).
    counts.shrink_to(rows + 2);
    counts.resize(rows, 0);
    for &x in pairs {
        counts[unpair(x).0 as usize] += 1;
    }
    let mut scatter = Scatter::<T>::new(counts);
    for &x in pairs.iter().rev() {
        let (q, p) = unpair(x);
        scatter.put(q as usize, p);
    }
    scatter.finish()
}
