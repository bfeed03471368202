//! The GC heap layout through the DAC: globals, heaps, generations, segments, allocation contexts.

use super::*;

impl Dac {
    pub fn useful_globals(&self) -> Result<UsefulGlobals> {
        let b = self.call_struct(self.sos, 70, "GetUsefulGlobals", None, 0x28)?;
        Ok(UsefulGlobals {
            array_mt: le_u64(&b, 0)?,
            string_mt: le_u64(&b, 8)?,
            object_mt: le_u64(&b, 0x10)?,
            exception_mt: le_u64(&b, 0x18)?,
            free_mt: le_u64(&b, 0x20)?,
        })
    }

    pub fn gc_heap_data(&self) -> Result<GcHeapData> {
        let b = self.call_struct(self.sos, 46, "GetGCHeapData", None, 0x10)?;
        Ok(GcHeapData {
            server: le_u32(&b, 0)? != 0,
            structures_valid: le_u32(&b, 4)? != 0,
            heap_count: le_u32(&b, 8)?,
            max_generation: le_u32(&b, 12)?,
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
        let _g = lock();
        let mut v = vec![0u64; count as usize];
        let mut needed = 0u32;
        // SAFETY: GetGCHeapList(u32 count, u64* heaps, u32* needed).
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u32, *mut u64, *mut u32) -> HResult =
                self.sos.slot(47);
            f(self.sos.0, count, v.as_mut_ptr(), &mut needed)
        };
        check("GetGCHeapList", hr)?;
        Ok(v)
    }

    /// Heap details: `Some(heap)` for a server heap, `None` for the workstation heap.
    pub fn heap_details(&self, heap: Option<u64>) -> Result<HeapDetails> {
        let b = match heap {
            Some(h) => self.call_struct(self.sos, 48, "GetGCHeapDetails", Some(h), 0x120)?,
            None => self.call_struct(self.sos, 49, "GetGCHeapStaticData", None, 0x120)?,
        };
        let generation = |i: usize| GenerationData::parse(b.get(0x48 + i * 32..).unwrap_or(&[]));
        Ok(HeapDetails {
            heap_addr: le_u64(&b, 0)?,
            alloc_allocated: le_u64(&b, 8)?,
            generations: (0..4).map(generation).collect::<Result<_>>()?,
            ephemeral_heap_segment: le_u64(&b, 0xC8)?,
            finalization_fill_pointers: (0..7)
                .map(|i| le_u64(&b, 0xD0 + i * 8))
                .collect::<std::result::Result<_, _>>()?,
            lowest_address: le_u64(&b, 0x108)?,
            highest_address: le_u64(&b, 0x110)?,
        })
    }

    /// ISOSDacInterface8 generation table (5 entries with POH); `None` before .NET 5.
    pub fn generation_table(&self, heap: Option<u64>) -> Result<Vec<GenerationData>> {
        let sos8 = self.sos_n(8, "ISOSDacInterface8")?;
        let raw = self.sized_u64_array(
            sos8,
            heap,
            if heap.is_some() { 6 } else { 4 },
            "GetGenerationTable",
            4,
        )?;
        let bytes: Vec<u8> = raw.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.chunks_exact(32).map(GenerationData::parse).collect()
    }

    /// ISOSDacInterface8 finalization fill pointers.
    pub fn fill_pointers(&self, heap: Option<u64>) -> Result<Vec<u64>> {
        let sos8 = self.sos_n(8, "ISOSDacInterface8")?;
        self.sized_u64_array(
            sos8,
            heap,
            if heap.is_some() { 7 } else { 5 },
            "GetFinalizationFillPointers",
            1,
        )
    }

    /// The ISOSDacInterface8 sizing protocol: ask with count 0, then fill. `unit` is how many
    /// u64 one element takes.
    fn sized_u64_array(
        &self,
        obj: ComPtr,
        heap: Option<u64>,
        idx: usize,
        name: &'static str,
        unit: usize,
    ) -> Result<Vec<u64>> {
        let _g = lock();
        // SAFETY: wks (u32 count, T* buf, u32* needed) or svr (u64 heap, u32, T*, u32*).
        unsafe {
            let call = |count: u32, buf: *mut u64, needed: &mut u32| -> HResult {
                match heap {
                    Some(h) => {
                        let f: unsafe extern "system" fn(
                            *mut c_void,
                            u64,
                            u32,
                            *mut u64,
                            *mut u32,
                        ) -> HResult = obj.slot(idx);
                        f(obj.0, h, count, buf, needed)
                    }
                    None => {
                        let f: unsafe extern "system" fn(
                            *mut c_void,
                            u32,
                            *mut u64,
                            *mut u32,
                        ) -> HResult = obj.slot(idx);
                        f(obj.0, count, buf, needed)
                    }
                }
            };
            let mut needed = 0u32;
            check(name, call(0, std::ptr::null_mut(), &mut needed))?;
            let mut v = vec![0u64; needed as usize * unit];
            let mut n2 = 0u32;
            check(name, call(needed, v.as_mut_ptr(), &mut n2))?;
            Ok(v)
        }
    }

    pub fn segment_data(&self, seg: u64) -> Result<SegmentData> {
        let b = self.call_struct(self.sos, 50, "GetHeapSegmentData", Some(seg), 0x58)?;
        Ok(SegmentData {
            segment_addr: le_u64(&b, 0)?,
            allocated: le_u64(&b, 8)?,
            committed: le_u64(&b, 0x10)?,
            reserved: le_u64(&b, 0x18)?,
            used: le_u64(&b, 0x20)?,
            mem: le_u64(&b, 0x28)?,
            next: le_u64(&b, 0x30)?,
            gc_heap: le_u64(&b, 0x38)?,
            high_alloc_mark: le_u64(&b, 0x40)?,
            flags: le_u64(&b, 0x48)?,
        })
    }
}
