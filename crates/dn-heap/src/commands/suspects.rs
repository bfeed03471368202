//! `suspects [-threshold PCT]`: Eclipse MAT's Leak Suspects on the heap graph. A single suspect
//! is a top-level dominator (held straight by a root) retaining more than PCT% of the live
//! heap; a group suspect is a type whose top-level instances together do. Each comes with its
//! accumulation point, the shortest path from a GC root, and what accumulates there by type.

use anyhow::bail;
use dn_graph::{Dominators, NodeId, RootKind, SuspectKind};
use serde::Serialize;

use super::dominators::percent;
use super::gcroot::{annotate_statics, static_fields, PathNode};
use super::{n0, ser_hex, ser_hex_opt, GraphSession, Render};
use crate::graph::ObjectGraph;
use crate::roots::RootDetail;

/// Rows of "accumulated objects by type" kept per suspect.
const ACCUMULATED_TOP: usize = 10;

/// `suspects`.
#[derive(Debug, Clone, Serialize)]
pub struct Suspects {
    pub live_bytes: u64,
    pub threshold_percent: f64,
    pub suspects: Vec<Suspect>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspectShape {
    Single,
    Group,
}

/// One suspect.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    pub kind: SuspectShape,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    /// The object (single suspects).
    #[serde(
        serialize_with = "ser_hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub address: Option<u64>,
    /// Instances (group suspects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub retained: u64,
    pub percent: f64,
    /// From the GC root to the suspect (for a group, to its biggest instance), root first.
    pub path: Vec<PathNode>,
    pub root: Option<SuspectRoot>,
    pub accumulation_point: Option<AccumulationPoint>,
    pub accumulated: Vec<Accumulated>,
}

/// The root at the start of a suspect's path, with `gcroot`'s fields.
#[derive(Debug, Clone, Serialize)]
pub struct SuspectRoot {
    /// "static", "strong handle", "stack", "finalizer root", ...
    pub kind: String,
    #[serde(skip)]
    pub root_kind: RootKind,
    /// The slot holding the reference (static field, handle, stack slot).
    #[serde(serialize_with = "ser_hex")]
    pub root: u64,
    /// For a static root: "Namespace.Type.Field".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

/// Where the memory piles up below a suspect.
#[derive(Debug, Clone, Serialize)]
pub struct AccumulationPoint {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub retained: u64,
    pub percent: f64,
    /// When the point is an array held by a small collection object (a `List<T>`'s
    /// `_items`), that owner: the object a user would name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<PointOwner>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PointOwner {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub retained: u64,
}

/// One type in the accumulation point's dominator subtree.
#[derive(Debug, Clone, Serialize)]
pub struct Accumulated {
    #[serde(rename = "type")]
    pub type_name: String,
    pub count: u64,
    /// Shallow bytes of the instances.
    pub size: u64,
    /// Minimum retained size of the instances.
    pub retained: u64,
}

pub fn parse_threshold(args: &[&str]) -> anyhow::Result<f64> {
    let mut pct = 10.0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_ascii_lowercase().as_str() {
            "-threshold" => {
                let v = it.next().copied().unwrap_or("");
                pct = v
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        anyhow::anyhow!("-threshold takes a percentage from 0 to 100, not '{v}'")
                    })?;
            }
            _ => bail!("unknown suspects option '{a}' (suspects [-threshold PCT])"),
        }
    }
    Ok(pct)
}

