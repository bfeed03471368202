//! GC heap snapshots over EventPipe, compatible with dotnet-gcdump: collect one from a live
//! runtime through its diagnostics socket (no ptrace), write and read the `.gcdump` format,
//! report per-type counts and sizes, and hand the snapshot to the heap-graph engine.
//!
//! | module | one job |
//! |---|---|
//! | `events` | payload layouts of the heap events |
//! | `loss` | lost events from sequence numbers and batch indexes |
//! | `builder` | stream → compact raw heap |
//! | `names` | type names and size buckets as dotnet-gcdump shows them |
//! | `convert` | raw heap → file graph with the root pseudo nodes |
//! | `snapshot` | the file graph's columns, compressed ints |
//! | `fastser` | FastSerialization primitives |
//! | `write` / `read` | the `.gcdump` layout |
//! | `map` | the file's bytes, memory-mapped (the crate's one `unsafe`) |
//! | `report` | the per-type table |
//! | `graph` | snapshot → `dn_graph::HeapGraph` with typed roots |
//! | `collect` | the session, timeouts, Ctrl-C, the atomic file |
//! | `cli` | arguments and output of `dn-dump gcdump` |

#![deny(unsafe_code)]

pub mod builder;
pub mod cli;
pub mod collect;
pub mod convert;
pub mod error;
pub mod events;
pub mod fastser;
pub mod graph;
pub mod loss;
pub mod map;
pub mod names;
pub mod read;
pub mod report;
pub mod snapshot;
pub mod write;

pub use error::FormatError;
pub use graph::{to_heap_graph, SnapshotGraph};
pub use read::{read_file, read_gcdump};
pub use snapshot::Snapshot;
pub use write::{write_file_atomic, write_gcdump};
