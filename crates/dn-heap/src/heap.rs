//! The GC heap model (runtime -> heaps -> segments/regions -> objects), built from a handful of
//! DAC calls; objects are walked by reading target memory directly, with one DAC call per
//! distinct MethodTable.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use crate::dac::{self, Dac, DataTarget, RuntimeModule, UsefulGlobals};
use crate::dump::CoreDump;
use crate::memory::MemorySource;

/// Largest object copied out of the target to read its references (bigger ones are read in
/// place from a core file's mapping).
const MAX_COPIED_OBJECT: u64 = 1 << 30;

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

#[derive(Debug, Clone)]
enum GcDesc {
    Series(Vec<(u64, i64)>),
    ValSeries { start: u64, items: Vec<(u32, u32)> },
}

/// An object found by the walk.
#[derive(Debug, Clone, Copy)]
pub struct HeapObject {
    pub address: u64,
    pub mt: u64,
    /// Unaligned size as SOS reports it.
    pub size: u64,
    /// Index into [`GcHeap::segments`].
    pub segment: usize,
    /// Dense number of `mt` within one [`GcHeap::walk`] (0, 1, 2, ... in order of first
    /// appearance): lets callers aggregate per type in a vector instead of hashing every object.
    pub type_index: u32,
}

/// Why a heap walk stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("cancelled")]
    Cancelled,
}

/// A problem met while walking (the walk goes on with the next segment).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WalkIssue {
    pub segment: u64,
    pub address: u64,
    pub message: String,
}

/// Per-walk state: problems met, and the MethodTables met so far.
#[derive(Default)]
struct WalkState {
    issues: Vec<WalkIssue>,
    types: WalkTypes,
}

/// Slots of [`WalkTypes`]'s direct-mapped cache (a power of two).
const TYPE_CACHE_SLOTS: usize = 256;

/// What the walk needs per MethodTable: (base size, component size, dense index). A small
/// direct-mapped cache sits in front of the hash map (and in front of the shared cache's lock):
/// a heap has few hot types, and the walk looks one up whenever the type changes.
struct WalkTypes {
    cache: Box<[(u64, WalkType); TYPE_CACHE_SLOTS]>,
    by_mt: FxHashMap<u64, WalkType>,
}

#[derive(Debug, Clone, Copy, Default)]
struct WalkType {
    base_size: u32,
    component_size: u32,
    index: u32,
}

impl Default for WalkTypes {
    fn default() -> Self {
        WalkTypes {
            // MethodTable 0 is never valid, so an empty slot never matches.
            cache: Box::new([(0, WalkType::default()); TYPE_CACHE_SLOTS]),
            by_mt: FxHashMap::default(),
        }
    }
}

impl WalkTypes {
    /// The facts for `mt`, or `None` if the DAC rejects it.
    #[inline(always)]
    fn get(&mut self, heap: &GcHeap, dac: &Dac, mt: u64) -> Option<WalkType> {
        // Fibonacci hashing: MethodTables are 8-aligned and close together.
        let slot = (mt.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % TYPE_CACHE_SLOTS;
        let (cached_mt, t) = self.cache[slot];
        if cached_mt == mt && mt != 0 {
            return Some(t);
        }
        let t = self.get_slow(heap, dac, mt)?;
        self.cache[slot] = (mt, t);
        Some(t)
    }

    #[inline(never)]
    fn get_slow(&mut self, heap: &GcHeap, dac: &Dac, mt: u64) -> Option<WalkType> {
        if let Some(&t) = self.by_mt.get(&mt) {
            return Some(t);
        }
        let info = heap.mt_info(dac, mt)?;
        let t = WalkType {
            base_size: info.base_size,
            component_size: info.component_size,
            index: self.by_mt.len() as u32,
        };
        self.by_mt.insert(mt, t);
        Some(t)
    }
}

/// The runtime of a dump: the DAC plus the heap model.
pub struct Runtime {
    pub target: Arc<dyn DataTarget>,
    pub dac: Dac,
    pub module: RuntimeModule,
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
    /// Opens a core file and the matching DAC (or `dac_path`).
    pub fn open_core(core: &Path, dac_path: Option<&Path>) -> anyhow::Result<Runtime> {
        let dump = CoreDump::open(core)?;
        // A cut-off core explains most failures below; say so in the error.
        let truncated = dump
            .truncation()
            .map(|(want, have)| format!(" (the core file is truncated: {have} of {want} bytes)"));
        let with_cause = |e: anyhow::Error| match &truncated {
            Some(t) => anyhow::anyhow!("{e:#}{t}"),
            None => e,
        };
        Runtime::open(Arc::new(dump), dac_path).map_err(with_cause)
    }

