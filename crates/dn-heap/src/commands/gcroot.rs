//! `gcroot`: paths from GC roots (handles, the finalizer queue, thread stacks) to an object,
//! following references described by each type's GCDesc.
//!
//! Search as ClrMD/SOS do: a depth-first search per root, in root order, with one `seen` set
//! shared by all roots (each object is expanded once per command) and a `found` map of objects
//! known to lead to the target.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::{n0, ser_hex, ser_hex_opt, Render, Session};
use crate::dac::HandleData;
use crate::heap::{ObjectSet, Runtime};

/// One hop of a path.
#[derive(Debug, Clone, Serialize)]
pub struct PathNode {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The static field through which the previous object (a statics holder) references this
    /// one, e.g. "MyApp.Cache.Items".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_field: Option<String>,
}

/// A root and the chain of objects from it to the target (the last element).
#[derive(Debug, Clone, Serialize)]
pub struct RootPath {
    /// "strong handle", "pinned handle", "finalizer root", "stack", ...
    pub kind: String,
    /// The handle or stack slot / finalizer-queue slot holding the first object.
    #[serde(serialize_with = "ser_hex")]
    pub root: u64,
    /// OS thread id for stack roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    /// For stack roots: the method (or frame) holding the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
    #[serde(
        serialize_with = "ser_hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub stack_pointer: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register: Option<String>,
    pub path: Vec<PathNode>,
}

/// `gcroot ADDR`.
#[derive(Debug, Clone, Serialize)]
pub struct GcRoot {
    #[serde(serialize_with = "ser_hex")]
    pub target: u64,
    pub roots: Vec<RootPath>,
}

struct Root {
    kind: String,
    slot: u64,
    object: u64,
    thread: Option<u32>,
    frame: Option<String>,
    stack_pointer: Option<u64>,
    register: Option<String>,
}

fn collect_roots(rt: &Runtime, stacks: bool) -> Vec<Root> {
    let mem = rt.heap.memory();
    let mut roots = Vec::new();
    if let Ok(handles) = rt.dac.handles(&HandleData::ALL_TYPES) {
        for h in handles.iter().filter(|h| h.is_root()) {
            let Ok(obj) = mem.read_u64(h.handle) else {
                continue;
            };
            if obj == 0 {
                continue;
            }
            let mut kind = h.kind_name().to_string();
            if h.kind == HandleData::REF_COUNTED {
                kind = format!("{kind} RefCount: {}", h.ref_count);
            }
            roots.push(Root {
                kind,
                slot: h.handle,
                object: obj,
                thread: None,
                frame: None,
                stack_pointer: None,
                register: None,
            });
        }
    }
    for heap in &rt.heap.heaps {
        let fp = &heap.fill_pointers;
        // With N generations the f-reachable queue is [FP[N-1], FP[N+1]).
        if fp.len() < 3 {
            continue;
        }
        let n = fp.len() - 2;
        let (start, end) = (fp[n - 1], fp[n + 1]);
        let mut a = start;
        while a < end && a - start < (64 << 20) {
            if let Ok(obj) = mem.read_u64(a) {
                if obj != 0 {
                    roots.push(Root {
                        kind: "finalizer root".into(),
                        slot: a,
                        object: obj,
                        thread: None,
                        frame: None,
                        stack_pointer: None,
                        register: None,
                    });
                }
            }
            a += 8;
        }
    }
    if stacks {
        if let Ok(threads) = rt.dac.threads() {
            for t in threads.iter().filter(|t| t.is_live()) {
                let Ok(refs) = rt.dac.stack_refs(t.os_id) else {
                    continue;
                };
                for r in refs.iter().filter(|r| r.object != 0) {
                    let mut obj = r.object;
                    if r.flags & 1 != 0 {
                        match rt.heap.containing_object(&rt.dac, obj) {
                            Some(o) => obj = o.address,
                            None => continue,
                        }
                    }
                    // SOS's frame line: "<ip> Method(sig)" for managed code, "[Frame: addr]" else.
                    let frame = if r.source_type == 0 {
                        rt.dac
                            .method_name_for_ip(r.source)
                            .ok()
                            .map(|m| format!("{:x} {m}", r.source))
                    } else {
                        rt.dac
                            .frame_name(r.source)
                            .ok()
                            .map(|n| format!("[{n}: {:x}]", r.source))
                    };
                    let register = r.has_register.then(|| {
                        let name = rt
                            .dac
                            .register_name(r.register)
                            .unwrap_or_else(|_| format!("r{}", r.register));
                        match r.offset {
                            0 => name,
                            o if o > 0 => format!("{name}+{o:x}"),
                            o => format!("{name}-{:x}", -(o as i64)),
                        }
                    });
                    roots.push(Root {
                        kind: "stack".into(),
                        slot: r.address,
                        object: obj,
                        thread: Some(t.os_id),
                        frame,
                        stack_pointer: Some(r.stack_pointer),
                        register,
                    });
                }
            }
        }
    }
    roots
}

