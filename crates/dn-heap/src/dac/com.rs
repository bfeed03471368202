//! Our side of the COM boundary: the data target objects the DAC calls back into
//! (ICLRDataTarget, ICLRRuntimeLocator, ICLRMetadataLocator), and a helper to call DAC vtables.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use super::context::{Amd64Context, X64Regs, AMD64_CONTEXT_SIZE};
use super::target::DataTarget;

pub type HResult = i32;
pub const S_OK: HResult = 0;
pub const E_NOTIMPL: HResult = 0x8000_4001_u32 as i32;
pub const E_NOINTERFACE: HResult = 0x8000_4002_u32 as i32;
pub const E_POINTER: HResult = 0x8000_4003_u32 as i32;
pub const E_FAIL: HResult = 0x8000_4005_u32 as i32;

#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Guid {
    pub d1: u32,
    pub d2: u16,
    pub d3: u16,
    pub d4: [u8; 8],
}

/// Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" at compile time.
pub const fn guid(s: &str) -> Guid {
    const fn hexval(c: u8) -> u64 {
        match c {
            b'0'..=b'9' => (c - b'0') as u64,
            b'a'..=b'f' => (c - b'a' + 10) as u64,
            b'A'..=b'F' => (c - b'A' + 10) as u64,
            _ => panic!("bad hex digit in GUID"),
        }
    }
    let b = s.as_bytes();
    let mut v = [0u64; 5];
    let mut part = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            part += 1;
        } else {
            v[part] = v[part] * 16 + hexval(b[i]);
        }
        i += 1;
    }
    let d4a = v[3];
    let d4b = v[4];
    Guid {
        d1: v[0] as u32,
        d2: v[1] as u16,
        d3: v[2] as u16,
        d4: [
            (d4a >> 8) as u8,
            d4a as u8,
            (d4b >> 40) as u8,
            (d4b >> 32) as u8,
            (d4b >> 24) as u8,
            (d4b >> 16) as u8,
            (d4b >> 8) as u8,
            d4b as u8,
        ],
    }
}

pub const IID_IUNKNOWN: Guid = guid("00000000-0000-0000-C000-000000000046");
pub const IID_ICLR_DATA_TARGET: Guid = guid("3E11CCEE-D08B-43e5-AF01-32717A64DA03");
pub const IID_ICLR_METADATA_LOCATOR: Guid = guid("aa8fa804-bc05-4642-b2c5-c353ed22fc63");
pub const IID_ICLR_RUNTIME_LOCATOR: Guid = guid("b760bf44-9377-4597-8be7-58083bdc5146");

/// A pointer to a COM object implemented by the DAC.
#[derive(Clone, Copy, Debug)]
pub struct ComPtr(pub *mut c_void);

impl ComPtr {
    /// The function pointer in vtable slot `idx`.
    ///
    /// # Safety
    /// `self` must point to a live COM object whose vtable has at least `idx + 1` slots, and
    /// `F` must be the `extern "system"` fn type of that slot.
    pub unsafe fn slot<F: Copy>(&self, idx: usize) -> F {
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
        let vtbl = *(self.0 as *const *const usize);
        let f = vtbl.add(idx);
        std::mem::transmute_copy::<usize, F>(&*f)
    }

    /// QueryInterface; `None` on any failure.
    ///
    /// # Safety
    /// `self` must point to a live COM object.
    pub unsafe fn query(&self, iid: &Guid) -> Option<ComPtr> {
        let qi: unsafe extern "system" fn(*mut c_void, *const Guid, *mut *mut c_void) -> HResult =
            self.slot(0);
        let mut out = std::ptr::null_mut();
        let hr = qi(self.0, iid, &mut out);
        (hr >= 0 && !out.is_null()).then_some(ComPtr(out))
    }

    /// Releases one reference.
    ///
    /// # Safety
    /// `self` must point to a live COM object on which we own a reference.
    pub unsafe fn release(&self) {
        let rel: unsafe extern "system" fn(*mut c_void) -> u32 = self.slot(2);
        rel(self.0);
    }
}

/// State shared by our three COM objects. It lives as long as the process (the DAC may keep a
/// reference after we are done with it, and the DAC itself is never unloaded); the data source
/// is dropped when the owning `Dac` is dropped.
pub struct Shared {
    pub source: RwLock<Option<Arc<dyn DataTarget>>>,
    pub runtime_base: u64,
    refs: AtomicU32,
    target: AtomicPtr<ComObj>,
    runtime_locator: AtomicPtr<ComObj>,
    metadata_locator: AtomicPtr<ComObj>,
}

