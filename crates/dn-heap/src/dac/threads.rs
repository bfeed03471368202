//! Threads, GC handles and stack references through the DAC.

use super::iface::*;
use super::*;

impl Dac {
    pub fn thread_store(&self) -> Result<ThreadStoreData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpThreadStoreData::default();
        // SAFETY: GetThreadStoreData(*DacpThreadStoreData).
        check("GetThreadStoreData", unsafe {
            call!(sos, get_thread_store_data, &mut d)
        })?;
        Ok(ThreadStoreData {
            thread_count: d.thread_count,
            unstarted: d.unstarted_thread_count,
            background: d.background_thread_count,
            pending: d.pending_thread_count,
            dead: d.dead_thread_count,
            first_thread: d.first_thread,
            finalizer_thread: d.finalizer_thread,
            gc_thread: d.gc_thread,
        })
    }

    pub fn thread_data(&self, thread: u64) -> Result<ThreadData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpThreadData::default();
        // SAFETY: GetThreadData(u64, *DacpThreadData).
        check("GetThreadData", unsafe {
            call!(sos, get_thread_data, thread, &mut d)
        })?;
        Ok(ThreadData {
            address: thread,
            managed_id: d.cor_thread_id as u32,
            os_id: d.os_thread_id,
            state: d.state as u32,
            preemptive_gc_disabled: d.preemptive_gc_disabled != 0,
            alloc_context_ptr: d.alloc_context_ptr,
            alloc_context_limit: d.alloc_context_limit,
            domain: d.domain,
            frame: d.frame,
            lock_count: d.lock_count,
            first_nested_exception: d.first_nested_exception,
            last_thrown_object_handle: d.last_thrown_object_handle,
            next_thread: d.next_thread,
        })
    }

    /// All managed threads, following the thread store's list.
    pub fn threads(&self) -> Result<Vec<ThreadData>> {
        let store = self.thread_store()?;
        let mut out = Vec::new();
        let mut a = store.first_thread;
        while a != 0 && out.len() < 100_000 {
            let t = self.thread_data(a)?;
            a = t.next_thread;
            out.push(t);
        }
        Ok(out)
    }

    /// ISOSDacInterface12 global allocation context, if the runtime has one.
    pub fn global_alloc_context(&self) -> Option<(u64, u64)> {
        let raw = self.sos_n[12]?;
        let g = lock();
        // SAFETY: `raw` is a live ISOSDacInterface12 for the Dac's lifetime.
        let sos12 = unsafe { ComRef::<SosDac12>::add_ref(&g, raw.0) }?;
        let (mut p, mut l) = (0u64, 0u64);
        // SAFETY: GetGlobalAllocationContext(u64* ptr, u64* limit).
        let hr = unsafe { call!(sos12, get_global_allocation_context, &mut p, &mut l) };
        (hr >= 0).then_some((p, l))
    }

    /// Handles of the given kinds.
    pub fn handles(&self, kinds: &[HandleKind]) -> Result<Vec<HandleData>> {
        let types: Vec<u32> = kinds.iter().map(|k| k.raw()).collect();
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut e = std::ptr::null_mut();
        // SAFETY: GetHandleEnumForTypes(u32* types, u32 count, ISOSHandleEnum**).
        let hr = unsafe {
            call!(
                sos,
                get_handle_enum_for_types,
                types.as_ptr(),
                types.len() as u32,
                &mut e
            )
        };
        check("GetHandleEnumForTypes", hr)?;
        // SAFETY: on success an owned ISOSHandleEnum.
        let Some(e) = (unsafe { ComRef::<SosEnum>::from_raw(&g, e) }) else {
            return Ok(Vec::new());
        };
        Ok(drain::<SosHandleData>(&e)
            .iter()
            .map(|h| HandleData {
                handle: h.handle,
                secondary: h.secondary,
                kind: HandleKind::from_raw(h.handle_type),
                strong: h.strong_reference != 0,
                ref_count: h.ref_count,
            })
            .collect())
    }

    /// GC references found on a thread's stack, walked in this process (see
    /// [`Dac::stack_refs_isolated`] for the walk that survives a DAC crash).
    pub fn stack_refs(&self, os_tid: u32) -> Result<Vec<StackRef>> {
        self.stack_refs_locked(&lock(), os_tid)
    }

    /// [`Dac::stack_refs`] under a DAC lock the caller holds.
    pub(crate) fn stack_refs_locked(&self, g: &DacGuard, os_tid: u32) -> Result<Vec<StackRef>> {
        let sos = self.sos_ref(g);
        let mut e = std::ptr::null_mut();
        // SAFETY: GetStackReferences(u32 osThreadId, ISOSStackRefEnum**).
        let hr = unsafe { call!(sos, get_stack_references, os_tid, &mut e) };
        check("GetStackReferences", hr)?;
        // SAFETY: on success an owned ISOSStackRefEnum.
        let Some(e) = (unsafe { ComRef::<SosEnum>::from_raw(g, e) }) else {
            return Ok(Vec::new());
        };
        Ok(drain::<SosStackRefData>(&e)
            .iter()
            .map(|r| StackRef {
                has_register: r.has_register_information != 0,
                register: r.register,
                offset: r.offset,
                address: r.address,
                object: r.object,
                flags: r.flags,
                source_type: r.source_type,
                source: r.source,
                stack_pointer: r.stack_pointer,
            })
            .collect())
    }

    pub fn register_name(&self, reg: i32) -> Result<String> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut buf = [0u16; 64];
        let mut needed = 0u32;
        // SAFETY: GetRegisterName(int reg, u32 count, u16* buf, u32* needed) with a buffer of
        // `count` units (a buffer shorter than the name is written past on Linux: 64 is more
        // than any register name).
        check("GetRegisterName", unsafe {
            call!(
                sos,
                get_register_name,
                reg,
                buf.len() as u32,
                buf.as_mut_ptr(),
                &mut needed
            )
        })?;
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        Ok(String::from_utf16_lossy(&buf[..end]))
    }
}
