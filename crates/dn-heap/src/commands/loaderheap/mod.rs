//! `eeheap -loader`: the runtime's loader heaps as SOS lists them: per app domain its loader
//! allocator's heaps grouped by kind, each JIT manager's code heaps, and the modules' thunk
//! heaps, with each block's reserved size and the part of it the dump holds.

use serde::Serialize;

use crate::dac::{CodeHeap, Dac, LoaderBlock, LoaderHeapLayout, StubHeapType};
use crate::memory::MemorySource;

use super::{ser_hex, ser_hex_opt, Session};

mod kind;
mod text;

pub use kind::NativeHeapKind;
pub(super) use text::memory_size;

/// One block of a loader heap.
#[derive(Debug, Clone, Serialize)]
pub struct HeapBlock {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    /// Bytes the block reserves.
    pub reserved: u64,
    /// Bytes of it the dump holds, read page by page from the start (SOS's "actual size": the
    /// committed part, when the dump has every committed page).
    pub committed: u64,
    /// The block the heap allocates from now.
    pub current: bool,
    /// `reserved - committed` of a block that is not the current one (SOS's "wasted").
    pub wasted: u64,
}

/// A domain's heaps of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindHeaps {
    pub kind: NativeHeapKind,
    pub blocks: Vec<HeapBlock>,
    pub size: u64,
    pub wasted: u64,
}

/// An app domain and its loader allocator's heaps.
#[derive(Debug, Clone, Serialize)]
pub struct DomainHeaps {
    /// "System Domain", "Shared Domain", "Domain 1", ...
    pub name: String,
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    /// The domain's loader allocator (ISOSDacInterface13; `None` before .NET 8).
    #[serde(serialize_with = "ser_hex_opt")]
    pub loader_allocator: Option<u64>,
    /// Heaps not already listed under an earlier domain, by kind in SOS's order. Empty when
    /// the domain shares every heap with an earlier one (SOS: "No unique loader heaps found.").
    pub heaps: Vec<KindHeaps>,
    pub size: u64,
    pub wasted: u64,
}

/// One code heap block of a JIT manager.
#[derive(Debug, Clone, Serialize)]
pub struct CodeHeapRow {
    pub kind: NativeHeapKind,
    #[serde(flatten)]
    pub block: HeapBlock,
}

/// A JIT manager and its code heaps.
#[derive(Debug, Clone, Serialize)]
pub struct JitManagerHeaps {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    /// By kind, then address.
    pub heaps: Vec<CodeHeapRow>,
    pub size: u64,
    pub wasted: u64,
}

/// The modules' thunk heaps, summed.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleHeapsTotal {
    pub modules: usize,
    pub size: u64,
    pub wasted: u64,
}

/// `eeheap -loader`.
#[derive(Debug, Clone, Serialize)]
pub struct LoaderHeaps {
    pub domains: Vec<DomainHeaps>,
    pub jit_managers: Vec<JitManagerHeaps>,
    /// Modules with a thunk heap (`None` when none has one, and SOS prints no section).
    pub module_thunk_heaps: Option<ModuleHeapsTotal>,
    /// Every heap above: the sum of the blocks' `committed`.
    pub total_size: u64,
    pub total_wasted: u64,
    /// What could not be read (a domain, heap or JIT manager the DAC refused), each once.
    pub warnings: Vec<String>,
}

/// The part of `[start, start + size)` the dump holds, from `start` up to the first page it
/// lacks (SOS reads page by page and stops at the first failure).
fn held_prefix(mem: &dyn MemorySource, start: u64, size: u64) -> u64 {
    const PAGE: u64 = 0x1000;
    let mut buf = [0u8; PAGE as usize];
    let Some(end) = start.checked_add(size) else {
        return 0;
    };
    let mut at = start;
    let mut held = 0u64;
    while at < end && matches!(mem.read(at, &mut buf), Ok(n) if n > 0) {
        held += PAGE;
        at = match at.checked_add(PAGE) {
            Some(a) => a,
            None => break,
        };
    }
    held
}

fn block_row(mem: &dyn MemorySource, b: &LoaderBlock) -> HeapBlock {
    let committed = if b.size > 0 {
        held_prefix(mem, b.address, b.size)
    } else {
        0
    };
    let wasted = if committed < b.size && !b.current {
        b.size - committed
    } else {
        0
    };
    HeapBlock {
        address: b.address,
        reserved: b.size,
        committed,
        current: b.current,
        wasted,
    }
}

