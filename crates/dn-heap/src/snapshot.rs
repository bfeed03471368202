//! `dn-dump analyze FILE.gcdump`: the commands that make sense on a heap snapshot's object
//! graph (`dumpheap -stat/-type/-mt/-retained`, `dominators`, `suspects`, `gcroot`), on the
//! same graph engine and with the same result types as a core. A snapshot has objects, sizes,
//! types, references and roots, but no memory contents, no MethodTables and no generations:
//! the commands that need those say so in one line.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use dn_graph::NodeId;
use rustc_hash::FxHashMap;

use crate::commands::{
    dominators, first_addr, gcroot, heapstat, split_command, suspects, CommandOutput,
    DominatorsOptions, DumpHeap, DumpHeapOptions, DumpHeapStat, GraphSession, HeapObjectRow, Help,
    HelpRow, RunCommand, TypeStat, COMMANDS,
};
use crate::graph::ObjectGraph;
use crate::heap::Runtime;
use crate::roots::{RootDetail, RootRecord};

/// The commands a snapshot answers (the rest need memory contents).
const SNAPSHOT_COMMANDS: &[&str] = &[
    "dumpheap",
    "dominators",
    "suspects",
    "gcroot",
    "help",
    "exit",
];

/// True if `path` holds a `.gcdump` (FastSerialization) file rather than an ELF core.
pub fn is_snapshot(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].windows(17).any(|w| w == b"FastSerialization")
}

/// An analysis session over a heap snapshot.
pub struct SnapshotSession {
    /// The process the snapshot was taken of, as the file records it.
    pub pid: Option<u32>,
    graph: Arc<ObjectGraph>,
    /// Type index -> name (with the module in brackets when the file gives it).
    names: Vec<String>,
    pub cancel: Arc<AtomicBool>,
}

