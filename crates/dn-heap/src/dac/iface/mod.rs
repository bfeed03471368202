//! Typed COM for the DAC's interfaces: `#[repr(C)]` vtables (the slots we call have their real
//! signatures; the others are placeholders of pointer size) and [`ComRef`], an owning reference
//! that calls `Release` when dropped.
//!
//! A `ComRef` borrows the DAC lock's guard: the DAC swaps process-global state on every entry,
//! so every call, and every release, must happen while the one lock is held. The borrow makes
//! a reference that outlives the lock a compile error.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::MutexGuard;

use super::com::{guid, Guid, HResult};

/// Proof that the caller holds the process-wide DAC lock.
pub type DacGuard = MutexGuard<'static, ()>;

pub const IID_IXCLR_DATA_TASK: Guid = guid("A5B0BEEA-EC62-4618-8012-A24FFC23934C");

type Out<T> = *mut T;
/// A vtable slot we never call.
type Unused = usize;

#[repr(C)]
pub struct IUnknownVtbl {
    pub query_interface:
        unsafe extern "system" fn(*mut c_void, *const Guid, Out<*mut c_void>) -> HResult,
    pub add_ref: unsafe extern "system" fn(*mut c_void) -> u32,
    pub release: unsafe extern "system" fn(*mut c_void) -> u32,
}

/// A COM interface: its vtable type. Every vtable starts with [`IUnknownVtbl`].
///
/// # Safety
/// `Vtbl` must be `#[repr(C)]`, start with an `IUnknownVtbl`, and describe (a prefix of) the
/// interface's real vtable.
pub unsafe trait Interface {
    type Vtbl;
}

/// An owned reference to a DAC COM object, released on drop; usable only under the DAC lock.
pub struct ComRef<'g, I: Interface> {
    raw: NonNull<c_void>,
    _lock: PhantomData<&'g DacGuard>,
    _iface: PhantomData<*const I>,
}

impl<'g, I: Interface> ComRef<'g, I> {
    /// Takes ownership of one reference returned by a DAC call (`None` for null).
    ///
    /// # Safety
    /// `raw` is null or a live object implementing `I` on which the caller owns a reference.
    pub unsafe fn from_raw(_lock: &'g DacGuard, raw: *mut c_void) -> Option<Self> {
        NonNull::new(raw).map(|raw| ComRef {
            raw,
            _lock: PhantomData,
            _iface: PhantomData,
        })
    }

    /// A new reference (AddRef) on an object someone else owns.
    ///
    /// # Safety
    /// `raw` is a live object implementing `I`.
    pub unsafe fn add_ref(lock: &'g DacGuard, raw: *mut c_void) -> Option<Self> {
        let r = Self::from_raw(lock, raw)?;
        (r.unknown().add_ref)(r.raw.as_ptr());
        Some(r)
    }

    pub fn as_raw(&self) -> *mut c_void {
        self.raw.as_ptr()
    }

    pub fn vtbl(&self) -> &I::Vtbl {
        // SAFETY: a COM object starts with its vtable pointer; `Interface` promises the type.
        unsafe { &**(self.raw.as_ptr() as *const *const I::Vtbl) }
    }

    fn unknown(&self) -> &IUnknownVtbl {
        // SAFETY: every vtable starts with the IUnknown slots (`Interface`'s contract).
        unsafe { &**(self.raw.as_ptr() as *const *const IUnknownVtbl) }
    }

    /// QueryInterface for another interface of the same object.
    pub fn query<J: Interface>(&self, lock: &'g DacGuard, iid: &Guid) -> Option<ComRef<'g, J>> {
        let mut out = std::ptr::null_mut();
        // SAFETY: live object; QueryInterface writes an owned reference or null.
        let hr = unsafe { (self.unknown().query_interface)(self.raw.as_ptr(), iid, &mut out) };
        if hr < 0 {
            return None;
        }
        // SAFETY: on success `out` is an owned reference to an object implementing `J`.
        unsafe { ComRef::from_raw(lock, out) }
    }
}

impl<I: Interface> Drop for ComRef<'_, I> {
    fn drop(&mut self) {
        // SAFETY: we own one reference; the lock is held for the lifetime 'g.
        unsafe { (self.unknown().release)(self.raw.as_ptr()) };
    }
}

