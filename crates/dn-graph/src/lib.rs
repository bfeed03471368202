//! A compact object graph for managed-heap analysis, with the dominator tree and what it gives:
//! retained sizes, per-type minimum retained sizes, MAT-style leak suspects and accumulation
//! points, and shortest paths from GC roots.
//!
//! Layout, all flat arrays indexed by a dense [`NodeId`] assigned in address order:
//!
//! * [`Nodes`]: address (`u64`), type index (`u32`), size (`u32`, sizes of 4 GiB and more in a
//!   small side table) and an [`address index`](Nodes::id_of) (a bitmap with one bit per 8-byte
//!   slot plus a rank directory, about 1/64 of the heap bytes), i.e. about 17 bytes per object.
//! * [`Edges`]: outgoing references as CSR, `u32` offsets while the edge count fits in 32 bits
//!   (else `u64`), plus one `u32` per reference.
//! * [`Dominators`]: immediate dominator (`u32`) and retained size (`u32`, 4 GiB and more in a
//!   side table) per object.
//!
//! Every traversal is iterative: a chain of 10^7 objects is fine.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod addresses;
mod bitset;
mod csr;
mod dfs;
mod dominators;
mod error;
mod graph;
mod index;
mod lt;
mod mark;
mod nodes;
mod paths;
mod rank;
mod suspects;
mod tree;
mod types;

pub use bitset::BitSet;
pub use csr::Edges;
pub use dominators::{Algorithm, ComputeStats, Dominators, Idom};
pub use error::{Cancelled, GraphError};
pub use graph::HeapGraph;
pub use mark::mark_reachable;
pub use nodes::{Nodes, NodesBuilder};
pub use suspects::{suspects, Suspect, SuspectKind, MAX_GROUP_MEMBERS};
pub use types::{TypeHistogramRow, TypeRetained};

/// Dense object number, `0..n`, in increasing address order.
pub type NodeId = u32;

/// The most objects a graph can hold (two `u32` values are reserved as sentinels).
pub const MAX_NODES: usize = (u32::MAX - 2) as usize;

/// Why an object is a GC root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RootKind {
    /// A strong GC handle.
    StrongHandle,
    /// A pinned GC handle.
    PinnedHandle,
    /// An async-pinned GC handle (overlapped I/O buffers).
    AsyncPinnedHandle,
    /// A ref-counted handle (COM interop).
    RefCountedHandle,
    /// A sized-ref handle.
    SizedRefHandle,
    /// A static field.
    Static,
    /// A thread-static field.
    ThreadStatic,
    /// A stack slot or register of a live thread.
    Stack,
    /// The finalization queue (objects awaiting finalization).
    Finalizer,
    /// Anything else.
    Other,
}

impl RootKind {
    /// Human-readable name, as printed next to a root.
    pub fn name(self) -> &'static str {
        match self {
            RootKind::StrongHandle => "strong handle",
            RootKind::PinnedHandle => "pinned handle",
            RootKind::AsyncPinnedHandle => "async pinned handle",
            RootKind::RefCountedHandle => "ref counted handle",
            RootKind::SizedRefHandle => "sized ref handle",
            RootKind::Static => "static",
            RootKind::ThreadStatic => "thread static",
            RootKind::Stack => "stack",
            RootKind::Finalizer => "finalizer root",
            RootKind::Other => "other",
        }
    }

    /// True for finalization-queue roots, which root paths avoid when another root exists.
    pub fn is_finalizer(self) -> bool {
        matches!(self, RootKind::Finalizer)
    }
}

/// One root record. Several records may name the same node ("a node rooted twice"); the
/// dominator tree sees one edge from the virtual root to it, path queries see every record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root {
    /// The rooted object.
    pub node: NodeId,
    /// Why it is rooted.
    pub kind: RootKind,
    /// The caller's index into its own side table (slot address, field name, thread...).
    pub tag: u32,
}