/// A domain's heap blocks by kind, from its loader allocator (.NET 8+) or, before, from its
/// three heaps and its virtual call stub heaps.
fn domain_blocks(
    dac: &Dac,
    domain: u64,
    heap_names: &[String],
    warnings: &mut Vec<String>,
) -> (Option<u64>, Vec<(NativeHeapKind, LoaderBlock)>) {
    let mut out = Vec::new();
    let la = if dac.has_loader_allocators() {
        match dac.domain_loader_allocator(domain) {
            Ok(la) => Some(la).filter(|&la| la != 0),
            Err(e) => {
                warnings.push(format!("domain {domain:x}: {e}"));
                None
            }
        }
    } else {
        None
    };
    if let (Some(la), false) = (la, heap_names.is_empty()) {
        match dac.loader_allocator_heaps(la) {
            Ok(heaps) => {
                for (i, (heap, layout)) in heaps.into_iter().enumerate() {
                    let name = heap_names.get(i).map(String::as_str).unwrap_or("");
                    let kind = NativeHeapKind::from_runtime_name(name);
                    match dac.loader_heap_blocks(heap, layout) {
                        Ok(blocks) => out.extend(blocks.into_iter().map(|b| (kind, b))),
                        Err(e) => {
                            warnings.push(format!("{name} {heap:x} of domain {domain:x}: {e}"))
                        }
                    }
                }
            }
            Err(e) => warnings.push(format!("loader allocator {la:x}: {e}")),
        }
        return (Some(la), out);
    }
    match dac.app_domain_heaps(domain) {
        Ok([low, high, stub]) => {
            for (heap, kind) in [
                (stub, NativeHeapKind::StubHeap),
                (high, NativeHeapKind::HighFrequencyHeap),
                (low, NativeHeapKind::LowFrequencyHeap),
            ] {
                match dac.loader_heap_blocks(heap, LoaderHeapLayout::Normal) {
                    Ok(blocks) => out.extend(blocks.into_iter().map(|b| (kind, b))),
                    Err(e) => warnings.push(format!(
                        "{} {heap:x} of domain {domain:x}: {e}",
                        kind.name()
                    )),
                }
            }
        }
        Err(e) => warnings.push(format!("domain {domain:x}: {e}")),
    }
    for t in StubHeapType::ALL {
        let kind = NativeHeapKind::of_stub_heap(t);
        match dac.stub_heap_blocks(domain, t) {
            Ok(blocks) => out.extend(blocks.into_iter().map(|b| (kind, b))),
            // E_INVALIDARG: a heap type this runtime does not have (VtableHeap before .NET 5).
            Err(crate::dac::DacError::Call {
                hr: 0x8007_0057, ..
            }) => {}
            Err(e) => warnings.push(format!("{} of domain {domain:x}: {e}", kind.name())),
        }
    }
    (la, out)
}

fn domain_heaps(
    s: &Session,
    name: String,
    domain: u64,
    heap_names: &[String],
    seen: &mut std::collections::HashSet<u64>,
    warnings: &mut Vec<String>,
) -> DomainHeaps {
    let rt = &s.runtime;
    let mem = rt.heap.memory();
    let (loader_allocator, blocks) = domain_blocks(&rt.dac, domain, heap_names, warnings);
    let mut by_kind: Vec<KindHeaps> = Vec::new();
    for (kind, b) in blocks {
        // A block already listed under an earlier domain (a shared loader allocator) is not
        // listed again.
        if !seen.insert(b.address) {
            continue;
        }
        let row = block_row(mem, &b);
        let i = match by_kind.iter().position(|k| k.kind == kind) {
            Some(i) => i,
            None => {
                by_kind.push(KindHeaps {
                    kind,
                    blocks: Vec::new(),
                    size: 0,
                    wasted: 0,
                });
                by_kind.len() - 1
            }
        };
        let k = &mut by_kind[i];
        k.size = k.size.saturating_add(row.committed);
        k.wasted = k.wasted.saturating_add(row.wasted);
        k.blocks.push(row);
    }
    by_kind.sort_by_key(|k| k.kind.domain_order());
    DomainHeaps {
        name,
        address: domain,
        loader_allocator,
        size: by_kind.iter().map(|k| k.size).fold(0, u64::saturating_add),
        wasted: by_kind
            .iter()
            .map(|k| k.wasted)
            .fold(0, u64::saturating_add),
        heaps: by_kind,
    }
}

