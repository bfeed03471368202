//! The runtime's loader heaps through the DAC: app domains, their loader allocators' heaps
//! (ISOSDacInterface13 on .NET 8 and later; the domain's three heaps and the virtual call stub
//! heaps before), the JIT managers' code heaps, and each module's thunk heap.

use std::cell::RefCell;
use std::ffi::CStr;

use super::iface::{
    call, ComRef, DacGuard, DacpAppDomainData, DacpAppDomainStoreData, DacpJitCodeHeapInfo,
    DacpJitManagerInfo, DacpModuleData, SosDac, SosDac13,
};
use super::*;

/// The runtime's app domains: the system domain, the shared domain (0 on .NET Core) and the
/// others in the runtime's order.
#[derive(Debug, Clone)]
pub struct AppDomains {
    pub system: u64,
    pub shared: u64,
    pub domains: Vec<u64>,
}

/// How the runtime lays out a loader heap (sospriv.idl's LoaderHeapKind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderHeapLayout {
    /// A `LoaderHeap` (has a vtable).
    Normal,
    /// An `ExplicitControlLoaderHeap` (has none): the JIT's loader code heaps.
    ExplicitControl,
}

impl LoaderHeapLayout {
    fn raw(self) -> i32 {
        match self {
            LoaderHeapLayout::Normal => 0,
            LoaderHeapLayout::ExplicitControl => 1,
        }
    }

    fn from_raw(v: i32) -> Option<Self> {
        match v {
            0 => Some(LoaderHeapLayout::Normal),
            1 => Some(LoaderHeapLayout::ExplicitControl),
            _ => None,
        }
    }
}

/// One block of a loader heap as the DAC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderBlock {
    pub address: u64,
    /// Reserved bytes (0 when the DAC gave a size past `i32::MAX` or negative, as ClrMD does).
    pub size: u64,
    /// The block the heap allocates from now.
    pub current: bool,
}

/// The virtual call stub heaps of a domain (sospriv.idl's VCSHeapType), in the runtime's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubHeapType {
    Indcell,
    Lookup,
    Resolve,
    Dispatch,
    CacheEntry,
    Vtable,
}

impl StubHeapType {
    pub const ALL: [StubHeapType; 6] = [
        StubHeapType::Indcell,
        StubHeapType::Lookup,
        StubHeapType::Resolve,
        StubHeapType::Dispatch,
        StubHeapType::CacheEntry,
        StubHeapType::Vtable,
    ];
}

/// A JIT manager's code heap (DacpJitCodeHeapInfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeHeap {
    /// A `LoaderCodeHeap`: its explicit-control loader heap.
    Loader(u64),
    /// A `HostCodeHeap`: base and current address.
    Host { base: u64, current: u64 },
    /// A kind this tool does not know, at this address.
    Unknown(u64),
}

/// What eeheap reads of a module.
#[derive(Debug, Clone, Copy)]
pub struct ModuleHeaps {
    pub loader_allocator: u64,
    pub thunk_heap: u64,
}

/// The most blocks one heap may report: a real heap has a few hundred at most.
const MAX_BLOCKS: usize = 1 << 20;
/// The most entries of any list the DAC sizes for us.
const MAX_LIST: u32 = 1 << 16;

thread_local! {
    /// Where [`visit_block`] collects; `None` outside a traversal. Thread-local because the
    /// callback has no context argument; the DAC calls it on the calling thread.
    static VISITED: RefCell<Option<Vec<LoaderBlock>>> = const { RefCell::new(None) };
}

/// The VISITHEAP callback. Must not panic (it is called from C++).
unsafe extern "C" fn visit_block(address: u64, size: usize, current: i32) {
    let size = if size > i32::MAX as usize {
        0
    } else {
        size as u64
    };
    let _ = VISITED.try_with(|v| {
        if let Ok(mut v) = v.try_borrow_mut() {
            if let Some(list) = v.as_mut() {
                if list.len() <= MAX_BLOCKS {
                    list.push(LoaderBlock {
                        address,
                        size,
                        current: current != 0,
                    });
                }
            }
        }
    });
}

