//! `objsize`, `gchandles`, `finalizequeue`: sets of objects other than "the whole heap".

use anyhow::bail;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::dumpheap::{DumpHeap, HeapObjectRow};
use super::heapstat::{render_stats, stats_from};
use super::{n0, ser_hex, Render, Session, TypeStat};
use crate::dac::HandleKind;

/// `objsize ADDR`: every object the given one keeps alive, itself included.
#[derive(Debug, Clone, Serialize)]
pub struct ObjSize {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(flatten)]
    pub heap: DumpHeap,
    #[serde(skip)]
    pub stat_only: bool,
}

pub fn objsize(s: &Session, addr: u64, stat_only: bool, short: bool) -> anyhow::Result<ObjSize> {
    let rt = &s.runtime;
    let (heap, dac) = (&rt.heap, &rt.dac);
    let g = s.graph()?;
    let Some(start) = g.node(addr) else {
        bail!("{addr:x} is not a valid object")
    };
    // Breadth-first over the graph's references (dependent handles included), as SOS's
    // objsize lists them.
    let mut seen = vec![false; g.graph.nodes.len()];
    seen[start as usize] = true;
    let mut queue = std::collections::VecDeque::from([start]);
    let mut objects = Vec::new();
    let mut per_mt: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
    let mut steps = 0u64;
    while let Some(id) = queue.pop_front() {
        steps += 1;
        if steps & 0xFFFF == 0 && s.cancelled() {
            bail!("cancelled");
        }
        let (mt, size) = (g.mt(id), g.size(id));
        objects.push(HeapObjectRow {
            address: g.address(id),
            mt,
            size,
            free: false,
        });
        let e = per_mt.entry(mt).or_default();
        e.0 += 1;
        e.1 += size;
        for &t in g.graph.edges.targets(id) {
            if !std::mem::replace(&mut seen[t as usize], true) {
                queue.push_back(t);
            }
        }
    }
    let info_mt = g.mt(start);
    let (types, total_objects, total_bytes) = stats_from(s, per_mt);
    Ok(ObjSize {
        address: addr,
        type_name: heap.type_name(dac, info_mt),
        heap: DumpHeap {
            objects,
            types,
            total_objects,
            total_bytes,
            short,
            frozen_unreferenced: None,
            warnings: g.warnings.clone(),
        },
        stat_only,
    })
}

impl Render for ObjSize {
    fn render(&self) -> String {
        let mut out = format!(
            "Objects which {:x}({}) transitively keep alive:\n\n",
            self.address, self.type_name
        );
        if self.stat_only {
            render_stats(
                &mut out,
                &self.heap.types,
                self.heap.total_objects,
                self.heap.total_bytes,
            );
        } else {
            out.push_str(&self.heap.render());
        }
        out
    }
}

/// One handle of `gchandles`.
#[derive(Debug, Clone, Serialize)]
pub struct HandleRow {
    #[serde(serialize_with = "ser_hex")]
    pub handle: u64,
    pub kind: String,
    #[serde(serialize_with = "ser_hex")]
    pub object: u64,
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub size: u64,
    /// Dependent handles: the secondary object.
    #[serde(
        serialize_with = "super::ser_hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub secondary: Option<u64>,
}

/// `gchandles`.
#[derive(Debug, Clone, Serialize)]
pub struct GcHandles {
    pub handles: Vec<HandleRow>,
    /// Objects held by handles, per type.
    pub types: Vec<TypeStat>,
    /// Number of handles per kind.
    pub counts: Vec<(String, u64)>,
}

