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

// ---- ISOSDacInterface (sospriv.idl), the slots the stack commands use ----

/// ISOS string getter: (address, count, buffer, needed).
type SosString = unsafe extern "system" fn(*mut c_void, u64, u32, *mut u16, Out<u32>) -> HResult;

pub enum SosDac {}
#[repr(C)]
pub struct SosDacVtbl {
    pub base: IUnknownVtbl,
    pub get_thread_store_data:
        unsafe extern "system" fn(*mut c_void, Out<DacpThreadStoreData>) -> HResult,
    pub get_app_domain_store_data:
        unsafe extern "system" fn(*mut c_void, Out<DacpAppDomainStoreData>) -> HResult,
    /// (count, domains, *needed)
    pub get_app_domain_list:
        unsafe extern "system" fn(*mut c_void, u32, *mut u64, Out<u32>) -> HResult,
    pub get_app_domain_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpAppDomainData>) -> HResult,
    _slots_7_8: [Unused; 2],
    /// (domain, count, assemblies, *needed): note the signed counts.
    pub get_assembly_list:
        unsafe extern "system" fn(*mut c_void, u64, i32, *mut u64, Out<i32>) -> HResult,
    _slots_10_11: [Unused; 2],
    /// (module, *IXCLRDataModule)
    pub get_module: unsafe extern "system" fn(*mut c_void, u64, Out<*mut c_void>) -> HResult,
    pub get_module_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpModuleData>) -> HResult,
    /// (ModuleMapType, module, callback, token)
    pub traverse_module_map:
        unsafe extern "system" fn(*mut c_void, i32, u64, VisitModuleMap, *mut c_void) -> HResult,
    /// (assembly, count, modules, *needed)
    pub get_assembly_module_list:
        unsafe extern "system" fn(*mut c_void, u64, u32, *mut u64, Out<u32>) -> HResult,
    _get_il_for_module: Unused,
    pub get_thread_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpThreadData>) -> HResult,
    _get_thread_from_thinlock_id: Unused,
    pub get_stack_limits:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>, Out<u64>, Out<u64>) -> HResult,
    pub get_method_desc_data: unsafe extern "system" fn(
        *mut c_void,
        u64,
        u64,
        Out<DacpMethodDescData>,
        u32,
        *mut u8,
        Out<u32>,
    ) -> HResult,
    pub get_method_desc_ptr_from_ip:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>) -> HResult,
    pub get_method_desc_name: SosString,
    pub get_method_desc_ptr_from_frame:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>) -> HResult,
    _slots_24_25: [Unused; 2],
    pub get_code_header_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpCodeHeaderData>) -> HResult,
    /// (count, managers, *needed)
    pub get_jit_manager_list:
        unsafe extern "system" fn(*mut c_void, u32, *mut DacpJitManagerInfo, Out<u32>) -> HResult,
    _slots_28_32: [Unused; 5],
    pub get_object_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpObjectData>) -> HResult,
    _slots_34_35: [Unused; 2],
    pub get_method_table_name: SosString,
    pub get_method_table_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpMethodTableData>) -> HResult,
    /// (MethodTable, slot, *code address)
    pub get_method_table_slot:
        unsafe extern "system" fn(*mut c_void, u64, u32, Out<u64>) -> HResult,
    pub get_method_table_field_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpMethodTableFieldData>) -> HResult,
    _get_method_table_transparency_data: Unused,
    pub get_method_table_for_ee_class:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>) -> HResult,
    pub get_field_desc_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpFieldDescData>) -> HResult,
    pub get_frame_name: SosString,
    _get_pe_file_base: Unused,
    pub get_pe_file_name: SosString,
    pub get_gc_heap_data: unsafe extern "system" fn(*mut c_void, Out<DacpGcHeapData>) -> HResult,
    /// (count, heaps, *needed)
    pub get_gc_heap_list:
        unsafe extern "system" fn(*mut c_void, u32, *mut u64, Out<u32>) -> HResult,
    pub get_gc_heap_details:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpGcHeapDetails>) -> HResult,
    pub get_gc_heap_static_data:
        unsafe extern "system" fn(*mut c_void, Out<DacpGcHeapDetails>) -> HResult,
    pub get_heap_segment_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpHeapSegmentData>) -> HResult,
    _slots_51_56: [Unused; 6],
    pub get_domain_local_module_data_from_module:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpDomainLocalModuleData>) -> HResult,
    _get_thread_local_module_data: Unused,
    pub get_sync_block_data:
        unsafe extern "system" fn(*mut c_void, u32, Out<DacpSyncBlockData>) -> HResult,
    _slots_60_61: [Unused; 2],
    pub get_handle_enum_for_types:
        unsafe extern "system" fn(*mut c_void, *const u32, u32, Out<*mut c_void>) -> HResult,
    _slots_63_64: [Unused; 2],
    pub get_nested_exception_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>, Out<u64>) -> HResult,
    _slots_66_66: [Unused; 1],
    /// (loader heap, callback): the heap's blocks, one callback each.
    pub traverse_loader_heap: unsafe extern "system" fn(*mut c_void, u64, VisitHeap) -> HResult,
    /// (JIT manager, count, heaps, *needed)
    pub get_code_heap_list: unsafe extern "system" fn(
        *mut c_void,
        u64,
        u32,
        *mut DacpJitCodeHeapInfo,
        Out<u32>,
    ) -> HResult,
    /// (app domain, VCSHeapType, callback)
    pub traverse_virt_call_stub_heap:
        unsafe extern "system" fn(*mut c_void, u64, i32, VisitHeap) -> HResult,
    pub get_useful_globals:
        unsafe extern "system" fn(*mut c_void, Out<DacpUsefulGlobalsData>) -> HResult,
    _slots_71_78: [Unused; 8],
    pub get_stack_references:
        unsafe extern "system" fn(*mut c_void, u32, Out<*mut c_void>) -> HResult,
    pub get_register_name:
        unsafe extern "system" fn(*mut c_void, i32, u32, *mut u16, Out<u32>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface (slots 0..65).
unsafe impl Interface for SosDac {
    type Vtbl = SosDacVtbl;
}

/// MODULEMAPTRAVERSE: (index, MethodTable, token), once per entry of a module map.
pub type VisitModuleMap = unsafe extern "C" fn(u32, u64, *mut c_void);

/// VISITHEAP: (block address, block size, is the current block), once per block of a loader
/// heap. It carries no context pointer: the caller collects through a thread-local.
pub type VisitHeap = unsafe extern "C" fn(u64, usize, i32);

/// ISOSDacInterface13 (.NET 8 and later): loader allocators and their heaps.
pub enum SosDac13 {}
#[repr(C)]
pub struct SosDac13Vtbl {
    pub base: IUnknownVtbl,
    /// (loader heap, LoaderHeapKind, callback)
    pub traverse_loader_heap:
        unsafe extern "system" fn(*mut c_void, u64, i32, VisitHeap) -> HResult,
    pub get_domain_loader_allocator:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>) -> HResult,
    /// (count, names, *needed): the names are static C strings in the DAC's own memory.
    pub get_loader_allocator_heap_names: unsafe extern "system" fn(
        *mut c_void,
        i32,
        *mut *const std::ffi::c_char,
        Out<i32>,
    ) -> HResult,
    /// (loader allocator, count, heaps, kinds, *needed)
    pub get_loader_allocator_heaps:
        unsafe extern "system" fn(*mut c_void, u64, i32, *mut u64, *mut i32, Out<i32>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface13 (slots 0..6).
unsafe impl Interface for SosDac13 {
    type Vtbl = SosDac13Vtbl;
}

/// ISOSDacInterface8 (.NET 5 and later): generation tables with the pinned object heap.
pub enum SosDac8 {}
#[repr(C)]
pub struct SosDac8Vtbl {
    pub base: IUnknownVtbl,
    _get_number_generations: Unused,
    /// (count, generations, *needed)
    pub get_generation_table:
        unsafe extern "system" fn(*mut c_void, u32, *mut DacpGenerationData, Out<u32>) -> HResult,
    /// (count, pointers, *needed)
    pub get_finalization_fill_pointers:
        unsafe extern "system" fn(*mut c_void, u32, *mut u64, Out<u32>) -> HResult,
    /// (heap, count, generations, *needed)
    pub get_generation_table_svr: unsafe extern "system" fn(
        *mut c_void,
        u64,
        u32,
        *mut DacpGenerationData,
        Out<u32>,
    ) -> HResult,
    /// (heap, count, pointers, *needed)
    pub get_finalization_fill_pointers_svr:
        unsafe extern "system" fn(*mut c_void, u64, u32, *mut u64, Out<u32>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface8 (slots 0..8).
unsafe impl Interface for SosDac8 {
    type Vtbl = SosDac8Vtbl;
}

/// ISOSDacInterface14 (.NET 9 and later): statics without DomainLocalModule.
pub enum SosDac14 {}
#[repr(C)]
pub struct SosDac14Vtbl {
    pub base: IUnknownVtbl,
    /// (MethodTable, *non-GC statics, *GC statics)
    pub get_static_base_address:
        unsafe extern "system" fn(*mut c_void, u64, Out<u64>, Out<u64>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface14 (slots 0..3).
unsafe impl Interface for SosDac14 {
    type Vtbl = SosDac14Vtbl;
}

/// ISOSDacInterface15 (.NET 9 and later): a MethodTable's slots with their MethodDescs.
pub enum SosDac15 {}
#[repr(C)]
pub struct SosDac15Vtbl {
    pub base: IUnknownVtbl,
    /// (MethodTable, *ISOSMethodEnum)
    pub get_method_table_slot_enumerator:
        unsafe extern "system" fn(*mut c_void, u64, Out<*mut c_void>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface15 (slots 0..3).
unsafe impl Interface for SosDac15 {
    type Vtbl = SosDac15Vtbl;
}

/// IMetaDataImport (cor.h), up to GetFieldProps.
pub enum MetaDataImport {}
#[repr(C)]
pub struct MetaDataImportVtbl {
    pub base: IUnknownVtbl,
    _slots_3_56: [Unused; 54],
    /// (FieldDef, *class, name buffer, buffer length, *name length, *attributes, *signature,
    /// *signature length, *constant type, *constant value, *constant length)
    pub get_field_props: unsafe extern "system" fn(
        *mut c_void,
        u32,
        Out<u32>,
        *mut u16,
        u32,
        Out<u32>,
        Out<u32>,
        Out<*const u8>,
        Out<u32>,
        Out<u32>,
        Out<*const c_void>,
        Out<u32>,
    ) -> HResult,
}
// SAFETY: prefix of IMetaDataImport (slots 0..58).
unsafe impl Interface for MetaDataImport {
    type Vtbl = MetaDataImportVtbl;
}

pub enum SosDac12 {}
#[repr(C)]
pub struct SosDac12Vtbl {
    pub base: IUnknownVtbl,
    pub get_global_allocation_context:
        unsafe extern "system" fn(*mut c_void, Out<u64>, Out<u64>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface12 (slots 0..3).
unsafe impl Interface for SosDac12 {
    type Vtbl = SosDac12Vtbl;
}

/// ISOSEnum and its item-typed descendants (ISOSHandleEnum, ISOSStackRefEnum): `Next` fills
/// an array of the enumerator's item struct.
pub enum SosEnum {}
#[repr(C)]
pub struct SosEnumVtbl {
    pub base: IUnknownVtbl,
    _skip: Unused,
    _reset: Unused,
    _get_count: Unused,
    pub next: unsafe extern "system" fn(*mut c_void, u32, *mut u8, Out<u32>) -> HResult,
}
// SAFETY: prefix of ISOSHandleEnum / ISOSStackRefEnum (slots 0..6).
unsafe impl Interface for SosEnum {
    type Vtbl = SosEnumVtbl;
}

pub enum SosDac2 {}
#[repr(C)]
pub struct SosDac2Vtbl {
    pub base: IUnknownVtbl,
    pub get_object_exception_data:
        unsafe extern "system" fn(*mut c_void, u64, Out<DacpExceptionObjectData>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface2 (slots 0..3).
unsafe impl Interface for SosDac2 {
    type Vtbl = SosDac2Vtbl;
}

// ---- The structs those slots fill (dacprivate.h, x64) ----

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpThreadData {
    pub cor_thread_id: i32,
    pub os_thread_id: u32,
    pub state: i32,
    pub preemptive_gc_disabled: u32,
    pub alloc_context_ptr: u64,
    pub alloc_context_limit: u64,
    pub context: u64,
    pub domain: u64,
    pub frame: u64,
    pub lock_count: u32,
    pub first_nested_exception: u64,
    pub teb: u64,
    pub fiber_data: u64,
    pub last_thrown_object_handle: u64,
    pub next_thread: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpMethodDescData {
    pub has_native_code: i32,
    pub is_dynamic: i32,
    pub slot_number: u16,
    pub native_code_addr: u64,
    pub address_of_native_code_slot: u64,
    pub method_desc_ptr: u64,
    pub method_table_ptr: u64,
    pub module_ptr: u64,
    pub md_token: u32,
    pub gc_info: u64,
    pub gc_stress_code_copy: u64,
    pub managed_dynamic_method_object: u64,
    pub requested_ip: u64,
    pub rejit_current: [u64; 3],
    pub rejit_requested: [u64; 3],
    pub jitted_rejit_versions: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpCodeHeaderData {
    pub gc_info: u64,
    pub jit_type: i32,
    pub method_desc_ptr: u64,
    pub method_start: u64,
    pub method_size: u32,
    pub cold_region_start: u64,
    pub cold_region_size: u32,
    pub hot_region_size: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpModuleData {
    pub address: u64,
    pub pe_assembly: u64,
    pub il_base: u64,
    pub metadata_start: u64,
    pub metadata_size: u64,
    pub assembly: u64,
    pub is_reflection: i32,
    pub is_pe_file: i32,
    pub base_class_index: u64,
    pub module_id: u64,
    pub transient_flags: u32,
    pub type_def_to_method_table_map: u64,
    pub type_ref_to_method_table_map: u64,
    pub method_def_to_desc_map: u64,
    pub field_def_to_desc_map: u64,
    pub member_ref_to_desc_map: u64,
    pub file_references_map: u64,
    pub manifest_module_references_map: u64,
    pub loader_allocator: u64,
    pub thunk_heap: u64,
    pub module_index: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpDomainLocalModuleData {
    pub app_domain_addr: u64,
    pub module_id: u64,
    pub class_data: u64,
    pub dynamic_class_table: u64,
    pub gc_static_data_start: u64,
    pub non_gc_static_data_start: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpUsefulGlobalsData {
    pub array_method_table: u64,
    pub string_method_table: u64,
    pub object_method_table: u64,
    pub exception_method_table: u64,
    pub free_method_table: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpGcHeapData {
    pub server_mode: i32,
    pub gc_structures_valid: i32,
    pub heap_count: u32,
    pub max_generation: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpGenerationData {
    pub start_segment: u64,
    pub allocation_start: u64,
    pub alloc_context_ptr: u64,
    pub alloc_context_limit: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpGcHeapDetails {
    pub heap_addr: u64,
    pub alloc_allocated: u64,
    pub mark_array: u64,
    pub current_c_gc_state: u64,
    pub next_sweep_obj: u64,
    pub saved_sweep_ephemeral_seg: u64,
    pub saved_sweep_ephemeral_start: u64,
    pub background_saved_lowest_address: u64,
    pub background_saved_highest_address: u64,
    pub generation_table: [DacpGenerationData; 4],
    pub ephemeral_heap_segment: u64,
    pub finalization_fill_pointers: [u64; 7],
    pub lowest_address: u64,
    pub highest_address: u64,
    pub card_table: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpHeapSegmentData {
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
    pub background_allocated: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpMethodTableData {
    pub is_free: i32,
    pub module: u64,
    pub class: u64,
    pub parent_method_table: u64,
    pub num_interfaces: u16,
    pub num_methods: u16,
    pub num_vtable_slots: u16,
    pub num_virtuals: u16,
    pub base_size: u32,
    pub component_size: u32,
    pub token: u32,
    pub attr_class: u32,
    pub is_shared: i32,
    pub is_dynamic: i32,
    pub contains_pointers: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpMethodTableFieldData {
    pub num_instance_fields: u16,
    pub num_static_fields: u16,
    pub num_thread_static_fields: u16,
    pub first_field: u64,
    pub context_static_offset: u16,
    pub context_statics_size: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpFieldDescData {
    pub element_type: u32,
    pub sig_type: u32,
    pub mt_of_type: u64,
    pub module_of_type: u64,
    pub token_of_type: u32,
    pub token: u32,
    pub mt_of_enclosing_class: u64,
    pub offset: u32,
    pub is_thread_local: i32,
    pub is_context_local: i32,
    pub is_static: i32,
    pub next_field: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpObjectData {
    pub method_table: u64,
    pub object_type: u32,
    pub size: u64,
    pub element_type_handle: u64,
    pub element_type: u32,
    pub rank: u32,
    pub num_components: u64,
    pub component_size: u64,
    pub array_data: u64,
    pub array_bounds: u64,
    pub array_lower_bounds: u64,
    pub rcw: u64,
    pub ccw: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpAppDomainStoreData {
    pub shared_domain: u64,
    pub system_domain: u64,
    pub domain_count: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpAppDomainData {
    pub app_domain_ptr: u64,
    pub app_sec_desc: u64,
    pub low_frequency_heap: u64,
    pub high_frequency_heap: u64,
    pub stub_heap: u64,
    pub domain_local_block: u64,
    pub domain_local_modules: u64,
    pub id: u32,
    pub assembly_count: i32,
    pub failed_assembly_count: i32,
    pub stage: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpJitManagerInfo {
    pub manager_addr: u64,
    pub code_type: u32,
    pub ptr_heap_list: u64,
}

/// A code heap: `code_heap_type` 0 (CODEHEAP_LOADER: `first` is its loader heap), 1
/// (CODEHEAP_HOST: `first` the base, `second` the current address), else unknown.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpJitCodeHeapInfo {
    pub code_heap_type: u32,
    pub first: u64,
    pub second: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpSyncBlockData {
    pub object: u64,
    pub free: i32,
    pub sync_block_pointer: u64,
    pub com_flags: u32,
    pub monitor_held: u32,
    pub recursion: u32,
    pub holding_thread: u64,
    pub additional_thread_count: u32,
    pub app_domain_ptr: u64,
    pub sync_block_count: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpExceptionObjectData {
    pub message: u64,
    pub inner_exception: u64,
    pub stack_trace: u64,
    pub watson_buckets: u64,
    pub stack_trace_string: u64,
    pub remote_stack_trace_string: u64,
    pub hresult: i32,
    pub xcode: i32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpThreadStoreData {
    pub thread_count: i32,
    pub unstarted_thread_count: i32,
    pub background_thread_count: i32,
    pub pending_thread_count: i32,
    pub dead_thread_count: i32,
    pub first_thread: u64,
    pub finalizer_thread: u64,
    pub gc_thread: u64,
    pub host_config: u32,
}

/// An item of ISOSHandleEnum.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SosHandleData {
    pub app_domain: u64,
    pub handle: u64,
    pub secondary: u64,
    pub handle_type: u32,
    pub strong_reference: i32,
    pub ref_count: u32,
    pub jupiter_ref_count: u32,
    pub is_pegged: i32,
}

/// An item of ISOSStackRefEnum.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SosStackRefData {
    pub has_register_information: i32,
    pub register: i32,
    pub offset: i32,
    pub address: u64,
    pub object: u64,
    pub flags: u32,
    pub source_type: u32,
    pub source: u64,
    pub stack_pointer: u64,
}

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