/// Dependent handles add edges primary -> secondary.
pub(crate) fn dependent_edges(rt: &Runtime) -> FxHashMap<u64, Vec<u64>> {
    let mem = rt.heap.memory();
    let mut m: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
    if let Ok(hs) = rt.dac.handles(&[HandleData::DEPENDENT]) {
        for h in hs {
            if let Ok(p) = mem.read_u64(h.handle) {
                if p != 0 && h.secondary != 0 {
                    m.entry(p).or_default().push(h.secondary);
                }
            }
        }
    }
    // Targets of one object in address order, as ClrMD's sorted (source, target) list.
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

pub fn gcroot(s: &Session, target: u64, stacks: bool) -> anyhow::Result<GcRoot> {
    let rt = &s.runtime;
    let heap = &rt.heap;
    let dac = &rt.dac;
    if heap.object_at(dac, target).is_none() {
        bail!("0x{target:x} is not a valid object");
    }
    let roots = collect_roots(rt, stacks);
    let mut search = PathSearch::new(rt, target);
    let mut result = Vec::new();
    // Built on first use: only paths through a statics holder need it.
    let mut statics: Option<FxHashMap<u64, String>> = None;
    for root in roots {
        if s.cancelled() {
            bail!("cancelled");
        }
        let chain = search.find_path_from(root.object, &s.cancel)?;
        if let Some(chain) = chain {
            let mut path: Vec<PathNode> = chain
                .iter()
                .map(|&a| PathNode {
                    address: a,
                    type_name: heap
                        .object_at(dac, a)
                        .map(|(i, _)| heap.type_name(dac, i.mt))
                        .unwrap_or_else(|| "<unknown>".into()),
                    static_field: None,
                })
                .collect();
            annotate_statics(rt, &mut statics, &mut path);
            result.push(RootPath {
                kind: root.kind,
                root: root.slot,
                thread: root.thread,
                frame: root.frame,
                stack_pointer: root.stack_pointer,
                register: root.register,
                path,
            });
        }
    }
    Ok(GcRoot {
        target,
        roots: result,
    })
}

/// Names the static field behind each hop that leaves a statics holder: the slot of the
/// previous object that references the next one is a known static field.
fn annotate_statics(
    rt: &Runtime,
    statics: &mut Option<FxHashMap<u64, String>>,
    path: &mut [PathNode],
) {
    let (heap, dac) = (&rt.heap, &rt.dac);
    for i in 1..path.len() {
        let (from, to) = (path[i - 1].address, path[i].address);
        let Some((info, size)) = heap.object_at(dac, from) else {
            continue;
        };
        // Statics holders are object[] (pinned, .NET 8+) or the runtime's statics arrays.
        if info.component_size != 8 {
            continue;
        }
        let mut slot = None;
        heap.for_each_reference(from, &info, size, |at, v| {
            if v == to && slot.is_none() {
                slot = Some(at);
            }
        });
        let Some(slot) = slot else { continue };
        let map = statics.get_or_insert_with(|| super::statics::static_slots(rt));
        path[i].static_field = map.get(&slot).cloned();
    }
}

/// Path search as ClrMD's `GCRoot` does it, so that the first path reported for a root is the
/// same one: a depth-first search sharing one `seen` set across roots, with the references of
/// each object queued in 32-byte chunks (a few references each; the last chunk is explored
/// first, the references inside a chunk in order).
struct PathSearch<'a> {
    rt: &'a Runtime,
    deps: FxHashMap<u64, Vec<u64>>,
    /// Objects known to lead to the target: object -> next object (0 ends at the target).
    found: FxHashMap<u64, u64>,
    seen: ObjectSet,
    target: u64,
    steps: u64,
    /// Reused buffer for one object's references.
    scratch: Vec<u64>,
}