pub fn gchandles(s: &Session) -> anyhow::Result<GcHandles> {
    let rt = &s.runtime;
    let (heap, dac) = (&rt.heap, &rt.dac);
    let mem = heap.memory();
    let mut handles = Vec::new();
    let mut per_mt: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
    let mut counts: Vec<(String, u64)> = Vec::new();
    for h in dac.handles(&HandleKind::ALL)? {
        let object = mem.read_u64(h.handle).unwrap_or(0);
        let (mt, size, type_name) = match heap.object_at(dac, object) {
            Some((info, size)) if object != 0 => (info.mt, size, heap.type_name(dac, info.mt)),
            _ => (0, 0, String::new()),
        };
        if mt != 0 {
            let e = per_mt.entry(mt).or_default();
            e.0 += 1;
            e.1 += size;
        }
        let kind = h.kind.name().trim_end_matches(" handle").to_string();
        match counts.iter_mut().find(|c| c.0 == kind) {
            Some(c) => c.1 += 1,
            None => counts.push((kind.clone(), 1)),
        }
        let secondary = (h.kind == HandleKind::Dependent).then_some(h.secondary);
        handles.push(HandleRow {
            handle: h.handle,
            kind,
            object,
            mt,
            type_name,
            size,
            secondary,
        });
    }
    let (types, _, _) = stats_from(s, per_mt);
    Ok(GcHandles {
        handles,
        types,
        counts,
    })
}

impl Render for GcHandles {
    fn render(&self) -> String {
        let mut out = format!(
            "{:>16} {:<20} {:>16} {:>10} Type\n",
            "Handle", "Kind", "Object", "Size"
        );
        for h in &self.handles {
            out.push_str(&format!(
                "{:016x} {:<20} {:>16x} {:>10} {}\n",
                h.handle,
                h.kind,
                h.object,
                n0(h.size),
                h.type_name
            ));
        }
        out.push('\n');
        let total: u64 = self.types.iter().map(|t| t.count).sum();
        let bytes: u64 = self.types.iter().map(|t| t.size).sum();
        render_stats(&mut out, &self.types, total, bytes);
        out.push_str("\nHandles:\n");
        for (k, n) in &self.counts {
            out.push_str(&format!("    {:<22} {}\n", format!("{k} handles:"), n0(*n)));
        }
        out
    }
}

/// `finalizequeue`.
#[derive(Debug, Clone, Serialize)]
pub struct FinalizeQueue {
    /// Every object registered for finalization (ready ones included), per type.
    pub types: Vec<TypeStat>,
    pub total_objects: u64,
    pub total_bytes: u64,
    /// Objects whose finalizer is due (the f-reachable queue): GC roots until it has run.
    pub ready_for_finalization: u64,
}

pub fn finalizequeue(s: &Session) -> anyhow::Result<FinalizeQueue> {
    let rt = &s.runtime;
    let (heap, dac) = (&rt.heap, &rt.dac);
    let mem = heap.memory();
    let mut per_mt: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
    let mut ready = 0u64;
    for h in &heap.heaps {
        let fp = &h.fill_pointers;
        if fp.len() < 3 {
            continue;
        }
        // With N generations: [FP[0], FP[N+1]) registered, [FP[N-1], FP[N+1]) ready.
        let n = fp.len() - 2;
        let (start, ready_start, end) = (fp[0], fp[n - 1], fp[n + 1]);
        let mut a = start;
        while a < end && a - start < (256 << 20) {
            if let Ok(obj) = mem.read_u64(a) {
                if let Some((info, size)) = (obj != 0).then(|| heap.object_at(dac, obj)).flatten() {
                    let e = per_mt.entry(info.mt).or_default();
                    e.0 += 1;
                    e.1 += size;
                    if a >= ready_start {
                        ready += 1;
                    }
                }
            }
            a += 8;
        }
    }
    let (types, total_objects, total_bytes) = stats_from(s, per_mt);
    Ok(FinalizeQueue {
        types,
        total_objects,
        total_bytes,
        ready_for_finalization: ready,
    })
}

impl Render for FinalizeQueue {
    fn render(&self) -> String {
        let mut out = format!(
            "Ready for finalization {} objects\n",
            n0(self.ready_for_finalization)
        );
        out.push_str("Statistics for all finalizable objects (including all objects ready for finalization):\n");
        let mut table = String::new();
        render_stats(
            &mut table,
            &self.types,
            self.total_objects,
            self.total_bytes,
        );
        out.push_str(table.trim_start_matches("Statistics:\n"));
        out
    }
}