#[repr(C)]
pub struct ComObj {
    vtbl: *const c_void,
    shared: *const Shared,
}

impl Shared {
    /// Creates the shared state and its objects; returns the ICLRDataTarget pointer.
    pub fn create(source: Arc<dyn DataTarget>, runtime_base: u64) -> &'static Shared {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            source: RwLock::new(Some(source)),
            runtime_base,
            refs: AtomicU32::new(1),
            target: AtomicPtr::new(std::ptr::null_mut()),
            runtime_locator: AtomicPtr::new(std::ptr::null_mut()),
            metadata_locator: AtomicPtr::new(std::ptr::null_mut()),
        }));
        let mk = |vtbl: *const c_void| -> *mut ComObj {
            Box::into_raw(Box::new(ComObj { vtbl, shared }))
        };
        shared.target.store(
            mk(&DATA_TARGET_VTBL as *const _ as *const c_void),
            Ordering::SeqCst,
        );
        shared.runtime_locator.store(
            mk(&RUNTIME_LOCATOR_VTBL as *const _ as *const c_void),
            Ordering::SeqCst,
        );
        shared.metadata_locator.store(
            mk(&METADATA_LOCATOR_VTBL as *const _ as *const c_void),
            Ordering::SeqCst,
        );
        shared
    }

    pub fn target_ptr(&self) -> *mut c_void {
        self.target.load(Ordering::SeqCst) as *mut c_void
    }

    fn with_source<R>(&self, f: impl FnOnce(&dyn DataTarget) -> Option<R>) -> Option<R> {
        let g = self.source.read().unwrap_or_else(|e| e.into_inner());
        g.as_deref().and_then(f)
    }
}

/// Runs a callback body, turning a panic into E_FAIL (a panic must never unwind into the DAC).
fn guard(f: impl FnOnce() -> HResult) -> HResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(E_FAIL)
}

/// # Safety
/// `this` must be one of our `ComObj`s.
unsafe fn shared_of(this: *mut ComObj) -> &'static Shared {
    &*(*this).shared
}

#[repr(C)]
struct DataTargetVtbl {
    query_interface:
        unsafe extern "system" fn(*mut ComObj, *const Guid, *mut *mut c_void) -> HResult,
    add_ref: unsafe extern "system" fn(*mut ComObj) -> u32,
    release: unsafe extern "system" fn(*mut ComObj) -> u32,
    get_machine_type: unsafe extern "system" fn(*mut ComObj, *mut u32) -> HResult,
    get_pointer_size: unsafe extern "system" fn(*mut ComObj, *mut u32) -> HResult,
    get_image_base: unsafe extern "system" fn(*mut ComObj, *const u16, *mut u64) -> HResult,
    read_virtual: unsafe extern "system" fn(*mut ComObj, u64, *mut u8, u32, *mut u32) -> HResult,
    write_virtual: unsafe extern "system" fn(*mut ComObj, u64, *const u8, u32, *mut u32) -> HResult,
    get_tls_value: unsafe extern "system" fn(*mut ComObj, u32, u32, *mut u64) -> HResult,
    set_tls_value: unsafe extern "system" fn(*mut ComObj, u32, u32, u64) -> HResult,
    get_current_thread_id: unsafe extern "system" fn(*mut ComObj, *mut u32) -> HResult,
    get_thread_context: unsafe extern "system" fn(*mut ComObj, u32, u32, u32, *mut u8) -> HResult,
    set_thread_context: unsafe extern "system" fn(*mut ComObj, u32, u32, *const u8) -> HResult,
    request: unsafe extern "system" fn(*mut ComObj, u32, u32, *const u8, u32, *mut u8) -> HResult,
}

#[repr(C)]
struct RuntimeLocatorVtbl {
    query_interface:
        unsafe extern "system" fn(*mut ComObj, *const Guid, *mut *mut c_void) -> HResult,
    add_ref: unsafe extern "system" fn(*mut ComObj) -> u32,
    release: unsafe extern "system" fn(*mut ComObj) -> u32,
    get_runtime_base: unsafe extern "system" fn(*mut ComObj, *mut u64) -> HResult,
}

type GetMetadataFn = unsafe extern "system" fn(
    *mut ComObj,
    *const u16,
    u32,
    u32,
    *const Guid,
    u32,
    u32,
    u32,
    *mut u8,
    *mut u32,
) -> HResult;

#[repr(C)]
struct MetadataLocatorVtbl {
    query_interface:
        unsafe extern "system" fn(*mut ComObj, *const Guid, *mut *mut c_void) -> HResult,
    add_ref: unsafe extern "system" fn(*mut ComObj) -> u32,
    release: unsafe extern "system" fn(*mut ComObj) -> u32,
    get_metadata: GetMetadataFn,
}