/// Most references one chunk holds (32 bytes minus a 6-byte header, 5 bytes per pointer).
const CHUNK_MAX: usize = 5;

/// The pending references of one object (one chunk of them). Inline storage: a deep search
/// keeps millions of these.
struct Chunk {
    object: u64,
    parent: u64,
    refs: [u64; CHUNK_MAX],
    len: u8,
    next: u8,
}

impl Chunk {
    fn new(object: u64, parent: u64) -> Chunk {
        Chunk {
            object,
            parent,
            refs: [0; CHUNK_MAX],
            len: 0,
            next: 0,
        }
    }
}

/// Bytes ClrMD's chunk storage takes for a pointer.
fn stored_size(p: u64) -> usize {
    if p < 1 << 40 {
        5
    } else if p < 1 << 48 {
        6
    } else {
        8
    }
}

const CHUNK_BYTES: usize = 32;

impl<'a> PathSearch<'a> {
    fn new(rt: &'a Runtime, target: u64) -> PathSearch<'a> {
        let mut found = FxHashMap::default();
        found.insert(target, 0);
        PathSearch {
            rt,
            deps: dependent_edges(rt),
            found,
            seen: ObjectSet::new(&rt.heap),
            target,
            steps: 0,
            scratch: Vec::new(),
        }
    }

    /// The chain from `start` to the target, if there is one.
    fn find_path_from(
        &mut self,
        start: u64,
        cancel: &AtomicBool,
    ) -> anyhow::Result<Option<Vec<u64>>> {
        if self.found.contains_key(&start) {
            return Ok(Some(self.chain(start)));
        }
        let contains_pointers = self
            .rt
            .heap
            .object_at(&self.rt.dac, start)
            .is_some_and(|(i, _)| i.contains_pointers);
        if !contains_pointers {
            return Ok(None);
        }
        let mut stack: Vec<Chunk> = Vec::new();
        if let Some(link) = self.walk_object(&mut stack, 0, start) {
            return Ok(Some(self.chain(link)));
        }
        while let Some(top) = stack.last_mut() {
            self.steps += 1;
            if self.steps & 0xFFF == 0 && cancel.load(Ordering::Relaxed) {
                bail!("cancelled");
            }
            if top.next >= top.len {
                stack.pop();
                continue;
            }
            let child = top.refs[top.next as usize];
            top.next += 1;
            let (object, parent) = (top.object, top.parent);
            if let Some(link) = self.walk_object(&mut stack, object, child) {
                let head = self.cleanup(stack, link, object, parent);
                return Ok(Some(self.chain(head)));
            }
        }
        Ok(None)
    }

    /// Checks `curr`'s references for a known way to the target, and queues the unseen ones.
    fn walk_object(&mut self, stack: &mut Vec<Chunk>, parent: u64, curr: u64) -> Option<u64> {
        let (heap, dac) = (&self.rt.heap, &self.rt.dac);
        let (info, size) = heap.object_at(dac, curr)?;
        if !info.contains_pointers {
            return None;
        }
        let mut refs = std::mem::take(&mut self.scratch);
        refs.clear();
        // Dependent-handle targets first, then the fields: ClrMD's order.
        if let Some(d) = self.deps.get(&curr) {
            refs.extend_from_slice(d);
        }
        heap.for_each_reference(curr, &info, size, |_, v| refs.push(v));
        let found = self.walk_refs(stack, parent, curr, &refs);
        self.scratch = refs;
        found
    }

    fn walk_refs(
        &mut self,
        stack: &mut Vec<Chunk>,
        parent: u64,
        curr: u64,
        refs: &[u64],
    ) -> Option<u64> {
        let header = 1 + stored_size(curr) + if parent != 0 { stored_size(parent) } else { 0 };
        let mut chunk: Option<(Chunk, usize)> = None;
        for &r in refs {
            if self.found.contains_key(&r) {
                // The chunk being filled is dropped, as ClrMD drops it.
                self.found.insert(curr, r);
                return Some(curr);
            }
            if !self.seen.insert(r) {
                continue;
            }
            let need = stored_size(r);
            let (c, used) = chunk.get_or_insert_with(|| (Chunk::new(curr, parent), header));
            if *used + need > CHUNK_BYTES {
                let full = std::mem::replace(c, Chunk::new(curr, parent));
                stack.push(full);
                *used = header;
            }
            c.refs[c.len as usize] = r;
            c.len += 1;
            *used += need;
        }
        if let Some((c, _)) = chunk {
            stack.push(c);
        }
        None
    }

    /// Records the chain that led to `link` and releases the objects left half-explored.
    fn cleanup(&mut self, stack: Vec<Chunk>, link: u64, object: u64, parent: u64) -> u64 {
        let mut link = self.add_link(link, object);
        let (mut obj, mut parent) = (object, parent);
        for c in stack.iter().rev() {
            if c.object == obj {
                continue;
            }
            obj = c.object;
            if c.object == parent {
                link = self.add_link(link, obj);
                parent = c.parent;
            } else {
                // Not on the chain and not finished: let a later search explore it again.
                self.seen.remove(c.object);
            }
        }
        link
    }

    fn add_link(&mut self, next: u64, obj: u64) -> u64 {
        self.found.entry(obj).or_insert(next);
        self.seen.remove(obj);
        obj
    }

    fn chain(&self, from: u64) -> Vec<u64> {
        let mut p = vec![from];
        let mut cur = from;
        while cur != self.target && p.len() < 10_000_000 {
            match self.found.get(&cur) {
                Some(&n) if n != 0 => {
                    p.push(n);
                    cur = n;
                }
                _ => break,
            }
        }
        p
    }
}

impl Render for GcRoot {
    fn render(&self) -> String {
        let mut out = String::new();
        let mut last_group = String::new();
        for r in &self.roots {
            let group = match (r.kind.as_str(), r.thread) {
                ("stack", Some(t)) => format!("Thread {t:x}:"),
                ("finalizer root", _) => "Finalizer Queue:".to_string(),
                _ => "HandleTable:".to_string(),
            };
            if group != last_group {
                out.push_str(&group);
                out.push('\n');
                last_group = group;
            }
            if r.kind == "stack" {
                out.push_str(&format!(
                    "    {:x} {}\n",
                    r.stack_pointer.unwrap_or(0),
                    r.frame.as_deref().unwrap_or("<unknown frame>")
                ));
                match &r.register {
                    // A register has no slot address: show the value it holds, the first
                    // object of the path.
                    Some(reg) if r.root == 0 => out.push_str(&format!(
                        "        {reg}: {:016x}\n",
                        r.path.first().map_or(0, |n| n.address)
                    )),
                    Some(reg) => out.push_str(&format!("        {reg}: {:016x}\n", r.root)),
                    None => out.push_str(&format!("        {:016x}\n", r.root)),
                }
            } else {
                out.push_str(&format!("    {:016x} ({})\n", r.root, r.kind));
            }
            for n in &r.path {
                let extra = n
                    .static_field
                    .as_ref()
                    .map(|f| format!(" (static variable: {f})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "          -> {:>16} {}{extra}\n",
                    format!("{:012x}", n.address),
                    n.type_name
                ));
            }
            out.push('\n');
        }
        let unique: FxHashSet<(u64, &str)> = self
            .roots
            .iter()
            .map(|r| (r.root, r.kind.as_str()))
            .collect();
        out.push_str(&format!(
            "Found {} unique roots.\n",
            n0(unique.len() as u64)
        ));
        out
    }
}

/// Every object reachable from a root (what a full GC would keep), for `dumpheap -live/-dead`.
pub(crate) fn live_objects(s: &Session) -> anyhow::Result<ObjectSet> {
    let rt = &s.runtime;
    let (heap, dac) = (&rt.heap, &rt.dac);
    let deps = dependent_edges(rt);
    let mut live = ObjectSet::new(heap);
    let mut todo: Vec<u64> = Vec::new();
    for r in collect_roots(rt, true) {
        if live.insert(r.object) {
            todo.push(r.object);
        }
    }
    let mut steps = 0u64;
    while let Some(obj) = todo.pop() {
        steps += 1;
        if steps & 0xFFFF == 0 && s.cancelled() {
            bail!("cancelled");
        }
        let Some((info, size)) = heap.object_at(dac, obj) else {
            continue;
        };
        heap.for_each_reference(obj, &info, size, |_, v| {
            if live.insert(v) {
                todo.push(v);
            }
        });
        if let Some(d) = deps.get(&obj) {
            for &v in d {
                if live.insert(v) {
                    todo.push(v);
                }
            }
        }
    }
    Ok(live)
}
