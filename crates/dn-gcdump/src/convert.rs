//! Turns the streamed heap into the `.gcdump` graph the way dotnet-gcdump does: one node per
//! object (in stream order, so each type's recorded size is its first object's), nodes for
//! referenced-but-undefined addresses, and the pseudo-node tree of roots under
//! `[.NET Roots]`. The columns of the raw heap are reused in place; the only extra memory is
//! 4 bytes per object for the address order while references are resolved.

use rustc_hash::FxHashMap;

use crate::builder::RawHeap;
use crate::events::{RootEdgeKind, ROOT_FLAG_PINNING, ROOT_FLAG_REFCOUNTED, ROOT_FLAG_WEAK};
use crate::names::{bucket, bucket_suffix, type_name};
use crate::snapshot::{Meta, Snapshot, TypeEntry};

/// Names of the pseudo nodes (shared with the graph view, which types roots by them).
pub mod pseudo {
    pub const ROOTS: &str = "[.NET Roots]";
    pub const STATICS: &str = "[static vars]";
    pub const THREAD_STATICS: &str = "[thread static vars]";
    pub const LOCALS: &str = "[local vars]";
    pub const OTHER: &str = "[other roots]";
    pub const COM: &str = "[COM/WinRT Objects]";
    pub const FINALIZER: &str = "[finalizer Handles]";
    pub const PINNING: &str = "[pinning Handles]";
    pub const STRONG: &str = "[strong Handles]";
    pub const OTHER_HANDLES: &str = "[other Handles]";
    pub const DEPENDENT: &str = "[Dependent Handles]";
}

/// References the nodes announced but the stream did not hold (or held in excess).
#[derive(Clone, Copy, Debug, Default)]
pub struct Balance {
    pub missing_edges: u64,
    pub extra_edges: u64,
}

/// Builds the snapshot; `Err` only when it cannot fit the file format.
pub fn to_snapshot(mut raw: RawHeap, meta: Meta) -> Result<(Snapshot, Balance), String> {
    let n = raw.addr.len();
    let received = raw.edges_lo.len() as u64;
    let balance = Balance {
        missing_edges: raw.edges_announced.saturating_sub(received),
        extra_edges: received.saturating_sub(raw.edges_announced),
    };
    // Address lookups without a copy of the addresses (see `AddrIndex`).
    let index = AddrIndex::new(&raw.addr);
    let mut undefined: FxHashMap<u64, u32> = FxHashMap::default();
    let mut undefined_addrs: Vec<u64> = Vec::new();
    let mut resolve = |addr: u64, raw_addr: &[u64]| -> u32 {
        match index.find(raw_addr, addr) {
            Some(i) => i,
            None => *undefined.entry(addr).or_insert_with(|| {
                undefined_addrs.push(addr);
                (n + undefined_addrs.len() - 1) as u32
            }),
        }
    };
    // References: resolved in place in the low halves.
    let m = raw.edges_lo.len().min(raw.edges_announced as usize);
    // In place: each low half is read (with its run's high half) before it is replaced.
    let mut run = 0;
    for e in 0..m {
        while run + 1 < raw.edges_hi.len() && raw.edges_hi[run + 1].0 <= e as u64 {
            run += 1;
        }
        let hi = raw.edges_hi.get(run).map_or(0, |r| r.1);
        let t = u64::from(hi) << 32 | u64::from(raw.edges_lo[e]);
        raw.edges_lo[e] = resolve(t, &raw.addr);
    }
    raw.edges_lo.truncate(m);
    raw.edges_hi = Vec::new();
    let roots = RootTree::build(&raw, &mut |a| resolve(a, &raw.addr));
    drop(index);
    let total: u64 = raw.size.iter().map(|&s| u64::from(s)).sum();
    let types = file_types(&mut raw);
    let mut s = Snapshot {
        types,
        total_size: total as i64,
        is_64bit: raw.pointer_size != 4,
        meta,
        ..Snapshot::default()
    };
    // Offsets: where each node's announced references start, clipped to the references
    // received. Every column gets room for the undefined and pseudo nodes now: growing a full
    // column later would copy it.
    if m > u32::MAX as usize {
        return Err("more references than a .gcdump file can hold".into());
    }
    let extra = undefined_addrs.len() + roots.node_count();
    let mut offsets = std::mem::take(&mut raw.edge_starts);
    for o in &mut offsets {
        *o = (*o).min(m as u32);
    }
    offsets.reserve(1 + extra);
    offsets.push(m as u32);
    s.node_types = std::mem::take(&mut raw.slot);
    s.node_sizes = std::mem::take(&mut raw.size);
    s.addresses = std::mem::take(&mut raw.addr);
    s.children = std::mem::take(&mut raw.edges_lo);
    s.child_offsets = offsets;
    s.node_types.reserve(extra);
    s.node_sizes.reserve(extra);
    s.addresses.reserve(extra);
    s.children.reserve(roots.child_count());
    for a in undefined_addrs {
        s.node_types.push(0);
        s.node_sizes.push(0);
        s.addresses.push(a);
        s.child_offsets.push(m as u32);
    }
    roots.append_to(&mut s);
    Ok((s, balance))
}

