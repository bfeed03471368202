//! ISOSDacInterface and its numbered successors (sospriv.idl): the slots dn calls, typed; the
//! others are placeholders of pointer size.

use std::ffi::c_void;

use super::structs::*;
use super::{IUnknownVtbl, Interface, Out, Unused};
use crate::dac::com::HResult;

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
    /// (thread, module index, *DacpThreadLocalModuleData): before .NET 9.
    pub get_thread_local_module_data:
        unsafe extern "system" fn(*mut c_void, u64, u32, Out<DacpThreadLocalModuleData>) -> HResult,
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
    /// (MethodTable, thread, *non-GC thread statics, *GC thread statics)
    pub get_thread_static_base_address:
        unsafe extern "system" fn(*mut c_void, u64, u64, Out<u64>, Out<u64>) -> HResult,
}
// SAFETY: prefix of ISOSDacInterface14 (slots 0..4).
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

/// IMetaDataImport::GetFieldProps: (FieldDef, *class, name buffer, buffer length, *name length,
/// *attributes, *signature, *signature length, *constant type, *constant value, *constant length).
pub type GetFieldProps = unsafe extern "system" fn(
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
) -> HResult;

/// IMetaDataImport (cor.h), up to GetFieldProps.
pub enum MetaDataImport {}
#[repr(C)]
pub struct MetaDataImportVtbl {
    pub base: IUnknownVtbl,
    _slots_3_56: [Unused; 54],
    /// (FieldDef, *class, name buffer, buffer length, *name length, *attributes, *signature,
    /// *signature length, *constant type, *constant value, *constant length)
    pub get_field_props: GetFieldProps,
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
