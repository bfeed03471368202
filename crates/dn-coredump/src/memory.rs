//! Reading the target's memory without changing it: pagemap first (which
//! pages exist), then process_vm_readv in large chunks with /proc/PID/mem as
//! fallback, and the backing file for file pages the target never touched.
//! Nothing here ever reads a page pagemap reports absent through the target:
//! such a read can allocate memory in it (dotnet/runtime#71472).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::maps::{Mapping, PAGE};

/// pagemap bit 63: page present in RAM; bit 62: page swapped out.
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
/// pagemap bit 55: written since the last `echo 4 > /proc/PID/clear_refs` (soft-dirty).
const PM_SOFT_DIRTY: u64 = 1 << 55;

/// A pagemap entry's page holds data (present in RAM or swapped out).
pub fn holds_data(entry: u64) -> bool {
    entry & (PM_PRESENT | PM_SWAPPED) != 0
}

/// A pagemap entry's page was written since the soft-dirty bits were cleared (a new mapping's
/// pages count as written).
pub fn soft_dirty(entry: u64) -> bool {
    entry & PM_SOFT_DIRTY != 0
}

pub struct RemoteMemory {
    pid: i32,
    mem: Option<File>,
    pagemap: File,
    vm_readv_works: bool,
}

impl RemoteMemory {
    /// Opens /proc/PID/mem and /proc/PID/pagemap. Must be called while the
    /// target is stopped (both need ptrace access).
    pub fn open(pid: i32) -> io::Result<Self> {
        let mem = File::open(format!("/proc/{pid}/mem")).ok();
        let pagemap = File::open(format!("/proc/{pid}/pagemap"))?;
        Ok(RemoteMemory {
            pid,
            mem,
            pagemap,
            vm_readv_works: true,
        })
    }

    /// For every page of [start, start + pages*PAGE): does it hold data
    /// (present or swapped)? One bulk read of the pagemap.
    pub fn resident_pages(&self, start: u64, pages: usize, out: &mut Vec<bool>) -> io::Result<()> {
        let mut raw = Vec::new();
        self.pagemap_entries(start, pages, &mut raw)?;
        out.clear();
        out.extend(raw.iter().map(|&v| holds_data(v)));
        Ok(())
    }

    /// The raw pagemap entry of every page of [start, start + pages*PAGE). One bulk read.
    pub fn pagemap_entries(&self, start: u64, pages: usize, out: &mut Vec<u64>) -> io::Result<()> {
        out.clear();
        let mut raw = vec![0u8; pages * 8];
        let done = match read_full_at(&self.pagemap, (start / PAGE) * 8, &mut raw) {
            (done, None) => done,
            (_, Some(e)) => return Err(e),
        };
        if done < raw.len() {
            // The process is gone (its pagemap reads as empty): never guess.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short pagemap read",
            ));
        }
        out.extend(
            raw.chunks_exact(8)
                .map(|e| u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]])),
        );
        Ok(())
    }

    /// Reads as much of [addr, addr + buf.len()) as possible, in order.
    /// Returns the number of leading bytes read (short at the first failure).
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_once(addr + done as u64, &mut buf[done..]);
            if n == 0 {
                break;
            }
            done += n;
        }
        done
    }

    fn read_once(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        if self.vm_readv_works {
            let local = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let remote = libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: buf.len(),
            };
            // SAFETY: `local` points into `buf` (valid for buf.len() bytes,
            // exclusively borrowed); the remote address is only interpreted
            // by the kernel in the target's address space.
            let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
            if n > 0 {
                return n as usize;
            }
            let e = io::Error::last_os_error().raw_os_error();
            if matches!(e, Some(libc::ENOSYS) | Some(libc::EPERM)) {
                // Blocked (seccomp, old kernel): use /proc/PID/mem from now on.
                self.vm_readv_works = false;
            }
        }
        match &self.mem {
            Some(f) => f.read_at(buf, addr).unwrap_or(0),
            None => 0,
        }
    }
}

/// Where the content of a file mapping's untouched pages comes from: the
/// mapped file itself, opened through /proc/PID/map_files (works for deleted
/// files and memfds, needs CAP_SYS_ADMIN) or by path (checked to be the same
/// inode).
pub struct BackingFile {
    file: File,
}

impl BackingFile {
    pub fn open(pid: i32, m: &Mapping) -> Option<Self> {
        if !m.is_file_backed() {
            return None;
        }
        let same = |f: &File| {
            f.metadata().is_ok_and(|md| {
                md.ino() == m.inode
                    && libc::major(md.dev()) == m.dev_major
                    && libc::minor(md.dev()) == m.dev_minor
            })
        };
        let via_map_files = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
        if let Ok(f) = File::open(via_map_files) {
            return Some(BackingFile { file: f });
        }
        let f = File::open(m.live_path()?).ok()?;
        same(&f).then_some(BackingFile { file: f })
    }

    /// Reads file bytes at `file_offset`; short at end of file.
    pub fn read(&self, file_offset: u64, buf: &mut [u8]) -> usize {
        read_full_at(&self.file, file_offset, buf).0
    }
}

/// Reads `buf` from `file` at `offset` until it is full, the file ends or a read fails.
/// Returns the bytes read and the error that stopped it, if any.
fn read_full_at(file: &File, offset: u64, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_pagemap() {
        let data: Vec<u8> = (0..3 * PAGE as usize).map(|i| (i * 7 + 3) as u8).collect();
        let mut mem = RemoteMemory::open(std::process::id() as i32).unwrap();
        let mut buf = vec![0u8; data.len()];
        assert_eq!(mem.read(data.as_ptr() as u64, &mut buf), data.len());
        assert_eq!(buf, data);
        let page = data.as_ptr() as u64 & !(PAGE - 1);
        let mut present = Vec::new();
        mem.resident_pages(page, 2, &mut present).unwrap();
        assert_eq!(present, vec![true, true]);
    }
}
