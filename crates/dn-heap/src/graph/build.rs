//! The parts a heap graph (or a mark pass) is made of, read from the dump: the objects as
//! nodes, each object's references as node ids, and the roots as graph roots.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use dn_graph::{NodeId, Nodes, NodesBuilder, Root, RootKind};

use super::Progress;
use crate::heap::{GcHeap, MtInfo, RefsRead, Runtime, SegmentKind};
use crate::roots::{self, RootDetail, RootOptions, RootRecord};

/// The heap's objects (free space left out) as nodes in address order.
pub(super) struct WalkedNodes {
    pub nodes: Nodes,
    /// Type index -> MethodTable.
    pub mts: Vec<u64>,
    /// The heap's segments, `[start, end)`, sorted.
    pub ranges: Vec<(u64, u64)>,
}

/// Walks the objects once into the node columns (big vectors grow by remapping their pages,
/// not by copying). Problems of the walk go to `warnings`.
pub(super) fn walk_nodes(
    rt: &Runtime,
    cancel: &AtomicBool,
    progress: &Progress,
    warnings: &mut Vec<String>,
) -> anyhow::Result<WalkedNodes> {
    let (heap, dac) = (&rt.heap, &rt.dac);
    progress.stage("objects");
    let free_mt = heap.globals.free_mt;
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
    Ok(WalkedNodes { nodes, mts, ranges })
}

/// The frozen (NonGC) segments, sorted: their objects are never collected.
pub(super) fn frozen_ranges(heap: &GcHeap) -> Vec<(u64, u64)> {
    let mut f: Vec<(u64, u64)> = heap
        .segments
        .iter()
        .filter(|s| s.kind == SegmentKind::Frozen)
        .map(|s| (s.start, s.end))
        .collect();
    f.sort_unstable();
    f
}

/// Whether `address` lies in one of the sorted `ranges`.
pub(super) fn in_ranges(ranges: &[(u64, u64)], address: u64) -> bool {
    let i = ranges.partition_point(|r| r.0 <= address);
    i > 0 && address < ranges[i - 1].1
}

/// Counters of what was dropped while resolving references (shared by the threads).
#[derive(Default)]
struct Problems {
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

/// Lists an object's references as node ids: the fields its type's GCDesc describes, then the
/// dependent-handle edges from it (primary -> secondary). What cannot be resolved is counted.
pub(super) struct References<'a> {
    rt: &'a Runtime,
    nodes: &'a Nodes,
    infos: Vec<Option<Arc<MtInfo>>>,
    deps: Vec<(NodeId, NodeId)>,
    problems: Problems,
    cancel: &'a AtomicBool,
}

impl<'a> References<'a> {
    /// Reads the type information of `mts` and the dependent handles (their problems go to
    /// `warnings`).
    pub(super) fn new(
        rt: &'a Runtime,
        nodes: &'a Nodes,
        mts: &[u64],
        cancel: &'a AtomicBool,
        warnings: &mut Vec<String>,
    ) -> References<'a> {
        let infos = mts.iter().map(|&mt| rt.heap.mt_info(&rt.dac, mt)).collect();
        let (dependent, dep_warnings) = roots::dependent_edges(rt);
        warnings.extend(dep_warnings);
        let mut deps: Vec<(NodeId, NodeId)> = dependent
            .iter()
            .filter_map(|&(p, s)| Some((nodes.id_of(p)?, nodes.id_of(s)?)))
            .collect();
        deps.sort_unstable();
        References {
            rt,
            nodes,
            infos,
            deps,
            problems: Problems::default(),
            cancel,
        }
    }

    /// Pushes the targets of `id` onto `out`. After Ctrl-C it pushes nothing (the caller
    /// checks the flag and throws the result away).
    pub(super) fn of(&self, id: NodeId, out: &mut Vec<NodeId>) {
        if self.cancel.load(Ordering::Relaxed) {
            return;
        }
        let (nodes, problems) = (self.nodes, &self.problems);
        let addr = nodes.address(id);
        if let Some(info) = self.infos[nodes.type_index(id) as usize].as_deref() {
            let read = self
                .rt
                .heap
                .for_each_reference(addr, info, nodes.size(id), |_, v| match nodes.id_of(v) {
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
        }
        if !self.deps.is_empty() {
            let first = self.deps.partition_point(|d| d.0 < id);
            out.extend(
                self.deps[first..]
                    .iter()
                    .take_while(|d| d.0 == id)
                    .map(|d| d.1),
            );
        }
    }

    /// Type index -> whether the type is an array (strings are not).
    pub(super) fn arrays(&self) -> Vec<bool> {
        self.infos
            .iter()
            .map(|i| {
                i.as_ref()
                    .is_some_and(|i| i.component_size != 0 && !i.is_string)
            })
            .collect()
    }

    /// What was dropped, as warning lines.
    pub(super) fn warnings(&self, warnings: &mut Vec<String>) {
        let p = &self.problems;
        let n = p.nowhere.load(Ordering::Relaxed);
        if n > 0 {
            warnings.push(format!(
                "{n} reference(s) point where no object starts (first from {:#x}): those edges are left out",
                p.first_nowhere.load(Ordering::Relaxed)
            ));
        }
        let n = p.unreadable.load(Ordering::Relaxed);
        if n > 0 {
            warnings.push(format!(
                "{n} object(s) are not readable in the dump (first {:#x}): their references are left out",
                p.first_unreadable.load(Ordering::Relaxed)
            ));
        }
        let n = p.no_gcdesc.load(Ordering::Relaxed);
        if n > 0 {
            warnings.push(format!(
                "{n} object(s) have a type whose reference map is not in the dump: their references are left out"
            ));
        }
    }
}

/// The roots as graph roots. A root holding an address where no object starts is left out and
/// counted in `warnings`. The arrays that hold statics, and the objects that hold thread
/// statics, become roots of their own (kind `Other`): the runtime's, live even when no handle
/// reaches them.
pub(super) fn map_roots(
    rt: &Runtime,
    nodes: &Nodes,
    ranges: &[(u64, u64)],
    warnings: &mut Vec<String>,
) -> (Vec<Root>, Vec<RootRecord>) {
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
            None if r.kind == RootKind::Stack && !in_ranges(ranges, r.object) => on_stack += 1,
            None => {
                outside += 1;
                first_outside.get_or_insert_with(|| {
                    format!("{} at {:#x} holding {:#x}", r.kind_text(), r.slot, r.object)
                });
            }
        }
    }
    // The arrays that store statics, and the objects that store a thread's thread statics,
    // are the runtime's: live even when no handle reaches them. Rooted as such, they never
    // dominate what a (thread-)static field (a root itself) holds.
    let mut roots_out = set.roots;
    let mut holders: Vec<(NodeId, bool)> = roots_out
        .iter()
        .filter_map(|r| match r.kind {
            RootKind::Static => Some((nodes.containing(r.slot)?, false)),
            RootKind::ThreadStatic => Some((nodes.containing(r.slot)?, true)),
            _ => None,
        })
        .collect();
    holders.sort_unstable();
    holders.dedup_by_key(|h| h.0);
    for (a, thread) in holders {
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
            detail: if thread {
                RootDetail::ThreadStaticsStorage
            } else {
                RootDetail::StaticsArray
            },
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
    (graph_roots, roots_out)
}
