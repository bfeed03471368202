//! The plain data the DAC returns, decoded from its structs.

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

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
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
    /// The runtime's record of the exceptions in flight under the current one (0: none).
    pub first_nested_exception: u64,
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