    /// Holds the threads of a running process (ptrace; they run on when the `Runtime` is
    /// dropped, or if this process dies) and opens its runtime. Drop it on the thread that
    /// attached: ptrace belongs to that thread.
    pub fn attach(pid: u32, dac_path: Option<&Path>) -> anyhow::Result<Runtime> {
        let process = dac::LiveProcess::attach(pid)?;
        Runtime::open(Arc::new(process), dac_path)
    }

    /// Opens the runtime of any target (a core file, or a stopped process behind the same
    /// trait) with the matching DAC (or `dac_path`).
    pub fn open(target: Arc<dyn DataTarget>, dac_path: Option<&Path>) -> anyhow::Result<Runtime> {
        let module = dac::runtime_module(&*target)?;
        let dac_file = dac::find_dac(&module, dac_path)?;
        let dac = Dac::open(&dac_file, target.clone(), module.base)?;
        let heap = GcHeap::load(&dac, target.clone())
            .map_err(|e| anyhow::anyhow!("cannot read the GC heap layout: {e}"))?;
        Ok(Runtime {
            target,
            dac,
            module,
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
        })
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

    /// Size of the object at `addr` with MethodTable info `info` (unaligned).
    pub fn object_size(&self, addr: u64, info: &MtInfo) -> u64 {
        let mut size = info.base_size as u64;
        if info.component_size != 0 {
            let n = self.mem.read_u32(addr + 8).unwrap_or(0) as u64;
            size += n * info.component_size as u64;
        }
        size.max(MIN_OBJECT_SIZE)
    }

    /// Walks every object of every segment, in segment order. `cancel` is polled regularly.
    pub fn walk(
        &self,
        dac: &Dac,
        cancel: Option<&AtomicBool>,
        mut f: impl FnMut(&HeapObject) -> ControlFlow<()>,
    ) -> Result<Vec<WalkIssue>, WalkError> {
        let mut state = WalkState::default();
        for (si, seg) in self.segments.iter().enumerate() {
            if let ControlFlow::Break(()) =
                self.walk_segment(dac, si, seg, cancel, &mut f, &mut state)?
            {
                break;
            }
        }
        Ok(state.issues)
    }

    fn walk_segment(
        &self,
        dac: &Dac,
        si: usize,
        seg: &Segment,
        cancel: Option<&AtomicBool>,
        f: &mut impl FnMut(&HeapObject) -> ControlFlow<()>,
        state: &mut WalkState,
    ) -> Result<ControlFlow<()>, WalkError> {
        if seg.end <= seg.start {
            return Ok(ControlFlow::Continue(()));
        }
        let len = (seg.end - seg.start) as usize;
        // One loop per way of reading, so the per-object path has no dispatch.
        match self.mem.slice(seg.start, len) {
            Some(bytes) => self.walk_objects(
                dac,
                si,
                seg,
                cancel,
                f,
                state,
                MappedBytes {
                    start: seg.start,
                    bytes,
                },
            ),
            None => self.walk_objects(
                dac,
                si,
                seg,
                cancel,
                f,
                state,
                WindowBytes {
                    mem: &*self.mem,
                    start: seg.start,
                    buf: Vec::new(),
                },
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn walk_objects(
        &self,
        dac: &Dac,
        si: usize,
        seg: &Segment,
        cancel: Option<&AtomicBool>,
        f: &mut impl FnMut(&HeapObject) -> ControlFlow<()>,
        state: &mut WalkState,
        mut src: impl SegmentBytes,
    ) -> Result<ControlFlow<()>, WalkError> {
        let WalkState { issues, types } = state;
        // Allocation contexts inside this segment, in address order; the walk only moves up,
        // so one cursor finds each (`next_ctx` is where the next one starts).
        let contexts: &[(u64, u64)] = if seg.kind.has_alloc_contexts() {
            let first = self.alloc_context_list.partition_point(|c| c.0 < seg.start);
            &self.alloc_context_list[first..]
        } else {
            &[]
        };
        let mut ctx_i = 0usize;
        let mut next_ctx = contexts.first().map_or(u64::MAX, |c| c.0);
        // MethodTable of the previous object and its facts: runs of one type are common (and
        // this compare is cheaper than the cache on the walk's critical path).
        let mut last_mt = u64::MAX; // never a MethodTable (those are 8-aligned)
        let mut last = WalkType::default();
        let mut addr = seg.start;
        let mut count = 0u32;
        while addr + 8 <= seg.end {
            count = count.wrapping_add(1);
            if count & 0xFFFF == 0 && cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(WalkError::Cancelled);
            }
            let (word, length) = match src.header(addr, seg.end) {
                Header::Full(w, n) => (w, Some(n)),
                Header::MethodTableOnly(w) => (w, None),
                Header::Missing => {
                    issues.push(WalkIssue {
                        segment: seg.address,
                        address: addr,
                        message: "memory not in the target; rest of the segment skipped".into(),
                    });
                    break;
                }
            };
            let mt = word & !7;
            if mt != last_mt {
                let Some(t) = types.get(self, dac, mt) else {
                    issues.push(WalkIssue {
                        segment: seg.address,
                        address: addr,
                        message: format!(
                            "invalid MethodTable 0x{mt:x}; rest of the segment skipped"
                        ),
                    });
                    break;
                };
                last_mt = mt;
                last = t;
            }
            let mut size = last.base_size as u64;
            if last.component_size != 0 {
                let Some(n) = length else { break };
                size += n as u64 * last.component_size as u64;
            }
            let size = size.max(MIN_OBJECT_SIZE);
            if let ControlFlow::Break(()) = f(&HeapObject {
                address: addr,
                mt,
                size,
                segment: si,
                type_index: last.index,
            }) {
                return Ok(ControlFlow::Break(()));
            }
            let mut next = addr + align8(size);
            if next >= next_ctx {
                // Skip allocation contexts starting exactly here (as a lookup by address would).
                while let Some(&(p, limit)) = contexts.get(ctx_i) {
                    if p < next {
                        ctx_i += 1;
                    } else if p == next {
                        next = limit + align8(MIN_OBJECT_SIZE);
                        ctx_i += 1;
                    } else {
                        break;
                    }
                }
                next_ctx = contexts.get(ctx_i).map_or(u64::MAX, |c| c.0);
            }
            if next <= addr || next >= seg.end {
                break;
            }
            addr = next;
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The segment holding `addr`, if any.
    pub fn segment_of(&self, addr: u64) -> Option<(usize, &Segment)> {
        self.segments
            .iter()
            .enumerate()
            .find(|(_, s)| s.contains(addr))
    }

    /// Whether `addr` is the start of an object (walks its segment).
    pub fn find_object(&self, dac: &Dac, addr: u64) -> Option<HeapObject> {
        // Objects do not overlap, so the one containing `addr` is the only candidate.
        self.containing_object(dac, addr)
            .filter(|o| o.address == addr)
    }

    /// The object containing `addr` (for interior pointers).
    pub fn containing_object(&self, dac: &Dac, addr: u64) -> Option<HeapObject> {
        let (si, seg) = self.segment_of(addr)?;
        let mut found = None;
        let _ = self.walk_segment(
            dac,
            si,
            seg,
            None,
            &mut |o: &HeapObject| {
                if o.address > addr {
                    return ControlFlow::Break(());
                }
                if addr < o.address + o.size.max(8) {
                    found = Some(*o);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
            &mut WalkState::default(),
        );
        found
    }

    /// Reads an object's header quickly (MT + size) without walking: for references.
    pub fn object_at(&self, dac: &Dac, addr: u64) -> Option<(Arc<MtInfo>, u64)> {
        // MethodTable and length in one read (zero-copy from a core file).
        let mut head = [0u8; 12];
        match self.mem.slice(addr, 12) {
            Some(s) => head.copy_from_slice(s),
            None => {
                self.mem.read_exact(addr, &mut head[..8]).ok()?;
                let _ = self.mem.read_exact(addr + 8, &mut head[8..]);
            }
        }
        let mt = u64::from_le_bytes(head[..8].try_into().unwrap()) & !7;
        let info = self.mt_info(dac, mt)?;
        let mut size = info.base_size as u64;
        if info.component_size != 0 {
            let n = u32::from_le_bytes(head[8..12].try_into().unwrap()) as u64;
            size += n * info.component_size as u64;
        }
        Some((info, size.max(MIN_OBJECT_SIZE)))
    }

    /// The references held by an object, from its GCDesc; calls `f(slot_address, target)`
    /// for each non-null reference slot.
    pub fn for_each_reference(
        &self,
        addr: u64,
        info: &MtInfo,
        size: u64,
        mut f: impl FnMut(u64, u64),
    ) {
        if !info.contains_pointers {
            return;
        }
        let desc = info.gcdesc.get_or_init(|| read_gcdesc(&*self.mem, info.mt));
        let Some(desc) = desc else { return };
        let Ok(data) = self.object_bytes(addr, size) else {
            return;
        };
        let slot = |off: u64| -> Option<u64> {
            let o = off as usize;
            data.get(o..o + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        match desc {
            GcDesc::Series(series) => {
                for &(start, adjust) in series {
                    let run = adjust + size as i64;
                    if run <= 0 {
                        continue;
                    }
                    let mut o = start;
                    while o < start + run as u64 {
                        match slot(o) {
                            Some(v) if v != 0 => f(addr + o, v),
                            Some(_) => {}
                            None => break,
                        }
                        o += 8;
                    }
                }
            }
            GcDesc::ValSeries { start, items } => {
                let mut o = *start;
                while o + 8 < size {
                    let before = o;
                    for &(nptrs, skip) in items {
                        for _ in 0..nptrs {
                            if let Some(v) = slot(o) {
                                if v != 0 {
                                    f(addr + o, v);
                                }
                            }
                            o += 8;
                        }
                        o += skip as u64;
                    }
                    if o == before {
                        break;
                    }
                }
            }
        }
    }

    fn object_bytes(
        &self,
        addr: u64,
        size: u64,
    ) -> crate::memory::Result<std::borrow::Cow<'_, [u8]>> {
        let len = size as usize;
        if let Some(s) = self.mem.slice(addr, len) {
            return Ok(std::borrow::Cow::Borrowed(s));
        }
        // A garbage "object" can claim any length: never allocate gigabytes for one.
        if size > MAX_COPIED_OBJECT {
            return Err(crate::memory::MemoryError::NotAvailable { addr });
        }
        Ok(std::borrow::Cow::Owned(self.mem.read_vec(addr, len)?))
    }
}

/// The start of an object as read from the target.
enum Header {
    /// MethodTable word and the 4 bytes after it (the length of arrays and strings).
    Full(u64, u32),
    /// Only the MethodTable word is readable.
    MethodTableOnly(u64),
    /// Not even that.
    Missing,
}

/// A segment's bytes: in place from a mapped core ([`MappedBytes`]), or read through a window
/// otherwise ([`WindowBytes`]: a live process; a segment can be gigabytes).
trait SegmentBytes {
    /// The header at `addr` (`end` is the end of the segment).
    fn header(&mut self, addr: u64, end: u64) -> Header;
}

struct MappedBytes<'a> {
    start: u64,
    bytes: &'a [u8],
}

impl SegmentBytes for MappedBytes<'_> {
    #[inline(always)]
    fn header(&mut self, addr: u64, _end: u64) -> Header {
        let o = (addr - self.start) as usize;
        prefetch(self.bytes.as_ptr().wrapping_add(o + PREFETCH_AHEAD));
        header_of(self.bytes.get(o..).unwrap_or(&[]))
    }
}

/// How far ahead of the object being read the walk asks for memory. Each object's address
/// depends on the previous object's size, so without a hint every cache miss stalls the walk.
const PREFETCH_AHEAD: usize = 2048;

/// Hints the CPU to load the cache line at `p` (any address: a prefetch never faults).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it reads nothing the program sees and cannot fault,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

struct WindowBytes<'a> {
    mem: &'a dyn DataTarget,
    start: u64,
    buf: Vec<u8>,
}

const WINDOW: usize = 8 << 20;

impl SegmentBytes for WindowBytes<'_> {
    fn header(&mut self, addr: u64, end: u64) -> Header {
        if addr < self.start || addr + 12 > self.start + self.buf.len() as u64 {
            let want = ((end - addr) as usize).min(WINDOW);
            self.buf.resize(want, 0);
            let got = read_prefix(self.mem, addr, &mut self.buf);
            self.buf.truncate(got);
            self.start = addr;
        }
        let o = (addr - self.start) as usize;
        header_of(self.buf.get(o..).unwrap_or(&[]))
    }
}

/// The header at the start of `b` (readable bytes from the object on).
#[inline(always)]
fn header_of(b: &[u8]) -> Header {
    match b.first_chunk::<12>() {
        Some(h) => Header::Full(
            u64::from_le_bytes(h[..8].try_into().unwrap()),
            u32::from_le_bytes(h[8..].try_into().unwrap()),
        ),
        None => match b.first_chunk::<8>() {
            Some(h) => Header::MethodTableOnly(u64::from_le_bytes(*h)),
            None => Header::Missing,
        },
    }
}

fn read_gcdesc(mem: &dyn DataTarget, mt: u64) -> Option<GcDesc> {
    let num = mem.read_i64(mt - 8).ok()?;
    if num > 0 && num < 100_000 {
        let n = num as u64;
        let block = mem
            .read_vec(mt - (1 + 2 * n) * 8, ((1 + 2 * n) * 8) as usize)
            .ok()?;
        let at = |back: u64| -> u64 {
            let o = block.len() - (back * 8) as usize;
            u64::from_le_bytes(block[o..o + 8].try_into().unwrap())
        };
        let series = (0..n)
            .map(|i| (at(2 * i + 2), at(2 * i + 3) as i64))
            .collect();
        Some(GcDesc::Series(series))
    } else if num < 0 && num > -100_000 {
        let n = (-num) as u64;
        let block = mem
            .read_vec(mt - (2 + n) * 8, ((2 + n) * 8) as usize)
            .ok()?;
        let at = |back: u64| -> u64 {
            let o = block.len() - (back * 8) as usize;
            u64::from_le_bytes(block[o..o + 8].try_into().unwrap())
        };
        let start = at(2);
        let items = (0..n)
            .map(|j| {
                let v = at(3 + j);
                (v as u32, (v >> 32) as u32)
            })
            .collect();
        Some(GcDesc::ValSeries { start, items })
    } else {
        None
    }
}

/// Reads as many leading bytes as the target has.
fn read_prefix(mem: &dyn DataTarget, addr: u64, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match mem.read(addr + done as u64, &mut buf[done..]) {
            Ok(n) if n > 0 => done += n,
            _ => break,
        }
    }
    done
}

pub fn align8(v: u64) -> u64 {
    (v + 7) & !7
}

/// A set of object addresses: one bit per 8 heap bytes for addresses inside the GC's segments
/// (far cheaper than hashing millions of addresses), a hash set for anything else.
pub struct ObjectSet {
    /// (start, end, first bit) of each segment, sorted by start.
    ranges: Vec<(u64, u64, usize)>,
    bits: Vec<u64>,
    other: rustc_hash::FxHashSet<u64>,
}

impl ObjectSet {
    pub fn new(heap: &GcHeap) -> ObjectSet {
        let mut segs: Vec<(u64, u64)> = heap
            .segments
            .iter()
            .filter(|s| s.end > s.start)
            .map(|s| (s.start, s.end))
            .collect();
        segs.sort();
        let mut ranges = Vec::with_capacity(segs.len());
        let mut next_bit = 0usize;
        for (start, end) in segs {
            ranges.push((start, end, next_bit));
            next_bit += ((end - start) / 8) as usize + 1;
        }
        ObjectSet {
            ranges,
            bits: vec![0; next_bit.div_ceil(64)],
            other: Default::default(),
        }
    }

    fn bit(&self, addr: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= addr);
        let (start, end, first) = *self.ranges.get(i.checked_sub(1)?)?;
        (addr < end && addr % 8 == 0).then(|| first + ((addr - start) / 8) as usize)
    }

    /// Adds `addr`; false if it was already there.
    pub fn insert(&mut self, addr: u64) -> bool {
        match self.bit(addr) {
            Some(b) => {
                let (w, m) = (b / 64, 1u64 << (b % 64));
                let was = self.bits[w] & m != 0;
                self.bits[w] |= m;
                !was
            }
            None => self.other.insert(addr),
        }
    }

    pub fn remove(&mut self, addr: u64) {
        match self.bit(addr) {
            Some(b) => self.bits[b / 64] &= !(1u64 << (b % 64)),
            None => {
                self.other.remove(&addr);
            }
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        match self.bit(addr) {
            Some(b) => self.bits[b / 64] & (1u64 << (b % 64)) != 0,
            None => self.other.contains(&addr),
        }
    }
}
