//! The structs the DAC's ISOSDacInterface slots fill (dacprivate.h, x64 layouts; sizes and
//! offsets asserted in the parent module).

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

/// A module's thread statics on one thread (before .NET 9).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DacpThreadLocalModuleData {
    pub thread: u64,
    pub module_index: u64,
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
