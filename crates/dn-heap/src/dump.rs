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

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{Header, EM_X86_64, ET_CORE};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE};
use memmap2::Mmap;
use thiserror::Error;

use crate::memory::{le_u32, le_u64, MemoryError, MemorySource};

const NT_PRSTATUS: u32 = 1;
const NT_FILE: u32 = 0x4649_4C45;
const PN_XNUM: u16 = 0xffff;

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
    #[error("{path} is corrupt or truncated: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// One PT_LOAD segment: `[vaddr, vaddr + filesz)` is backed by `offset..offset + filesz`.
#[derive(Debug, Clone, Copy)]
struct Load {
    vaddr: u64,
    memsz: u64,
    filesz: u64,
    offset: u64,
}

/// One NT_FILE entry: `[start, end)` maps `path` from `file_offset`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub path: String,
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
        let (loads, files, threads, expected_size) = parse(&map).map_err(|e| match e {
            ParseError::NotCore(reason) => DumpError::NotACore {
                path: path.clone(),
                reason,
            },
            ParseError::Corrupt(reason) => DumpError::Corrupt {
                path: path.clone(),
                reason,
            },
        })?;
        Ok(CoreDump {
            path,
            map,
            loads,
            files,
            threads,
            expected_size,
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
        (addr < l.vaddr + l.memsz).then_some(i - 1)
    }

    /// Bytes of the core present at `addr` (contiguous within one segment).
    fn core_bytes(&self, addr: u64) -> Option<&[u8]> {
        let l = &self.loads[self.load_index(addr)?];
        let rel = addr - l.vaddr;
        if rel >= l.filesz {
            return None;
        }
        let start = (l.offset + rel) as usize;
        let end = (l.offset + l.filesz) as usize;
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
        let off = f.file_offset + (addr - f.start);
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

enum ParseError {
    NotCore(String),
    Corrupt(String),
}

type Parsed = (Vec<Load>, Vec<FileMapping>, Vec<ThreadInfo>, u64);

fn parse(data: &[u8]) -> Result<Parsed, ParseError> {
    use ParseError::*;
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err(NotCore("no ELF header".into()));
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(NotCore(
            "only 64-bit little-endian cores are supported".into(),
        ));
    }
    let header: Header =
        goblin::elf::Elf::parse_header(data).map_err(|e| Corrupt(format!("ELF header: {e}")))?;
    if header.e_type != ET_CORE {
        return Err(NotCore(format!(
            "ELF type {} is not ET_CORE",
            header.e_type
        )));
    }
    if header.e_machine != EM_X86_64 {
        return Err(NotCore(format!(
            "machine {} is not x86-64",
            header.e_machine
        )));
    }
    let mut phnum = header.e_phnum as usize;
    if header.e_phnum == PN_XNUM {
        // The real count lives in section header 0's sh_info.
        let sh = header.e_shoff as usize;
        let v = data
            .get(sh + 44..sh + 48)
            .ok_or_else(|| Corrupt("PN_XNUM without a section header".into()))?;
        phnum = u32::from_le_bytes(v.try_into().unwrap()) as usize;
    }
    let phoff = header.e_phoff as usize;
    let phsize = header.e_phentsize as usize;
    if phsize != 56 {
        return Err(Corrupt(format!("program header size {phsize}")));
    }
    let table_end = phnum
        .checked_mul(56)
        .and_then(|n| n.checked_add(phoff))
        .filter(|&e| e <= data.len())
        .is_some();
    if !table_end {
        return Err(Corrupt(
            "program header table runs past the end of the file".into(),
        ));
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(data, phoff, phnum, ctx)
        .map_err(|e| Corrupt(format!("program headers: {e}")))?;

    let mut loads = Vec::new();
    let mut files = Vec::new();
    let mut threads = Vec::new();
    let mut expected_size = 0u64;
    for ph in &phdrs {
        match ph.p_type {
            PT_LOAD => {
                if ph.p_memsz == 0 {
                    continue;
                }
                // A truncated core keeps the segments that are wholly present; a segment cut
                // short keeps what is there.
                let avail = (data.len() as u64).saturating_sub(ph.p_offset);
                let declared = ph.p_filesz.min(ph.p_memsz);
                expected_size = expected_size.max(ph.p_offset.saturating_add(declared));
                loads.push(Load {
                    vaddr: ph.p_vaddr,
                    memsz: ph.p_memsz,
                    filesz: ph.p_filesz.min(ph.p_memsz).min(avail),
                    offset: ph.p_offset,
                });
            }
            PT_NOTE => {
                let start = ph.p_offset as usize;
                let end = start
                    .checked_add(ph.p_filesz as usize)
                    .filter(|&e| e <= data.len())
                    .ok_or_else(|| Corrupt("note segment runs past the end of the file".into()))?;
                parse_notes(&data[start..end], &mut files, &mut threads)?;
            }
            _ => {}
        }
    }
    if loads.is_empty() {
        return Err(Corrupt("no memory segments".into()));
    }
    loads.sort_by_key(|l| l.vaddr);
    files.sort_by_key(|f| f.start);
    Ok((loads, files, threads, expected_size))
}

fn parse_notes(
    mut d: &[u8],
    files: &mut Vec<FileMapping>,
    threads: &mut Vec<ThreadInfo>,
) -> Result<(), ParseError> {
    use ParseError::Corrupt;
    let align4 = |n: usize| n.checked_add(3).map(|v| v & !3);
    while d.len() >= 12 {
        let namesz = le_u32(d, 0) as usize;
        let descsz = le_u32(d, 4) as usize;
        let ntype = le_u32(d, 8);
        let name_end = align4(namesz).and_then(|n| n.checked_add(12));
        let desc_end = name_end.and_then(|s| align4(descsz).and_then(|n| n.checked_add(s)));
        let (Some(name_end), Some(desc_end)) = (name_end, desc_end) else {
            return Err(Corrupt("note size overflow".into()));
        };
        if name_end + descsz > d.len() {
            return Err(Corrupt("note runs past its segment".into()));
        }
        let name = &d[12..12 + namesz];
        let desc = &d[name_end..name_end + descsz];
        let is_core = name.starts_with(b"CORE");
        if is_core && ntype == NT_PRSTATUS && desc.len() >= 112 + 27 * 8 {
            let mut regs = [0u64; 27];
            for (i, r) in regs.iter_mut().enumerate() {
                *r = le_u64(desc, 112 + i * 8);
            }
            threads.push(ThreadInfo {
                tid: le_u32(desc, 32),
                regs,
            });
        } else if is_core && ntype == NT_FILE {
            parse_nt_file(desc, files)?;
        }
        d = &d[desc_end.min(d.len())..];
    }
    Ok(())
}

fn parse_nt_file(desc: &[u8], files: &mut Vec<FileMapping>) -> Result<(), ParseError> {
    use ParseError::Corrupt;
    if desc.len() < 16 {
        return Err(Corrupt("NT_FILE note too short".into()));
    }
    let count = le_u64(desc, 0) as usize;
    let page = le_u64(desc, 8);
    let names_at = count
        .checked_mul(24)
        .and_then(|n| n.checked_add(16))
        .filter(|&n| n <= desc.len())
        .ok_or_else(|| Corrupt("NT_FILE entry count exceeds the note".into()))?;
    let mut names = desc[names_at..].split(|&b| b == 0);
    for i in 0..count {
        let e = 16 + i * 24;
        let name = names
            .next()
            .ok_or_else(|| Corrupt("NT_FILE names missing".into()))?;
        files.push(FileMapping {
            start: le_u64(desc, e),
            end: le_u64(desc, e + 8),
            file_offset: le_u64(desc, e + 16).saturating_mul(page),
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(())
}

/// GNU build id of an ELF image mapped at `base` in `mem` (read from its program headers).
pub fn build_id_in_memory(mem: &dyn MemorySource, base: u64) -> Option<Vec<u8>> {
    let hdr = mem.read_vec(base, 64).ok()?;
    if &hdr[..4] != b"\x7fELF" {
        return None;
    }
    let phoff = le_u64(&hdr, 0x20);
    let phnum = u16::from_le_bytes([hdr[0x38], hdr[0x39]]) as usize;
    let ph = mem.read_vec(base + phoff, phnum * 56).ok()?;
    for i in 0..phnum {
        let p = &ph[i * 56..];
        if le_u32(p, 0) == PT_NOTE {
            let vaddr = le_u64(p, 16);
            let size = le_u64(p, 32) as usize;
            let notes = mem.read_vec(base + vaddr, size.min(1 << 16)).ok()?;
            if let Some(id) = gnu_build_id_in_notes(&notes) {
                return Some(id);
            }
        }
    }
    None
}

/// GNU build id of an ELF file on disk.
pub fn build_id_of_file(path: &Path) -> Option<Vec<u8>> {
    let data = std::fs::read(path).ok()?;
    let elf = goblin::elf::Elf::parse(&data).ok()?;
    for ph in &elf.program_headers {
        if ph.p_type == PT_NOTE {
            let s = ph.p_offset as usize;
            let notes = data.get(s..s + ph.p_filesz as usize)?;
            if let Some(id) = gnu_build_id_in_notes(notes) {
                return Some(id);
            }
        }
    }
    None
}

fn gnu_build_id_in_notes(mut d: &[u8]) -> Option<Vec<u8>> {
    while d.len() >= 12 {
        let namesz = le_u32(d, 0) as usize;
        let descsz = le_u32(d, 4) as usize;
        let ntype = le_u32(d, 8);
        let name_end = 12 + ((namesz + 3) & !3);
        let desc_end = name_end + ((descsz + 3) & !3);
        if name_end + descsz > d.len() {
            return None;
        }
        if ntype == 3 && d[12..12 + namesz].starts_with(b"GNU") {
            return Some(d[name_end..name_end + descsz].to_vec());
        }
        d = d.get(desc_end..)?;
    }
    None
}

/// Lowercase hex of a byte string (build ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
