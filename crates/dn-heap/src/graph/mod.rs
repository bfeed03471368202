//! The heap as a graph, built once per session from the dump's heap walk: one node per object
//! (ids in address order, free space left out), one edge per reference the GCDesc describes,
//! dependent-handle edges primary -> secondary, and the roots of [`crate::roots`] with their
//! kinds. Commands that follow references (`gcroot`, `dumpheap -live/-dead`, `objsize`,
//! `dominators`, `suspects`, `-retained`) answer from it instead of re-reading the dump.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::bail;
use dn_graph::{Dominators, Edges, HeapGraph, NodeId, Root};

use crate::heap::Runtime;
use crate::roots::RootRecord;

mod build;
mod live;
mod memory;

use build::{References, WalkedNodes};
pub use live::LiveSet;

/// The graph of one runtime's heap, with what it was built from.
pub struct ObjectGraph {
    pub graph: HeapGraph,
    /// Root records; a graph root's `tag` indexes this.
    pub roots: Vec<RootRecord>,
    /// Type index -> MethodTable.
    pub mts: Vec<u64>,
    /// Type index -> whether the type is an array (strings are not).
    arrays: Vec<bool>,
    /// What could not be read while building (counted, never silently dropped).
    pub warnings: Vec<String>,
    /// Frozen (NonGC) segments, sorted: their objects are never collected.
    frozen: Vec<(u64, u64)>,
    dominators: Mutex<Option<Arc<Dominators>>>,
    predecessors: OnceLock<Edges>,
}

/// Progress reporting while building (a bar on a terminal, nothing otherwise).
struct Progress(Option<(indicatif::ProgressBar, &'static str)>);

impl Progress {
    /// `what`: the task, shown before each stage ("building the heap graph: objects").
    fn new(show: bool, what: &'static str) -> Progress {
        if !show || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(Some((bar, what)))
    }

    fn stage(&self, msg: &str) {
        if let Some((b, what)) = &self.0 {
            b.set_message(format!("{what}: {msg}"));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((b, _)) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl ObjectGraph {
    /// Builds the graph: walks the objects once into the node columns, checks the memory the
    /// rest needs against what the machine has, then fills edges and roots.
    pub fn build(rt: &Runtime, cancel: &AtomicBool, progress: bool) -> anyhow::Result<ObjectGraph> {
        let progress = Progress::new(progress, "building the heap graph");
        let mut warnings = Vec::new();
        // The memory check runs on the real object count, before the references, the bulk of
        // the graph, are allocated.
        let WalkedNodes { nodes, mts, ranges } =
            build::walk_nodes(rt, cancel, &progress, &mut warnings)?;
        memory::check_memory(nodes.len(), nodes.memory_bytes())?;

        progress.stage("references");
        let refs = References::new(rt, &nodes, &mts, cancel, &mut warnings);
        let edges = Edges::build(nodes.len(), nodes.len() > 100_000, |id, out| {
            refs.of(id, out)
        });
        if cancel.load(Ordering::Relaxed) {
            bail!("cancelled");
        }
        refs.warnings(&mut warnings);
        let arrays = refs.arrays();
        drop(refs);

        progress.stage("roots");
        let (graph_roots, roots) = build::map_roots(rt, &nodes, &ranges, &mut warnings);
        Ok(ObjectGraph {
            arrays,
            graph: HeapGraph {
                nodes,
                edges,
                roots: graph_roots,
            },
            roots,
            mts,
            warnings,
            frozen: build::frozen_ranges(&rt.heap),
            dominators: Mutex::new(None),
            predecessors: OnceLock::new(),
        })
    }

    /// A graph built elsewhere (a heap snapshot): `roots[i]` is the record of the graph root
    /// whose tag is `i`; `mts` and `arrays` are per type index. Nothing is frozen.
    pub fn from_parts(
        graph: HeapGraph,
        roots: Vec<RootRecord>,
        mts: Vec<u64>,
        arrays: Vec<bool>,
        warnings: Vec<String>,
    ) -> ObjectGraph {
        ObjectGraph {
            graph,
            roots,
            mts,
            arrays,
            warnings,
            frozen: Vec::new(),
            dominators: Mutex::new(None),
            predecessors: OnceLock::new(),
        }
    }

    /// The dominator tree, computed on first use.
    pub fn dominators(&self, cancel: &AtomicBool) -> anyhow::Result<Arc<Dominators>> {
        let mut slot = self.dominators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = Arc::new(
            Dominators::compute(&self.graph, cancel).map_err(|_| anyhow::anyhow!("cancelled"))?,
        );
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Who references each node (for `gcroot`), built on first use.
    pub fn predecessors(&self) -> &Edges {
        self.predecessors
            .get_or_init(|| self.graph.edges.reverse(self.graph.nodes.len()))
    }

    /// The node of the object starting at `addr`.
    pub fn node(&self, addr: u64) -> Option<NodeId> {
        self.graph.nodes.id_of(addr)
    }

    pub fn address(&self, id: NodeId) -> u64 {
        self.graph.nodes.address(id)
    }

    pub fn mt(&self, id: NodeId) -> u64 {
        self.mts[self.graph.nodes.type_index(id) as usize]
    }

    pub fn size(&self, id: NodeId) -> u64 {
        self.graph.nodes.size(id)
    }

    /// Whether the object is an array.
    pub fn is_array(&self, id: NodeId) -> bool {
        self.arrays[self.graph.nodes.type_index(id) as usize]
    }

    /// Whether the object lives on a frozen (NonGC) segment: never collected.
    pub fn is_frozen(&self, id: NodeId) -> bool {
        build::in_ranges(&self.frozen, self.address(id))
    }

    /// The root record behind a graph root.
    pub fn root_record(&self, root: &Root) -> &RootRecord {
        &self.roots[root.tag as usize]
    }
}
