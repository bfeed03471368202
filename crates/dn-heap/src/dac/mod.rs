//! Hosting the runtime's data access component (`libmscordaccore.so`).
//!
//! This module is the only place with FFI. The DAC is loaded once per path and never unloaded
//! (its PAL registers a TLS destructor that would crash after `dlclose`). Every call into any
//! DAC goes through one process-wide lock: the DAC swaps process-global state on each entry.

mod com;
mod live;
pub mod locate;
mod target;

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;

pub use com::metadata_from_pe_file;
use com::{guid, ComPtr, Guid, HResult, Shared};
pub use live::LiveProcess;
pub use locate::{find_dac, runtime_module, RuntimeModule};
pub use target::DataTarget;

use crate::memory::{le_u32, le_u64};

const IID_IXCLR_DATA_PROCESS: Guid = guid("5c552ab6-fc09-4cb3-8e36-22fa03c798b7");
const IID_ISOS_DAC: [Guid; 16] = [
    guid("436f00f2-b42a-4b9f-870c-e73db66ae930"),
    guid("A16026EC-96F4-40BA-87FB-5575986FB7AF"),
    guid("B08C5CDC-FD8A-49C5-AB38-5FEEF35235B4"),
    guid("74B9D34C-A612-4B07-93DD-5462178FCE11"),
    guid("127d6abe-6c86-4e48-8e7b-220781c58101"),
    guid("11206399-4B66-4EDB-98EA-85654E59AD45"),
    guid("c1020dde-fe98-4536-a53b-f35a74c327eb"),
    guid("c12f35a9-e55c-4520-a894-b3dc5165dfce"),
    guid("4eca42d8-7e7b-4c8a-a116-7bfbf6929267"),
    guid("90B8FCC3-7251-4B0A-AE3D-5C13A67EC9AA"),
    guid("96BA1DB9-14CD-4492-8065-1CAAECF6E5CF"),
    guid("1b93bacc-8ca4-432d-943a-3e6e7ec0b0a3"),
    guid("3176a8ed-597b-4f54-a71f-83695c6a8c5e"),
    guid("9aa22aca-6dc6-4a0c-b4e0-70d2416b9837"),
    guid("7ed81261-52a9-4a23-a358-c3313dea30a8"),
    guid("4ba12ff8-daac-4e43-ac56-98cf8d5c595d"),
];

/// One lock for every DAC call in the process.
static DAC_LOCK: Mutex<()> = Mutex::new(());

/// A failed DAC call.
#[derive(Debug, Error, Clone)]
pub enum DacError {
    #[error("DAC call {call} failed with HRESULT 0x{hr:08x}")]
    Call { call: &'static str, hr: u32 },
    #[error("the DAC does not offer {0} (older runtime)")]
    Unsupported(&'static str),
}

pub type Result<T> = std::result::Result<T, DacError>;

fn check(call: &'static str, hr: HResult) -> Result<()> {
    if hr < 0 {
        Err(DacError::Call {
            call,
            hr: hr as u32,
        })
    } else {
        Ok(())
    }
}

/// A DAC instance bound to one target.
pub struct Dac {
    path: PathBuf,
    process: ComPtr,
    sos: ComPtr,
    /// ISOSDacInterfaceN by N (index 0 unused); `None` when the runtime predates it.
    sos_n: [Option<ComPtr>; 17],
    shared: &'static Shared,
    /// IMetaDataImport per module address (the pointer as usize; `None` if unavailable).
    md_imports: Mutex<rustc_hash::FxHashMap<u64, Option<usize>>>,
}

// SAFETY: the raw COM pointers are only used while holding DAC_LOCK, which serializes every
// call into the DAC; the DAC objects themselves are not tied to the creating thread.
unsafe impl Send for Dac {}
// SAFETY: see above; all methods take the lock.
unsafe impl Sync for Dac {}

impl std::fmt::Debug for Dac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dac").field("path", &self.path).finish()
    }
}

type CreateInstanceFn =
    unsafe extern "system" fn(*const Guid, *mut c_void, *mut *mut c_void) -> HResult;
type DllMainFn = unsafe extern "system" fn(*mut c_void, u32, *mut c_void) -> i32;

