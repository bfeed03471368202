//! Which objects are live (`dumpheap -live/-dead`): from the session's heap graph when it has
//! one, else from a mark pass that reads each reachable object's references once and keeps a
//! bit per object, without building or storing the graph's edges.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::bail;
use dn_graph::{mark_reachable, BitSet, NodeId, Nodes};

use super::build::{self, References, WalkedNodes};
use super::{ObjectGraph, Progress};
use crate::heap::Runtime;

/// The objects and where they came from.
enum Source {
    Graph(Arc<ObjectGraph>),
    Marked(Box<Walked>),
}

/// The objects of a mark pass.
struct Walked {
    nodes: Nodes,
    mts: Vec<u64>,
    frozen: Vec<(u64, u64)>,
}

/// The heap's objects as dense ids in address order (free space left out), with a live bit each.
pub struct LiveSet {
    source: Source,
    live: BitSet,
    warnings: Vec<String>,
}

impl LiveSet {
    /// The reachable nodes of a graph already built.
    pub fn from_graph(graph: Arc<ObjectGraph>) -> LiveSet {
        LiveSet {
            live: graph.graph.reachable(),
            warnings: graph.warnings.clone(),
            source: Source::Graph(graph),
        }
    }

    /// Walks the objects, then marks from the roots (the heap graph's roots: handles, stacks,
    /// finalizer queue, static fields and the arrays holding them, dependent handles as
    /// edges). The same live set as the graph's. The problems of reading references are
    /// counted over the objects the pass reaches, the only ones whose references it reads.
    pub fn mark(rt: &Runtime, cancel: &AtomicBool, progress: bool) -> anyhow::Result<LiveSet> {
        let progress = Progress::new(progress, "finding the live objects");
        let mut warnings = Vec::new();
        let WalkedNodes { nodes, mts, ranges } =
            build::walk_nodes(rt, cancel, &progress, &mut warnings)?;
        progress.stage("roots");
        let (roots, _) = build::map_roots(rt, &nodes, &ranges, &mut warnings);
        let roots: Vec<NodeId> = roots.iter().map(|r| r.node).collect();
        progress.stage("marking");
        let refs = References::new(rt, &nodes, &mts, cancel, &mut warnings);
        let live = mark_reachable(nodes.len(), &roots, |id, out| refs.of(id, out), cancel);
        let Ok(live) = live else { bail!("cancelled") };
        if cancel.load(Ordering::Relaxed) {
            bail!("cancelled");
        }
        refs.warnings(&mut warnings);
        drop(refs);
        Ok(LiveSet {
            live,
            warnings,
            source: Source::Marked(Box::new(Walked {
                nodes,
                mts,
                frozen: build::frozen_ranges(&rt.heap),
            })),
        })
    }

    /// The objects.
    pub fn nodes(&self) -> &Nodes {
        match &self.source {
            Source::Graph(g) => &g.graph.nodes,
            Source::Marked(w) => &w.nodes,
        }
    }

    /// Whether `id` is reachable from a root.
    pub fn is_live(&self, id: NodeId) -> bool {
        self.live.contains(id)
    }

    /// The MethodTable of `id`.
    pub fn mt(&self, id: NodeId) -> u64 {
        let t = self.nodes().type_index(id) as usize;
        match &self.source {
            Source::Graph(g) => g.mts[t],
            Source::Marked(w) => w.mts[t],
        }
    }

    /// Whether `id` lives on a frozen (NonGC) segment: never collected.
    pub fn is_frozen(&self, id: NodeId) -> bool {
        match &self.source {
            Source::Graph(g) => g.is_frozen(id),
            Source::Marked(w) => build::in_ranges(&w.frozen, w.nodes.address(id)),
        }
    }

    /// What could not be read (walk, references, roots).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
