//! `dominators [ADDR] [-depth N] [-top K] [-type SUBSTR]`: the dominator tree (who keeps the
//! memory alive), from the virtual root above all GC roots or from one object.

use anyhow::bail;
use dn_graph::{Dominators, NodeId};
use serde::Serialize;

use super::{n0, parse_addr, parse_num, ser_hex_opt, GraphSession, Render};
use crate::graph::ObjectGraph;

/// Parsed `dominators` options.
#[derive(Debug, Clone)]
pub struct DominatorsOptions {
    pub address: Option<u64>,
    pub depth: u32,
    pub top: usize,
    /// Keep only the first level's nodes whose type name contains this.
    pub type_substr: Option<String>,
}

impl DominatorsOptions {
    pub fn parse(args: &[&str]) -> anyhow::Result<DominatorsOptions> {
        let mut o = DominatorsOptions {
            address: None,
            depth: 2,
            top: 20,
            type_substr: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.to_ascii_lowercase().as_str() {
                "-depth" => {
                    let d = parse_num(it.next().copied(), "-depth")?;
                    o.depth = u32::try_from(d).unwrap_or(u32::MAX);
                }
                "-top" => {
                    let k = parse_num(it.next().copied(), "-top")?;
                    if k == 0 {
                        bail!("-top needs a number above 0");
                    }
                    o.top = usize::try_from(k).unwrap_or(usize::MAX);
                }
                "-type" => match it.next() {
                    Some(t) => o.type_substr = Some(t.to_string()),
                    None => bail!("-type needs a type name (substring)"),
                },
                s if s.starts_with('-') => bail!("unknown dominators option '{a}'"),
                _ => {
                    if o.address.is_some() {
                        bail!("dominators takes one address");
                    }
                    o.address = Some(parse_addr(Some(a), "dominators [ADDR]")?);
                }
            }
        }
        Ok(o)
    }
}

/// One node of the dominator tree as shown.
#[derive(Debug, Clone, Serialize)]
pub struct DominatorNode {
    /// `null` for the virtual root above all GC roots.
    #[serde(serialize_with = "ser_hex_opt")]
    pub address: Option<u64>,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(serialize_with = "ser_hex_opt")]
    pub mt: Option<u64>,
    /// Shallow size.
    pub size: u64,
    pub retained: u64,
    /// Retained size as a percentage of the live heap.
    pub percent: f64,
    pub children: Vec<DominatorNode>,
    /// Children not shown (beyond `-top`, filtered by `-type`, or below `-depth`).
    pub more_children: u64,
}

/// `dominators`: the tree, plus what the graph could not read.
#[derive(Debug, Clone, Serialize)]
pub struct DominatorTree {
    #[serde(flatten)]
    pub root: DominatorNode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Name of the virtual root in text and JSON.
pub const VIRTUAL_ROOT: &str = "<GC roots>";

pub fn dominators(s: &dyn GraphSession, o: &DominatorsOptions) -> anyhow::Result<DominatorTree> {
    let g = s.graph()?;
    let dom = g.dominators(s.cancel_flag())?;
    let start = match o.address {
        None => None,
        Some(a) => {
            let Some(id) = g.node(a) else {
                bail!("0x{a:x} is not a valid object");
            };
            if !dom.is_reachable(id) {
                bail!("0x{a:x} is not reachable from any root: it dominates nothing (dumpheap -dead lists it)");
            }
            Some(id)
        }
    };
    let view = View {
        s,
        g: &g,
        dom: &dom,
        o,
    };
    let mut root = view.node(start);
    view.fill(&mut root, start, 0)?;
    Ok(DominatorTree {
        root,
        warnings: g.warnings.clone(),
    })
}

struct View<'a> {
    s: &'a dyn GraphSession,
    g: &'a ObjectGraph,
    dom: &'a Dominators,
    o: &'a DominatorsOptions,
}

impl View<'_> {
    fn node(&self, id: Option<NodeId>) -> DominatorNode {
        let live = self.dom.live_bytes();
        let (address, type_name, mt, size, retained) = match id {
            None => (None, VIRTUAL_ROOT.to_string(), None, 0, live),
            Some(id) => {
                let mt = self.g.mt(id);
                (
                    Some(self.g.address(id)),
                    type_name(self.s, mt),
                    Some(mt),
                    self.g.size(id),
                    self.dom.retained(id),
                )
            }
        };
        DominatorNode {
            address,
            type_name,
            mt,
            size,
            retained,
            percent: percent(retained, live),
            children: Vec::new(),
            more_children: 0,
        }
    }

    /// Adds the children of `id` (shown as `node`) down to the depth limit. Iterative over
    /// levels would need parent links; the depth is a user-given small number, so this recursion
    /// is bounded by `-depth` (capped below).
    fn fill(&self, node: &mut DominatorNode, id: Option<NodeId>, level: u32) -> anyhow::Result<()> {
        if self.s.is_cancelled() {
            bail!("cancelled");
        }
        let children = self.dom.children(id);
        if level >= self.o.depth.min(MAX_DEPTH) {
            node.more_children = children.len() as u64;
            return Ok(());
        }
        let mut shown = 0usize;
        for &c in &children {
            if shown == self.o.top {
                break;
            }
            if level == 0 {
                if let Some(sub) = &self.o.type_substr {
                    if !type_name(self.s, self.g.mt(c)).contains(sub.as_str()) {
                        continue;
                    }
                }
            }
            let mut child = self.node(Some(c));
            self.fill(&mut child, Some(c), level + 1)?;
            node.children.push(child);
            shown += 1;
        }
        node.more_children = (children.len() - shown) as u64;
        Ok(())
    }
}

/// Deepest tree `dominators` prints (the recursion in [`View::fill`] is bounded by it).
const MAX_DEPTH: u32 = 64;

fn type_name(s: &dyn GraphSession, mt: u64) -> String {
    s.type_name(mt)
}

/// `part` as a percentage of `whole`, two decimals.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10000.0 / whole as f64).round() / 100.0
}

impl Render for DominatorTree {
    fn render(&self) -> String {
        let mut out = String::new();
        crate::commands::push_warnings(&mut out, &self.warnings);
        out + &render_tree(&self.root)
    }
}

/// The tree as text, "… N more" under a node whose children were cut.
fn render_tree(root: &DominatorNode) -> String {
    let mut out = format!(
        "{:>16} {:>7} {:>12}  Type (address)\n",
        "Retained", "%", "Shallow"
    );
    enum Item<'a> {
        Node(&'a DominatorNode, usize),
        More(u64, usize),
    }
    let mut stack = vec![Item::Node(root, 0)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Node(n, indent) => {
                let addr = n.address.map(|a| format!(" {a:x}")).unwrap_or_default();
                out.push_str(&format!(
                    "{:>16} {:>6.2}% {:>12}  {:indent$}{}{addr}\n",
                    n0(n.retained),
                    n.percent,
                    n0(n.size),
                    "",
                    n.type_name,
                    indent = indent * 2
                ));
                if n.more_children > 0 {
                    stack.push(Item::More(n.more_children, indent + 1));
                }
                for c in n.children.iter().rev() {
                    stack.push(Item::Node(c, indent + 1));
                }
            }
            Item::More(k, indent) => out.push_str(&format!(
                "{:>16} {:>7} {:>12}  {:indent$}… {} more\n",
                "",
                "",
                "",
                "",
                n0(k),
                indent = indent * 2
            )),
        }
    }
    out
}
