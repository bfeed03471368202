//! The GC heap layout through the DAC: globals, heaps, generations, segments, allocation contexts.

use super::iface::{
    call, ComRef, DacGuard, DacpGcHeapData, DacpGcHeapDetails, DacpGenerationData,
    DacpHeapSegmentData, DacpUsefulGlobalsData, SosDac8,
};
use super::*;

/// The most entries of a generation table or fill-pointer list the DAC may size for us.
const MAX_GC_ENTRIES: u32 = 64;

impl From<DacpGenerationData> for GenerationData {
    fn from(g: DacpGenerationData) -> Self {
        GenerationData {
            start_segment: g.start_segment,
            allocation_start: g.allocation_start,
            alloc_context_ptr: g.alloc_context_ptr,
            alloc_context_limit: g.alloc_context_limit,
        }
    }
}

impl Dac {
    fn sos8_ref<'g>(&self, g: &'g DacGuard) -> Result<ComRef<'g, SosDac8>> {
        let raw = self.sos_n(8, "ISOSDacInterface8")?;
        // SAFETY: `raw` is a live ISOSDacInterface8 for the Dac's lifetime.
        unsafe { ComRef::add_ref(g, raw.0) }.ok_or(DacError::Unsupported("ISOSDacInterface8"))
    }

    pub fn useful_globals(&self) -> Result<UsefulGlobals> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpUsefulGlobalsData::default();
        // SAFETY: GetUsefulGlobals(*DacpUsefulGlobalsData).
        check("GetUsefulGlobals", unsafe {
            call!(sos, get_useful_globals, &mut d)
        })?;
        Ok(UsefulGlobals {
            array_mt: d.array_method_table,
            string_mt: d.string_method_table,
            object_mt: d.object_method_table,
            exception_mt: d.exception_method_table,
            free_mt: d.free_method_table,
        })
    }

    pub fn gc_heap_data(&self) -> Result<GcHeapData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpGcHeapData::default();
        // SAFETY: GetGCHeapData(*DacpGcHeapData).
        check("GetGCHeapData", unsafe {
            call!(sos, get_gc_heap_data, &mut d)
        })?;
        Ok(GcHeapData {
            server: d.server_mode != 0,
            structures_valid: d.gc_structures_valid != 0,
            heap_count: d.heap_count,
            max_generation: d.max_generation,
        })
    }

    /// Addresses of the server GC heaps (exactly `count` of them).
    pub fn gc_heap_list(&self, count: u32) -> Result<Vec<u64>> {
        // The count comes from the target: a damaged one must not become a huge allocation.
        const MAX_HEAPS: u32 = 4096;
        if count > MAX_HEAPS {
            return Err(DacError::TooMany {
                what: "GC heaps",
                count: count.into(),
                max: MAX_HEAPS.into(),
            });
        }
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut v = vec![0u64; count as usize];
        let mut needed = 0u32;
        // SAFETY: GetGCHeapList(count, u64[count], *needed) writes at most `count`.
        check("GetGCHeapList", unsafe {
            call!(sos, get_gc_heap_list, count, v.as_mut_ptr(), &mut needed)
        })?;
        Ok(v)
    }

    /// Heap details: `Some(heap)` for a server heap, `None` for the workstation heap.
    pub fn heap_details(&self, heap: Option<u64>) -> Result<HeapDetails> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpGcHeapDetails::default();
        match heap {
            // SAFETY: GetGCHeapDetails(u64, *DacpGcHeapDetails).
            Some(h) => check("GetGCHeapDetails", unsafe {
                call!(sos, get_gc_heap_details, h, &mut d)
            })?,
            // SAFETY: GetGCHeapStaticData(*DacpGcHeapDetails).
            None => check("GetGCHeapStaticData", unsafe {
                call!(sos, get_gc_heap_static_data, &mut d)
            })?,
        }
        Ok(HeapDetails {
            heap_addr: d.heap_addr,
            alloc_allocated: d.alloc_allocated,
            generations: d.generation_table.iter().map(|&g| g.into()).collect(),
            ephemeral_heap_segment: d.ephemeral_heap_segment,
            finalization_fill_pointers: d.finalization_fill_pointers.to_vec(),
            lowest_address: d.lowest_address,
            highest_address: d.highest_address,
        })
    }

    /// ISOSDacInterface8 generation table (5 entries with POH); unsupported before .NET 5.
    pub fn generation_table(&self, heap: Option<u64>) -> Result<Vec<GenerationData>> {
        let g = lock();
        let sos8 = self.sos8_ref(&g)?;
        let table = sized_gc_list("GetGenerationTable", |count, out, needed| match heap {
            // SAFETY: GetGenerationTableSvr(heap, count, DacpGenerationData[count] or null,
            // *needed).
            Some(h) => unsafe { call!(sos8, get_generation_table_svr, h, count, out, needed) },
            // SAFETY: GetGenerationTable(count, DacpGenerationData[count] or null, *needed).
            None => unsafe { call!(sos8, get_generation_table, count, out, needed) },
        })?;
        Ok(table.into_iter().map(GenerationData::from).collect())
    }

    /// ISOSDacInterface8 finalization fill pointers.
    pub fn fill_pointers(&self, heap: Option<u64>) -> Result<Vec<u64>> {
        let g = lock();
        let sos8 = self.sos8_ref(&g)?;
        sized_gc_list(
            "GetFinalizationFillPointers",
            |count, out, needed| match heap {
                // SAFETY: GetFinalizationFillPointersSvr(heap, count, u64[count] or null,
                // *needed).
                Some(h) => unsafe {
                    call!(
                        sos8,
                        get_finalization_fill_pointers_svr,
                        h,
                        count,
                        out,
                        needed
                    )
                },
                // SAFETY: GetFinalizationFillPointers(count, u64[count] or null, *needed).
                None => unsafe { call!(sos8, get_finalization_fill_pointers, count, out, needed) },
            },
        )
    }

    pub fn segment_data(&self, seg: u64) -> Result<SegmentData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpHeapSegmentData::default();
        // SAFETY: GetHeapSegmentData(u64, *DacpHeapSegmentData).
        check("GetHeapSegmentData", unsafe {
            call!(sos, get_heap_segment_data, seg, &mut d)
        })?;
        Ok(SegmentData {
            segment_addr: d.segment_addr,
            allocated: d.allocated,
            committed: d.committed,
            reserved: d.reserved,
            used: d.used,
            mem: d.mem,
            next: d.next,
            gc_heap: d.gc_heap,
            high_alloc_mark: d.high_alloc_mark,
            flags: d.flags,
        })
    }
}

/// The ISOSDacInterface8 sizing protocol: ask with count 0, check the count, then fill.
fn sized_gc_list<T: Default + Clone>(
    call_name: &'static str,
    fill: impl Fn(u32, *mut T, &mut u32) -> HResult,
) -> Result<Vec<T>> {
    let mut needed = 0u32;
    check(call_name, fill(0, std::ptr::null_mut(), &mut needed))?;
    if needed > MAX_GC_ENTRIES {
        return Err(DacError::TooMany {
            what: "generation entries",
            count: needed.into(),
            max: MAX_GC_ENTRIES.into(),
        });
    }
    let mut v = vec![T::default(); needed as usize];
    let mut got = needed;
    check(call_name, fill(needed, v.as_mut_ptr(), &mut got))?;
    v.truncate(got.min(needed) as usize);
    Ok(v)
}
