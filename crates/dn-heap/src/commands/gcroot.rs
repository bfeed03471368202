//! `gcroot`: paths from GC roots (handles, the finalizer queue, thread stacks) to an object,
//! following references described by each type's GCDesc.
//!
//! Search as ClrMD/SOS do: a depth-first search per root, in root order, with one `seen` set
//! shared by all roots (each object is expanded once per command) and a `found` map of objects
//! known to lead to the target.

use anyhow::bail;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::{n0, ser_hex, ser_hex_opt, Render, Session};
use crate::dac::HandleData;
use crate::heap::Runtime;

/// One hop of a path.
#[derive(Debug, Clone, Serialize)]
pub struct PathNode {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(rename = "type")]
    pub type_name: String,
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
                    let frame = if r.source_type == 0 {
                        rt.dac.method_name_for_ip(r.source).ok()
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
fn dependent_edges(rt: &Runtime) -> FxHashMap<u64, Vec<u64>> {
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
    let deps = dependent_edges(rt);
    let children = |obj: u64, out: &mut Vec<u64>| {
        out.clear();
        if let Some((info, size)) = heap.object_at(dac, obj) {
            heap.for_each_reference(obj, &info, size, |_, v| out.push(v));
        }
        if let Some(d) = deps.get(&obj) {
            out.extend_from_slice(d);
        }
    };

    // found[x] = next object on a path from x to the target.
    let mut found: FxHashMap<u64, u64> = FxHashMap::default();
    let mut seen: FxHashSet<u64> = FxHashSet::default();
    let mut result = Vec::new();
    let mut buf = Vec::new();
    let mut step = 0u64;
    for root in roots {
        let chain = if root.object == target {
            Some(vec![target])
        } else if found.contains_key(&root.object) {
            Some(follow(&found, root.object, target))
        } else if !seen.insert(root.object) {
            None
        } else {
            // Iterative DFS: each frame is (object, its children, next index).
            let mut stack: Vec<(u64, Vec<u64>, usize)> = Vec::new();
            children(root.object, &mut buf);
            stack.push((root.object, buf.clone(), 0));
            let mut hit: Option<Vec<u64>> = None;
            'dfs: while let Some(top) = stack.last_mut() {
                step += 1;
                if step & 0xFFFF == 0 && s.cancelled() {
                    bail!("cancelled");
                }
                if top.2 >= top.1.len() {
                    stack.pop();
                    continue;
                }
                let c = top.1[top.2];
                top.2 += 1;
                if c == target || found.contains_key(&c) {
                    let mut p: Vec<u64> = stack.iter().map(|f| f.0).collect();
                    p.extend(follow(&found, c, target));
                    hit = Some(p);
                    break 'dfs;
                }
                if !seen.insert(c) {
                    continue;
                }
                if heap.object_at(dac, c).is_none() {
                    continue;
                }
                children(c, &mut buf);
                if !buf.is_empty() {
                    stack.push((c, buf.clone(), 0));
                }
            }
            if hit.is_some() {
                // Children queued but not explored may still lead to the target from other
                // roots: let later searches go through them.
                for f in &stack {
                    for &c in &f.1[f.2..] {
                        seen.remove(&c);
                    }
                }
            }
            hit
        };
        if let Some(chain) = chain {
            for w in chain.windows(2) {
                found.insert(w[0], w[1]);
            }
            let path = chain
                .iter()
                .map(|&a| PathNode {
                    address: a,
                    type_name: heap
                        .object_at(dac, a)
                        .map(|(i, _)| heap.type_name(dac, i.mt))
                        .unwrap_or_else(|| "<unknown>".into()),
                })
                .collect();
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

fn follow(found: &FxHashMap<u64, u64>, from: u64, target: u64) -> Vec<u64> {
    let mut p = vec![from];
    let mut cur = from;
    while cur != target {
        match found.get(&cur) {
            Some(&n) if p.len() < 1_000_000 => {
                p.push(n);
                cur = n;
            }
            _ => break,
        }
    }
    p
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
                    Some(reg) => out.push_str(&format!("        {reg}: {:016x}\n", r.root)),
                    None => out.push_str(&format!("        {:016x}\n", r.root)),
                }
            } else {
                out.push_str(&format!("    {:016x} ({})\n", r.root, r.kind));
            }
            for n in &r.path {
                out.push_str(&format!(
                    "          ->  {:>16} {}\n",
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