/// Runs one traversal with the collecting callback; its blocks, or the DAC's failure.
fn collect_blocks(
    call_name: &'static str,
    traverse: impl FnOnce() -> HResult,
) -> Result<Vec<LoaderBlock>> {
    VISITED.with(|v| *v.borrow_mut() = Some(Vec::new()));
    let hr = traverse();
    let blocks = VISITED.with(|v| v.borrow_mut().take()).unwrap_or_default();
    check(call_name, hr)?;
    if blocks.len() > MAX_BLOCKS {
        return Err(DacError::TooMany {
            what: "loader heap blocks",
            count: blocks.len() as u64,
            max: MAX_BLOCKS as u64,
        });
    }
    Ok(blocks)
}

/// A DAC-sized list: asks for the count (`fill(0, null)`), checks it, then fills.
fn sized_list<T: Default + Clone>(
    what: &'static str,
    mut fill: impl FnMut(u32, *mut T, &mut u32) -> HResult,
    call_name: &'static str,
) -> Result<Vec<T>> {
    let mut needed = 0u32;
    check(call_name, fill(0, std::ptr::null_mut(), &mut needed))?;
    if needed > MAX_LIST {
        return Err(DacError::TooMany {
            what,
            count: needed.into(),
            max: MAX_LIST.into(),
        });
    }
    if needed == 0 {
        return Ok(Vec::new());
    }
    let mut items = vec![T::default(); needed as usize];
    // Some calls (GetJitManagerList) do not write the count back when they fill.
    let mut got = needed;
    check(call_name, fill(needed, items.as_mut_ptr(), &mut got))?;
    items.truncate(got.min(needed) as usize);
    Ok(items)
}

