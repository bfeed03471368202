//! Steps 2 and 3 of the dominator computation, in preorder space (0 = virtual root).
//!
//! Semidominators as in Lengauer & Tarjan (1979), "simple" variant: vertices are processed in
//! decreasing preorder; the link forest is implicit (a vertex numbered above the current one is
//! linked to its DFS parent), its ancestor array is a copy of the parents compressed in place,
//! without recursion.
//!
//! Immediate dominators either by SEMI-NCA (Georgiadis, Tarjan & Werneck 2006): idom(w) is the
//! nearest common ancestor, in the dominator tree built so far, of parent(w) and sdom(w), found
//! by climbing from parent(w) while the number exceeds sdom(w); or by the bucket step of
//! simple Lengauer–Tarjan. SEMI-NCA is usually faster but quadratic on some inputs (a deep
//! chain whose bottom references many objects that something near the top also references),
//! so the caller caps its climb steps and falls back to the bucket step.

use crate::csr::Edges;
use crate::error::CancelCheck;
use crate::Cancelled;

const NONE: u32 = u32::MAX;

/// EVAL(v) with path compression: the vertex with the smallest semidominator on the forest
/// path from `v` up to, but excluding, the first vertex numbered below `linked`.
#[inline]
fn eval(
    v: u32,
    linked: u32,
    anc: &mut [u32],
    label: &mut [u32],
    semi: &[u32],
    stack: &mut Vec<u32>,
) -> u32 {
    if anc[v as usize] < linked {
        return label[v as usize];
    }
    stack.clear();
    let mut top = v;
    while anc[top as usize] >= linked {
        stack.push(top);
        top = anc[top as usize];
    }
    // `top` is the highest linked vertex; compress the path below it, top-down.
    let root = anc[top as usize];
    let mut best = label[top as usize];
    while let Some(x) = stack.pop() {
        anc[x as usize] = root;
        let lx = label[x as usize];
        if semi[best as usize] < semi[lx as usize] {
            label[x as usize] = best;
        } else {
            best = lx;
        }
    }
    label[v as usize]
}

/// Completes `semi` (initialised by the DFS) into the semidominators. Returns a scratch
/// vector of the same length for the caller to reuse.
pub(crate) fn semidominators(
    parent: &[u32],
    preds: &Edges,
    semi: &mut [u32],
    cancel: &mut CancelCheck,
) -> Result<Vec<u32>, Cancelled> {
    let r = parent.len();
    let mut anc = parent.to_vec();
    let mut label: Vec<u32> = (0..r as u32).collect();
    let mut stack = Vec::new();
    for w in (1..r).rev() {
        cancel.step()?;
        let mut s = semi[w];
        if s == 0 {
            continue;
        }
        for &v in preds.targets(w as u32) {
            let u = eval(v, w as u32 + 1, &mut anc, &mut label, semi, &mut stack);
            let su = semi[u as usize];
            if su < s {
                s = su;
                if s == 0 {
                    break;
                }
            }
        }
        semi[w] = s;
    }
    drop(anc);
    Ok(label)
}

/// SEMI-NCA's second step into `idom` (length = number of vertices). Fails with the number of
/// climb steps taken once they exceed `limit`.
pub(crate) fn nca(
    parent: &[u32],
    semi: &[u32],
    idom: &mut [u32],
    limit: u64,
    cancel: &mut CancelCheck,
) -> Result<Result<u64, u64>, Cancelled> {
    let mut steps = 0u64;
    idom[0] = 0;
    for w in 1..parent.len() {
        cancel.step()?;
        let s = semi[w];
        if s == 0 {
            idom[w] = 0;
            continue;
        }
        let mut x = parent[w];
        while x > s {
            x = idom[x as usize];
            steps += 1;
        }
        idom[w] = x;
        if steps > limit {
            return Ok(Err(steps));
        }
    }
    Ok(Ok(steps))
}

/// Simple Lengauer–Tarjan's bucket step into `dom`, given the final semidominators.
pub(crate) fn slt(
    parent: &[u32],
    semi: &[u32],
    dom: &mut [u32],
    cancel: &mut CancelCheck,
) -> Result<(), Cancelled> {
    let r = parent.len();
    let mut anc = parent.to_vec();
    let mut label: Vec<u32> = (0..r as u32).collect();
    let mut head = vec![NONE; r];
    let mut stack = Vec::new();
    // While v waits in a bucket, dom[v] links to the next vertex of that bucket.
    for w in (1..r).rev() {
        cancel.step()?;
        let s = semi[w] as usize;
        dom[w] = head[s];
        head[s] = w as u32;
        let p = parent[w];
        let mut v = std::mem::replace(&mut head[p as usize], NONE);
        while v != NONE {
            let next = dom[v as usize];
            let u = eval(v, w as u32, &mut anc, &mut label, semi, &mut stack);
            dom[v as usize] = if semi[u as usize] < semi[v as usize] {
                u
            } else {
                p
            };
            v = next;
        }
    }
    dom[0] = 0;
    for w in 1..r {
        if dom[w] != semi[w] {
            dom[w] = dom[dom[w] as usize];
        }
    }
    Ok(())
}