pub fn suspects(s: &dyn GraphSession, threshold: f64) -> anyhow::Result<Suspects> {
    let g = s.graph()?;
    let dom = g.dominators(s.cancel_flag())?;
    let live = dom.live_bytes();
    let found = dn_graph::suspects(&g.graph, &dom, threshold);
    let statics = static_fields(&g);
    let name = |id: NodeId| s.type_name(g.mt(id));
    let mut out = Vec::with_capacity(found.len());
    for sus in found {
        if s.is_cancelled() {
            bail!("cancelled");
        }
        // The node the description hangs on: the suspect, or a group's biggest instance.
        let (shape, node, count, members) = match &sus.kind {
            SuspectKind::Single { node } => (SuspectShape::Single, *node, None, vec![*node]),
            SuspectKind::Group { count, members, .. } => {
                let biggest = members
                    .iter()
                    .copied()
                    .max_by_key(|&m| (dom.retained(m), std::cmp::Reverse(m)))
                    .unwrap_or(0);
                (SuspectShape::Group, biggest, Some(*count), members.clone())
            }
        };
        let (path, root) = root_path(s, &g, &statics, node);
        let point_node = dom.accumulation_point(node);
        let point = point_node.map(|p| AccumulationPoint {
            address: g.address(p),
            type_name: name(p),
            retained: dom.retained(p),
            percent: percent(dom.retained(p), live),
            owner: collection_owner(&g, &dom, p).map(|o| PointOwner {
                address: g.address(o),
                type_name: name(o),
                retained: dom.retained(o),
            }),
        });
        let accumulated = match (point_node, shape) {
            (Some(p), SuspectShape::Single) => accumulated(s, &g, &dom, &[p]),
            _ => accumulated(s, &g, &dom, &members),
        };
        out.push(Suspect {
            kind: shape,
            type_name: name(node),
            mt: g.mt(node),
            address: (shape == SuspectShape::Single).then(|| g.address(node)),
            count,
            retained: sus.retained,
            percent: percent(sus.retained, live),
            path,
            root,
            accumulation_point: point,
            accumulated,
        });
    }
    Ok(Suspects {
        live_bytes: live,
        threshold_percent: threshold,
        suspects: out,
        warnings: g.warnings.clone(),
    })
}

/// The shortest path from a GC root to `node` (non-finalizer roots preferred), with the root.
fn root_path(
    s: &dyn GraphSession,
    g: &ObjectGraph,
    statics: &rustc_hash::FxHashMap<u64, String>,
    node: NodeId,
) -> (Vec<PathNode>, Option<SuspectRoot>) {
    let Some(Some((ri, chain))) = g.graph.shortest_root_paths(&[node]).into_iter().next() else {
        return (Vec::new(), None);
    };
    let rec = g.root_record(&g.graph.roots[ri]);
    let mut path: Vec<PathNode> = chain
        .iter()
        .map(|&id| PathNode {
            address: g.address(id),
            type_name: s.type_name(g.mt(id)),
            static_field: None,
        })
        .collect();
    if let Some(rt) = s.runtime() {
        annotate_statics(rt, statics, &mut path);
    }
    // The first object is a (thread-)static's value: name the field on it, as gcroot does on
    // the hop out of a statics array.
    if let (Some(field), Some(first)) = (rec.detail.field(), path.first_mut()) {
        first.static_field = Some(field.to_string());
    }
    let (field, thread, frame) = match &rec.detail {
        RootDetail::Static { field } => (Some(field.clone()), None, None),
        RootDetail::ThreadStatic { field, thread } => (Some(field.clone()), Some(*thread), None),
        RootDetail::Stack { thread, frame, .. } => (None, Some(*thread), frame.clone()),
        _ => (None, None, None),
    };
    let root = SuspectRoot {
        kind: rec.kind_text(),
        root_kind: rec.kind,
        root: rec.slot,
        field,
        thread,
        frame,
    };
    (path, Some(root))
}

/// An array accumulation point held by an object that adds next to nothing to it (a
/// `List<T>`, `Stack<T>`, `HashSet<T>` around its backing array): that owner.
fn collection_owner(g: &ObjectGraph, dom: &Dominators, point: NodeId) -> Option<NodeId> {
    if !g.is_array(point) {
        return None;
    }
    let dn_graph::Idom::Node(owner) = dom.idom(point) else {
        return None;
    };
    let extra = dom.retained(owner).checked_sub(dom.retained(point))?;
    // The owner's own fields and any small side arrays only.
    (!g.is_array(owner) && extra <= 1024).then_some(owner)
}

/// The dominator subtrees of `tops` by type, biggest retained first, top rows only.
fn accumulated(
    s: &dyn GraphSession,
    g: &ObjectGraph,
    dom: &Dominators,
    tops: &[NodeId],
) -> Vec<Accumulated> {
    let mut by_type: rustc_hash::FxHashMap<u32, Accumulated> = Default::default();
    for &t in tops {
        for row in dom.subtree_histogram(&g.graph, t) {
            let e = by_type
                .entry(row.type_index)
                .or_insert_with(|| Accumulated {
                    type_name: s.type_name(g.mts[row.type_index as usize]),
                    count: 0,
                    size: 0,
                    retained: 0,
                });
            e.count += row.count;
            e.size += row.shallow_bytes;
            e.retained += row.retained_bytes;
        }
    }
    let mut rows: Vec<Accumulated> = by_type.into_values().collect();
    rows.sort_by(|a, b| {
        b.retained
            .cmp(&a.retained)
            .then(b.size.cmp(&a.size))
            .then(a.type_name.cmp(&b.type_name))
    });
    rows.truncate(ACCUMULATED_TOP);
    rows
}

