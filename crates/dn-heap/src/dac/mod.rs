//! Hosting the runtime's data access component (`libmscordaccore.so`).
//!
//! This module is the only place with FFI. The DAC is loaded once per path and never unloaded
//! (its PAL registers a TLS destructor that would crash after `dlclose`). Every call into any
//! DAC goes through one process-wide lock: the DAC swaps process-global state on each entry.

mod com;
pub mod context;
mod data;
mod exception;
mod gc;
pub mod iface;
pub(crate) mod isolate;
mod live;
mod loader;
pub mod locate;
mod methods;
pub mod stack;
mod stackrefs;
mod statics;
pub mod symstore;
mod target;
mod threads;
mod types;
mod vars;

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;

pub use com::metadata_from_pe_file;
use com::{guid, ComPtr, Guid, HResult, Shared};
pub use data::*;
pub use exception::{CodePlace, SyncBlock};
pub use iface::DacpExceptionObjectData;
pub use live::LiveProcess;
pub use loader::{AppDomains, CodeHeap, LoaderBlock, LoaderHeapLayout, ModuleHeaps, StubHeapType};
pub use locate::{
    find_dac, runtime_module, DacSearch, DacSource, FoundDac, RuntimeModule, VersionFrom,
};
pub use methods::{JitKind, MethodDescData, SlotMethod};
pub use stack::{FrameKind, StackFrame, WalkError, WalkOptions, WalkedStack};
pub use stackrefs::StackRefsOutcome;
pub use target::DataTarget;
pub use types::LoadedModules;
pub use vars::{VarLocation, VarValue, Variable};

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
    #[error("the DAC reported {count} {what}, more than the {max} this tool accepts")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },
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
}

/// A two-call UTF-16 string getter (`f(count, buffer, *needed)`: sized first, then filled), under
/// the caller's DAC lock.
fn dac_string(
    call: &'static str,
    f: impl Fn(u32, *mut u16, *mut u32) -> HResult,
) -> Result<String> {
    /// No name the DAC gives is longer; a larger count is damage.
    const MAX_CHARS: u32 = 1 << 20;
    let mut needed = 0u32;
    let hr = f(0, std::ptr::null_mut(), &mut needed);
    if needed == 0 {
        check(call, hr)?;
        return Ok(String::new());
    }
    if needed > MAX_CHARS {
        return Err(DacError::TooMany {
            what: "characters in a name",
            count: needed.into(),
            max: MAX_CHARS.into(),
        });
    }
    let mut buf = vec![0u16; needed as usize + 1];
    check(call, f(buf.len() as u32, buf.as_mut_ptr(), &mut needed))?;
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(String::from_utf16_lossy(&buf[..end]))
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