impl Dac {
    fn sos13_ref<'g>(&self, g: &'g DacGuard) -> Option<ComRef<'g, SosDac13>> {
        let raw = self.sos_n[13]?;
        // SAFETY: `raw` is a live ISOSDacInterface13 for the Dac's lifetime.
        unsafe { ComRef::add_ref(g, raw.0) }
    }

    /// Whether the DAC offers ISOSDacInterface13 (.NET 8 and later).
    pub fn has_loader_allocators(&self) -> bool {
        self.sos_n[13].is_some()
    }

    /// GetAppDomainStoreData and GetAppDomainList.
    pub fn app_domains(&self) -> Result<AppDomains> {
        /// No runtime has more; a larger count is damage.
        const MAX_DOMAINS: i32 = 4096;
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut store = DacpAppDomainStoreData::default();
        // SAFETY: GetAppDomainStoreData(*DacpAppDomainStoreData).
        check("GetAppDomainStoreData", unsafe {
            call!(sos, get_app_domain_store_data, &mut store)
        })?;
        if !(0..=MAX_DOMAINS).contains(&store.domain_count) {
            return Err(DacError::TooMany {
                what: "app domains",
                count: store.domain_count as u64,
                max: MAX_DOMAINS as u64,
            });
        }
        let mut domains = vec![0u64; store.domain_count as usize];
        if !domains.is_empty() {
            let mut needed = 0u32;
            // SAFETY: GetAppDomainList(count, u64[count], *needed) writes at most `count`.
            check("GetAppDomainList", unsafe {
                call!(
                    sos,
                    get_app_domain_list,
                    domains.len() as u32,
                    domains.as_mut_ptr(),
                    &mut needed
                )
            })?;
            domains.truncate(needed as usize);
        }
        domains.retain(|&d| d != 0);
        Ok(AppDomains {
            system: store.system_domain,
            shared: store.shared_domain,
            domains,
        })
    }

    /// GetAppDomainData: the domain's (low frequency, high frequency, stub) loader heaps.
    pub fn app_domain_heaps(&self, domain: u64) -> Result<[u64; 3]> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpAppDomainData::default();
        // SAFETY: GetAppDomainData(u64, *DacpAppDomainData).
        check("GetAppDomainData", unsafe {
            call!(sos, get_app_domain_data, domain, &mut d)
        })?;
        Ok([d.low_frequency_heap, d.high_frequency_heap, d.stub_heap])
    }

    /// The assemblies of a domain (GetAssemblyList), then their modules (GetAssemblyModuleList).
    pub fn domain_modules(&self, domain: u64) -> Result<Vec<u64>> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let assemblies = sized_list(
            "assemblies",
            |count, out, needed| {
                let mut n = 0i32;
                // SAFETY: GetAssemblyList(domain, count, u64[count] or null, *needed).
                let hr =
                    unsafe { call!(sos, get_assembly_list, domain, count as i32, out, &mut n) };
                *needed = n.max(0) as u32;
                hr
            },
            "GetAssemblyList",
        )?;
        let mut modules = Vec::new();
        for a in assemblies.into_iter().filter(|&a| a != 0) {
            let mods = sized_list(
                "modules of an assembly",
                |count, out, needed| {
                    // SAFETY: GetAssemblyModuleList(assembly, count, u64[count] or null, *needed).
                    unsafe { call!(sos, get_assembly_module_list, a, count, out, needed) }
                },
                "GetAssemblyModuleList",
            )?;
            modules.extend(mods.into_iter().filter(|&m| m != 0));
        }
        Ok(modules)
    }

    /// The one typed GetModuleData call (under the caller's DAC lock).
    pub(super) fn module_data_raw(
        &self,
        sos: &ComRef<'_, SosDac>,
        module: u64,
    ) -> Result<DacpModuleData> {
        let mut d = DacpModuleData::default();
        // SAFETY: GetModuleData(u64, *DacpModuleData).
        check("GetModuleData", unsafe {
            call!(sos, get_module_data, module, &mut d)
        })?;
        Ok(d)
    }

    /// A module's loader allocator and thunk heap (GetModuleData).
    pub fn module_heaps(&self, module: u64) -> Result<ModuleHeaps> {
        let g = lock();
        let d = self.module_data_raw(&self.sos_ref(&g), module)?;
        Ok(ModuleHeaps {
            loader_allocator: d.loader_allocator,
            thunk_heap: d.thunk_heap,
        })
    }

    /// ISOSDacInterface13::GetDomainLoaderAllocator (0 when the domain has none).
    pub fn domain_loader_allocator(&self, domain: u64) -> Result<u64> {
        let g = lock();
        let sos13 = self
            .sos13_ref(&g)
            .ok_or(DacError::Unsupported("ISOSDacInterface13"))?;
        let mut la = 0u64;
        // SAFETY: GetDomainLoaderAllocator(u64, *u64).
        check("GetDomainLoaderAllocator", unsafe {
            call!(sos13, get_domain_loader_allocator, domain, &mut la)
        })?;
        Ok(la)
    }

    /// ISOSDacInterface13::GetLoaderAllocatorHeapNames: the name of each heap slot, in the
    /// order GetLoaderAllocatorHeaps returns the heaps.
    pub fn loader_allocator_heap_names(&self) -> Result<Vec<String>> {
        let g = lock();
        let sos13 = self
            .sos13_ref(&g)
            .ok_or(DacError::Unsupported("ISOSDacInterface13"))?;
        let names = sized_list(
            "loader heap names",
            |count, out: *mut usize, needed| {
                let mut n = 0i32;
                // SAFETY: GetLoaderAllocatorHeapNames(count, char*[count] or null, *needed).
                let hr = unsafe {
                    call!(
                        sos13,
                        get_loader_allocator_heap_names,
                        count as i32,
                        out as *mut *const std::ffi::c_char,
                        &mut n
                    )
                };
                *needed = n.max(0) as u32;
                hr
            },
            "GetLoaderAllocatorHeapNames",
        )?;
        Ok(names
            .into_iter()
            .map(|p| {
                if p == 0 {
                    return String::new();
                }
                // SAFETY: the DAC returns pointers to static NUL-terminated strings in its own
                // image, which is never unloaded.
                unsafe { CStr::from_ptr(p as *const std::ffi::c_char) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect())
    }

    /// ISOSDacInterface13::GetLoaderAllocatorHeaps: each heap's address and layout, in the
    /// order of [`Dac::loader_allocator_heap_names`].
    pub fn loader_allocator_heaps(&self, la: u64) -> Result<Vec<(u64, LoaderHeapLayout)>> {
        let g = lock();
        let sos13 = self
            .sos13_ref(&g)
            .ok_or(DacError::Unsupported("ISOSDacInterface13"))?;
        let mut needed = 0i32;
        // SAFETY: GetLoaderAllocatorHeaps(la, 0, null, null, *needed) only sizes.
        check("GetLoaderAllocatorHeaps", unsafe {
            call!(
                sos13,
                get_loader_allocator_heaps,
                la,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut needed
            )
        })?;
        if !(0..=MAX_LIST as i32).contains(&needed) {
            return Err(DacError::TooMany {
                what: "loader allocator heaps",
                count: needed as u64,
                max: MAX_LIST.into(),
            });
        }
        let n = needed as usize;
        let (mut heaps, mut kinds) = (vec![0u64; n], vec![0i32; n]);
        // SAFETY: both arrays hold `n` entries.
        check("GetLoaderAllocatorHeaps", unsafe {
            call!(
                sos13,
                get_loader_allocator_heaps,
                la,
                n as i32,
                heaps.as_mut_ptr(),
                kinds.as_mut_ptr(),
                &mut needed
            )
        })?;
        Ok(heaps
            .into_iter()
            .zip(kinds)
            .map(|(h, k)| {
                (
                    h,
                    LoaderHeapLayout::from_raw(k).unwrap_or(LoaderHeapLayout::Normal),
                )
            })
            .collect())
    }

    /// The blocks of a loader heap: ISOSDacInterface13::TraverseLoaderHeap, which knows both
    /// layouts; before .NET 8, ISOSDacInterface::TraverseLoaderHeap, which reads every heap as
    /// a `LoaderHeap`, so an explicit-control heap is passed one pointer lower (where its
    /// fields would start after a vtable), as ClrMD does.
    pub fn loader_heap_blocks(
        &self,
        heap: u64,
        layout: LoaderHeapLayout,
    ) -> Result<Vec<LoaderBlock>> {
        if heap == 0 {
            return Ok(Vec::new());
        }
        let g = lock();
        if let Some(sos13) = self.sos13_ref(&g) {
            return collect_blocks("TraverseLoaderHeap", || {
                // SAFETY: TraverseLoaderHeap(u64, kind, callback); the callback is valid for
                // the call and only touches this thread's collector.
                unsafe { call!(sos13, traverse_loader_heap, heap, layout.raw(), visit_block) }
            });
        }
        let sos = self.sos_ref(&g);
        let adjusted = match layout {
            LoaderHeapLayout::Normal => heap,
            LoaderHeapLayout::ExplicitControl => heap.wrapping_sub(8),
        };
        collect_blocks("TraverseLoaderHeap", || {
            // SAFETY: TraverseLoaderHeap(u64, callback), as above.
            unsafe { call!(sos, traverse_loader_heap, adjusted, visit_block) }
        })
    }

    /// ISOSDacInterface::TraverseVirtCallStubHeap: a domain's virtual call stub heap (the
    /// runtimes before .NET 8, whose loader allocators the DAC does not list).
    pub fn stub_heap_blocks(&self, domain: u64, kind: StubHeapType) -> Result<Vec<LoaderBlock>> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let raw = StubHeapType::ALL
            .iter()
            .position(|&k| k == kind)
            .unwrap_or(0) as i32;
        collect_blocks("TraverseVirtCallStubHeap", || {
            // SAFETY: TraverseVirtCallStubHeap(domain, VCSHeapType, callback), as above.
            unsafe { call!(sos, traverse_virt_call_stub_heap, domain, raw, visit_block) }
        })
    }

    /// GetJitManagerList: each JIT manager's address.
    pub fn jit_managers(&self) -> Result<Vec<u64>> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let list: Vec<DacpJitManagerInfo> = sized_list(
            "JIT managers",
            |count, out, needed| {
                // SAFETY: GetJitManagerList(count, DacpJitManagerInfo[count] or null, *needed).
                unsafe { call!(sos, get_jit_manager_list, count, out, needed) }
            },
            "GetJitManagerList",
        )?;
        Ok(list.into_iter().map(|m| m.manager_addr).collect())
    }

    /// GetCodeHeapList: a JIT manager's code heaps.
    pub fn code_heaps(&self, jit_manager: u64) -> Result<Vec<CodeHeap>> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let list: Vec<DacpJitCodeHeapInfo> = sized_list(
            "code heaps",
            |count, out, needed| {
                // SAFETY: GetCodeHeapList(manager, count, DacpJitCodeHeapInfo[count] or null,
                // *needed).
                unsafe { call!(sos, get_code_heap_list, jit_manager, count, out, needed) }
            },
            "GetCodeHeapList",
        )?;
        Ok(list
            .into_iter()
            .map(|h| match h.code_heap_type {
                0 => CodeHeap::Loader(h.first),
                1 => CodeHeap::Host {
                    base: h.first,
                    current: h.second,
                },
                _ => CodeHeap::Unknown(h.first),
            })
            .collect())
    }
}