/// Address → node index over the stream's addresses. The walk lists each generation's regions
/// in address order, so the addresses are a few ascending runs (8 for a 6 M-object .NET 10
/// heap) whose ranges interleave: a lookup binary-searches the runs whose range holds the
/// address. Past [`MAX_RUNS`] runs, a permutation in address order (4 bytes per object) instead.
enum AddrIndex {
    /// (first node, end node, lowest address, highest address) of each ascending run.
    Runs(Vec<(u32, u32, u64, u64)>),
    Perm(Vec<u32>),
}

/// Beyond this many runs a lookup would search too many of them.
const MAX_RUNS: usize = 64;

impl AddrIndex {
    fn new(addr: &[u64]) -> AddrIndex {
        let mut runs = Vec::new();
        let mut start = 0usize;
        for i in 1..=addr.len() {
            if i == addr.len() || addr[i] <= addr[i - 1] {
                if runs.len() == MAX_RUNS {
                    let mut p: Vec<u32> = (0..addr.len() as u32).collect();
                    p.sort_unstable_by_key(|&i| (addr[i as usize], i));
                    return AddrIndex::Perm(p);
                }
                runs.push((start as u32, i as u32, addr[start], addr[i - 1]));
                start = i;
            }
        }
        AddrIndex::Runs(runs)
    }

    /// The node at `target`, if one starts there (the first in stream order).
    fn find(&self, addr: &[u64], target: u64) -> Option<u32> {
        match self {
            AddrIndex::Runs(runs) => runs
                .iter()
                .filter(|r| (r.2..=r.3).contains(&target))
                .find_map(|&(a, b, _, _)| {
                    let run = &addr[a as usize..b as usize];
                    let k = run.partition_point(|&x| x < target);
                    (run.get(k) == Some(&target)).then_some(a + k as u32)
                }),
            AddrIndex::Perm(perm) => {
                let k = perm.partition_point(|&i| addr[i as usize] < target);
                let i = *perm.get(k)?;
                (addr[i as usize] == target).then_some(i)
            }
        }
    }
}

/// Assigns file type indexes (interned by module and name, size buckets apart) and rewrites
/// each node's slot into its file type index. Type sizes are first-node sizes.
fn file_types(raw: &mut RawHeap) -> Vec<TypeEntry> {
    let mut types = vec![TypeEntry {
        name: "UNDEFINED".into(),
        size: 0,
        module: None,
    }];
    let mut by_slot: Vec<[u32; 7]> = vec![[0; 7]; raw.type_ids.len()];
    let mut by_name: FxHashMap<(Option<String>, String), u32> = FxHashMap::default();
    for i in 0..raw.slot.len() {
        let slot = raw.slot[i] as usize;
        let size = raw.size[i];
        let b = bucket(size);
        let mut t = by_slot[slot][b as usize];
        if t == 0 {
            let id = raw.type_ids[slot];
            let rec = raw.types.get(&id);
            let name = format!("{}{}", type_name(rec, id), bucket_suffix(b));
            let module = rec.map(|r| {
                raw.modules
                    .get(&r.module_id)
                    .cloned()
                    .unwrap_or_else(|| format!("Module(0x{:x})", r.module_id))
            });
            let next = types.len() as u32;
            t = *by_name
                .entry((module.clone(), name.clone()))
                .or_insert_with(|| {
                    types.push(TypeEntry {
                        name,
                        size: size as i32,
                        module,
                    });
                    next
                });
            by_slot[slot][b as usize] = t;
        }
        raw.slot[i] = t;
    }
    types
}

