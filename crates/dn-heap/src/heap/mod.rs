//! The GC heap model (runtime -> heaps -> segments/regions -> objects), built from a handful of
//! DAC calls; objects are walked by reading target memory directly, with one DAC call per
//! distinct MethodTable.

mod refs;
mod walk;

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use crate::dac::{self, Dac, DataTarget, RuntimeModule, UsefulGlobals};
use crate::dump::CoreDump;

use refs::GcDesc;
pub use refs::RefsRead;
pub use walk::{HeapObject, WalkError, WalkIssue};

/// Minimum object size on x64 (MethodTable, header, one pointer-sized field).
pub const MIN_OBJECT_SIZE: u64 = 24;

/// Where a segment sits in the GC's generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    Gen0,
    Gen1,
    Gen2,
    /// A pre-regions ephemeral segment (gen2 below gen1's start, then gen1, then gen0).
    Ephemeral,
    Large,
    Pinned,
    Frozen,
}

impl SegmentKind {
    /// Segments whose objects may be followed by an allocation context.
    fn has_alloc_contexts(self) -> bool {
        matches!(
            self,
            SegmentKind::Gen0 | SegmentKind::Gen1 | SegmentKind::Gen2 | SegmentKind::Ephemeral
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::Gen0 => "gen0",
            SegmentKind::Gen1 => "gen1",
            SegmentKind::Gen2 => "gen2",
            SegmentKind::Ephemeral => "ephemeral",
            SegmentKind::Large => "loh",
            SegmentKind::Pinned => "poh",
            SegmentKind::Frozen => "frozen",
        }
    }
}

/// Generation of an object, as `dumpheap -gen` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    Gen0,
    Gen1,
    Gen2,
    Loh,
    Poh,
    Frozen,
}

impl Generation {
    pub fn parse(s: &str) -> Option<Generation> {
        Some(match s.to_ascii_lowercase().as_str() {
            "0" | "gen0" => Generation::Gen0,
            "1" | "gen1" => Generation::Gen1,
            "2" | "gen2" => Generation::Gen2,
            "3" | "loh" | "large" => Generation::Loh,
            "4" | "poh" | "pinned" => Generation::Poh,
            "foh" | "frozen" => Generation::Frozen,
            _ => return None,
        })
    }
}

/// A segment (pre-.NET 7) or region of one GC heap.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Segment {
    pub address: u64,
    /// First object.
    pub start: u64,
    /// End of the allocated objects.
    pub end: u64,
    pub committed: u64,
    pub reserved: u64,
    pub kind: SegmentKind,
    /// Index of the owning heap.
    pub heap: usize,
    /// For an ephemeral segment: where gen1 and gen0 start.
    pub gen1_start: u64,
    pub gen0_start: u64,
}

impl Segment {
    pub fn generation_of(&self, addr: u64) -> Generation {
        match self.kind {
            SegmentKind::Gen0 => Generation::Gen0,
            SegmentKind::Gen1 => Generation::Gen1,
            SegmentKind::Gen2 => Generation::Gen2,
            SegmentKind::Large => Generation::Loh,
            SegmentKind::Pinned => Generation::Poh,
            SegmentKind::Frozen => Generation::Frozen,
            SegmentKind::Ephemeral => {
                if self.gen0_start != 0 && addr >= self.gen0_start {
                    Generation::Gen0
                } else if self.gen1_start != 0 && addr >= self.gen1_start {
                    Generation::Gen1
                } else {
                    Generation::Gen2
                }
            }
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr < self.end
    }
}

/// One GC heap (workstation GC has one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubHeap {
    pub index: usize,
    /// 0 for the workstation heap.
    pub address: u64,
    pub alloc_allocated: u64,
    pub ephemeral_segment: u64,
    pub generations: Vec<dac::GenerationData>,
    pub fill_pointers: Vec<u64>,
}

/// What the walker needs to know about a MethodTable.
#[derive(Debug)]
pub struct MtInfo {
    pub mt: u64,
    /// Base size including a string's terminator.
    pub base_size: u32,
    pub component_size: u32,
    pub contains_pointers: bool,
    pub is_free: bool,
    pub is_string: bool,
    pub data: dac::MethodTableData,
    /// GCDesc: `(offset, run_adjust)` series (run bytes = run_adjust + object size) or
    /// val-series; read from memory below the MethodTable on first use.
    gcdesc: std::sync::OnceLock<Option<GcDesc>>,
}

/// The runtime of a dump: the DAC plus the heap model.
pub struct Runtime {
    pub target: Arc<dyn DataTarget>,
    pub dac: Dac,
    pub module: RuntimeModule,
    /// Where the DAC came from, and the candidates passed over.
    pub dac_found: dac::FoundDac,
    pub heap: GcHeap,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("module", &self.module)
            .field("dac", &self.dac.path())
            .field("segments", &self.heap.segments.len())
            .finish()
    }
}

impl Runtime {
    /// Opens a core file and the matching DAC (or `dac_path`), searching the default places.
    pub fn open_core(core: &Path, dac_path: Option<&Path>) -> anyhow::Result<Runtime> {
        Runtime::open_core_with(core, &dac::DacSearch::with_dac(dac_path))
    }