/// dlopens a DAC and runs its PAL initialisation once; returns CLRDataCreateInstance.
fn load_library(path: &Path) -> anyhow::Result<CreateInstanceFn> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading the runtime's DAC runs its static initialisers, which are designed to
    // run in a debugger process. The library is intentionally never unloaded.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| anyhow::anyhow!("cannot load DAC {}: {e}", path.display()))?;
    // SAFETY: symbol lookups with the documented signatures of the DAC's exports.
    unsafe {
        let is_pal = lib.get::<*const c_void>(b"DAC_PAL_InitializeDLL\0").is_ok()
            || lib.get::<*const c_void>(b"PAL_InitializeDLL\0").is_ok();
        let create: CreateInstanceFn = *lib
            .get::<CreateInstanceFn>(b"CLRDataCreateInstance\0")
            .map_err(|e| anyhow::anyhow!("{} is not a DAC: {e}", path.display()))?;
        if is_pal {
            let dll_main: DllMainFn = *lib
                .get::<DllMainFn>(b"DllMain\0")
                .map_err(|e| anyhow::anyhow!("{} has no DllMain: {e}", path.display()))?;
            let raw = lib.into_raw();
            // DllMain initialises the DAC's PAL and its global lock (DLL_PROCESS_ATTACH = 1);
            // calling it again for an already loaded DAC is harmless.
            if dll_main(raw, 1, std::ptr::null_mut()) == 0 {
                anyhow::bail!("DAC {} failed to initialise (DllMain)", path.display());
            }
        } else {
            // Keep it loaded forever.
            let _ = lib.into_raw();
        }
        Ok(create)
    }
}

