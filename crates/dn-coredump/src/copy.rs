//! Copies the selected regions from the stopped target into the core file,
//! driven by pagemap: resident pages are read from the target in big chunks,
//! untouched pages of file mappings come from the file, untouched anonymous
//! pages become holes.

use std::collections::HashMap;

use crate::error::CollectError;
use crate::maps::{Mapping, PAGE};
use crate::memory::{BackingFile, RemoteMemory};
use crate::procinfo;
use crate::select::Region;
use crate::stage::{Deferred, Sink};

/// Bytes per read from the target (≥ 1 MiB keeps syscall cost negligible).
pub const CHUNK: usize = 4 << 20;
/// pagemap entries fetched per read (256 MiB of address space).
const PAGEMAP_BATCH: usize = 64 * 1024;

pub struct Copier<'a> {
    pid: i32,
    maps: &'a [Mapping],
    remote: RemoteMemory,
    backing: HashMap<usize, Option<BackingFile>>,
    resident: Vec<bool>,
    /// Resident pages that could not be read (left as zeros).
    pub unreadable_bytes: u64,
}

impl<'a> Copier<'a> {
    pub fn new(pid: i32, maps: &'a [Mapping], remote: RemoteMemory) -> Self {
        Copier {
            pid,
            maps,
            remote,
            backing: HashMap::new(),
            resident: Vec::new(),
            unreadable_bytes: 0,
        }
    }

    fn backing(&mut self, mi: usize) -> Option<&BackingFile> {
        let (pid, m) = (self.pid, &self.maps[mi]);
        self.backing
            .entry(mi)
            .or_insert_with(|| BackingFile::open(pid, m))
            .as_ref()
    }

    /// Fills `out` (page-aligned address and length inside mapping `mi`) with the
    /// content of pages pagemap marks absent. Returns false if the pages are
    /// known zero (untouched anonymous memory) and `out` was left untouched.
    fn fill_absent(&mut self, mi: usize, addr: u64, out: &mut [u8]) -> bool {
        let m = &self.maps[mi];
        if m.is_vdso() {
            // The kernel's shared image: reading it maps no new memory in the target.
            let n = self.remote.read(addr, out);
            out[n..].fill(0);
            return true;
        }
        if !m.is_file_backed() {
            return false;
        }
        let file_off = m.offset + (addr - m.start);
        let n = match self.backing(mi) {
            Some(f) => f.read(file_off, out),
            // No way to the file (e.g. a deleted file without CAP_SYS_ADMIN):
            // read through the target; it only pulls in page cache.
            None => self.remote.read(addr, out),
        };
        out[n..].fill(0);
        true
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The raw pagemap entries of `pages` pages from `start`.
    pub fn pagemap_entries(
        &self,
        start: u64,
        pages: usize,
        out: &mut Vec<u64>,
    ) -> std::io::Result<()> {
        self.remote.pagemap_entries(start, pages, out)
    }

    /// Reads resident pages into `buf`; pages that fail read as zeros.
    pub fn fill_resident(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), CollectError> {
        let len = buf.len();
        let n = self.remote.read(addr, buf);
        if n == len {
            return Ok(());
        }
        if n == 0 && !procinfo::is_alive(self.pid) {
            return Err(CollectError::TargetExited(self.pid));
        }
        // Retry the rest page by page so one bad page loses only itself.
        let mut p = n / PAGE as usize * PAGE as usize;
        while p < len {
            let e = p + PAGE as usize;
            let got = self.remote.read(addr + p as u64, &mut buf[p..e]);
            if got < PAGE as usize {
                buf[p + got..e].fill(0);
                self.unreadable_bytes += (PAGE as usize - got) as u64;
            }
            p = e;
        }
        Ok(())
    }

    /// Small pagemap-aware read used to inspect module headers.
    pub fn read_small(&mut self, mi: usize, addr: u64, out: &mut [u8]) -> usize {
        let m = &self.maps[mi];
        let end = (addr + out.len() as u64).min(m.end);
        if addr >= end {
            return 0;
        }
        let first = addr & !(PAGE - 1);
        let pages = ((end - first).div_ceil(PAGE)) as usize;
        let mut resident = Vec::new();
        if self
            .remote
            .resident_pages(first, pages, &mut resident)
            .is_err()
        {
            return 0;
        }
        let mut page = vec![0u8; PAGE as usize];
        let mut done = 0usize;
        for (k, &res) in resident.iter().enumerate() {
            let pa = first + k as u64 * PAGE;
            let ok = if res {
                self.remote.read(pa, &mut page) == PAGE as usize
            } else if !self.fill_absent(mi, pa, &mut page) {
                page.fill(0);
                true
            } else {
                true
            };
            if !ok {
                break;
            }
            let from = addr.max(pa);
            let to = end.min(pa + PAGE);
            let src = &page[(from - pa) as usize..(to - pa) as usize];
            out[done..done + src.len()].copy_from_slice(src);
            done += src.len();
        }
        done
    }

    /// Reads deferred file pages (after the resume) into `buf` (`d.len` bytes).
    pub fn read_deferred(&mut self, d: &Deferred, buf: &mut [u8]) {
        if !self.fill_absent(d.map, d.addr, buf) {
            buf.fill(0);
        }
    }

    /// Copies one region to `file_offset`; `progress(bytes)` is called after
    /// every chunk and may abort the copy.
    pub fn copy_region(
        &mut self,
        r: &Region,
        file_offset: u64,
        out: &mut dyn Sink,
        progress: &mut dyn FnMut(u64) -> Result<(), CollectError>,
    ) -> Result<(), CollectError> {
        let total_pages = ((r.end - r.start) / PAGE) as usize;
        let chunk_pages = CHUNK / PAGE as usize;
        let mut batch_first = 0usize;
        while batch_first < total_pages {
            let batch_len = PAGEMAP_BATCH.min(total_pages - batch_first);
            let batch_addr = r.start + batch_first as u64 * PAGE;
            let mut resident = std::mem::take(&mut self.resident);
            if self
                .remote
                .resident_pages(batch_addr, batch_len, &mut resident)
                .is_err()
            {
                if !procinfo::is_alive(self.pid) {
                    return Err(CollectError::TargetExited(self.pid));
                }
                // Without pagemap, treat everything as resident (reads only
                // mapped memory; never worse than a plain reader).
                resident.clear();
                resident.resize(batch_len, true);
            }
            let mut i = 0;
            while i < batch_len {
                let res = resident[i];
                let mut j = i + 1;
                while j < batch_len && resident[j] == res && j - i < chunk_pages {
                    j += 1;
                }
                let addr = batch_addr + i as u64 * PAGE;
                let len = (j - i) * PAGE as usize;
                let at = file_offset + (addr - r.start);
                let m = &self.maps[r.map];
                let untouched_anonymous = !res && m.is_private_anonymous();
                // Untouched pages of a private file mapping are the file's bytes: they can be
                // read after the resume, if the file can be opened.
                let file_pages = !res && m.is_file_backed() && !m.shared;
                let deferred = !untouched_anonymous
                    && file_pages
                    && self.backing(r.map).is_some()
                    && out.defer(at, r.map, addr, len);
                if !untouched_anonymous && !deferred {
                    let map = r.map;
                    out.chunk(at, len, &mut |buf| {
                        if res {
                            self.fill_resident(addr, buf)?;
                            Ok(true)
                        } else {
                            Ok(self.fill_absent(map, addr, buf))
                        }
                    })?;
                }
                progress(len as u64)?;
                i = j;
            }
            self.resident = resident;
            batch_first += batch_len;
        }
        Ok(())
    }
}