    /// Like [`Runtime::open_core`], for callers that need the GC heap: a dump without it is an
    /// error.
    pub fn open_core_with_heap(core: &Path, dac_path: Option<&Path>) -> anyhow::Result<Runtime> {
        let rt = Runtime::open_core(core, dac_path)?;
        if let Some(why) = &rt.heap.unavailable {
            anyhow::bail!("{why}");
        }
        Ok(rt)
    }

    /// Opens a core file and the DAC `search` finds.
    pub fn open_core_with(core: &Path, search: &dac::DacSearch) -> anyhow::Result<Runtime> {
        let dump = CoreDump::open(core)?;
        // A cut-off core explains most failures below; say so in the error.
        let truncated = dump
            .truncation()
            .map(|(want, have)| format!(" (the core file is truncated: {have} of {want} bytes)"));
        let with_cause = |e: anyhow::Error| match &truncated {
            Some(t) => anyhow::anyhow!("{e:#}{t}"),
            None => e,
        };
        Runtime::open(Arc::new(dump), search).map_err(with_cause)
    }

    /// Holds the threads of a running process (ptrace; they run on when the `Runtime` is
    /// dropped, or if this process dies) and opens its runtime. Drop it on the thread that
    /// attached: ptrace belongs to that thread.
    pub fn attach(pid: u32, search: &dac::DacSearch) -> anyhow::Result<Runtime> {
        let process = dac::LiveProcess::attach(pid)?;
        Runtime::open(Arc::new(process), search)
    }

    /// Opens the runtime of any target (a core file, or a stopped process behind the same
    /// trait) with the DAC `search` finds.
    pub fn open(target: Arc<dyn DataTarget>, search: &dac::DacSearch) -> anyhow::Result<Runtime> {
        let mut module = dac::runtime_module(&*target)?;
        let dac_found = dac::find_dac(&module, search)?;
        module.complete_version(&dac_found);
        let dac = Dac::open(&dac_found.path, target.clone(), module.base)?;
        // A dump without the GC heap (mini, triage) still answers the commands that need only
        // the runtime; the heap commands say what is missing.
        let heap = GcHeap::load(&dac, target.clone()).unwrap_or_else(|e| {
            GcHeap::unavailable(
                target.clone(),
                format!(
                    "the GC heap is not in this dump (a mini or triage dump holds none): reading its layout failed ({e})"
                ),
            )
        });
        Ok(Runtime {
            target,
            dac,
            module,
            dac_found,
            heap,
        })
    }
}

/// The GC heap: sub-heaps, segments, allocation contexts and a MethodTable cache.
pub struct GcHeap {
    pub server: bool,
    pub structures_valid: bool,
    pub regions: bool,
    pub globals: UsefulGlobals,
    pub heaps: Vec<SubHeap>,
    pub segments: Vec<Segment>,
    /// alloc_ptr -> alloc_limit of every live allocation context.
    pub alloc_contexts: FxHashMap<u64, u64>,
    /// The same, sorted by address (the walk meets them in that order).
    alloc_context_list: Vec<(u64, u64)>,
    mem: Arc<dyn DataTarget>,
    mts: RwLock<FxHashMap<u64, Option<Arc<MtInfo>>>>,
    names: RwLock<FxHashMap<u64, String>>,
    /// Why the GC heap could not be read (a dump without it); `None` for a readable heap.
    pub unavailable: Option<String>,
}

impl GcHeap {
    pub fn load(dac: &Dac, mem: Arc<dyn DataTarget>) -> dac::Result<GcHeap> {
        let globals = dac.useful_globals()?;
        let data = dac.gc_heap_data()?;
        let mut heaps = Vec::new();
        let addrs: Vec<Option<u64>> = if data.server {
            dac.gc_heap_list(data.heap_count)?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None]
        };
        for (index, addr) in addrs.into_iter().enumerate() {
            let d = dac.heap_details(addr)?;
            let generations = dac
                .generation_table(addr)
                .unwrap_or_else(|_| d.generations.clone());
            let fill_pointers = dac
                .fill_pointers(addr)
                .unwrap_or_else(|_| d.finalization_fill_pointers[..6].to_vec());
            heaps.push(SubHeap {
                index,
                address: addr.unwrap_or(0),
                alloc_allocated: d.alloc_allocated,
                ephemeral_segment: d.ephemeral_heap_segment,
                generations,
                fill_pointers,
            });
        }
        let regions = heaps.first().is_some_and(|h| {
            h.generations.len() > 1
                && h.generations[0].start_segment != h.generations[1].start_segment
        });

