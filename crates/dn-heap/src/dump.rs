//! ELF core file reader (Linux x86-64): memory from PT_LOAD segments, mapped files from NT_FILE,
//! threads and registers from NT_PRSTATUS.
//!
//! Only `[p_vaddr, p_vaddr + p_filesz)` of a segment is memory the dump holds; the rest of
//! `p_memsz` is *not* reported as zeros (the DAC must see a failure for memory it cannot have).
//! Optionally, bytes missing from the core that belong to a file mapping are read from the file
//! on disk (kernel and gdb cores leave file-backed mappings out; the DAC needs them for type
//! names and stack walks).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use memmap2::Mmap;
use thiserror::Error;

use crate::memory::{MemoryError, MemorySource};

mod build_id;
mod parse;
mod version;

pub use build_id::{build_id_in_memory, build_id_of_file, hex};
/// One NT_FILE entry: `[start, end)` maps `path` from `file_offset`.
pub use dn_core::elf::notes::FileEntry as FileMapping;
use parse::{Load, ParseError};
pub use version::{version_in_memory, version_of_file, VersionString};

/// Why a core file could not be opened.
#[derive(Debug, Error)]
pub enum DumpError {
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an ELF core file: {reason}")]
    NotACore { path: PathBuf, reason: String },
    /// `offset` is the file offset of the field found bad.
    #[error("{path} is corrupt or truncated at file offset {offset:#x}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// A module (file) mapped in the target, aggregated from NT_FILE.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Module {
    pub path: String,
    /// Lowest address of a mapping with file offset 0 (the ELF/PE header), else the lowest start.
    pub base: u64,
    pub ranges: Vec<(u64, u64, u64)>,
}

/// x86-64 `user_regs_struct` order (27 values).
pub const REG_NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// One thread of the dumped process.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    pub tid: u32,
    /// `user_regs_struct`, see [`REG_NAMES`].
    pub regs: [u64; 27],
}

impl ThreadInfo {
    pub fn reg(&self, name: &str) -> Option<u64> {
        REG_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.regs[i])
    }
}

/// An opened ELF core file.
pub struct CoreDump {
    path: PathBuf,
    map: Mmap,
    loads: Vec<Load>,
    files: Vec<FileMapping>,
    threads: Vec<ThreadInfo>,
    /// File size the segment table promises.
    expected_size: u64,
    file_fallback: bool,
    open_files: Mutex<HashMap<String, Option<Arc<Mmap>>>>,
}