/// The pseudo nodes of the roots, their children resolved to node indexes.
struct RootTree {
    locals: Vec<u32>,
    /// `[other roots]` children in first-seen order.
    other: Vec<(&'static str, Vec<u32>)>,
    statics: Vec<(String, Vec<u32>)>,
    thread_statics: Vec<(String, Vec<u32>)>,
}

impl RootTree {
    fn build(raw: &RawHeap, resolve: &mut dyn FnMut(u64) -> u32) -> RootTree {
        let mut t = RootTree {
            locals: Vec::new(),
            other: Vec::new(),
            statics: Vec::new(),
            thread_statics: Vec::new(),
        };
        for r in &raw.roots {
            if r.flags & ROOT_FLAG_WEAK != 0 {
                continue;
            }
            let node = resolve(r.address);
            let group = if r.flags & ROOT_FLAG_REFCOUNTED != 0 {
                pseudo::COM
            } else {
                match r.kind {
                    RootEdgeKind::Stack => {
                        t.locals.push(node);
                        continue;
                    }
                    RootEdgeKind::Finalizer => pseudo::FINALIZER,
                    RootEdgeKind::Handle if r.flags == ROOT_FLAG_PINNING => pseudo::PINNING,
                    RootEdgeKind::Handle => pseudo::STRONG,
                    RootEdgeKind::Other => pseudo::OTHER_HANDLES,
                }
            };
            t.other_child(group, node);
        }
        for &(key, value) in &raw.cwt {
            if key != 0 {
                let node = resolve(value);
                t.other_child(pseudo::DEPENDENT, node);
            }
        }
        let mut index: FxHashMap<(bool, String), usize> = FxHashMap::default();
        for s in &raw.statics {
            let ty = type_name(raw.types.get(&s.type_id), s.type_id);
            let name = format!("[static var {ty}.{}]", s.field);
            let node = resolve(s.object);
            let list = if s.thread_local {
                &mut t.thread_statics
            } else {
                &mut t.statics
            };
            let k = *index
                .entry((s.thread_local, name.clone()))
                .or_insert_with(|| {
                    list.push((name, Vec::new()));
                    list.len() - 1
                });
            list[k].1.push(node);
        }
        t
    }

    /// Pseudo nodes [`RootTree::append_to`] adds.
    fn node_count(&self) -> usize {
        // [.NET Roots], [static vars], [COM/WinRT Objects], then the optional groups.
        3 + usize::from(!self.thread_statics.is_empty())
            + usize::from(!self.locals.is_empty())
            + if self.other.is_empty() {
                0
            } else {
                1 + self.other.len()
            }
            + self.statics.len()
            + self.thread_statics.len()
    }

    /// References from the pseudo nodes (an upper bound: the top-level ones included).
    fn child_count(&self) -> usize {
        8 + self.locals.len()
            + self.other.iter().map(|(_, v)| v.len() + 1).sum::<usize>()
            + self.statics.iter().map(|(_, v)| v.len() + 1).sum::<usize>()
            + self
                .thread_statics
                .iter()
                .map(|(_, v)| v.len() + 1)
                .sum::<usize>()
    }

    fn other_child(&mut self, group: &'static str, node: u32) {
        match self.other.iter_mut().find(|(g, _)| *g == group) {
            Some((_, v)) => v.push(node),
            None => self.other.push((group, vec![node])),
        }
    }