static DATA_TARGET_VTBL: DataTargetVtbl = DataTargetVtbl {
    query_interface,
    add_ref,
    release,
    get_machine_type,
    get_pointer_size,
    get_image_base,
    read_virtual,
    write_virtual,
    get_tls_value,
    set_tls_value,
    get_current_thread_id,
    get_thread_context,
    set_thread_context,
    request,
};

static RUNTIME_LOCATOR_VTBL: RuntimeLocatorVtbl = RuntimeLocatorVtbl {
    query_interface,
    add_ref,
    release,
    get_runtime_base,
};

static METADATA_LOCATOR_VTBL: MetadataLocatorVtbl = MetadataLocatorVtbl {
    query_interface,
    add_ref,
    release,
    get_metadata,
};

unsafe extern "system" fn query_interface(
    this: *mut ComObj,
    iid: *const Guid,
    out: *mut *mut c_void,
) -> HResult {
    guard(|| {
        if out.is_null() || iid.is_null() {
            return E_POINTER;
        }
        // SAFETY: the DAC passes our own object and valid pointers (checked non-null above).
        unsafe {
            let shared = shared_of(this);
            let iid = &*iid;
            let obj = if *iid == IID_IUNKNOWN || *iid == IID_ICLR_DATA_TARGET {
                shared.target.load(Ordering::SeqCst)
            } else if *iid == IID_ICLR_RUNTIME_LOCATOR {
                shared.runtime_locator.load(Ordering::SeqCst)
            } else if *iid == IID_ICLR_METADATA_LOCATOR {
                shared.metadata_locator.load(Ordering::SeqCst)
            } else {
                std::ptr::null_mut()
            };
            *out = obj as *mut c_void;
            if obj.is_null() {
                return E_NOINTERFACE;
            }
            shared.refs.fetch_add(1, Ordering::SeqCst);
            S_OK
        }
    })
}

unsafe extern "system" fn add_ref(this: *mut ComObj) -> u32 {
    // SAFETY: `this` is one of our objects.
    unsafe { shared_of(this).refs.fetch_add(1, Ordering::SeqCst) + 1 }
}

unsafe extern "system" fn release(this: *mut ComObj) -> u32 {
    // SAFETY: `this` is one of our objects. The objects are never freed (see `Shared`).
    unsafe {
        shared_of(this)
            .refs
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1)
    }
}

unsafe extern "system" fn get_machine_type(_this: *mut ComObj, out: *mut u32) -> HResult {
    if out.is_null() {
        return E_POINTER;
    }
    // SAFETY: non-null out pointer from the DAC.
    unsafe { *out = 0x8664 }; // IMAGE_FILE_MACHINE_AMD64
    S_OK
}

unsafe extern "system" fn get_pointer_size(_this: *mut ComObj, out: *mut u32) -> HResult {
    if out.is_null() {
        return E_POINTER;
    }
    // SAFETY: non-null out pointer from the DAC.
    unsafe { *out = 8 };
    S_OK
}

/// # Safety
/// `p` is null or a NUL-terminated UTF-16 string.
unsafe fn wide_to_string(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut n = 0;
    while *p.add(n) != 0 && n < 4096 {
        n += 1;
    }
    String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
}

unsafe extern "system" fn get_image_base(
    this: *mut ComObj,
    name: *const u16,
    out: *mut u64,
) -> HResult {
    guard(|| {
        if out.is_null() {
            return E_POINTER;
        }
        // SAFETY: our object; name is a NUL-terminated UTF-16 string from the DAC.
        unsafe {
            let name = wide_to_string(name);
            match shared_of(this).with_source(|s| s.image_base(&name)) {
                Some(b) => {
                    *out = b;
                    S_OK
                }
                None => E_FAIL,
            }
        }
    })
}

unsafe extern "system" fn read_virtual(
    this: *mut ComObj,
    addr: u64,
    buf: *mut u8,
    size: u32,
    read: *mut u32,
) -> HResult {
    guard(|| {
        // SAFETY: the DAC gives a writable buffer of `size` bytes and an optional out count.
        unsafe {
            if !read.is_null() {
                *read = 0;
            }
            if size == 0 {
                return S_OK;
            }
            if buf.is_null() {
                return E_POINTER;
            }
            let out = std::slice::from_raw_parts_mut(buf, size as usize);
            match shared_of(this).with_source(|s| s.read(addr, out).ok()) {
                Some(n) => {
                    if !read.is_null() {
                        *read = n as u32;
                    }
                    S_OK
                }
                None => E_FAIL,
            }
        }
    })
}