impl std::fmt::Debug for CoreDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreDump")
            .field("path", &self.path)
            .field("segments", &self.loads.len())
            .field("files", &self.files.len())
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl CoreDump {
    /// Opens and indexes a core file. Reading missing file-backed memory from disk is on.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DumpError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| DumpError::Io {
            path: path.clone(),
            source,
        })?;
        // SAFETY: the file is opened read-only and mapped privately; a core file being modified
        // while we read it is outside what we support (the same holds for every debugger).
        let map = unsafe { Mmap::map(&file) }.map_err(|source| DumpError::Io {
            path: path.clone(),
            source,
        })?;
        let parsed = parse::parse(&map).map_err(|e| match e {
            ParseError::NotCore(reason) => DumpError::NotACore {
                path: path.clone(),
                reason,
            },
            ParseError::Corrupt { offset, reason } => DumpError::Corrupt {
                path: path.clone(),
                offset,
                reason,
            },
        })?;
        Ok(CoreDump {
            path,
            map,
            loads: parsed.loads,
            files: parsed.files,
            threads: parsed.threads,
            expected_size: parsed.expected_size,
            file_fallback: true,
            open_files: Mutex::new(HashMap::new()),
        })
    }

    /// Turns reading missing file-backed memory from files on disk on or off.
    pub fn set_file_fallback(&mut self, on: bool) {
        self.file_fallback = on;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn threads(&self) -> &[ThreadInfo] {
        &self.threads
    }

    pub fn thread(&self, tid: u32) -> Option<&ThreadInfo> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    pub fn file_mappings(&self) -> &[FileMapping] {
        &self.files
    }

    /// Modules by path, in order of their base address.
    pub fn modules(&self) -> Vec<Module> {
        let mut by_path: HashMap<&str, Module> = HashMap::new();
        for f in &self.files {
            let m = by_path.entry(&f.path).or_insert_with(|| Module {
                path: f.path.clone(),
                base: u64::MAX,
                ranges: Vec::new(),
            });
            m.ranges.push((f.start, f.end, f.file_offset));
        }
        let mut out: Vec<Module> = by_path
            .into_values()
            .map(|mut m| {
                m.ranges.sort();
                m.base = m
                    .ranges
                    .iter()
                    .filter(|r| r.2 == 0)
                    .map(|r| r.0)
                    .min()
                    .unwrap_or(m.ranges[0].0);
                m
            })
            .collect();
        out.sort_by_key(|m| m.base);
        out
    }

    /// Load address of the module whose file name is `name` (case-insensitive; a path in
    /// `name` is reduced to its file name).
    pub fn image_base(&self, name: &str) -> Option<u64> {
        let want = file_name(name).to_ascii_lowercase();
        self.modules()
            .into_iter()
            .filter(|m| file_name(&m.path).to_ascii_lowercase() == want)
            .map(|m| m.base)
            .min()
    }

    /// `Some((expected, actual))` file sizes when the core is shorter than its segment table says.
    pub fn truncation(&self) -> Option<(u64, u64)> {
        let actual = self.map.len() as u64;
        (self.expected_size > actual).then_some((self.expected_size, actual))
    }

    /// Total bytes of memory the core holds.
    pub fn memory_bytes(&self) -> u64 {
        self.loads.iter().map(|l| l.filesz).sum()
    }

    fn load_index(&self, addr: u64) -> Option<usize> {
        let i = self.loads.partition_point(|l| l.vaddr <= addr);
        if i == 0 {
            return None;
        }
        let l = &self.loads[i - 1];
        (addr < l.end).then_some(i - 1)
    }

    /// Bytes of the core present at `addr` (contiguous within one segment).
    fn core_bytes(&self, addr: u64) -> Option<&[u8]> {
        let l = &self.loads[self.load_index(addr)?];
        let rel = addr - l.vaddr;
        if rel >= l.filesz {
            return None;
        }
        // `filesz` was clipped to the file when parsed, so these fit; checked all the same.
        let start = usize::try_from(l.offset.checked_add(rel)?).ok()?;
        let end = usize::try_from(l.offset.checked_add(l.filesz)?).ok()?;
        self.map.get(start..end)
    }

    /// Start of the first segment above `addr` (bounds a fallback read so that it never
    /// hides bytes the core does have).
    fn next_load_start(&self, addr: u64) -> u64 {
        let i = self.loads.partition_point(|l| l.vaddr <= addr);
        self.loads.get(i).map_or(u64::MAX, |l| l.vaddr)
    }

    fn file_bytes(&self, addr: u64, max: usize, out: &mut [u8]) -> usize {
        let i = self.files.partition_point(|f| f.start <= addr);
        let Some(f) = i.checked_sub(1).map(|i| &self.files[i]) else {
            return 0;
        };
        if addr >= f.end {
            return 0;
        }
        let Some(map) = self.open_file(&f.path) else {
            return 0;
        };
        let Some(off) = f.file_offset.checked_add(addr - f.start) else {
            return 0;
        };
        let avail_map = (f.end - addr).min(max as u64) as usize;
        let Some(src) = usize::try_from(off).ok().and_then(|o| map.get(o..)) else {
            return 0;
        };
        let n = avail_map.min(src.len()).min(out.len());
        out[..n].copy_from_slice(&src[..n]);
        n
    }

    fn open_file(&self, path: &str) -> Option<Arc<Mmap>> {
        let mut cache = self.open_files.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(path.to_string())
            .or_insert_with(|| {
                let f = File::open(path).ok()?;
                // SAFETY: read-only private mapping of a module file; see CoreDump::open.
                unsafe { Mmap::map(&f) }.ok().map(Arc::new)
            })
            .clone()
    }
}

impl CoreDump {
    /// Reads only bytes the core file itself holds (no on-disk fallback).
    pub fn read_core_only(&self, addr: u64, buf: &mut [u8]) -> crate::memory::Result<usize> {
        self.read_impl(addr, buf, false)
    }

    fn read_impl(&self, addr: u64, buf: &mut [u8], fallback: bool) -> crate::memory::Result<usize> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = match addr.checked_add(done as u64) {
                Some(c) => c,
                None => break,
            };
            if let Some(src) = self.core_bytes(cur) {
                let n = src.len().min(buf.len() - done);
                buf[done..done + n].copy_from_slice(&src[..n]);
                done += n;
                continue;
            }
            if !fallback {
                break;
            }
            let limit = (self.next_load_start(cur) - cur).min((buf.len() - done) as u64) as usize;
            let n = self.file_bytes(cur, limit, &mut buf[done..]);
            if n == 0 {
                break;
            }
            done += n;
        }
        if done == 0 {
            return Err(MemoryError::NotAvailable { addr });
        }
        Ok(done)
    }
}

impl MemorySource for CoreDump {
    fn read(&self, addr: u64, buf: &mut [u8]) -> crate::memory::Result<usize> {
        self.read_impl(addr, buf, self.file_fallback)
    }

    fn slice(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let s = self.core_bytes(addr)?;
        s.get(..len)
    }
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}