/// Calls a typed slot: `call!(obj, slot, args...)` passes the object as `this`.
macro_rules! call {
    ($obj:expr, $slot:ident $(, $arg:expr)* $(,)?) => {{
        let o = &$obj;
        (o.vtbl().$slot)(o.as_raw() $(, $arg)*)
    }};
}
pub(crate) use call;

// ---- IXCLRDataProcess (xclrdata.idl) ----

pub enum XclrDataProcess {}
#[repr(C)]
pub struct XclrDataProcessVtbl {
    pub base: IUnknownVtbl,
    pub flush: unsafe extern "system" fn(*mut c_void) -> HResult,
    _start_enum_tasks: Unused,
    _enum_task: Unused,
    _end_enum_tasks: Unused,
    pub get_task_by_os_thread_id:
        unsafe extern "system" fn(*mut c_void, u32, Out<*mut c_void>) -> HResult,
}
// SAFETY: prefix of IXCLRDataProcess (slots 0..7).
unsafe impl Interface for XclrDataProcess {
    type Vtbl = XclrDataProcessVtbl;
}

// ---- IXCLRDataTask ----

pub enum XclrDataTask {}
#[repr(C)]
pub struct XclrDataTaskVtbl {
    pub base: IUnknownVtbl,
    _get_process: Unused,
    _get_current_app_domain: Unused,
    _get_unique_id: Unused,
    _get_flags: Unused,
    _is_same_object: Unused,
    _get_managed_object: Unused,
    _get_desired_execution_state: Unused,
    _set_desired_execution_state: Unused,
    pub create_stack_walk: unsafe extern "system" fn(*mut c_void, u32, Out<*mut c_void>) -> HResult,
    pub get_os_thread_id: unsafe extern "system" fn(*mut c_void, Out<u32>) -> HResult,
}
// SAFETY: prefix of IXCLRDataTask (slots 0..12).
unsafe impl Interface for XclrDataTask {
    type Vtbl = XclrDataTaskVtbl;
}

// ---- IXCLRDataStackWalk ----

pub enum XclrDataStackWalk {}
#[repr(C)]
pub struct XclrDataStackWalkVtbl {
    pub base: IUnknownVtbl,
    pub get_context: unsafe extern "system" fn(*mut c_void, u32, u32, Out<u32>, *mut u8) -> HResult,
    _set_context: Unused,
    pub next: unsafe extern "system" fn(*mut c_void) -> HResult,
    _get_stack_size_skipped: Unused,
    pub get_frame_type: unsafe extern "system" fn(*mut c_void, Out<i32>, Out<i32>) -> HResult,
    pub get_frame: unsafe extern "system" fn(*mut c_void, Out<*mut c_void>) -> HResult,
    pub request:
        unsafe extern "system" fn(*mut c_void, u32, u32, *const u8, u32, *mut u8) -> HResult,
}
// SAFETY: prefix of IXCLRDataStackWalk (slots 0..9).
unsafe impl Interface for XclrDataStackWalk {
    type Vtbl = XclrDataStackWalkVtbl;
}

/// `IXCLRDataStackWalk::Request` code: the current explicit Frame's address (0 on a method).
pub const DACSTACKPRIV_REQUEST_FRAME_DATA: u32 = 0xF000_0000;

// ---- IXCLRDataFrame ----

/// `GetArgumentByIndex` / `GetLocalVariableByIndex`: index, value out, name buffer length,
/// name length out, name buffer.
type VarByIndex = unsafe extern "system" fn(
    *mut c_void,
    u32,
    Out<*mut c_void>,
    u32,
    Out<u32>,
    *mut u16,
) -> HResult;