fn jit_manager_heaps(s: &Session, mgr: u64, warnings: &mut Vec<String>) -> JitManagerHeaps {
    let rt = &s.runtime;
    let mem = rt.heap.memory();
    let mut rows = Vec::new();
    match rt.dac.code_heaps(mgr) {
        Ok(heaps) => {
            for h in heaps {
                match h {
                    CodeHeap::Loader(heap) => {
                        match rt
                            .dac
                            .loader_heap_blocks(heap, LoaderHeapLayout::ExplicitControl)
                        {
                            Ok(blocks) => rows.extend(blocks.iter().map(|b| CodeHeapRow {
                                kind: NativeHeapKind::LoaderCodeHeap,
                                block: block_row(mem, b),
                            })),
                            Err(e) => warnings.push(format!("code heap {heap:x}: {e}")),
                        }
                    }
                    CodeHeap::Host { base, current } => rows.push(CodeHeapRow {
                        kind: NativeHeapKind::HostCodeHeap,
                        // The host code heap is all in use up to its current address.
                        block: block_row(
                            mem,
                            &LoaderBlock {
                                address: base,
                                size: current.saturating_sub(base),
                                current: true,
                            },
                        ),
                    }),
                    CodeHeap::Unknown(addr) => rows.push(CodeHeapRow {
                        kind: NativeHeapKind::Unknown,
                        block: block_row(
                            mem,
                            &LoaderBlock {
                                address: addr,
                                size: 0,
                                current: true,
                            },
                        ),
                    }),
                }
            }
        }
        Err(e) => warnings.push(format!("JIT manager {mgr:x}: {e}")),
    }
    rows.sort_by_key(|r| (r.kind, r.block.address));
    JitManagerHeaps {
        address: mgr,
        size: rows
            .iter()
            .map(|r| r.block.committed)
            .fold(0, u64::saturating_add),
        wasted: rows
            .iter()
            .map(|r| r.block.wasted)
            .fold(0, u64::saturating_add),
        heaps: rows,
    }
}

fn module_thunk_heaps(s: &Session, warnings: &mut Vec<String>) -> Option<ModuleHeapsTotal> {
    let rt = &s.runtime;
    let mem = rt.heap.memory();
    let modules = match rt.dac.modules() {
        Ok(m) => m,
        Err(e) => {
            warnings.push(format!("modules: {e}"));
            return None;
        }
    };
    warnings.extend(modules.warning("their thunk heaps are not counted"));
    let mut total = ModuleHeapsTotal {
        modules: 0,
        size: 0,
        wasted: 0,
    };
    for m in modules.modules {
        let thunk = match rt.dac.module_heaps(m) {
            Ok(h) if h.thunk_heap != 0 => h.thunk_heap,
            Ok(_) => continue,
            Err(e) => {
                warnings.push(format!("module {m:x}: {e}"));
                continue;
            }
        };
        total.modules += 1;
        match rt.dac.loader_heap_blocks(thunk, LoaderHeapLayout::Normal) {
            Ok(blocks) => {
                for b in &blocks {
                    let row = block_row(mem, b);
                    total.size = total.size.saturating_add(row.committed);
                    total.wasted = total.wasted.saturating_add(row.wasted);
                }
            }
            Err(e) => warnings.push(format!("thunk heap {thunk:x} of module {m:x}: {e}")),
        }
    }
    (total.modules > 0).then_some(total)
}

/// `eeheap -loader`.
pub fn loader_heaps(s: &Session) -> anyhow::Result<LoaderHeaps> {
    let rt = &s.runtime;
    let mut warnings = Vec::new();
    let heap_names = if rt.dac.has_loader_allocators() {
        rt.dac.loader_allocator_heap_names().unwrap_or_else(|e| {
            warnings.push(format!("loader heap names: {e}"));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let ad = rt.dac.app_domains()?;
    let mut named = Vec::new();
    if ad.system != 0 {
        named.push(("System Domain".to_string(), ad.system));
    }
    if ad.shared != 0 {
        named.push(("Shared Domain".to_string(), ad.shared));
    }
    for (i, &d) in ad.domains.iter().enumerate() {
        named.push((format!("Domain {}", i + 1), d));
    }
    let mut seen = std::collections::HashSet::new();
    let mut domains = Vec::new();
    for (name, d) in named {
        if s.cancelled() {
            anyhow::bail!("eeheap: interrupted");
        }
        domains.push(domain_heaps(
            s,
            name,
            d,
            &heap_names,
            &mut seen,
            &mut warnings,
        ));
    }
    let jit_managers: Vec<JitManagerHeaps> = match rt.dac.jit_managers() {
        Ok(m) => m
            .into_iter()
            .map(|m| jit_manager_heaps(s, m, &mut warnings))
            .collect(),
        Err(e) => {
            warnings.push(format!("JIT managers: {e}"));
            Vec::new()
        }
    };
    let module_thunk_heaps = module_thunk_heaps(s, &mut warnings);
    let sizes = domains
        .iter()
        .map(|d| (d.size, d.wasted))
        .chain(jit_managers.iter().map(|j| (j.size, j.wasted)))
        .chain(module_thunk_heaps.iter().map(|m| (m.size, m.wasted)));
    let (total_size, total_wasted) = sizes.fold((0u64, 0u64), |(s, w), (a, b)| {
        (s.saturating_add(a), w.saturating_add(b))
    });
    Ok(LoaderHeaps {
        domains,
        jit_managers,
        module_thunk_heaps,
        total_size,
        total_wasted,
        warnings,
    })
}
