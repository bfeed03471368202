//! Exceptions and locks through the typed ISOSDacInterface: a thread's last thrown and nested
//! exceptions, an exception object's fields, a method's name and place for a stack-trace
//! element, the sync block table.

use super::iface::*;
use super::*;

/// Where a code address is: method, module file name, offset into the method's code.
#[derive(Debug, Clone, Default)]
pub struct CodePlace {
    pub method: Option<String>,
    pub module: Option<String>,
    pub offset: Option<u64>,
}

/// One SyncBlock (`syncblk`).
#[derive(Debug, Clone, Copy)]
pub struct SyncBlock {
    pub index: u32,
    pub object: u64,
    pub free: bool,
    pub address: u64,
    pub monitor_held: u32,
    pub recursion: u32,
    /// The owner's runtime `Thread*` (0 none).
    pub holding_thread: u64,
    pub additional_threads: u32,
}

impl Dac {
    /// An exception object's fields (ISOSDacInterface2::GetObjectExceptionData).
    pub fn exception_object(&self, obj: u64) -> Result<DacpExceptionObjectData> {
        let raw = self.sos_n(2, "ISOSDacInterface2")?;
        let g = lock();
        // SAFETY: `raw` is a live ISOSDacInterface2 for the Dac's lifetime.
        let sos2 = unsafe { ComRef::<SosDac2>::add_ref(&g, raw.0) }
            .ok_or(DacError::Unsupported("ISOSDacInterface2"))?;
        let mut d = DacpExceptionObjectData::default();
        // SAFETY: GetObjectExceptionData(u64, *DacpExceptionObjectData).
        check("GetObjectExceptionData", unsafe {
            call!(sos2, get_object_exception_data, obj, &mut d)
        })?;
        Ok(d)
    }

    /// The exception of a nested-exception record and the next record (0 at the end).
    pub fn nested_exception(&self, ex_info: u64) -> Result<(u64, u64)> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let (mut obj, mut next) = (0u64, 0u64);
        // SAFETY: GetNestedExceptionData(u64, *u64 object, *u64 next).
        check("GetNestedExceptionData", unsafe {
            call!(sos, get_nested_exception_data, ex_info, &mut obj, &mut next)
        })?;
        Ok((obj, next))
    }

    /// Method, module and offset of `ip` in the method `md` (a stack-trace element); the offset
    /// is from the method's native code start.
    pub fn code_place(&self, md: u64, ip: u64) -> CodePlace {
        if md == 0 {
            return CodePlace::default();
        }
        let g = lock();
        let sos = self.sos_ref(&g);
        let native = self
            .method_desc_raw(&sos, md)
            .map_or(0, |d| d.native_code_addr);
        let offset = (native != 0 && ip >= native).then(|| ip - native);
        CodePlace {
            method: self.method_name(&sos, md),
            module: self.module_file_of(&sos, md),
            offset,
        }
    }

    /// Every SyncBlock, 1..count (`GetSyncBlockData`).
    pub fn sync_blocks(&self) -> Result<Vec<SyncBlock>> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let get = |n: u32| -> Result<DacpSyncBlockData> {
            let mut d = DacpSyncBlockData::default();
            // SAFETY: GetSyncBlockData(u32 index, *DacpSyncBlockData).
            check("GetSyncBlockData", unsafe {
                call!(sos, get_sync_block_data, n, &mut d)
            })?;
            Ok(d)
        };
        let count = get(1).map(|d| d.sync_block_count).unwrap_or(0);
        // A corrupt count must not make us ask millions of times.
        let count = count.min(1 << 22);
        let mut out = Vec::new();
        for n in 1..=count {
            let d = get(n)?;
            out.push(SyncBlock {
                index: n,
                object: d.object,
                free: d.free != 0,
                address: d.sync_block_pointer,
                monitor_held: d.monitor_held,
                recursion: d.recursion,
                holding_thread: d.holding_thread,
                additional_threads: d.additional_thread_count,
            });
        }
        Ok(out)
    }
}