pub enum XclrDataFrame {}
#[repr(C)]
pub struct XclrDataFrameVtbl {
    pub base: IUnknownVtbl,
    _get_frame_type: Unused,
    _get_context: Unused,
    _get_app_domain: Unused,
    pub get_num_arguments: unsafe extern "system" fn(*mut c_void, Out<u32>) -> HResult,
    pub get_argument_by_index: VarByIndex,
    pub get_num_local_variables: unsafe extern "system" fn(*mut c_void, Out<u32>) -> HResult,
    pub get_local_variable_by_index: VarByIndex,
    _get_code_name: Unused,
    pub get_method_instance: unsafe extern "system" fn(*mut c_void, Out<*mut c_void>) -> HResult,
}
// SAFETY: prefix of IXCLRDataFrame (slots 0..11).
unsafe impl Interface for XclrDataFrame {
    type Vtbl = XclrDataFrameVtbl;
}

// ---- IXCLRDataValue ----

pub enum XclrDataValue {}
#[repr(C)]
pub struct XclrDataValueVtbl {
    pub base: IUnknownVtbl,
    pub get_flags: unsafe extern "system" fn(*mut c_void, Out<u32>) -> HResult,
    _get_address: Unused,
    _get_size: Unused,
    pub get_bytes: unsafe extern "system" fn(*mut c_void, u32, Out<u32>, *mut u8) -> HResult,
    _slots_7_27: [Unused; 21],
    pub get_num_locations: unsafe extern "system" fn(*mut c_void, Out<u32>) -> HResult,
    pub get_location_by_index:
        unsafe extern "system" fn(*mut c_void, u32, Out<u32>, Out<u64>) -> HResult,
}
// SAFETY: prefix of IXCLRDataValue (slots 0..29).
unsafe impl Interface for XclrDataValue {
    type Vtbl = XclrDataValueVtbl;
}

/// `GetLocationByIndex` flag: the value is in a register (else in memory).
pub const CLRDATA_VLOC_REGISTER: u32 = 1;

// ---- IXCLRDataMethodInstance ----

pub enum XclrDataMethodInstance {}
#[repr(C)]
pub struct XclrDataMethodInstanceVtbl {
    pub base: IUnknownVtbl,
    _get_type_instance: Unused,
    _get_definition: Unused,
    _get_token_and_scope: Unused,
    /// (flags, bufLen, *nameLen, buf): note the IXCLRData argument order.
    pub get_name: unsafe extern "system" fn(*mut c_void, u32, u32, Out<u32>, *mut u16) -> HResult,
}
// SAFETY: prefix of IXCLRDataMethodInstance (slots 0..6).
unsafe impl Interface for XclrDataMethodInstance {
    type Vtbl = XclrDataMethodInstanceVtbl;
}

mod sos;
mod structs;

pub use sos::*;
pub use structs::*;