/// `1,234 (5.67%)`, as MAT writes a size with its share.
fn bytes_pct(bytes: u64, pct: f64) -> String {
    format!("{} ({pct:.2}%)", n0(bytes))
}

impl Render for Suspects {
    fn render(&self) -> String {
        let mut out = String::new();
        crate::commands::push_warnings(&mut out, &self.warnings);
        out.push_str(&format!(
            "Live heap: {} bytes. Threshold: {}% ({} bytes).\n",
            n0(self.live_bytes),
            self.threshold_percent,
            n0((self.live_bytes as f64 * self.threshold_percent / 100.0) as u64)
        ));
        if self.suspects.is_empty() {
            out.push_str("\nNo leak suspect was found.\n");
            return out;
        }
        for (i, sus) in self.suspects.iter().enumerate() {
            out.push_str(&format!("\nProblem Suspect {}\n\n", i + 1));
            match sus.kind {
                SuspectShape::Single => out.push_str(&format!(
                    "One instance of \"{}\" occupies {} bytes.",
                    sus.type_name,
                    bytes_pct(sus.retained, sus.percent)
                )),
                SuspectShape::Group => out.push_str(&format!(
                    "{} instances of \"{}\" occupy {} bytes.",
                    n0(sus.count.unwrap_or(0)),
                    sus.type_name,
                    bytes_pct(sus.retained, sus.percent)
                )),
            }
            if let Some(p) = &sus.accumulation_point {
                let lead = match sus.kind {
                    SuspectShape::Single => "The memory is accumulated in one instance of",
                    SuspectShape::Group => {
                        "The biggest instance accumulates its memory in one instance of"
                    }
                };
                out.push_str(&format!(
                    " {lead} \"{}\", which occupies {} bytes.",
                    p.type_name,
                    bytes_pct(p.retained, p.percent)
                ));
                if let Some(o) = &p.owner {
                    out.push_str(&format!(
                        " It is the storage of \"{}\" at {:x}.",
                        o.type_name, o.address
                    ));
                }
            }
            out.push('\n');
            if let Some(r) = &sus.root {
                out.push_str("\nShortest path from a GC root:\n");
                match (&r.field, r.root_kind) {
                    (Some(f), _) => out.push_str(&format!("    static {f}\n")),
                    (None, RootKind::Stack) => out.push_str(&format!(
                        "    stack of thread {:x}: {}\n",
                        r.thread.unwrap_or(0),
                        r.frame.as_deref().unwrap_or("<unknown frame>")
                    )),
                    (None, _) => out.push_str(&format!("    {:016x} ({})\n", r.root, r.kind)),
                }
                for n in &sus.path {
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
            }
            if !sus.accumulated.is_empty() {
                out.push_str("\nAccumulated objects by type:\n");
                let counts: Vec<String> = sus.accumulated.iter().map(|a| n0(a.count)).collect();
                let sizes: Vec<String> = sus.accumulated.iter().map(|a| n0(a.size)).collect();
                let rets: Vec<String> = sus.accumulated.iter().map(|a| n0(a.retained)).collect();
                let wc = counts.iter().map(|c| c.len()).max().unwrap_or(0).max(5);
                let ws = sizes.iter().map(|c| c.len()).max().unwrap_or(0).max(7);
                let wr = rets.iter().map(|c| c.len()).max().unwrap_or(0).max(8);
                out.push_str(&format!(
                    "    {:>wc$} {:>ws$} {:>wr$} Type\n",
                    "Count", "Shallow", "Retained"
                ));
                for (i, a) in sus.accumulated.iter().enumerate() {
                    out.push_str(&format!(
                        "    {:>wc$} {:>ws$} {:>wr$} {}\n",
                        counts[i], sizes[i], rets[i], a.type_name
                    ));
                }
            }
        }
        out
    }
}