impl Dac {
    /// Loads the DAC at `dac_path` and binds it to `target`, whose runtime module is at
    /// `runtime_base`.
    pub fn open(
        dac_path: &Path,
        target: Arc<dyn DataTarget>,
        runtime_base: u64,
    ) -> anyhow::Result<Dac> {
        let _g = lock();
        let create = load_library(dac_path)?;
        let shared = Shared::create(target, runtime_base);
        let mut out = std::ptr::null_mut();
        // SAFETY: `create` is CLRDataCreateInstance; our target object lives forever.
        let hr = unsafe { create(&IID_IXCLR_DATA_PROCESS, shared.target_ptr(), &mut out) };
        if hr < 0 || out.is_null() {
            let hint = if hr as u32 == 0x8013_1C4F {
                " (the dump lacks the runtime's export table: was it written without \
                 libcoreclr.so's memory?)"
            } else {
                ""
            };
            anyhow::bail!(
                "the DAC could not attach to the dump: HRESULT 0x{:08x}{hint}",
                hr as u32
            );
        }
        let process = ComPtr(out);
        let mut sos_n: [Option<ComPtr>; 17] = [None; 17];
        for (i, iid) in IID_ISOS_DAC.iter().enumerate() {
            // SAFETY: `process` is a live IXCLRDataProcess.
            sos_n[i + 1] = unsafe { process.query(iid) };
        }
        let sos = sos_n[1].ok_or_else(|| anyhow::anyhow!("the DAC offers no ISOSDacInterface"))?;
        Ok(Dac {
            path: dac_path.to_path_buf(),
            process,
            sos,
            sos_n,
            shared,
            md_imports: Mutex::new(Default::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which ISOSDacInterfaceN the DAC offers.
    pub fn sos_versions(&self) -> Vec<usize> {
        (1..self.sos_n.len())
            .filter(|&i| self.sos_n[i].is_some())
            .collect()
    }

    fn sos_n(&self, n: usize, name: &'static str) -> Result<ComPtr> {
        self.sos_n[n].ok_or(DacError::Unsupported(name))
    }

    /// Calls `obj` slot `idx` that fills a struct of `size` bytes, with one u64 argument
    /// before the out pointer (or none).
    fn call_struct(
        &self,
        obj: ComPtr,
        idx: usize,
        name: &'static str,
        arg: Option<u64>,
        size: usize,
    ) -> Result<Vec<u8>> {
        let _g = lock();
        let mut buf = vec![0u64; size.div_ceil(8)];
        // SAFETY: slot `idx` of `obj` has the signature (this, [u64,] *mut T) -> HRESULT with
        // sizeof(T) <= `size` (layouts per dacprivate.h); the buffer is 8-byte aligned.
        let hr = unsafe {
            match arg {
                Some(a) => {
                    let f: unsafe extern "system" fn(*mut c_void, u64, *mut u64) -> HResult =
                        obj.slot(idx);
                    f(obj.0, a, buf.as_mut_ptr())
                }
                None => {
                    let f: unsafe extern "system" fn(*mut c_void, *mut u64) -> HResult =
                        obj.slot(idx);
                    f(obj.0, buf.as_mut_ptr())
                }
            }
        };
        check(name, hr)?;
        Ok(buf
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()[..size]
            .to_vec())
    }

    /// Two-call UTF-16 string getter `(this, u64 addr, u32 count, *u16, *u32 needed)`.
    fn call_string(
        &self,
        obj: ComPtr,
        idx: usize,
        name: &'static str,
        addr: u64,
    ) -> Result<String> {
        let _g = lock();
        // SAFETY: slot `idx` has the (addr, count, buffer, needed) string signature.
        unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u64, u32, *mut u16, *mut u32) -> HResult =
                obj.slot(idx);
            let mut needed = 0u32;
            let hr = f(obj.0, addr, 0, std::ptr::null_mut(), &mut needed);
            if needed == 0 {
                check(name, hr)?;
                return Ok(String::new());
            }
            let mut buf = vec![0u16; needed as usize + 1];
            let hr = f(obj.0, addr, buf.len() as u32, buf.as_mut_ptr(), &mut needed);
            check(name, hr)?;
            let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
            Ok(String::from_utf16_lossy(&buf[..end]))
        }
    }

    pub fn useful_globals(&self) -> Result<UsefulGlobals> {
        let b = self.call_struct(self.sos, 70, "GetUsefulGlobals", None, 0x28)?;
        Ok(UsefulGlobals {
            array_mt: le_u64(&b, 0),
            string_mt: le_u64(&b, 8),
            object_mt: le_u64(&b, 0x10),
            exception_mt: le_u64(&b, 0x18),
            free_mt: le_u64(&b, 0x20),
        })
    }

    pub fn gc_heap_data(&self) -> Result<GcHeapData> {
        let b = self.call_struct(self.sos, 46, "GetGCHeapData", None, 0x10)?;
        Ok(GcHeapData {
            server: le_u32(&b, 0) != 0,
            structures_valid: le_u32(&b, 4) != 0,
            heap_count: le_u32(&b, 8),
            max_generation: le_u32(&b, 12),
        })
    }

    /// Addresses of the server GC heaps (exactly `count` of them).
    pub fn gc_heap_list(&self, count: u32) -> Result<Vec<u64>> {
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
        let generation = |i: usize| GenerationData::parse(&b[0x48 + i * 32..]);
        Ok(HeapDetails {
            heap_addr: le_u64(&b, 0),
            alloc_allocated: le_u64(&b, 8),
            generations: (0..4).map(generation).collect(),
            ephemeral_heap_segment: le_u64(&b, 0xC8),
            finalization_fill_pointers: (0..7).map(|i| le_u64(&b, 0xD0 + i * 8)).collect(),
            lowest_address: le_u64(&b, 0x108),
            highest_address: le_u64(&b, 0x110),
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
        Ok(bytes.chunks_exact(32).map(GenerationData::parse).collect())
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
            segment_addr: le_u64(&b, 0),
            allocated: le_u64(&b, 8),
            committed: le_u64(&b, 0x10),
            reserved: le_u64(&b, 0x18),
            used: le_u64(&b, 0x20),
            mem: le_u64(&b, 0x28),
            next: le_u64(&b, 0x30),
            gc_heap: le_u64(&b, 0x38),
            high_alloc_mark: le_u64(&b, 0x40),
            flags: le_u64(&b, 0x48),
        })
    }

    pub fn method_table_data(&self, mt: u64) -> Result<MethodTableData> {
        let b = self.call_struct(self.sos, 37, "GetMethodTableData", Some(mt), 0x48)?;
        Ok(MethodTableData {
            is_free: le_u32(&b, 0) != 0,
            module: le_u64(&b, 8),
            class: le_u64(&b, 0x10),
            parent: le_u64(&b, 0x18),
            num_interfaces: u16::from_le_bytes([b[0x20], b[0x21]]),
            num_methods: u16::from_le_bytes([b[0x22], b[0x23]]),
            base_size: le_u32(&b, 0x28),
            component_size: le_u32(&b, 0x2C),
            token: le_u32(&b, 0x30),
            attr_class: le_u32(&b, 0x34),
            contains_pointers: le_u32(&b, 0x40) != 0,
        })
    }

    pub fn method_table_name(&self, mt: u64) -> Result<String> {
        self.call_string(self.sos, 36, "GetMethodTableName", mt)
    }

    pub fn method_table_field_data(&self, mt: u64) -> Result<MethodTableFieldData> {
        let b = self.call_struct(self.sos, 39, "GetMethodTableFieldData", Some(mt), 0x18)?;
        Ok(MethodTableFieldData {
            num_instance_fields: u16::from_le_bytes([b[0], b[1]]),
            num_static_fields: u16::from_le_bytes([b[2], b[3]]),
            num_thread_static_fields: u16::from_le_bytes([b[4], b[5]]),
            first_field: le_u64(&b, 8),
        })
    }

    pub fn field_desc_data(&self, fd: u64) -> Result<FieldDescData> {
        let b = self.call_struct(self.sos, 42, "GetFieldDescData", Some(fd), 0x40)?;
        Ok(FieldDescData {
            element_type: le_u32(&b, 0),
            sig_type: le_u32(&b, 4),
            mt_of_type: le_u64(&b, 8),
            token: le_u32(&b, 0x1C),
            enclosing_mt: le_u64(&b, 0x20),
            offset: le_u32(&b, 0x28),
            is_thread_local: le_u32(&b, 0x2C) != 0,
            is_static: le_u32(&b, 0x34) != 0,
            next_field: le_u64(&b, 0x38),
        })
    }

    /// Name of a field from its module's metadata (GetFieldName is not in ISOSDacInterface:
    /// the name comes through the MethodTable's module; `None` if unavailable).
    pub fn module_name(&self, module: u64) -> Result<String> {
        let b = self.call_struct(self.sos, 13, "GetModuleData", Some(module), 0xA0)?;
        let pe_file = le_u64(&b, 8);
        self.call_string(self.sos, 45, "GetPEFileName", pe_file)
    }

    /// Module metadata location: (metadata address, size) in the target.
    pub fn module_metadata(&self, module: u64) -> Result<(u64, u64)> {
        let b = self.call_struct(self.sos, 13, "GetModuleData", Some(module), 0xA0)?;
        Ok((le_u64(&b, 0x18), le_u64(&b, 0x20)))
    }

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
        let b = self.call_struct(self.sos, 17, "GetThreadData", Some(thread), 0x68)?;
        Ok(ThreadData {
            address: thread,
            managed_id: le_u32(&b, 0),
            os_id: le_u32(&b, 4),
            state: le_u32(&b, 8),
            preemptive_gc_disabled: le_u32(&b, 12) != 0,
            alloc_context_ptr: le_u64(&b, 0x10),
            alloc_context_limit: le_u64(&b, 0x18),
            domain: le_u64(&b, 0x28),
            frame: le_u64(&b, 0x30),
            lock_count: le_u32(&b, 0x38),
            last_thrown_object_handle: le_u64(&b, 0x58),
            next_thread: le_u64(&b, 0x60),
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

    /// MethodDesc for a code address, and its name.
    pub fn method_name_for_ip(&self, ip: u64) -> Result<String> {
        let md = {
            let _g = lock();
            let mut md = 0u64;
            // SAFETY: GetMethodDescPtrFromIP(u64 ip, u64* md).
            let hr = unsafe {
                let f: unsafe extern "system" fn(*mut c_void, u64, *mut u64) -> HResult =
                    self.sos.slot(21);
                f(self.sos.0, ip, &mut md)
            };
            check("GetMethodDescPtrFromIP", hr)?;
            md
        };
        self.call_string(self.sos, 22, "GetMethodDescName", md)
    }

    /// Name of an explicit frame (`clr!Frame`) from its vtable pointer.
    pub fn frame_name(&self, frame: u64) -> Result<String> {
        let vtbl = self.read_target_u64(frame).ok_or(DacError::Call {
            call: "read frame",
            hr: 0x8000_4005,
        })?;
        self.call_string(self.sos, 43, "GetFrameName", vtbl)
    }

    fn read_target_u64(&self, addr: u64) -> Option<u64> {
        let g = self.shared.source.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref()?.read_u64(addr).ok()
    }

    /// Object facts from the DAC (used for arrays: element type, rank, data pointer).
    pub fn object_data(&self, obj: u64) -> Result<ObjectData> {
        let b = self.call_struct(self.sos, 33, "GetObjectData", Some(obj), 0x60)?;
        Ok(ObjectData {
            method_table: le_u64(&b, 0),
            object_type: le_u32(&b, 8),
            size: le_u64(&b, 0x10),
            element_type_handle: le_u64(&b, 0x18),
            element_type: le_u32(&b, 0x20),
            rank: le_u32(&b, 0x24),
            num_components: le_u64(&b, 0x28),
            component_size: le_u64(&b, 0x30),
            array_data: le_u64(&b, 0x38),
        })
    }

    /// The module's IMetaDataImport, obtained once through IXCLRDataModule.
    fn metadata_import(&self, module: u64) -> Option<ComPtr> {
        const IID_IMETADATA_IMPORT: Guid = guid("7DAC8207-D3AE-4c75-9B67-92801A497D44");
        let mut cache = self.md_imports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&module) {
            return v.map(|p| ComPtr(p as *mut c_void));
        }
        let _g = lock();
        let mut m = std::ptr::null_mut();
        // SAFETY: GetModule(u64 addr, IXCLRDataModule** out); QI on the returned module.
        let imp = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u64, *mut *mut c_void) -> HResult =
                self.sos.slot(12);
            if f(self.sos.0, module, &mut m) >= 0 && !m.is_null() {
                let md = ComPtr(m);
                let r = md.query(&IID_IMETADATA_IMPORT);
                md.release();
                r
            } else {
                None
            }
        };
        cache.insert(module, imp.map(|p| p.0 as usize));
        imp
    }

    /// A field's name from its module's metadata (FieldDef token).
    pub fn field_name(&self, module: u64, token: u32) -> Result<String> {
        let imp = self
            .metadata_import(module)
            .ok_or(DacError::Unsupported("IMetaDataImport"))?;
        let _g = lock();
        let mut buf = [0u16; 512];
        let (mut class, mut len, mut attr, mut sig_len, mut cplus, mut value_len) =
            (0u32, 0u32, 0u32, 0u32, 0u32, 0u32);
        let (mut sig, mut value) = (std::ptr::null::<u8>(), std::ptr::null::<c_void>());
        // SAFETY: IMetaDataImport::GetFieldProps (slot 57) with every out pointer valid.
        let hr = unsafe {
            type GetFieldProps = unsafe extern "system" fn(
                *mut c_void,
                u32,
                *mut u32,
                *mut u16,
                u32,
                *mut u32,
                *mut u32,
                *mut *const u8,
                *mut u32,
                *mut u32,
                *mut *const c_void,
                *mut u32,
            ) -> HResult;
            let f: GetFieldProps = imp.slot(57);
            f(
                imp.0,
                token,
                &mut class,
                buf.as_mut_ptr(),
                buf.len() as u32,
                &mut len,
                &mut attr,
                &mut sig,
                &mut sig_len,
                &mut cplus,
                &mut value,
                &mut value_len,
            )
        };
        check("GetFieldProps", hr)?;
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        Ok(String::from_utf16_lossy(&buf[..end]))
    }

    /// Every module loaded in every AppDomain.
    pub fn modules(&self) -> Result<Vec<u64>> {
        let store = self.call_struct(self.sos, 4, "GetAppDomainStoreData", None, 0x18)?;
        let count = le_u32(&store, 0x10) as usize;
        let mut domains = vec![0u64; count];
        {
            let _g = lock();
            let mut needed = 0u32;
            // SAFETY: GetAppDomainList(u32 count, u64* domains, u32* needed).
            let hr = unsafe {
                let f: unsafe extern "system" fn(*mut c_void, u32, *mut u64, *mut u32) -> HResult =
                    self.sos.slot(5);
                f(self.sos.0, count as u32, domains.as_mut_ptr(), &mut needed)
            };
            check("GetAppDomainList", hr)?;
        }
        // The system domain holds no assemblies of its own on Core, but ask it too.
        domains.push(le_u64(&store, 8));
        let mut modules = Vec::new();
        for d in domains.into_iter().filter(|&d| d != 0) {
            let _g = lock();
            // SAFETY: GetAssemblyList(u64 domain, i32 count, u64* asm, i32* needed), sizing first;
            // GetAssemblyModuleList(u64 asm, u32 count, u64* mods, u32* needed).
            unsafe {
                let list: unsafe extern "system" fn(
                    *mut c_void,
                    u64,
                    i32,
                    *mut u64,
                    *mut i32,
                ) -> HResult = self.sos.slot(9);
                let mut n = 0i32;
                if list(self.sos.0, d, 0, std::ptr::null_mut(), &mut n) < 0 || n <= 0 {
                    continue;
                }
                let mut asms = vec![0u64; n as usize];
                if list(self.sos.0, d, n, asms.as_mut_ptr(), &mut n) < 0 {
                    continue;
                }
                let mods: unsafe extern "system" fn(
                    *mut c_void,
                    u64,
                    u32,
                    *mut u64,
                    *mut u32,
                ) -> HResult = self.sos.slot(15);
                for a in asms {
                    let mut m = [0u64; 16];
                    let mut got = 0u32;
                    if mods(self.sos.0, a, m.len() as u32, m.as_mut_ptr(), &mut got) >= 0 {
                        modules.extend(m.iter().take(got as usize).filter(|&&x| x != 0));
                    }
                }
            }
        }
        modules.sort_unstable();
        modules.dedup();
        Ok(modules)
    }

    /// The MethodTables of the types a module has loaded (its TypeDef map).
    pub fn module_types(&self, module: u64) -> Result<Vec<u64>> {
        unsafe extern "C" fn collect(_index: u32, mt: u64, token: *mut c_void) {
            // SAFETY: `token` is the Vec passed below, alive for the duration of the call.
            let v = unsafe { &mut *(token as *mut Vec<u64>) };
            if mt != 0 {
                v.push(mt);
            }
        }
        let _g = lock();
        let mut out: Vec<u64> = Vec::new();
        // SAFETY: TraverseModuleMap(i32 kind, u64 module, callback, void* token); kind 0 =
        // TypeDefToMethodTable. The callback only runs during this call.
        let hr = unsafe {
            type Cb = unsafe extern "C" fn(u32, u64, *mut c_void);
            let f: unsafe extern "system" fn(*mut c_void, i32, u64, Cb, *mut c_void) -> HResult =
                self.sos.slot(14);
            f(
                self.sos.0,
                0,
                module,
                collect,
                &mut out as *mut Vec<u64> as *mut c_void,
            )
        };
        check("TraverseModuleMap", hr)?;
        Ok(out)
    }

    /// ISOSDacInterface14 (.NET 9+): (non-GC, GC) static base of a type.
    pub fn static_base_address(&self, mt: u64) -> Result<(u64, u64)> {
        let sos14 = self.sos_n(14, "ISOSDacInterface14")?;
        let _g = lock();
        let (mut ngc, mut gc) = (0u64, 0u64);
        // SAFETY: GetStaticBaseAddress(u64 mt, u64* nonGC, u64* gc).
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u64, *mut u64, *mut u64) -> HResult =
                sos14.slot(3);
            f(sos14.0, mt, &mut ngc, &mut gc)
        };
        check("GetStaticBaseAddress", hr)?;
        Ok((ngc, gc))
    }

    /// (non-GC, GC) statics bases of a module's types on runtimes before .NET 9
    /// (DomainLocalModule).
    pub fn domain_local_statics(&self, module: u64) -> Result<(u64, u64)> {
        let b = self.call_struct(
            self.sos,
            57,
            "GetDomainLocalModuleDataFromModule",
            Some(module),
            0x30,
        )?;
        Ok((le_u64(&b, 0x28), le_u64(&b, 0x20)))
    }

    /// (non-GC, GC) statics bases of a type, whichever way this runtime exposes them.
    pub fn statics_bases(&self, mt: u64, module: u64) -> Result<(u64, u64)> {
        if self.sos_n[14].is_some() {
            self.static_base_address(mt)
        } else {
            self.domain_local_statics(module)
        }
    }
}