unsafe extern "system" fn write_virtual(
    _: *mut ComObj,
    _: u64,
    _: *const u8,
    _: u32,
    _: *mut u32,
) -> HResult {
    E_NOTIMPL
}

unsafe extern "system" fn get_tls_value(_: *mut ComObj, _: u32, _: u32, _: *mut u64) -> HResult {
    E_NOTIMPL
}

unsafe extern "system" fn set_tls_value(_: *mut ComObj, _: u32, _: u32, _: u64) -> HResult {
    E_NOTIMPL
}

unsafe extern "system" fn get_current_thread_id(_: *mut ComObj, _: *mut u32) -> HResult {
    E_FAIL
}

unsafe extern "system" fn get_thread_context(
    this: *mut ComObj,
    tid: u32,
    _flags: u32,
    size: u32,
    ctx: *mut u8,
) -> HResult {
    guard(|| {
        if ctx.is_null() {
            return E_POINTER;
        }
        // SAFETY: our object; `ctx` is a writable buffer of `size` bytes.
        unsafe {
            let Some(r) = shared_of(this).with_source(|s| s.thread_registers(tid)) else {
                return E_FAIL;
            };
            let n = (size as usize).min(AMD64_CONTEXT_SIZE);
            let out = std::slice::from_raw_parts_mut(ctx, n);
            let c = Amd64Context::from_regs(&X64Regs::from_words(&r));
            out.copy_from_slice(&c.as_bytes()[..n]);
            S_OK
        }
    })
}

unsafe extern "system" fn set_thread_context(
    _: *mut ComObj,
    _: u32,
    _: u32,
    _: *const u8,
) -> HResult {
    E_NOTIMPL
}

unsafe extern "system" fn request(
    _: *mut ComObj,
    _: u32,
    _: u32,
    _: *const u8,
    _: u32,
    _: *mut u8,
) -> HResult {
    E_NOTIMPL
}

unsafe extern "system" fn get_runtime_base(this: *mut ComObj, out: *mut u64) -> HResult {
    if out.is_null() {
        return E_POINTER;
    }
    // SAFETY: our object; non-null out pointer.
    unsafe { *out = shared_of(this).runtime_base };
    S_OK
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn get_metadata(
    _this: *mut ComObj,
    image_path: *const u16,
    _timestamp: u32,
    _image_size: u32,
    _mvid: *const Guid,
    _md_rva: u32,
    _flags: u32,
    buf_size: u32,
    buf: *mut u8,
    data_size: *mut u32,
) -> HResult {
    guard(|| {
        // SAFETY: `image_path` is a UTF-16 string, `buf` a writable buffer of `buf_size` bytes.
        unsafe {
            let path = wide_to_string(image_path);
            let Some(md) = metadata_from_pe_file(Path::new(&path)) else {
                return E_FAIL;
            };
            if buf.is_null() {
                return E_POINTER;
            }
            let n = md.len().min(buf_size as usize);
            std::ptr::copy_nonoverlapping(md.as_ptr(), buf, n);
            if !data_size.is_null() {
                *data_size = n as u32;
            }
            S_OK
        }
    })
}

/// The ECMA-335 metadata blob of a PE (IL) file on disk, located through its CLI (COR20)
/// header as goblin reads it.
pub fn metadata_from_pe_file(path: &Path) -> Option<Vec<u8>> {
    let data = std::fs::read(path).ok()?;
    let mut opts = goblin::pe::options::ParseOptions::default();
    opts.parse_imports = false;
    opts.parse_resources = false;
    opts.parse_tls_data = false;
    opts.parse_attribute_certificates = false;
    let pe = goblin::pe::PE::parse_with_opts(&data, &opts).ok()?;
    // Only the COR20 header: goblin's own `metadata_data` does not start at the metadata.
    let md = pe.clr_data?.cor20_header.metadata;
    let file_alignment = pe.header.optional_header?.windows_fields.file_alignment;
    let start = goblin::pe::utils::find_offset(
        md.virtual_address as usize,
        &pe.sections,
        file_alignment,
        &opts,
    )?;
    let end = start.checked_add(md.size as usize)?;
    data.get(start..end).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_parses_like_windows() {
        let g = guid("436f00f2-b42a-4b9f-870c-e73db66ae930");
        assert_eq!(g.d1, 0x436f00f2);
        assert_eq!(g.d2, 0xb42a);
        assert_eq!(g.d3, 0x4b9f);
        assert_eq!(g.d4, [0x87, 0x0c, 0xe7, 0x3d, 0xb6, 0x6a, 0xe9, 0x30]);
    }
}
