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
    // Address order for the lookups; not needed when the walk came in address order.
    let perm: Option<Vec<u32>> = (!raw.addr.is_sorted()).then(|| {
        let mut p: Vec<u32> = (0..n as u32).collect();
        p.sort_unstable_by_key(|&i| (raw.addr[i as usize], i));
        p
    });
    let mut undefined: FxHashMap<u64, u32> = FxHashMap::default();
    let mut undefined_addrs: Vec<u64> = Vec::new();
    let mut resolve = |addr: u64, raw_addr: &[u64]| -> u32 {
        let found = match &perm {
            Some(perm) => {
                let k = perm.partition_point(|&i| raw_addr[i as usize] < addr);
                perm.get(k).copied()
            }
            None => {
                let k = raw_addr.partition_point(|&a| a < addr);
                (k < raw_addr.len()).then_some(k as u32)
            }
        };
        match found {
            Some(i) if raw_addr[i as usize] == addr => i,
            _ => *undefined.entry(addr).or_insert_with(|| {
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
    drop(perm);
    let total: u64 = raw.size.iter().map(|&s| u64::from(s)).sum();
    let types = file_types(&mut raw);
    let mut s = Snapshot {
        types,
        total_size: total as i64,
        is_64bit: raw.pointer_size != 4,
        meta,
        ..Snapshot::default()
    };
    // Offsets: the announced counts, clipped to the references received.
    let mut offsets = Vec::with_capacity(n + 1);
    let mut sum: u64 = 0;
    for c in raw.edge_counts() {
        offsets.push(sum.min(m as u64) as u32);
        sum += c;
    }
    offsets.push(m as u32);
    raw.edge_count = Vec::new();
    if m > u32::MAX as usize {
        return Err("more references than a .gcdump file can hold".into());
    }
    s.node_types = std::mem::take(&mut raw.slot);
    s.node_sizes = std::mem::take(&mut raw.size);
    s.addresses = std::mem::take(&mut raw.addr);
    s.children = std::mem::take(&mut raw.edges_lo);
    s.child_offsets = offsets;
    for a in undefined_addrs {
        s.node_types.push(0);
        s.node_sizes.push(0);
        s.addresses.push(a);
        s.child_offsets.push(m as u32);
    }
    roots.append_to(&mut s);
    Ok((s, balance))
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