/// Drains an ISOSEnum-derived enumerator whose `Next` (slot 6) fills `stride`-byte items, then
/// releases it. Caller holds the DAC lock.
fn drain_enum(e: ComPtr, stride: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if e.0.is_null() {
        return out;
    }
    const CHUNK: usize = 64;
    let mut buf = vec![0u64; CHUNK * stride / 8];
    // SAFETY: `e` is a live enumerator; Next(u32 count, T* items, u32* fetched). Next returns
    // S_FALSE for "fewer than asked", so we stop on 0 fetched or a failure.
    unsafe {
        let next: unsafe extern "system" fn(*mut c_void, u32, *mut u64, *mut u32) -> HResult =
            e.slot(6);
        loop {
            let mut got = 0u32;
            let hr = next(e.0, CHUNK as u32, buf.as_mut_ptr(), &mut got);
            let got = (got as usize).min(CHUNK);
            let bytes = std::slice::from_raw_parts(buf.as_ptr() as *const u8, got * stride);
            out.extend_from_slice(bytes);
            if got == 0 || hr < 0 || out.len() > (1 << 30) {
                break;
            }
        }
        e.release();
    }
    out
}

fn lock() -> MutexGuard<'static, ()> {
    DAC_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Dac {
    fn drop(&mut self) {
        {
            let _g = lock();
            // SAFETY: we own one reference on each interface we obtained.
            unsafe {
                for p in self.sos_n.iter().flatten() {
                    p.release();
                }
                self.process.release();
            }
        }
        // Free the dump even if the DAC keeps a reference on our (never freed) target object.
        *self
            .shared
            .source
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ObjectData {
    pub method_table: u64,
    /// 0 string, 1 free, 2 object, 3 array, 4 other.
    pub object_type: u32,
    pub size: u64,
    pub element_type_handle: u64,
    /// CorElementType of array elements.
    pub element_type: u32,
    pub rank: u32,
    pub num_components: u64,
    pub component_size: u64,
    pub array_data: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct UsefulGlobals {
    pub array_mt: u64,
    pub string_mt: u64,
    pub object_mt: u64,
    pub exception_mt: u64,
    pub free_mt: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct GcHeapData {
    pub server: bool,
    pub structures_valid: bool,
    pub heap_count: u32,
    pub max_generation: u32,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct GenerationData {
    pub start_segment: u64,
    pub allocation_start: u64,
    pub alloc_context_ptr: u64,
    pub alloc_context_limit: u64,
}

impl GenerationData {
    fn parse(b: &[u8]) -> GenerationData {
        GenerationData {
            start_segment: le_u64(b, 0),
            allocation_start: le_u64(b, 8),
            alloc_context_ptr: le_u64(b, 16),
            alloc_context_limit: le_u64(b, 24),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HeapDetails {
    pub heap_addr: u64,
    pub alloc_allocated: u64,
    /// gen0, gen1, gen2, LOH (the legacy 4-entry table).
    pub generations: Vec<GenerationData>,
    pub ephemeral_heap_segment: u64,
    pub finalization_fill_pointers: Vec<u64>,
    pub lowest_address: u64,
    pub highest_address: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SegmentData {
    pub segment_addr: u64,
    pub allocated: u64,
    pub committed: u64,
    pub reserved: u64,
    pub used: u64,
    pub mem: u64,
    pub next: u64,
    pub gc_heap: u64,
    pub high_alloc_mark: u64,
    pub flags: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MethodTableData {
    pub is_free: bool,
    pub module: u64,
    pub class: u64,
    pub parent: u64,
    pub num_interfaces: u16,
    pub num_methods: u16,
    /// As the DAC reports it (System.String: without the terminator).
    pub base_size: u32,
    pub component_size: u32,
    pub token: u32,
    pub attr_class: u32,
    pub contains_pointers: bool,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MethodTableFieldData {
    pub num_instance_fields: u16,
    pub num_static_fields: u16,
    pub num_thread_static_fields: u16,
    pub first_field: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FieldDescData {
    /// CorElementType of the field.
    pub element_type: u32,
    pub sig_type: u32,
    pub mt_of_type: u64,
    /// FieldDef token.
    pub token: u32,
    pub enclosing_mt: u64,
    /// Offset from the start of the object's fields (object address + 8).
    pub offset: u32,
    pub is_thread_local: bool,
    pub is_static: bool,
    pub next_field: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ThreadStoreData {
    pub thread_count: i32,
    pub unstarted: i32,
    pub background: i32,
    pub pending: i32,
    pub dead: i32,
    pub first_thread: u64,
    pub finalizer_thread: u64,
    pub gc_thread: u64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ThreadData {
    pub address: u64,
    pub managed_id: u32,
    pub os_id: u32,
    pub state: u32,
    pub preemptive_gc_disabled: bool,
    pub alloc_context_ptr: u64,
    pub alloc_context_limit: u64,
    pub domain: u64,
    pub frame: u64,
    pub lock_count: u32,
    pub last_thrown_object_handle: u64,
    pub next_thread: u64,
}

impl ThreadData {
    pub const TS_UNSTARTED: u32 = 0x400;
    pub const TS_DEAD: u32 = 0x800;
    pub const TS_BACKGROUND: u32 = 0x200;

    pub fn is_live(&self) -> bool {
        self.os_id != 0 && self.state & (Self::TS_UNSTARTED | Self::TS_DEAD) == 0
    }
}

/// The kind of a GC handle, as the runtime numbers them (`HandleType` in the runtime's
/// handle table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleKind {
    WeakShort,
    WeakLong,
    Strong,
    Pinned,
    RefCounted,
    Dependent,
    AsyncPinned,
    SizedRef,
    WeakWinRt,
    WeakInteriorPointer,
    CrossReference,
    /// A number this build does not know.
    Unknown(u32),
}

impl HandleKind {
    /// Every handle kind worth asking for ("variable", 4, is unused).
    pub const ALL: [HandleKind; 11] = [
        HandleKind::WeakShort,
        HandleKind::WeakLong,
        HandleKind::Strong,
        HandleKind::Pinned,
        HandleKind::RefCounted,
        HandleKind::Dependent,
        HandleKind::AsyncPinned,
        HandleKind::SizedRef,
        HandleKind::WeakWinRt,
        HandleKind::WeakInteriorPointer,
        HandleKind::CrossReference,
    ];

    pub fn from_raw(v: u32) -> HandleKind {
        match v {
            0 => HandleKind::WeakShort,
            1 => HandleKind::WeakLong,
            2 => HandleKind::Strong,
            3 => HandleKind::Pinned,
            5 => HandleKind::RefCounted,
            6 => HandleKind::Dependent,
            7 => HandleKind::AsyncPinned,
            8 => HandleKind::SizedRef,
            9 => HandleKind::WeakWinRt,
            10 => HandleKind::WeakInteriorPointer,
            11 => HandleKind::CrossReference,
            other => HandleKind::Unknown(other),
        }
    }

    pub fn raw(self) -> u32 {
        match self {
            HandleKind::WeakShort => 0,
            HandleKind::WeakLong => 1,
            HandleKind::Strong => 2,
            HandleKind::Pinned => 3,
            HandleKind::RefCounted => 5,
            HandleKind::Dependent => 6,
            HandleKind::AsyncPinned => 7,
            HandleKind::SizedRef => 8,
            HandleKind::WeakWinRt => 9,
            HandleKind::WeakInteriorPointer => 10,
            HandleKind::CrossReference => 11,
            HandleKind::Unknown(v) => v,
        }
    }

    /// SOS's wording for the kind.
    pub fn name(self) -> &'static str {
        match self {
            HandleKind::WeakShort => "weak short handle",
            HandleKind::WeakLong => "weak long handle",
            HandleKind::Strong => "strong handle",
            HandleKind::Pinned => "pinned handle",
            HandleKind::RefCounted => "ref counted handle",
            HandleKind::Dependent => "dependent handle",
            HandleKind::AsyncPinned => "async pinned handle",
            HandleKind::SizedRef => "sized ref handle",
            HandleKind::WeakWinRt => "weak WinRT handle",
            HandleKind::WeakInteriorPointer => "weak interior pointer handle",
            HandleKind::CrossReference => "cross reference handle",
            HandleKind::Unknown(_) => "unknown handle",
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct HandleData {
    /// Address of the handle slot; the object is `*handle`.
    pub handle: u64,
    pub secondary: u64,
    pub kind: HandleKind,
    pub strong: bool,
    pub ref_count: u32,
}

impl HandleData {
    /// Whether the handle keeps its object alive (ClrMD's IsStrong).
    pub fn is_root(&self) -> bool {
        match self.kind {
            HandleKind::Strong
            | HandleKind::Pinned
            | HandleKind::AsyncPinned
            | HandleKind::SizedRef => true,
            HandleKind::RefCounted => self.ref_count > 0,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StackRef {
    pub has_register: bool,
    pub register: i32,
    pub offset: i32,
    /// Stack slot address (0 if the reference is in a register).
    pub address: u64,
    pub object: u64,
    /// 1 = interior pointer, 2 = pinned.
    pub flags: u32,
    /// 0 = managed frame (source is an IP), 1 = explicit Frame (source is its address).
    pub source_type: u32,
    pub source: u64,
    pub stack_pointer: u64,
}