        let mut segments = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        for h in &heaps {
            // ClrMD's order: LOH, gen2, (regions: gen1, gen0), POH.
            let lists: &[usize] = if regions {
                &[3, 2, 1, 0, 4]
            } else {
                &[3, 2, 4]
            };
            for &g in lists {
                let Some(gen) = h.generations.get(g) else {
                    continue;
                };
                let mut a = gen.start_segment;
                let mut n = 0;
                while a != 0 && n < 1_000_000 && seen.insert(a) {
                    n += 1;
                    let Ok(s) = dac.segment_data(a) else { break };
                    let end = if a == h.ephemeral_segment {
                        h.alloc_allocated
                    } else {
                        s.allocated
                    };
                    let kind = if s.flags & 1 != 0 {
                        SegmentKind::Frozen
                    } else {
                        match g {
                            3 => SegmentKind::Large,
                            4 => SegmentKind::Pinned,
                            0 => SegmentKind::Gen0,
                            1 => SegmentKind::Gen1,
                            _ if !regions && a == h.ephemeral_segment => SegmentKind::Ephemeral,
                            _ => SegmentKind::Gen2,
                        }
                    };
                    let (gen1_start, gen0_start) = if kind == SegmentKind::Ephemeral {
                        (
                            h.generations[1].allocation_start,
                            h.generations[0].allocation_start,
                        )
                    } else {
                        (0, 0)
                    };
                    segments.push(Segment {
                        address: a,
                        start: s.mem,
                        end: end.max(s.mem),
                        committed: s.committed,
                        reserved: s.reserved,
                        kind,
                        heap: h.index,
                        gen1_start,
                        gen0_start,
                    });
                    a = s.next;
                }
            }
        }

        let mut alloc_contexts = FxHashMap::default();
        let mut add = |p: u64, l: u64| {
            if p != 0 && p < l {
                alloc_contexts.insert(p, l);
            }
        };
        if let Ok(threads) = dac.threads() {
            for t in threads {
                add(t.alloc_context_ptr, t.alloc_context_limit);
            }
        }
        for h in &heaps {
            if let Some(g0) = h.generations.first() {
                add(g0.alloc_context_ptr, g0.alloc_context_limit);
            }
        }
        if let Some((p, l)) = dac.global_alloc_context() {
            add(p, l);
        }

        let mut alloc_context_list: Vec<(u64, u64)> =
            alloc_contexts.iter().map(|(&p, &l)| (p, l)).collect();
        alloc_context_list.sort_unstable();

        Ok(GcHeap {
            server: data.server,
            structures_valid: data.structures_valid,
            regions,
            globals,
            heaps,
            segments,
            alloc_contexts,
            alloc_context_list,
            mem,
            mts: RwLock::new(FxHashMap::default()),
            names: RwLock::new(FxHashMap::default()),
            unavailable: None,
        })
    }

    /// A heap that cannot be read (a mini or triage dump holds no GC heap): empty, with the
    /// reason, so that the commands that do not need it still run.
    pub fn unavailable(mem: Arc<dyn DataTarget>, reason: String) -> GcHeap {
        GcHeap {
            server: false,
            structures_valid: false,
            regions: false,
            globals: UsefulGlobals::default(),
            heaps: Vec::new(),
            segments: Vec::new(),
            alloc_contexts: FxHashMap::default(),
            alloc_context_list: Vec::new(),
            mem,
            mts: RwLock::new(FxHashMap::default()),
            names: RwLock::new(FxHashMap::default()),
            unavailable: Some(reason),
        }
    }

    pub fn memory(&self) -> &dyn DataTarget {
        &*self.mem
    }

    /// MethodTable facts, cached; `None` if the DAC rejects `mt`.
    pub fn mt_info(&self, dac: &Dac, mt: u64) -> Option<Arc<MtInfo>> {
        if let Some(v) = self.mts.read().unwrap_or_else(|e| e.into_inner()).get(&mt) {
            return v.clone();
        }
        let info = if mt == 0 {
            None
        } else {
            dac.method_table_data(mt).ok().map(|d| {
                let is_string = mt == self.globals.string_mt;
                Arc::new(MtInfo {
                    mt,
                    // The DAC reports System.String's base size without the terminator.
                    base_size: d.base_size + if is_string { d.component_size } else { 0 },
                    component_size: d.component_size,
                    contains_pointers: d.contains_pointers,
                    is_free: d.is_free || mt == self.globals.free_mt,
                    is_string,
                    data: d,
                    gcdesc: std::sync::OnceLock::new(),
                })
            })
        };
        self.mts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mt, info.clone());
        info
    }

    /// Type name in SOS/ClrMD style (generic arguments as `<...>`), cached.
    pub fn type_name(&self, dac: &Dac, mt: u64) -> String {
        if let Some(n) = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&mt)
        {
            return n.clone();
        }
        let name = if mt == self.globals.free_mt {
            "Free".to_string()
        } else {
            match dac.method_table_name(mt) {
                Ok(n) if !n.is_empty() => crate::names::clrmd_style(&n),
                _ => format!("<unknown_type_{mt:x}>"),
            }
        };
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mt, name.clone());
        name
    }

    /// The segment holding `addr`, if any.
    pub fn segment_of(&self, addr: u64) -> Option<(usize, &Segment)> {
        self.segments
            .iter()
            .enumerate()
            .find(|(_, s)| s.contains(addr))
    }
}

pub fn align8(v: u64) -> u64 {
    (v + 7) & !7
}
