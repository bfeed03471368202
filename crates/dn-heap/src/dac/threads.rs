//! Threads, GC handles and stack references through the DAC.

use super::*;

impl Dac {
    pub fn thread_store(&self) -> Result<ThreadStoreData> {
        let b = self.call_struct(self.sos, 3, "GetThreadStoreData", None, 0x38)?;
        Ok(ThreadStoreData {
            thread_count: le_u32(&b, 0) as i32,
            unstarted: le_u32(&b, 4) as i32,
            background: le_u32(&b, 8) as i32,
            pending: le_u32(&b, 12) as i32,
            dead: le_u32(&b, 16) as i32,
            first_thread: le_u64(&b, 0x18),
            finalizer_thread: le_u64(&b, 0x20),
            gc_thread: le_u64(&b, 0x28),
        })
    }

    pub fn thread_data(&self, thread: u64) -> Result<ThreadData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = super::iface::DacpThreadData::default();
        // SAFETY: GetThreadData(u64, *DacpThreadData).
        check("GetThreadData", unsafe {
            super::iface::call!(sos, get_thread_data, thread, &mut d)
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
        let sos12 = self.sos_n[12]?;
        let _g = lock();
        let (mut p, mut l) = (0u64, 0u64);
        // SAFETY: GetGlobalAllocationContext(u64* ptr, u64* limit).
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, *mut u64, *mut u64) -> HResult =
                sos12.slot(3);
            f(sos12.0, &mut p, &mut l)
        };
        (hr >= 0).then_some((p, l))
    }

    /// Handles of the given kinds.
    pub fn handles(&self, kinds: &[HandleKind]) -> Result<Vec<HandleData>> {
        let types: Vec<u32> = kinds.iter().map(|k| k.raw()).collect();
        let _g = lock();
        let mut e = std::ptr::null_mut();
        // SAFETY: GetHandleEnumForTypes(u32* types, u32 count, ISOSHandleEnum**).
        let hr = unsafe {
            let f: unsafe extern "system" fn(
                *mut c_void,
                *const u32,
                u32,
                *mut *mut c_void,
            ) -> HResult = self.sos.slot(62);
            f(self.sos.0, types.as_ptr(), types.len() as u32, &mut e)
        };
        check("GetHandleEnumForTypes", hr)?;
        let raw = drain_enum(ComPtr(e), 0x30);
        Ok(raw
            .chunks_exact(0x30)
            .map(|b| HandleData {
                handle: le_u64(b, 8),
                secondary: le_u64(b, 0x10),
                kind: HandleKind::from_raw(le_u32(b, 0x18)),
                strong: le_u32(b, 0x1C) != 0,
                ref_count: le_u32(b, 0x20),
            })
            .collect())
    }

    /// GC references found on a thread's stack.
    pub fn stack_refs(&self, os_tid: u32) -> Result<Vec<StackRef>> {
        let _g = lock();
        let mut e = std::ptr::null_mut();
        // SAFETY: GetStackReferences(u32 osThreadId, ISOSStackRefEnum**).
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u32, *mut *mut c_void) -> HResult =
                self.sos.slot(79);
            f(self.sos.0, os_tid, &mut e)
        };
        check("GetStackReferences", hr)?;
        let raw = drain_enum(ComPtr(e), 0x38);
        Ok(raw
            .chunks_exact(0x38)
            .map(|b| StackRef {
                has_register: le_u32(b, 0) != 0,
                register: le_u32(b, 4) as i32,
                offset: le_u32(b, 8) as i32,
                address: le_u64(b, 0x10),
                object: le_u64(b, 0x18),
                flags: le_u32(b, 0x20),
                source_type: le_u32(b, 0x24),
                source: le_u64(b, 0x28),
                stack_pointer: le_u64(b, 0x30),
            })
            .collect())
    }

    pub fn register_name(&self, reg: i32) -> Result<String> {
        let _g = lock();
        // SAFETY: GetRegisterName(int reg, u32 count, u16* buf, u32* needed).
        unsafe {
            let f: unsafe extern "system" fn(*mut c_void, i32, u32, *mut u16, *mut u32) -> HResult =
                self.sos.slot(80);
            let mut buf = [0u16; 64];
            let mut needed = 0u32;
            check(
                "GetRegisterName",
                f(
                    self.sos.0,
                    reg,
                    buf.len() as u32,
                    buf.as_mut_ptr(),
                    &mut needed,
                ),
            )?;
            let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
            Ok(String::from_utf16_lossy(&buf[..end]))
        }
    }
}