/// Every item of an enumerator (asked for in chunks, as many as it gives).
pub fn drain<T: Default + Copy>(e: &ComRef<'_, SosEnum>) -> Vec<T> {
    const CHUNK: usize = 64;
    /// No enumerator of a real runtime comes near this; a broken one must not exhaust memory.
    const MAX_ITEMS: usize = 1 << 24;
    let mut out = Vec::new();
    let mut buf = [T::default(); CHUNK];
    loop {
        let mut got = 0u32;
        // SAFETY: Next(count, items, *fetched) writes at most `count` items of the enumerator's
        // item type `T` into `buf`.
        let hr = unsafe { call!(e, next, CHUNK as u32, buf.as_mut_ptr() as *mut u8, &mut got) };
        let got = (got as usize).min(CHUNK);
        out.extend_from_slice(&buf[..got]);
        // Next returns S_FALSE for "fewer than asked": stop on 0 fetched or a failure.
        if got == 0 || hr < 0 || out.len() > MAX_ITEMS {
            break;
        }
    }
    out
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<DacpThreadData>() == 0x68);
    assert!(offset_of!(DacpThreadData, frame) == 0x30);
    assert!(offset_of!(DacpThreadData, first_nested_exception) == 0x40);
    assert!(offset_of!(DacpThreadData, last_thrown_object_handle) == 0x58);
    assert!(size_of::<DacpMethodDescData>() == 0x98);
    assert!(offset_of!(DacpMethodDescData, md_token) == 0x38);
    assert!(offset_of!(DacpMethodDescData, jitted_rejit_versions) == 0x90);
    assert!(size_of::<DacpCodeHeaderData>() == 0x38);
    assert!(offset_of!(DacpCodeHeaderData, hot_region_size) == 0x34);
    assert!(size_of::<DacpModuleData>() == 0xA0);
    assert!(offset_of!(DacpModuleData, transient_flags) == 0x48);
    assert!(offset_of!(DacpModuleData, loader_allocator) == 0x88);
    assert!(offset_of!(DacpModuleData, thunk_heap) == 0x90);
    assert!(size_of::<DacpAppDomainStoreData>() == 0x18);
    assert!(size_of::<DacpMethodTableData>() == 0x48);
    assert!(size_of::<DacpUsefulGlobalsData>() == 0x28);
    assert!(size_of::<DacpDomainLocalModuleData>() == 0x30);
    assert!(size_of::<DacpThreadLocalModuleData>() == 0x30);
    assert!(offset_of!(DacpThreadLocalModuleData, gc_static_data_start) == 0x20);
    assert!(offset_of!(SosDacVtbl, get_thread_local_module_data) == 58 * 8);
    assert!(offset_of!(SosDac14Vtbl, get_static_base_address) == 3 * 8);
    assert!(offset_of!(SosDac14Vtbl, get_thread_static_base_address) == 4 * 8);
    assert!(offset_of!(DacpModuleData, module_index) == 0x98);
    assert!(offset_of!(MetaDataImportVtbl, get_field_props) == 57 * 8);
    assert!(offset_of!(SosDacVtbl, traverse_module_map) == 14 * 8);
    assert!(offset_of!(SosDacVtbl, get_domain_local_module_data_from_module) == 57 * 8);
    assert!(size_of::<DacpGcHeapData>() == 0x10);
    assert!(size_of::<DacpGenerationData>() == 0x20);
    assert!(size_of::<DacpGcHeapDetails>() == 0x120);
    assert!(offset_of!(DacpGcHeapDetails, generation_table) == 0x48);
    assert!(offset_of!(DacpGcHeapDetails, ephemeral_heap_segment) == 0xC8);
    assert!(offset_of!(DacpGcHeapDetails, lowest_address) == 0x108);
    assert!(size_of::<DacpHeapSegmentData>() == 0x58);
    assert!(offset_of!(SosDacVtbl, get_gc_heap_data) == 46 * 8);
    assert!(offset_of!(SosDacVtbl, get_heap_segment_data) == 50 * 8);
    assert!(offset_of!(SosDacVtbl, get_useful_globals) == 70 * 8);
    assert!(offset_of!(SosDac8Vtbl, get_finalization_fill_pointers_svr) == 7 * 8);
    assert!(offset_of!(DacpMethodTableData, base_size) == 0x28);
    assert!(offset_of!(DacpMethodTableData, contains_pointers) == 0x40);
    assert!(size_of::<DacpMethodTableFieldData>() == 0x18);
    assert!(size_of::<DacpFieldDescData>() == 0x40);
    assert!(offset_of!(DacpFieldDescData, token) == 0x1C);
    assert!(offset_of!(DacpFieldDescData, offset) == 0x28);
    assert!(offset_of!(DacpFieldDescData, is_static) == 0x34);
    assert!(size_of::<DacpObjectData>() == 0x60);
    assert!(offset_of!(DacpObjectData, array_data) == 0x38);
    assert!(offset_of!(SosDacVtbl, get_module) == 12 * 8);
    assert!(offset_of!(SosDacVtbl, get_object_data) == 33 * 8);
    assert!(offset_of!(SosDacVtbl, get_method_table_name) == 36 * 8);
    assert!(offset_of!(SosDacVtbl, get_method_table_slot) == 38 * 8);
    assert!(offset_of!(SosDacVtbl, get_method_table_for_ee_class) == 41 * 8);
    assert!(offset_of!(SosDacVtbl, get_field_desc_data) == 42 * 8);
    assert!(size_of::<DacpAppDomainData>() == 0x48);
    assert!(offset_of!(DacpAppDomainData, stub_heap) == 0x20);
    assert!(size_of::<DacpJitManagerInfo>() == 0x18);
    assert!(size_of::<DacpJitCodeHeapInfo>() == 0x18);
    assert!(offset_of!(SosDacVtbl, get_app_domain_store_data) == 4 * 8);
    assert!(offset_of!(SosDacVtbl, get_app_domain_data) == 6 * 8);
    assert!(offset_of!(SosDacVtbl, get_assembly_list) == 9 * 8);
    assert!(offset_of!(SosDacVtbl, get_module_data) == 13 * 8);
    assert!(offset_of!(SosDacVtbl, get_assembly_module_list) == 15 * 8);
    assert!(offset_of!(SosDacVtbl, get_jit_manager_list) == 27 * 8);
    assert!(offset_of!(SosDacVtbl, traverse_loader_heap) == 67 * 8);
    assert!(offset_of!(SosDacVtbl, traverse_virt_call_stub_heap) == 69 * 8);
    assert!(offset_of!(SosDac13Vtbl, get_loader_allocator_heaps) == 6 * 8);
    assert!(size_of::<DacpSyncBlockData>() == 0x48);
    assert!(offset_of!(DacpSyncBlockData, holding_thread) == 0x28);
    assert!(offset_of!(DacpSyncBlockData, sync_block_count) == 0x40);
    assert!(size_of::<DacpExceptionObjectData>() == 0x38);
    assert!(size_of::<DacpThreadStoreData>() == 0x38);
    assert!(offset_of!(DacpThreadStoreData, first_thread) == 0x18);
    assert!(size_of::<SosHandleData>() == 0x30);
    assert!(offset_of!(SosHandleData, handle_type) == 0x18);
    assert!(size_of::<SosStackRefData>() == 0x38);
    assert!(offset_of!(SosStackRefData, address) == 0x10);
    assert!(offset_of!(SosStackRefData, stack_pointer) == 0x30);
    assert!(offset_of!(SosDacVtbl, get_handle_enum_for_types) == 62 * 8);
    assert!(offset_of!(SosDacVtbl, get_stack_references) == 79 * 8);
    assert!(offset_of!(SosDacVtbl, get_register_name) == 80 * 8);
    assert!(offset_of!(SosEnumVtbl, next) == 6 * 8);
    assert!(offset_of!(SosDacVtbl, get_thread_data) == 17 * 8);
    assert!(offset_of!(SosDacVtbl, get_method_desc_ptr_from_ip) == 21 * 8);
    assert!(offset_of!(SosDacVtbl, get_code_header_data) == 26 * 8);
    assert!(offset_of!(SosDacVtbl, get_frame_name) == 43 * 8);
    assert!(offset_of!(SosDacVtbl, get_pe_file_name) == 45 * 8);
    assert!(offset_of!(SosDacVtbl, get_sync_block_data) == 59 * 8);
    assert!(offset_of!(SosDacVtbl, get_nested_exception_data) == 65 * 8);
    assert!(offset_of!(XclrDataProcessVtbl, get_task_by_os_thread_id) == 7 * 8);
    assert!(offset_of!(XclrDataTaskVtbl, create_stack_walk) == 11 * 8);
    assert!(offset_of!(XclrDataStackWalkVtbl, request) == 9 * 8);
    assert!(offset_of!(XclrDataFrameVtbl, get_method_instance) == 11 * 8);
    assert!(offset_of!(XclrDataValueVtbl, get_num_locations) == 28 * 8);
    assert!(offset_of!(XclrDataMethodInstanceVtbl, get_name) == 6 * 8);
};
