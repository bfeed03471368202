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
/// How many vertices ahead the semidominator loop touches predecessor entries.
const AHEAD: usize = 16;

/// A link-forest entry: ancestor in the low half, label in the high half (one cache line
/// holds both).
#[inline]
fn pack(anc: u32, label: u32) -> u64 {
    u64::from(anc) | u64::from(label) << 32
}

#[inline]
fn anc(e: u64) -> u32 {
    e as u32
}

#[inline]
fn label(e: u64) -> u32 {
    (e >> 32) as u32
}

/// EVAL with path compression: the best label on the forest path from `v` up to, but
/// excluding, the first vertex numbered below `linked`. `better(a, b)` says label `a` beats
/// label `b`. Iterative: the path is kept in `stack`.
#[inline]
fn eval(
    v: u32,
    linked: u32,
    forest: &mut [u64],
    stack: &mut Vec<u32>,
    better: impl Fn(u32, u32) -> bool,
) -> u32 {
    let e = forest[v as usize];
    if anc(e) < linked {
        return label(e);
    }
    stack.clear();
    let mut top = v;
    while anc(forest[top as usize]) >= linked {
        stack.push(top);
        top = anc(forest[top as usize]);
    }
    // `top` is the highest linked vertex; compress the path below it, top-down.
    let root = anc(forest[top as usize]);
    let mut best = label(forest[top as usize]);
    while let Some(x) = stack.pop() {
        let own = label(forest[x as usize]);
        if better(best, own) {
            forest[x as usize] = pack(root, best);
        } else {
            forest[x as usize] = pack(root, own);
            best = own;
        }
    }
    label(forest[v as usize])
}

/// Completes `semi` (initialised by the DFS) into the semidominators. The forest keeps, per
/// vertex, its ancestor and, as label, the smallest semidominator on its compressed path
/// (SEMI-NCA only needs that value, not the vertex holding it). The forest is built in
/// `buffer` (any contents), which is returned for reuse.
pub(crate) fn semidominators(
    parent: &[u32],
    preds: &Edges,
    semi: &mut [u32],
    buffer: Vec<u64>,
    cancel: &mut CancelCheck,
) -> Result<Vec<u64>, Cancelled> {
    let mut forest = buffer;
    forest.clear();
    if preds.is_empty() {
        // No backward edges: the DFS already gave the final semidominators.
        return Ok(forest);
    }
    // The buffer may be larger than needed; give the surplus pages back.
    forest.shrink_to(parent.len());
    forest.extend(parent.iter().map(|&p| pack(p, 0)));
    let mut stack = Vec::new();
    let mut sink = 0u64;
    for w in (1..parent.len()).rev() {
        cancel.step()?;
        // Touch the entries the next vertices will start from: independent loads overlap.
        if w > AHEAD {
            for &v in preds.targets((w - AHEAD) as u32) {
                sink ^= forest[v as usize];
            }
        }
        let mut s = semi[w];
        if s != 0 {
            for &v in preds.targets(w as u32) {
                let sv = eval(v, w as u32 + 1, &mut forest, &mut stack, |a, b| a < b);
                if sv < s {
                    s = sv;
                    if s == 0 {
                        break;
                    }
                }
            }
            semi[w] = s;
        }
        // Linking w: from now on EVAL may read its label.
        forest[w] = pack(parent[w], s);
    }
    std::hint::black_box(sink);
    Ok(forest)
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

/// Simple Lengauer–Tarjan's bucket step into `dom`, given the final semidominators. Here the
/// forest labels are vertices (the one with the smallest semidominator on the path); the
/// forest is built in `forest` (any contents).
pub(crate) fn slt(
    parent: &[u32],
    semi: &[u32],
    dom: &mut [u32],
    forest: &mut Vec<u64>,
    cancel: &mut CancelCheck,
) -> Result<(), Cancelled> {
    let r = parent.len();
    forest.clear();
    forest.extend(parent.iter().zip(0..).map(|(&p, v)| pack(p, v)));
    let mut head = vec![NONE; r];
    let mut stack = Vec::new();
    let better = |a: u32, b: u32| semi[a as usize] < semi[b as usize];
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
            let u = eval(v, w as u32, forest, &mut stack, better);
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
