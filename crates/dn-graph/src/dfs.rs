//! Step 1 of the dominator computation: a depth-first search from the virtual root, and the
//! predecessor rows the semidominator pass needs, renumbered into preorder space.
//!
//! Preorder number 0 is the virtual root, whose children are the root nodes (each once, in
//! root-record order). A node is numbered when it is first reached (a real DFS: the frame of
//! a node is suspended at its edge cursor while its child is explored), so numbers of DFS-tree
//! ancestors are smaller. Unreached nodes get no number and are left out of everything.
//!
//! Only some predecessor edges (p -> q, in preorder numbers) need storing:
//! * tree edges (p = parent(q)) and forward edges (p < q) give the candidate p directly: they
//!   are folded into the initial semidominator of q, which starts at parent(q);
//! * a rooted node's semidominator is 0 (the virtual root), nothing can lower it: all its
//!   other predecessors are dropped (MAT treats a GC root's only predecessor as the root);
//! * self-loops change nothing;
//! * only backward and cross edges (p > q) remain, each needing an EVAL.

use crate::csr::{fits_narrow, OffsetInt, Scatter};
use crate::error::CancelCheck;
use crate::{BitSet, Cancelled, Edges, HeapGraph, NodeId};

/// No preorder number yet.
pub(crate) const UNSEEN: u32 = u32::MAX;

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
}

/// Runs the DFS and builds the predecessor rows.
pub(crate) fn preorder(graph: &HeapGraph, cancel: &mut CancelCheck) -> Result<Preorder, Cancelled> {
    let n = graph.nodes.len();
    let (offsets, targets) = graph.edges.parts();
    let mut rooted = BitSet::new(n);
    for r in &graph.roots {
        rooted.insert(r.node);
    }
    // Capacity n + 1: untouched pages of unreached nodes cost no memory.
    let mut pre = vec![UNSEEN; n];
    let mut vertex: Vec<NodeId> = Vec::with_capacity(n + 1);
    let mut parent: Vec<u32> = Vec::with_capacity(n + 1);
    let mut semi: Vec<u32> = Vec::with_capacity(n + 1);
    let mut back: Vec<u32> = Vec::with_capacity(n + 1);
    vertex.push(NodeId::MAX);
    parent.push(0);
    semi.push(0);
    back.push(0);
    // Suspended frames: the edge cursor relative to the row start. A frame's node is found
    // again from the DFS parent of the frame above it.
    let mut stack: Vec<u32> = Vec::new();

    macro_rules! number {
        ($node:expr, $p:expr) => {{
            let (node, p): (NodeId, u32) = ($node, $p);
            let q = vertex.len() as u32;
            pre[node as usize] = q;
            vertex.push(node);
            parent.push(p);
            semi.push(if rooted.contains(node) { 0 } else { p });
            back.push(0);
            q
        }};
    }

    for root in &graph.roots {
        if pre[root.node as usize] != UNSEEN {
            continue;
        }
        let mut cur_p = number!(root.node, 0);
        let mut row = offsets.range(root.node as usize);
        let mut pos = row.start;
        loop {
            cancel.step()?;
            if pos < row.end {
                let t = targets[pos];
                pos += 1;
                let q = pre[t as usize];
                if q == UNSEEN {
                    stack.push((pos - row.start) as u32);
                    cur_p = number!(t, cur_p);
                    row = offsets.range(t as usize);
                    pos = row.start;
                } else if q > cur_p {
                    // Forward edge to a descendant: candidate cur_p for q.
                    let s = &mut semi[q as usize];
                    if *s > cur_p {
                        *s = cur_p;
                    }
                } else if q < cur_p && semi[q as usize] != 0 {
                    back[q as usize] += 1;
                }
            } else {
                let Some(rel) = stack.pop() else { break };
                cur_p = parent[cur_p as usize];
                row = offsets.range(vertex[cur_p as usize] as usize);
                pos = row.start + rel as usize;
            }
        }
    }
    drop(stack);
    drop(rooted);

    let total: usize = back.iter().map(|&c| c as usize).sum();
    let preds = if fits_narrow(total) {
        backward_preds::<u32>(graph, &pre, &semi, back, cancel)?
    } else {
        backward_preds::<u64>(graph, &pre, &semi, back, cancel)?
    };
    Ok(Preorder {
        vertex,
        parent,
        semi,
        preds,
    })
}

/// Fills the backward/cross predecessor rows counted during the DFS.
fn backward_preds<T: OffsetInt>(
    graph: &HeapGraph,
    pre: &[u32],
    semi: &[u32],
    counts: Vec<u32>,
    cancel: &mut CancelCheck,
) -> Result<Edges, Cancelled> {
    let mut scatter = Scatter::<T>::new(&counts);
    drop(counts);
    let (offsets, targets) = graph.edges.parts();
    for (node, &p) in pre.iter().enumerate() {
        if p == UNSEEN {
            continue;
        }
        cancel.step()?;
        for &t in &targets[offsets.range(node)] {
            let q = pre[t as usize];
            if q < p && semi[q as usize] != 0 {
                scatter.put(q as usize, p);
            }
        }
    }
    Ok(scatter.finish())
}