impl SnapshotSession {
    /// Reads the file and builds its graph.
    pub fn open(path: &Path) -> anyhow::Result<SnapshotSession> {
        let snap = dn_gcdump::read::read_file(path)?;
        let sg = dn_gcdump::graph::to_heap_graph(&snap)
            .with_context(|| format!("cannot build the heap graph of {}", path.display()))?;
        let mut graph = sg.graph;
        let mut records = Vec::with_capacity(graph.roots.len());
        for (i, r) in graph.roots.iter_mut().enumerate() {
            // The root's tag is the pseudo node it hangs under ("[static var T.f]", ...).
            let pseudo = snap
                .node_types
                .get(r.tag as usize)
                .and_then(|&t| snap.types.get(t as usize))
                .map(|t| t.name.as_str())
                .unwrap_or("");
            // The runtime's event names a static by the type of the object it holds and the
            // field's name ("[static var HeldType.field]"), not by the class declaring it:
            // only the field's name is kept, so nothing reads as the wrong class.
            let held = snap
                .types
                .get(graph.nodes.type_index(r.node) as usize)
                .map(|t| t.name.as_str())
                .unwrap_or("");
            let detail = match pseudo
                .strip_prefix("[static var ")
                .and_then(|f| f.strip_suffix(']'))
            {
                Some(name) => RootDetail::Static {
                    field: name
                        .strip_prefix(held)
                        .and_then(|f| f.strip_prefix('.'))
                        .unwrap_or(name)
                        .to_string(),
                },
                None => RootDetail::None,
            };
            records.push(RootRecord {
                kind: r.kind,
                slot: 0,
                object: graph.nodes.address(r.node),
                interior: false,
                detail,
            });
            r.tag = u32::try_from(i).context("too many roots")?;
        }
        let mts = (0..sg.type_names.len() as u64).collect();
        let arrays = snap.types.iter().map(|t| t.name.ends_with("[]")).collect();
        let mut warnings = Vec::new();
        if sg.dropped > 0 {
            warnings.push(format!(
                "{} object(s) of the snapshot left out: a second object at the same address, or an unaligned address",
                sg.dropped
            ));
        }
        Ok(SnapshotSession {
            pid: u32::try_from(snap.meta.process_id).ok().filter(|&p| p != 0),
            graph: Arc::new(ObjectGraph::from_parts(
                graph, records, mts, arrays, warnings,
            )),
            names: sg.type_names,
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Runs one command line. `Ok(None)` for an empty line.
    pub fn execute(&self, line: &str) -> anyhow::Result<Option<Box<dyn CommandOutput>>> {
        let Some((cmd, args)) = split_command(line) else {
            return Ok(None);
        };
        self.cancel.store(false, Ordering::SeqCst);
        let out: Box<dyn CommandOutput> = match cmd.as_str() {
            "dumpheap" => {
                let o = DumpHeapOptions::parse(&args)?;
                if o.strings {
                    bail!("a heap snapshot has no string contents: dumpheap -strings needs a core dump (dn-dump collect)");
                }
                if o.gen.is_some() {
                    bail!("a heap snapshot does not record generations: dumpheap -gen needs a core dump (dn-dump collect)");
                }
                if o.stat {
                    Box::new(self.stat(&o)?)
                } else {
                    Box::new(self.list(&o)?)
                }
            }
            "dominators" => Box::new(dominators(self, &DominatorsOptions::parse(&args)?)?),
            "suspects" => Box::new(suspects(self, suspects::parse_threshold(&args)?)?),
            "gcroot" => {
                let addr = first_addr(&args, "gcroot ADDR")?;
                Box::new(gcroot::gcroot(self, addr, true)?)
            }
            "help" | "soshelp" | "?" => Box::new(Help {
                commands: COMMANDS
                    .iter()
                    .filter(|c| SNAPSHOT_COMMANDS.contains(&c.0))
                    .map(|&(name, help)| HelpRow { name, help })
                    .collect(),
            }),
            other if COMMANDS.iter().any(|c| c.0 == other) || is_alias(other) => bail!(
                "'{other}' needs the process's memory, which a heap snapshot does not have: take a core dump (dn-dump collect) for it; a snapshot answers {}",
                SNAPSHOT_COMMANDS[..4].join(", ")
            ),
            other => bail!("unknown command '{other}' (type 'help' for the list)"),
        };
        Ok(Some(out))
    }

    /// The objects passing `o`'s filters, in address order.
    fn filtered(&self, o: &DumpHeapOptions) -> anyhow::Result<Vec<NodeId>> {
        let g = &self.graph;
        let dom = if o.live || o.dead {
            Some(g.dominators(&self.cancel)?)
        } else {
            None
        };
        let wanted: Vec<bool> = (0..self.names.len())
            .map(|t| {
                o.type_substr
                    .as_deref()
                    .is_none_or(|sub| self.names[t].contains(sub))
                    && o.mt.is_none_or(|mt| mt == t as u64)
            })
            .collect();
        let mut out = Vec::new();
        for id in 0..g.graph.nodes.len() as NodeId {
            if id % 65_536 == 0 && self.is_cancelled() {
                bail!("cancelled");
            }
            let size = g.size(id);
            let keep = wanted[g.graph.nodes.type_index(id) as usize]
                && o.min.is_none_or(|m| size >= m)
                && o.max.is_none_or(|m| size <= m)
                && dom.as_ref().is_none_or(|d| d.is_reachable(id) == o.live);
            if keep {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Per-type rows of `ids`, in `dumpheap -stat`'s order.
    fn rows(&self, ids: &[NodeId]) -> (Vec<TypeStat>, u64, u64) {
        let g = &self.graph;
        let mut per_mt: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
        for &id in ids {
            let e = per_mt.entry(g.mt(id)).or_default();
            e.0 += 1;
            e.1 += g.size(id);
        }
        heapstat::stats_from(self, per_mt)
    }

    /// `dumpheap -stat` with `o`'s filters.
    pub fn stat(&self, o: &DumpHeapOptions) -> anyhow::Result<DumpHeapStat> {
        let ids = self.filtered(o)?;
        let (mut types, total_objects, total_bytes) = self.rows(&ids);
        if o.retained {
            let g = &self.graph;
            let dom = g.dominators(&self.cancel)?;
            let by_type = dom.retained_by_type(&g.graph, g.mts.len());
            for t in &mut types {
                t.retained = Some(by_type[t.mt as usize].min_retained);
            }
            if o.sort_retained {
                heapstat::sort_by_retained(&mut types);
            }
        }
        Ok(DumpHeapStat {
            types,
            total_objects,
            total_bytes,
            frozen_unreferenced: None,
            warnings: self.graph.warnings.clone(),
        })
    }

    fn list(&self, o: &DumpHeapOptions) -> anyhow::Result<DumpHeap> {
        let ids = self.filtered(o)?;
        let g = &self.graph;
        let objects = ids
            .iter()
            .map(|&id| HeapObjectRow {
                address: g.address(id),
                mt: g.mt(id),
                size: g.size(id),
                free: false,
            })
            .collect();
        let (types, total_objects, total_bytes) = self.rows(&ids);
        Ok(DumpHeap {
            objects,
            types,
            total_objects,
            total_bytes,
            short: o.short,
            frozen_unreferenced: None,
            warnings: self.graph.warnings.clone(),
        })
    }
}

/// A type's name without what only a snapshot adds: the module in brackets and the size
/// bucket (`System.Byte[] (Bytes > 1M)  [System.Private.CoreLib.dll]` -> `System.Byte[]`), and
/// with generic arguments written as a core writes them (`, ` between them); so that `diff`
/// matches a snapshot's types with a core's.
pub fn core_spelling(name: &str) -> String {
    let mut n = name;
    if let Some(i) = n.rfind("  [") {
        if n.ends_with(']') {
            n = &n[..i];
        }
    }
    if let Some(i) = n.rfind(" (Bytes > ") {
        if n.ends_with(')') {
            n = &n[..i];
        }
    }
    n.replace(", ", ",").replace(',', ", ")
}

/// SOS aliases of the commands that need memory.
fn is_alias(cmd: &str) -> bool {
    matches!(cmd, "do" | "da" | "fq" | "threads" | "dso")
}

impl GraphSession for SnapshotSession {
    fn graph(&self) -> anyhow::Result<Arc<ObjectGraph>> {
        Ok(self.graph.clone())
    }
    fn type_name(&self, mt: u64) -> String {
        usize::try_from(mt)
            .ok()
            .and_then(|i| self.names.get(i))
            .cloned()
            .unwrap_or_else(|| format!("<type {mt}>"))
    }
    fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }
    fn runtime(&self) -> Option<&Runtime> {
        None
    }
}

impl RunCommand for SnapshotSession {
    fn run_command(&self, line: &str) -> anyhow::Result<Option<Box<dyn CommandOutput>>> {
        self.execute(line)
    }
}
