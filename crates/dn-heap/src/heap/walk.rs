//! The object walk: every object of every segment, read straight from target memory, with one
//! DAC call per distinct MethodTable.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

use rustc_hash::FxHashMap;

use super::{align8, GcHeap, Segment, MIN_OBJECT_SIZE};
use crate::dac::{Dac, DataTarget};

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

impl GcHeap {
    /// Walks every object of every segment, in segment order. `cancel` is polled regularly.
    pub fn walk(
        &self,
        dac: &Dac,
        cancel: Option<&AtomicBool>,
        f: impl FnMut(&HeapObject) -> ControlFlow<()>,
    ) -> Result<Vec<WalkIssue>, WalkError> {
        self.walk_segments(dac, 0..self.segments.len(), cancel, f)
    }

    /// Walks every object in address order (segments sorted by start): what a graph with ids in
    /// address order needs.
    pub fn walk_in_address_order(
        &self,
        dac: &Dac,
        cancel: Option<&AtomicBool>,
        f: impl FnMut(&HeapObject) -> ControlFlow<()>,
    ) -> Result<Vec<WalkIssue>, WalkError> {
        let mut order: Vec<usize> = (0..self.segments.len()).collect();
        order.sort_by_key(|&i| self.segments[i].start);
        self.walk_segments(dac, order.into_iter(), cancel, f)
    }

    /// Walks the objects of the given segments (indexes into [`GcHeap::segments`]), in that
    /// order.
    pub fn walk_segments(
        &self,
        dac: &Dac,
        order: impl Iterator<Item = usize>,
        cancel: Option<&AtomicBool>,
        mut f: impl FnMut(&HeapObject) -> ControlFlow<()>,
    ) -> Result<Vec<WalkIssue>, WalkError> {
        let mut state = WalkState::default();
        for si in order {
            // Also between segments: with regions most hold fewer objects than the in-segment
            // polling interval.
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(WalkError::Cancelled);
            }
            let seg = &self.segments[si];
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
                    let why = format!("invalid MethodTable 0x{mt:x}");
                    match resync(&mut src, types, seg, addr, &why, issues) {
                        Some(a) => {
                            addr = a;
                            continue;
                        }
                        None => break,
                    }
                };
                last_mt = mt;
                last = t;
            }
            let mut size = last.base_size as u64;
            if last.component_size != 0 {
                let Some(n) = length else {
                    issues.push(WalkIssue {
                        segment: seg.address,
                        address: addr,
                        message: "array length not in the target; rest of the segment skipped"
                            .into(),
                    });
                    break;
                };
                size += n as u64 * last.component_size as u64;
            }
            let size = size.max(MIN_OBJECT_SIZE);
            // An object cannot reach past its segment: a garbage length (or MethodTable) would
            // end the walk early with wrong totals, so say so and find the next object.
            let end = addr.checked_add(align8(size));
            if end.is_none_or(|e| e > seg.end) {
                let why = format!(
                    "object of type 0x{mt:x} claims {size} bytes, past the end of its segment (0x{:x})",
                    seg.end
                );
                match resync(&mut src, types, seg, addr, &why, issues) {
                    Some(a) => {
                        addr = a;
                        last_mt = u64::MAX;
                        continue;
                    }
                    None => break,
                }
            }
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
}

/// Most bytes scanned for the next object after a corrupt one.
const MAX_RESYNC_BYTES: u64 = 64 << 20;

/// After an object the walk cannot size or step over (at `bad`): records the problem and looks
/// for the next 8-aligned address that starts with a MethodTable this walk already met and whose
/// object fits in the segment. `None` if there is none within reach (the rest of the segment is
/// then skipped, and the issue says so).
fn resync(
    src: &mut impl SegmentBytes,
    types: &WalkTypes,
    seg: &Segment,
    bad: u64,
    why: &str,
    issues: &mut Vec<WalkIssue>,
) -> Option<u64> {
    let limit = seg.end.min(bad.saturating_add(MAX_RESYNC_BYTES));
    let mut a = bad + 8;
    while a + 8 <= limit {
        let (word, length) = match src.header(a, seg.end) {
            Header::Full(w, n) => (w, Some(n)),
            Header::MethodTableOnly(w) => (w, None),
            Header::Missing => break,
        };
        if let Some(t) = types.by_mt.get(&(word & !7)).filter(|_| word & !7 != 0) {
            let mut size = t.base_size as u64;
            if t.component_size != 0 {
                size += length.unwrap_or(u32::MAX) as u64 * t.component_size as u64;
            }
            if a.saturating_add(align8(size.max(MIN_OBJECT_SIZE))) <= seg.end {
                issues.push(WalkIssue {
                    segment: seg.address,
                    address: bad,
                    message: format!("{why}; {} bytes skipped, resumed at 0x{a:x}", a - bad),
                });
                return Some(a);
            }
        }
        a += 8;
    }
    issues.push(WalkIssue {
        segment: seg.address,
        address: bad,
        message: format!(
            "{why}; rest of the segment skipped (0x{bad:x}..0x{:x})",
            seg.end
        ),
    });
    None
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
