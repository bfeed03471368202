//! A snapshot as the shared heap graph (`dn_graph::HeapGraph`): the real objects in address
//! order, their references, and root records typed by the pseudo node they hang under
//! (`[local vars]` → stack, `[pinning Handles]` → pinned handle, ...). Works the same for our
//! files and dotnet-gcdump's, which only differ in node order.

use dn_graph::{Edges, HeapGraph, NodesBuilder, Root, RootKind};

use crate::convert::pseudo;
use crate::snapshot::Snapshot;

/// The graph with what the analysis needs besides it.
pub struct SnapshotGraph {
    pub graph: HeapGraph,
    /// Name per type index (`node.type_index`), with the module's file name in brackets when known.
    pub type_names: Vec<String>,
    /// Objects left out: a second node at the same address, or an unaligned address.
    pub dropped: u64,
}

/// Objects further apart than this start a new address range of the index.
const RANGE_GAP: u64 = 1 << 20;

fn kind_of(name: &str) -> Option<RootKind> {
    Some(match name {
        pseudo::LOCALS => RootKind::Stack,
        pseudo::STATICS => RootKind::Static,
        pseudo::THREAD_STATICS => RootKind::ThreadStatic,
        pseudo::FINALIZER => RootKind::Finalizer,
        pseudo::PINNING => RootKind::PinnedHandle,
        pseudo::STRONG => RootKind::StrongHandle,
        pseudo::COM => RootKind::RefCountedHandle,
        pseudo::OTHER_HANDLES | pseudo::DEPENDENT | pseudo::OTHER | pseudo::ROOTS => {
            RootKind::Other
        }
        n if n.starts_with("[static var ") => RootKind::Static,
        _ => return None,
    })
}

/// Builds the graph of `s`.
pub fn to_heap_graph(s: &Snapshot) -> anyhow::Result<SnapshotGraph> {
    let n = s.node_count();
    let mut order: Vec<(u64, u32)> = (0..n as u32)
        .filter(|&i| s.is_object(i))
        .map(|i| (s.addresses[i as usize], i))
        .collect();
    order.sort_unstable();
    let mut ids = vec![u32::MAX; n];
    let mut builder = NodesBuilder::with_capacity(order.len());
    let mut file_node = Vec::with_capacity(order.len());
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut dropped = 0;
    let mut last: Option<u64> = None;
    for &(addr, i) in &order {
        if last == Some(addr) || addr % 8 != 0 {
            dropped += 1;
            continue;
        }
        last = Some(addr);
        let size = u64::from(s.node_sizes[i as usize]);
        let id = builder.push(addr, s.node_types[i as usize], size)?;
        ids[i as usize] = id;
        file_node.push(i);
        let end = addr.saturating_add(size.max(8));
        match ranges.last_mut() {
            Some(r) if addr <= r.1.saturating_add(RANGE_GAP) => r.1 = r.1.max(end),
            _ => ranges.push((addr, end)),
        }
    }
    drop(order);
    let nodes = builder.finish(&ranges)?;
    let count = file_node.len();
    let edges = Edges::build(count, true, |id, out| {
        for &c in s.children_of(file_node[id as usize]) {
            let t = ids[c as usize];
            if t != u32::MAX {
                out.push(t);
            }
        }
    });
    let roots = roots(s, &ids);
    let type_names = s
        .types
        .iter()
        .map(|t| match t.module.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => format!("{}  [{}]", t.name, m.rsplit('/').next().unwrap_or(m)),
            None => t.name.clone(),
        })
        .collect();
    Ok(SnapshotGraph {
        graph: HeapGraph::new(nodes, edges, roots)?,
        type_names,
        dropped,
    })
}

/// Every object a pseudo node under the root points at, typed by the nearest pseudo node
/// with a known kind.
fn roots(s: &Snapshot, ids: &[u32]) -> Vec<Root> {
    let mut out = Vec::new();
    let mut seen = vec![false; s.node_count()];
    let mut stack = vec![(s.root, RootKind::Other)];
    seen[s.root as usize] = true;
    while let Some((p, inherited)) = stack.pop() {
        let name = &s.types[s.node_types[p as usize] as usize].name;
        let kind = match kind_of(name) {
            Some(RootKind::Other) | None => inherited,
            Some(k) => k,
        };
        for &c in s.children_of(p) {
            if s.is_object(c) {
                if ids[c as usize] != u32::MAX {
                    out.push(Root {
                        node: ids[c as usize],
                        kind,
                        tag: p,
                    });
                }
            } else if s.addresses[c as usize] == 0 && !seen[c as usize] {
                seen[c as usize] = true;
                stack.push((c, kind));
            }
        }
    }
    out
}
