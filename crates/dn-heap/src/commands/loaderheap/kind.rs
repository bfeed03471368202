//! The kinds of loader heap, by SOS's names and in its order.

use serde::Serialize;

use crate::dac::StubHeapType;

/// What a loader heap is for (SOS's names, which are ClrMD's `NativeHeapKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NativeHeapKind {
    /// A heap whose runtime name this tool (and SOS) does not know.
    Unknown,
    IndirectionCellHeap,
    LookupHeap,
    ResolveHeap,
    DispatchHeap,
    CacheEntryHeap,
    VtableHeap,
    LoaderCodeHeap,
    HostCodeHeap,
    StubHeap,
    HighFrequencyHeap,
    LowFrequencyHeap,
    ExecutableHeap,
    FixupPrecodeHeap,
    NewStubPrecodeHeap,
    ThunkHeap,
}

impl NativeHeapKind {
    /// The kind of a heap named by ISOSDacInterface13::GetLoaderAllocatorHeapNames.
    pub fn from_runtime_name(name: &str) -> NativeHeapKind {
        match name {
            "LowFrequencyHeap" => NativeHeapKind::LowFrequencyHeap,
            "HighFrequencyHeap" => NativeHeapKind::HighFrequencyHeap,
            "StubHeap" => NativeHeapKind::StubHeap,
            "ExecutableHeap" => NativeHeapKind::ExecutableHeap,
            "FixupPrecodeHeap" => NativeHeapKind::FixupPrecodeHeap,
            "NewStubPrecodeHeap" => NativeHeapKind::NewStubPrecodeHeap,
            "IndcellHeap" => NativeHeapKind::IndirectionCellHeap,
            "LookupHeap" => NativeHeapKind::LookupHeap,
            "ResolveHeap" => NativeHeapKind::ResolveHeap,
            "DispatchHeap" => NativeHeapKind::DispatchHeap,
            "CacheEntryHeap" => NativeHeapKind::CacheEntryHeap,
            "VtableHeap" => NativeHeapKind::VtableHeap,
            _ => NativeHeapKind::Unknown,
        }
    }

    pub(super) fn of_stub_heap(t: StubHeapType) -> NativeHeapKind {
        match t {
            StubHeapType::Indcell => NativeHeapKind::IndirectionCellHeap,
            StubHeapType::Lookup => NativeHeapKind::LookupHeap,
            StubHeapType::Resolve => NativeHeapKind::ResolveHeap,
            StubHeapType::Dispatch => NativeHeapKind::DispatchHeap,
            StubHeapType::CacheEntry => NativeHeapKind::CacheEntryHeap,
            StubHeapType::Vtable => NativeHeapKind::VtableHeap,
        }
    }

    /// SOS's order of a domain's heap kinds (the old native eeheap's order first).
    pub(super) fn domain_order(self) -> u32 {
        match self {
            NativeHeapKind::LowFrequencyHeap => 0,
            NativeHeapKind::HighFrequencyHeap => 1,
            NativeHeapKind::StubHeap => 2,
            NativeHeapKind::ExecutableHeap => 3,
            NativeHeapKind::FixupPrecodeHeap => 4,
            NativeHeapKind::NewStubPrecodeHeap => 5,
            NativeHeapKind::IndirectionCellHeap => 6,
            NativeHeapKind::LookupHeap => 7,
            NativeHeapKind::ResolveHeap => 8,
            NativeHeapKind::DispatchHeap => 9,
            NativeHeapKind::CacheEntryHeap => 10,
            NativeHeapKind::VtableHeap => 11,
            other => 100 + other as u32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NativeHeapKind::Unknown => "Unknown",
            NativeHeapKind::IndirectionCellHeap => "IndirectionCellHeap",
            NativeHeapKind::LookupHeap => "LookupHeap",
            NativeHeapKind::ResolveHeap => "ResolveHeap",
            NativeHeapKind::DispatchHeap => "DispatchHeap",
            NativeHeapKind::CacheEntryHeap => "CacheEntryHeap",
            NativeHeapKind::VtableHeap => "VtableHeap",
            NativeHeapKind::LoaderCodeHeap => "LoaderCodeHeap",
            NativeHeapKind::HostCodeHeap => "HostCodeHeap",
            NativeHeapKind::StubHeap => "StubHeap",
            NativeHeapKind::HighFrequencyHeap => "HighFrequencyHeap",
            NativeHeapKind::LowFrequencyHeap => "LowFrequencyHeap",
            NativeHeapKind::ExecutableHeap => "ExecutableHeap",
            NativeHeapKind::FixupPrecodeHeap => "FixupPrecodeHeap",
            NativeHeapKind::NewStubPrecodeHeap => "NewStubPrecodeHeap",
            NativeHeapKind::ThunkHeap => "ThunkHeap",
        }
    }
}