    /// Appends the pseudo nodes (each with a type of its own name, size 0, address 0) and
    /// makes `[.NET Roots]` the root.
    fn append_to(self, s: &mut Snapshot) {
        let base = s.node_types.len() as u32;
        // Layout: roots, static vars, [thread statics], [locals], [other + groups], COM, then
        // the static var nodes.
        let mut nodes: Vec<(String, Vec<u32>)> = Vec::new();
        let mut top = Vec::new();
        let push = |nodes: &mut Vec<(String, Vec<u32>)>, name: &str, children: Vec<u32>| {
            nodes.push((name.to_string(), children));
            base + nodes.len() as u32 - 1
        };
        push(&mut nodes, pseudo::ROOTS, Vec::new());
        let statics_at = push(&mut nodes, pseudo::STATICS, Vec::new());
        top.push(statics_at);
        let thread_at = (!self.thread_statics.is_empty())
            .then(|| push(&mut nodes, pseudo::THREAD_STATICS, Vec::new()));
        top.extend(thread_at);
        if !self.locals.is_empty() {
            top.push(push(&mut nodes, pseudo::LOCALS, self.locals));
        }
        if !self.other.is_empty() {
            let other_at = push(&mut nodes, pseudo::OTHER, Vec::new());
            top.push(other_at);
            let mut groups = Vec::new();
            for (g, children) in self.other {
                groups.push(push(&mut nodes, g, children));
            }
            nodes[(other_at - base) as usize].1 = groups;
        }
        top.push(push(&mut nodes, pseudo::COM, Vec::new()));
        let mut statics = Vec::new();
        for (name, children) in self.statics {
            statics.push(push(&mut nodes, &name, children));
        }
        nodes[(statics_at - base) as usize].1 = statics;
        if let Some(at) = thread_at {
            let mut list = Vec::new();
            for (name, children) in self.thread_statics {
                list.push(push(&mut nodes, &name, children));
            }
            nodes[(at - base) as usize].1 = list;
        }
        nodes[0].1 = top;
        let mut type_of: FxHashMap<String, u32> = FxHashMap::default();
        for (name, children) in nodes {
            let next = s.types.len() as u32;
            let t = *type_of.entry(name.clone()).or_insert_with(|| {
                s.types.push(TypeEntry {
                    name,
                    size: 0,
                    module: None,
                });
                next
            });
            s.node_types.push(t);
            s.node_sizes.push(0);
            s.addresses.push(0);
            s.children.extend_from_slice(&children);
            s.child_offsets.push(s.children.len() as u32);
        }
        s.root = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every address of `addr` is found at its first position; addresses between are not.
    fn check(addr: &[u64]) -> AddrIndex {
        let index = AddrIndex::new(addr);
        for (i, &a) in addr.iter().enumerate() {
            let first = addr.iter().position(|&x| x == a).unwrap() as u32;
            assert_eq!(
                index.find(addr, a),
                Some(first),
                "address {a:#x} (node {i})"
            );
            assert_eq!(index.find(addr, a + 1), None, "{:#x}", a + 1);
        }
        assert_eq!(index.find(addr, 0), None);
        assert_eq!(index.find(addr, u64::MAX), None);
        index
    }

    #[test]
    fn interleaved_runs_are_searched_where_their_range_holds_the_address() {
        // Two generations whose regions interleave, plus one object repeated.
        let addr = [0x100, 0x500, 0x900, 0x300, 0x700, 0xb00, 0xb00, 0x10];
        assert!(matches!(check(&addr), AddrIndex::Runs(r) if r.len() == 4));
        assert!(matches!(check(&[]), AddrIndex::Runs(r) if r.is_empty()));
    }

    #[test]
    fn many_runs_fall_back_to_a_permutation() {
        // Descending: every object starts a run of its own.
        let addr: Vec<u64> = (0..(MAX_RUNS as u64 + 10))
            .rev()
            .map(|i| 0x1000 + i * 0x20)
            .collect();
        assert!(matches!(check(&addr), AddrIndex::Perm(_)));
    }
}
