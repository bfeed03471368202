//! `gcroot`: paths from GC roots (handles, the finalizer queue, thread stacks) to an object,
//! on the session's heap graph.
//!
//! Every root that keeps the object alive is listed, in SOS's root order, each with a shortest
//! path to the object (one backward breadth-first search from the object over the graph's
//! predecessors, as MAT's "path to GC roots"). ClrMD's GCRoot reports the first path its
//! depth-first search meets, which can be longer.

use anyhow::bail;
use dn_graph::RootKind;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::{n0, ser_hex, ser_hex_opt, GraphSession, Render};
use crate::graph::ObjectGraph;
use crate::heap::Runtime;
use crate::roots::RootDetail;

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
    #[serde(skip)]
    pub root_kind: RootKind,
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
    /// What the heap graph could not read (roots or references left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub fn gcroot(s: &dyn GraphSession, target: u64, stacks: bool) -> anyhow::Result<GcRoot> {
    let g = s.graph()?;
    let Some(node) = g.node(target) else {
        bail!("0x{target:x} is not a valid object");
    };
    let paths = g
        .graph
        .paths_to(g.predecessors(), node, s.cancel_flag())
        .map_err(|_| anyhow::anyhow!("cancelled"))?;
    let statics = static_fields(&g);
    // SOS's roots: handles, the finalizer queue and stacks; a static field is reached through
    // its statics array (held by a handle) and named on that hop. Only when none of those
    // reaches the object do static fields show as roots of their own: their statics array is
    // one no handle holds (seen in ASP.NET apps on .NET 10), where SOS finds no root at all.
    let sos_root = |ri: usize| {
        let root = &g.graph.roots[ri];
        !matches!(root.kind, RootKind::Static | RootKind::ThreadStatic)
            && !g.root_record(root).detail.is_storage()
    };
    let show_statics = !paths.iter().any(|(ri, _)| sos_root(*ri));
    let mut result = Vec::new();
    for (ri, chain) in paths {
        let rec = g.root_record(&g.graph.roots[ri]);
        if rec.detail.is_storage() {
            continue;
        }
        match rec.kind {
            RootKind::Static | RootKind::ThreadStatic if !show_statics => continue,
            RootKind::Stack if !stacks => continue,
            _ => {}
        }
        let mut path: Vec<PathNode> = chain
            .iter()
            .map(|&id| PathNode {
                address: g.address(id),
                type_name: s.type_name(g.mt(id)),
                static_field: None,
            })
            .collect();
        if let Some(rt) = s.runtime() {
            annotate_statics(rt, &statics, &mut path);
        }
        if let (Some(field), Some(first)) = (rec.detail.field(), path.first_mut()) {
            first.static_field = Some(field.to_string());
        }
        let (thread, frame, stack_pointer, register) = match &rec.detail {
            RootDetail::Stack {
                thread,
                frame,
                stack_pointer,
                register,
            } => (
                Some(*thread),
                frame.clone(),
                Some(*stack_pointer),
                register.clone(),
            ),
            RootDetail::ThreadStatic { thread, .. } => (Some(*thread), None, None, None),
            _ => (None, None, None, None),
        };
        result.push(RootPath {
            kind: rec.kind_text(),
            root_kind: rec.kind,
            root: rec.slot,
            thread,
            frame,
            stack_pointer,
            register,
            path,
        });
    }
    Ok(GcRoot {
        target,
        roots: result,
        warnings: g.warnings.clone(),
    })
}

/// (Thread-)static field slot -> "Type.Field", from the graph's static and thread-static roots.
pub(crate) fn static_fields(g: &ObjectGraph) -> FxHashMap<u64, String> {
    g.roots
        .iter()
        .filter_map(|r| Some((r.slot, r.detail.field()?.to_string())))
        .collect()
}

/// Names the static field behind each hop that leaves a statics holder: the slot of the
/// previous object that references the next one is a known static field.
pub(crate) fn annotate_statics(
    rt: &Runtime,
    statics: &FxHashMap<u64, String>,
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
        if let Some(slot) = slot {
            path[i].static_field = statics.get(&slot).cloned();
        }
    }
}

impl Render for GcRoot {
    fn render(&self) -> String {
        let mut out = String::new();
        let mut last_group = String::new();
        for r in &self.roots {
            let group = match (r.root_kind, r.thread) {
                (RootKind::Stack, Some(t)) => format!("Thread {t:x}:"),
                (RootKind::Finalizer, _) => "Finalizer Queue:".to_string(),
                (RootKind::Static, _) => {
                    "Static fields (in a statics array no GC handle holds):".to_string()
                }
                (RootKind::ThreadStatic, Some(t)) => format!("Thread statics of thread {t:x}:"),
                _ => "HandleTable:".to_string(),
            };
            if group != last_group {
                out.push_str(&group);
                out.push('\n');
                last_group = group;
            }
            if r.root_kind == RootKind::Stack {
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
        // A root is its slot; a register has no slot, so its frame and register name it.
        let unique: FxHashSet<(u64, &str, Option<u64>, Option<&str>)> = self
            .roots
            .iter()
            .map(|r| {
                (
                    r.root,
                    r.kind.as_str(),
                    r.stack_pointer,
                    r.register.as_deref(),
                )
            })
            .collect();
        out.push_str(&format!(
            "Found {} unique roots.\n",
            n0(unique.len() as u64)
        ));
        super::push_warnings(&mut out, &self.warnings);
        out
    }
}
