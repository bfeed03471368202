//! A global allocator for the analyzing tools: the system allocator, plus a request for
//! transparent huge pages on every block of 8 MiB or more.
//!
//! The heap graph of a big dump lives in a few arrays of hundreds of megabytes that are filled
//! once and then read at random. On virtual machines where the first touch of a page is
//! expensive, taking those pages 4 KiB at a time costs about a quarter of the analysis
//! time; with huge pages the kernel takes them 2 MiB at a time. Kernels configured with
//! `transparent_hugepage=madvise` (the usual default) give huge pages only to ranges that ask
//! for them, which is what this allocator does. Where the kernel has none to give, the advice
//! is ignored and nothing changes.

use std::alloc::{GlobalAlloc, Layout, System};

/// The huge page size on x86-64 and arm64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;
/// Blocks at least this big are advised; smaller ones are not worth a system call.
const THRESHOLD: usize = 4 * HUGE_PAGE;

/// [`System`] with `madvise(MADV_HUGEPAGE)` on big blocks. Install it in a binary with
/// `#[global_allocator] static A: dn_core::hugealloc::HugePageAlloc = HugePageAlloc;`.
pub struct HugePageAlloc;

/// Asks for huge pages on the whole 2 MiB-aligned part of `[ptr, ptr + len)`.
fn advise(ptr: *mut u8, len: usize) {
    let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
    let end = (ptr as usize).saturating_add(len) & !(HUGE_PAGE - 1);
    if end > start {
        // SAFETY: the range lies inside a block the allocator just returned to us and that
        // nobody else uses yet; MADV_HUGEPAGE changes no contents and no mapping, only how the
        // kernel backs the range. Its result is ignored on purpose: the advice is optional.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call is forwarded to `System` with the same arguments, so `System`'s
// guarantees hold; `advise` only adds advice on memory the caller now owns.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && layout.size() >= THRESHOLD {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && layout.size() >= THRESHOLD {
            advise(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, which is `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && new_size >= THRESHOLD {
            advise(p, new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_blocks_are_usable_and_small_ones_untouched() {
        let a = HugePageAlloc;
        for size in [16usize, THRESHOLD - 1, THRESHOLD, 3 * THRESHOLD + 12345] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: a non-zero size with a valid alignment; freed below with the same layout.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                p.write_bytes(7, size);
                let q = a.realloc(p, layout, size * 2);
                assert!(!q.is_null());
                assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 7));
                a.dealloc(q, Layout::from_size_align(size * 2, 8).unwrap());
            }
        }
    }
}
