//! The staging buffer of copy-then-resume: one anonymous mapping, written
//! through *before* the target is stopped, so that copying into it while the target
//! waits costs memory bandwidth only (a buffer faulted in during the stop made
//! the stop three times longer than writing straight to the file).
//!
//! Its size is the smaller of what the target could need (its resident set
//! plus a margin) and the budget (`--max-buffer`, by default half of
//! `MemAvailable`); what does not fit is streamed to the file while stopped.

use std::io;

/// Share of `MemAvailable` the buffer may take when no budget is given.
const DEFAULT_SHARE_OF_AVAILABLE: u64 = 2;
/// Margin over the target's resident set (pages that become resident between
/// the estimate and the stop, shared-file pages that are not in RSS).
const MARGIN_BYTES: u64 = 32 << 20;

/// Back the buffer with transparent huge pages: one fault per 2 MiB instead of 512.
const HUGE_PAGES: bool = true;

pub struct Arena {
    ptr: *mut u8,
    len: usize,
}

impl Arena {
    /// No buffer: everything is streamed.
    pub fn empty() -> Arena {
        Arena {
            ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 0,
        }
    }

    /// An arena of `len` bytes, not yet faulted in; see [`Arena::populate`]. `len` 0 gives an
    /// empty arena.
    pub fn reserve(len: usize) -> io::Result<Arena> {
        if len == 0 {
            return Ok(Arena::empty());
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected. The result
        // is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if HUGE_PAGES {
            // SAFETY: advice on the mapping just created, whole; it changes how its pages are
            // backed, not their contents. Refused (THP off, old kernel): small pages, same result.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
        Ok(Arena {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Faults in every byte from `from` on. Every byte, not one per page: on a virtual machine
    /// whose host reclaims the guest's free memory (free page reporting), a page written once
    /// was still slow to fill the first time (the copy into it ran at a fifth of the speed of a
    /// warm buffer), and MADV_POPULATE_WRITE's zero-filled pages were no better.
    pub fn populate(&mut self, from: usize) {
        if let Some(rest) = self.as_mut_slice().get_mut(from..) {
            // Page faults on different pages proceed in parallel.
            let share = rest.len().div_ceil(crate::warm::THREADS).max(1);
            std::thread::scope(|scope| {
                for part in rest.chunks_mut(share) {
                    scope.spawn(move || part.fill(0xa5));
                }
            });
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live mapping of `len` bytes owned by this arena (or dangling with
        // len 0); the exclusive borrow of `self` makes the slice the only view of it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the mapping this arena owns; no slice outlives `self`.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

// SAFETY: the arena owns its mapping outright, like a Vec<u8>.
unsafe impl Send for Arena {}

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&text, "MemAvailable:")
}

/// The default budget: a share of the memory available now.
pub fn default_budget() -> u64 {
    mem_available().unwrap_or(0) / DEFAULT_SHARE_OF_AVAILABLE
}

/// What a dump of `pid` could need to buffer: its resident set plus a margin.
pub fn estimate_need(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let rss = kib_field(&text, "Rss:").unwrap_or(0);
    rss.saturating_add(rss / 8).saturating_add(MARGIN_BYTES)
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    let v = text.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_is_writable() {
        let mut a = Arena::reserve(3 << 20).unwrap();
        a.populate(1 << 20);
        assert_eq!(a.as_mut_slice().len(), 3 << 20);
        let s = a.as_mut_slice();
        s[12345] = 7;
        assert_eq!(a.as_mut_slice()[12345], 7);
        assert_eq!(Arena::reserve(0).unwrap().as_mut_slice().len(), 0);
        assert_eq!(Arena::empty().as_mut_slice().len(), 0);
    }

    #[test]
    fn own_need_and_budget_are_read() {
        assert!(estimate_need(std::process::id() as i32) > MARGIN_BYTES);
        assert!(default_budget() > 0);
        assert_eq!(kib_field("Rss:  12 kB\n", "Rss:"), Some(12 * 1024));
        assert_eq!(kib_field("Rss: x kB\n", "Rss:"), None);
    }
}
