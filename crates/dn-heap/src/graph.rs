//! The heap as a graph, built once per session from the dump's heap walk: one node per object
//! (ids in address order, free space left out), one edge per reference the GCDesc describes,
//! dependent-handle edges primary -> secondary, and the roots of [`crate::roots`] with their
//! kinds. Commands that follow references (`gcroot`, `dumpheap -live/-dead`, `objsize`,
//! `dominators`, `suspects`, `-retained`) answer from it instead of re-reading the dump.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use dn_graph::{Dominators, Edges, HeapGraph, NodeId, NodesBuilder, Root, RootKind};

use crate::heap::{MtInfo, RefsRead, Runtime, SegmentKind};
use crate::roots::{self, RootDetail, RootOptions, RootRecord};

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
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(show: bool) -> Progress {
        if !show || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(Some(bar))
    }

    fn stage(&self, msg: &str) {
        if let Some(b) = &self.0 {
            b.set_message(format!("building the heap graph: {msg}"));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Counters of what was dropped while resolving references (shared by the edge threads).
#[derive(Default)]
struct EdgeProblems {
    /// References to an address where no object starts.
    nowhere: AtomicU64,
    first_nowhere: AtomicU64,
    /// Objects whose bytes are not in the dump.
    unreadable: AtomicU64,
    first_unreadable: AtomicU64,
    /// Objects whose type's reference map is not in the dump.
    no_gcdesc: AtomicU64,
}

fn note_first(slot: &AtomicU64, v: u64) {
    let _ = slot.compare_exchange(0, v, Ordering::Relaxed, Ordering::Relaxed);
}

impl ObjectGraph {
    /// Builds the graph: walks the objects once into the node columns, checks the memory the
    /// rest needs against what the machine has, then fills edges and roots.
    pub fn build(rt: &Runtime, cancel: &AtomicBool, progress: bool) -> anyhow::Result<ObjectGraph> {
        let (heap, dac) = (&rt.heap, &rt.dac);
        let progress = Progress::new(progress);
        let free_mt = heap.globals.free_mt;
        let mut warnings = Vec::new();

        // One walk: the node columns grow as objects come (big vectors grow by remapping
        // their pages, not by copying), and the memory check below runs on the real count
        // before the references, the bulk of the graph, are allocated.
        progress.stage("objects");
        let mut nodes = NodesBuilder::with_capacity(0);
        let mut mts: Vec<u64> = Vec::new();
        let mut walk_types: Vec<u32> = Vec::new(); // walk's type index -> ours
        let mut bad_node = None;
        let issues = heap
            .walk_in_address_order(dac, Some(cancel), |o| {
                if o.mt == free_mt {
                    return ControlFlow::Continue(());
                }
                let wi = o.type_index as usize;
                if wi >= walk_types.len() {
                    walk_types.resize(wi + 1, u32::MAX);
                }
                if walk_types[wi] == u32::MAX {
                    walk_types[wi] = mts.len() as u32;
                    mts.push(o.mt);
                }
                match nodes.push(o.address, walk_types[wi], o.size) {
                    Ok(_) => ControlFlow::Continue(()),
                    Err(e) => {
                        bad_node = Some(format!("object {:#x}: {e}", o.address));
                        ControlFlow::Break(())
                    }
                }
            })
            .map_err(|_| anyhow::anyhow!("cancelled"))?;
        for i in issues {
            warnings.push(format!(
                "segment {:#x}: at {:#x}: {}",
                i.segment, i.address, i.message
            ));
        }
        if let Some(e) = bad_node {
            bail!("cannot build the heap graph: {e}");
        }
        let mut ranges: Vec<(u64, u64)> = heap
            .segments
            .iter()
            .filter(|s| s.end > s.start)
            .map(|s| (s.start, s.end))
            .collect();
        ranges.sort_unstable();
        let nodes = nodes
            .finish(&ranges)
            .context("cannot build the heap graph")?;
        check_memory(nodes.len(), nodes.memory_bytes())?;

        progress.stage("references");
        let infos: Vec<Option<Arc<MtInfo>>> = mts.iter().map(|&mt| heap.mt_info(dac, mt)).collect();
        let (dependent, dep_warnings) = roots::dependent_edges(rt);
        warnings.extend(dep_warnings);
        let mut deps: Vec<(NodeId, NodeId)> = dependent
            .iter()
            .filter_map(|&(p, s)| Some((nodes.id_of(p)?, nodes.id_of(s)?)))
            .collect();
        deps.sort_unstable();
        let problems = EdgeProblems::default();
        let parallel = nodes.len() > 100_000;
        let edges = Edges::build(nodes.len(), parallel, |id, out| {
            // Ctrl-C: the remaining nodes are skipped (the result is thrown away below).
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            let addr = nodes.address(id);
            let Some(info) = infos[nodes.type_index(id) as usize].as_deref() else {
                return;
            };
            let read =
                heap.for_each_reference(addr, info, nodes.size(id), |_, v| match nodes.id_of(v) {
                    Some(t) => out.push(t),
                    None => {
                        problems.nowhere.fetch_add(1, Ordering::Relaxed);
                        note_first(&problems.first_nowhere, addr);
                    }
                });
            match read {
                RefsRead::Complete => {}
                RefsRead::Unreadable => {
                    problems.unreadable.fetch_add(1, Ordering::Relaxed);
                    note_first(&problems.first_unreadable, addr);
                }
                RefsRead::NoGcDesc => {
                    problems.no_gcdesc.fetch_add(1, Ordering::Relaxed);
                }
            }
            let first = deps.partition_point(|d| d.0 < id);
            out.extend(deps[first..].iter().take_while(|d| d.0 == id).map(|d| d.1));
        });
        if cancel.load(Ordering::Relaxed) {
            bail!("cancelled");
        }
        let n = problems.nowhere.load(Ordering::Relaxed);
        if n > 0 {
            warnings.push(format!(
                "{n} reference(s) point where no object starts (first from {:#x}): those edges are left out",
                problems.first_nowhere.load(Ordering::Relaxed)
            ));
        }
        let n = problems.unreadable.load(Ordering::Relaxed);
        if n > 0 {
            warnings.push(format!(
                "{n} object(s) are not readable in the dump (first {:#x}): their references are left out",
                problems.first_unreadable.load(Ordering::Relaxed)
            ));
        }
        let n = problems.no_gcdesc.load(Ordering::Relaxed);
        if n > 0 {
            warnings.push(format!(
                "{n} object(s) have a type whose reference map is not in the dump: their references are left out"
            ));
        }

        progress.stage("roots");
        let set = roots::collect(
            rt,
            RootOptions {
                stacks: true,
                statics: true,
            },
        );
        warnings.extend(set.warnings);
        let mut graph_roots = Vec::with_capacity(set.roots.len());
        let mut outside = 0usize;
        let mut first_outside = None;
        let mut on_stack = 0usize;
        let in_heap = |a: u64| {
            let i = ranges.partition_point(|r| r.0 <= a);
            i > 0 && a < ranges[i - 1].1
        };
        for (i, r) in set.roots.iter().enumerate() {
            let node = if r.interior {
                nodes.containing(r.object)
            } else {
                nodes.id_of(r.object)
            };
            match node {
                Some(node) => graph_roots.push(Root {
                    node,
                    kind: r.kind,
                    tag: i as u32,
                }),
                // .NET 10's JIT allocates some objects on the stack; a stack slot then holds
                // an address outside the GC heap. Not an error: those objects are not heap.
                None if r.kind == RootKind::Stack && !in_heap(r.object) => on_stack += 1,
                None => {
                    outside += 1;
                    first_outside.get_or_insert_with(|| {
                        format!("{} at {:#x} holding {:#x}", r.kind_text(), r.slot, r.object)
                    });
                }
            }
        }
        // The arrays that store statics are the runtime's: live even when no handle reaches
        // them. Rooted as such, they never dominate what a static field (a root itself) holds.
        let mut roots_out = set.roots;
        let mut arrays: Vec<NodeId> = roots_out
            .iter()
            .filter(|r| r.kind == RootKind::Static)
            .filter_map(|r| nodes.containing(r.slot))
            .collect();
        arrays.sort_unstable();
        arrays.dedup();
        for a in arrays {
            graph_roots.push(Root {
                node: a,
                kind: RootKind::Other,
                tag: roots_out.len() as u32,
            });
            roots_out.push(RootRecord {
                kind: RootKind::Other,
                slot: nodes.address(a),
                object: nodes.address(a),
                interior: false,
                detail: RootDetail::StaticsArray,
            });
        }
        if on_stack > 0 {
            warnings.push(format!(
                "{on_stack} stack root(s) refer to objects outside the GC heap (objects the JIT allocated on the stack): not part of the graph"
            ));
        }
        if let Some(first) = first_outside {
            warnings.push(format!(
                "{outside} root(s) hold an address where no object starts, left out (first: {first})"
            ));
        }
        let frozen = {
            let mut f: Vec<(u64, u64)> = heap
                .segments
                .iter()
                .filter(|s| s.kind == SegmentKind::Frozen)
                .map(|s| (s.start, s.end))
                .collect();
            f.sort_unstable();
            f
        };
        let arrays = infos
            .iter()
            .map(|i| {
                i.as_ref()
                    .is_some_and(|i| i.component_size != 0 && !i.is_string)
            })
            .collect();
        Ok(ObjectGraph {
            arrays,
            graph: HeapGraph {
                nodes,
                edges,
                roots: graph_roots,
            },
            roots: roots_out,
            mts,
            warnings,
            frozen,
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
        let a = self.address(id);
        let i = self.frozen.partition_point(|r| r.0 <= a);
        i > 0 && a < self.frozen[i - 1].1
    }

    /// The root record behind a graph root.
    pub fn root_record(&self, root: &Root) -> &RootRecord {
        &self.roots[root.tag as usize]
    }
}

/// Refuses to build a graph the machine cannot hold (estimated before allocating).
fn check_memory(objects: usize, already: usize) -> anyhow::Result<()> {
    // References per object are not known before reading them; heaps measured here hold 1-3.
    // `already`: the node columns, allocated by now (and no longer in what is available).
    let estimate = HeapGraph::estimate_bytes(objects, objects.saturating_mul(3))
        .saturating_sub(already as u64);
    fits(objects, estimate, available_memory())
}

/// The refusal, when `estimate` bytes are more than `available` (`None`: unknown, allowed).
fn fits(
    objects: usize,
    estimate: u64,
    available: Option<(u64, &'static str)>,
) -> anyhow::Result<()> {
    match available {
        Some((avail, what)) if estimate > avail => bail!(
            "the heap graph of {objects} objects needs about {} MiB, more than the {} MiB {what}",
            estimate >> 20,
            avail >> 20
        ),
        _ => Ok(()),
    }
}

/// What this process may still allocate: the least of the machine's available memory, the
/// room left in its cgroup (a container's limit) and its address-space limit (`ulimit -v`).
fn available_memory() -> Option<(u64, &'static str)> {
    let mut best: Option<(u64, &'static str)> = None;
    let mut consider = |v: Option<u64>, what: &'static str| {
        if let Some(v) = v {
            if best.is_none_or(|b| v < b.0) {
                best = Some((v, what));
            }
        }
    };
    consider(meminfo_available(), "of memory available on this machine");
    consider(
        cgroup_room(),
        "left under this process's cgroup memory limit",
    );
    consider(
        address_space_room(),
        "left under its address-space limit (ulimit -v)",
    );
    best
}

/// MemAvailable, in bytes.
fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// memory.max - memory.current of this process's cgroup (v2), when it has a limit.
fn cgroup_room() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?; // "max" (no limit) fails here
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// RLIMIT_AS minus the address space in use (VmSize), when a limit is set.
fn address_space_room() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?; // "unlimited" fails here
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(kib.saturating_mul(1024)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_graph_bigger_than_the_memory_left() {
        let e = fits(
            30_000_000,
            2_000 << 20,
            Some((1_000 << 20, "of memory available on this machine")),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "the heap graph of 30000000 objects needs about 2000 MiB, more than the 1000 MiB of memory available on this machine"
        );
        assert!(fits(10, 1 << 20, Some((2 << 20, "x"))).is_ok());
        assert!(fits(10, u64::MAX, None).is_ok());
    }

    #[test]
    fn this_machine_reports_its_available_memory() {
        let (avail, _) = available_memory().expect("MemAvailable is readable on Linux");
        assert!(avail > 0);
    }
}
