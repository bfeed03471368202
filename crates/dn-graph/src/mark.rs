//! Reachability without an edge array: a mark pass that asks for each node's successors as it
//! reaches it, on the rayon pool.
//!
//! For a question that needs only "which nodes are live" (`dumpheap -live/-dead`), building
//! and storing every edge first costs more time and memory than the answer. Here each reached
//! node's successors are produced once, by the caller, and only the mark bits are kept (one bit
//! per node). Work is shared as in a parallel depth-first search: each task empties a local
//! stack, and hands half of it to a new task whenever it grows past a threshold, so a long
//! chain costs no synchronization and a wide fan-out keeps every thread busy.

use crate::{BitSet, Cancelled, NodeId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A task hands off work once its stack holds twice this many nodes.
const SPLIT: usize = 4096;
/// Root nodes per initial task.
const ROOTS_PER_TASK: usize = 1024;

/// Mark bits shared by the tasks.
struct Marks {
    words: Vec<AtomicU64>,
    len: usize,
}

impl Marks {
    /// Sets `id`'s bit; true if this call set it. Ids out of range are never marked.
    #[inline]
    fn claim(&self, id: NodeId) -> bool {
        let i = id as usize;
        if i >= self.len {
            return false;
        }
        let bit = 1u64 << (i & 63);
        // Read first: most edges of a heap lead to an already marked node, and a plain load
        // keeps the cache line shared.
        let word = &self.words[i >> 6];
        word.load(Ordering::Relaxed) & bit == 0 && word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
}

/// The nodes reachable from `roots` in a graph of `n` nodes whose successors `successors(x,
/// out)` pushes onto `out` (ids `>= n` are ignored; duplicates are harmless). The same set as
/// [`crate::HeapGraph::reachable`] on the graph those successors describe. `successors` is
/// called exactly once for each reachable node, from any thread.
pub fn mark_reachable<F>(
    n: usize,
    roots: &[NodeId],
    successors: F,
    cancel: &AtomicBool,
) -> Result<BitSet, Cancelled>
where
    F: Fn(NodeId, &mut Vec<NodeId>) + Sync,
{
    let marks = Marks {
        words: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        len: n,
    };
    let task = Task {
        marks: &marks,
        successors: &successors,
        cancel,
    };
    rayon::scope(|s| {
        for chunk in roots.chunks(ROOTS_PER_TASK) {
            let stack: Vec<NodeId> = chunk.iter().copied().filter(|&r| marks.claim(r)).collect();
            if !stack.is_empty() {
                s.spawn(move |s| task.run(s, stack));
            }
        }
    });
    if cancel.load(Ordering::Relaxed) {
        return Err(Cancelled);
    }
    let words = marks.words.into_iter().map(AtomicU64::into_inner).collect();
    Ok(BitSet::from_words(words, n))
}

/// What every task shares.
struct Task<'a, F> {
    marks: &'a Marks,
    successors: &'a F,
    cancel: &'a AtomicBool,
}

impl<F> Clone for Task<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Task<'_, F> {}

impl<'a, F> Task<'a, F>
where
    F: Fn(NodeId, &mut Vec<NodeId>) + Sync,
{
    /// Empties `stack` (marked nodes whose successors are not yet asked for).
    fn run<'s>(self, scope: &rayon::Scope<'s>, mut stack: Vec<NodeId>)
    where
        'a: 's,
    {
        let mut out = Vec::new();
        let mut steps = 0u32;
        while let Some(x) = stack.pop() {
            steps = steps.wrapping_add(1);
            if steps % 65_536 == 0 && self.cancel.load(Ordering::Relaxed) {
                return;
            }
            out.clear();
            (self.successors)(x, &mut out);
            stack.extend(out.iter().copied().filter(|&t| self.marks.claim(t)));
            if stack.len() >= 2 * SPLIT {
                let half = stack.split_off(stack.len() - SPLIT);
                scope.spawn(move |s| self.run(s, half));
            }
        }
    }
}
