//! What the complete-core tests read from a core on their own: its memory (PT_LOAD), its
//! notes, and native stacks unwound with nothing but the CFI (`.eh_frame_hdr`, `.eh_frame`)
//! found in that memory, through gimli.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use dn_core::elf::notes::{self, FileEntry, NT_FILE, NT_PRSTATUS};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, Pointer, Register, RegisterRule,
    UnwindContext, UnwindSection,
};
use goblin::elf::header::header64::Header;
use goblin::elf::program_header::program_header64::ProgramHeader;
use goblin::elf::program_header::{PT_GNU_EH_FRAME, PT_LOAD, PT_NOTE};
use scroll::Pread;

struct Load {
    vaddr: u64,
    size: u64,
    offset: u64,
}

pub struct CoreFile {
    file: File,
    loads: Vec<Load>,
    pub notes: Vec<u8>,
}

impl CoreFile {
    pub fn open(path: &Path) -> CoreFile {
        let file = File::open(path).unwrap();
        let mut eh = [0u8; 64];
        file.read_exact_at(&mut eh, 0).unwrap();
        let h: Header = eh.pread_with(0, scroll::LE).unwrap();
        assert_ne!(
            h.e_phnum, 0xffff,
            "these tests read cores with < 65535 segments"
        );
        let mut ph = vec![0u8; usize::from(h.e_phnum) * 56];
        file.read_exact_at(&mut ph, h.e_phoff).unwrap();
        let mut loads = Vec::new();
        let mut note_bytes = Vec::new();
        for k in 0..usize::from(h.e_phnum) {
            let p: ProgramHeader = ph.pread_with(k * 56, scroll::LE).unwrap();
            match p.p_type {
                PT_LOAD => loads.push(Load {
                    vaddr: p.p_vaddr,
                    size: p.p_filesz,
                    offset: p.p_offset,
                }),
                PT_NOTE => {
                    note_bytes = vec![0u8; p.p_filesz as usize];
                    file.read_exact_at(&mut note_bytes, p.p_offset).unwrap();
                }
                _ => {}
            }
        }
        loads.sort_by_key(|l| l.vaddr);
        CoreFile {
            file,
            loads,
            notes: note_bytes,
        }
    }

    /// The bytes at [addr, addr + len) if the core holds all of them.
    pub fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let a = addr + done as u64;
            let i = self.loads.partition_point(|l| l.vaddr + l.size <= a);
            let l = self.loads.get(i).filter(|l| l.vaddr <= a)?;
            let n = ((l.vaddr + l.size - a) as usize).min(len - done);
            self.file
                .read_exact_at(&mut out[done..done + n], l.offset + (a - l.vaddr))
                .ok()?;
            done += n;
        }
        Some(out)
    }

    /// How many bytes from `addr` on the core holds without a gap.
    pub fn contiguous_from(&self, addr: u64) -> u64 {
        let mut at = addr;
        loop {
            let i = self.loads.partition_point(|l| l.vaddr + l.size <= at);
            match self.loads.get(i).filter(|l| l.vaddr <= at) {
                Some(l) => at = l.vaddr + l.size,
                None => return at - addr,
            }
        }
    }

    pub fn u64_at(&self, addr: u64) -> Option<u64> {
        self.read(addr, 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }

    pub fn note_descs(&self, name: &str, n_type: u32) -> Vec<Vec<u8>> {
        notes::notes(&self.notes, 0)
            .map(|n| n.unwrap())
            .filter(|n| n.is(name, n_type))
            .map(|n| n.desc.to_vec())
            .collect()
    }

    /// (tid, user_regs_struct) per thread, in note order.
    pub fn threads(&self) -> Vec<(u32, [u64; 27])> {
        notes::notes(&self.notes, 0)
            .map(|n| n.unwrap())
            .filter(|n| n.is("CORE", NT_PRSTATUS))
            .map(|n| notes::prstatus(&n).expect("complete NT_PRSTATUS"))
            .collect()
    }

    pub fn files(&self) -> Vec<FileEntry> {
        let n = notes::notes(&self.notes, 0)
            .map(|n| n.unwrap())
            .find(|n| n.is("CORE", NT_FILE))
            .expect("NT_FILE");
        notes::nt_file(&n).unwrap()
    }

    /// Each mapped file's load address: the start of its mapping at file offset 0.
    pub fn module_bases(&self) -> BTreeMap<String, u64> {
        let mut bases = BTreeMap::new();
        for f in self.files().into_iter().filter(|f| f.file_offset == 0) {
            bases.entry(f.path).or_insert(f.start);
        }
        bases
    }
}

/// A module's unwind tables as found in the core's memory.
struct Cfi {
    lo: u64,
    hi: u64,
    hdr_at: u64,
    hdr: Vec<u8>,
    frame_at: u64,
    frame: Vec<u8>,
}

impl Cfi {
    /// Reads the ELF header, program headers, `.eh_frame_hdr` and `.eh_frame` of the module
    /// loaded at `base` from the core alone; `[lo, hi)` is the address range of its mappings.
    fn from_core(core: &CoreFile, base: u64, lo: u64, hi: u64) -> Option<Cfi> {
        let eh: Header = core.read(base, 64)?.pread_with(0, scroll::LE).ok()?;
        let ph = core.read(base + eh.e_phoff, usize::from(eh.e_phnum) * 56)?;
        let phs: Vec<ProgramHeader> = (0..usize::from(eh.e_phnum))
            .map(|k| ph.pread_with(k * 56, scroll::LE).unwrap())
            .collect();
        let first = phs
            .iter()
            .find(|p| p.p_type == PT_LOAD && p.p_offset == 0)?;
        let bias = base.wrapping_sub(first.p_vaddr & !0xfff);
        let gnu = phs.iter().find(|p| p.p_type == PT_GNU_EH_FRAME)?;
        let hdr_at = bias.wrapping_add(gnu.p_vaddr);
        let hdr = core.read(hdr_at, gnu.p_memsz as usize)?;
        let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_at);
        let parsed = EhFrameHdr::new(&hdr, LittleEndian).parse(&bases, 8).ok()?;
        let Pointer::Direct(frame_at) = parsed.eh_frame_ptr() else {
            return None;
        };
        // The section's extent is not recorded anywhere in memory: take what the core holds.
        let len = core.contiguous_from(frame_at).min(hi - frame_at);
        let frame = core.read(frame_at, len as usize)?;
        Some(Cfi {
            lo,
            hi,
            hdr_at,
            hdr,
            frame_at,
            frame,
        })
    }
}

/// x86-64 DWARF register numbers of the registers the unwinder tracks, and their index in
/// `user_regs_struct`.
const DWARF_TO_USER: [(u16, usize); 17] = [
    (0, 10), // rax
    (1, 12), // rdx
    (2, 11), // rcx
    (3, 5),  // rbx
    (4, 13), // rsi
    (5, 14), // rdi
    (6, 4),  // rbp
    (7, 19), // rsp
    (8, 9),
    (9, 8),
    (10, 7),
    (11, 6),
    (12, 3),
    (13, 2),
    (14, 1),
    (15, 0),
    (16, 16), // return address column: rip
];
const RSP: u16 = 7;
const RA: u16 = 16;

/// Why an unwind stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackEnd {
    /// The CFI marks the return address undefined: the outermost frame (thread start).
    Outermost,
    /// The PC is in no module with CFI in the core (JIT-compiled code, for one).
    NoCfi,
}

/// The PCs of a thread's frames, unwound with the CFI the core holds, from its registers.
pub struct Unwinder<'a> {
    core: &'a CoreFile,
    modules: Vec<Cfi>,
}

impl<'a> Unwinder<'a> {
    pub fn new(core: &'a CoreFile) -> Unwinder<'a> {
        let files = core.files();
        let mut modules = Vec::new();
        for (path, base) in core.module_bases() {
            let lo = files
                .iter()
                .filter(|f| f.path == path)
                .map(|f| f.start)
                .min()
                .unwrap();
            let hi = files
                .iter()
                .filter(|f| f.path == path)
                .map(|f| f.end)
                .max()
                .unwrap();
            if let Some(c) = Cfi::from_core(core, base, lo, hi) {
                modules.push(c);
            }
        }
        Unwinder { core, modules }
    }

    /// Modules whose CFI was found in the core.
    pub fn module_count(&self) -> usize {
        self.modules.len()
    }

    pub fn unwind(&self, regs: &[u64; 27], max: usize) -> (Vec<u64>, StackEnd) {
        let mut vals: BTreeMap<u16, u64> =
            DWARF_TO_USER.iter().map(|&(d, u)| (d, regs[u])).collect();
        let mut pcs = Vec::new();
        let mut ctx = UnwindContext::new();
        while pcs.len() < max {
            let pc = vals[&RA];
            let Some(m) = self.modules.iter().find(|m| m.lo <= pc && pc < m.hi) else {
                return (pcs, StackEnd::NoCfi);
            };
            pcs.push(pc);
            // A caller's PC is a return address: look up the call instruction before it.
            let lookup = if pcs.len() == 1 { pc } else { pc - 1 };
            let bases = BaseAddresses::default()
                .set_eh_frame_hdr(m.hdr_at)
                .set_eh_frame(m.frame_at);
            let parsed = EhFrameHdr::new(&m.hdr, LittleEndian)
                .parse(&bases, 8)
                .unwrap();
            let table = parsed.table().expect("a binary search table");
            let frame = EhFrame::new(&m.frame, LittleEndian);
            let Ok(row) = table.unwind_info_for_address(
                &frame,
                &bases,
                &mut ctx,
                lookup,
                EhFrame::cie_from_offset,
            ) else {
                return (pcs, StackEnd::NoCfi);
            };
            let cfa = match row.cfa() {
                CfaRule::RegisterAndOffset { register, offset } => {
                    vals[&register.0].wrapping_add_signed(*offset)
                }
                CfaRule::Expression(_) => return (pcs, StackEnd::NoCfi),
            };
            let mut next = vals.clone();
            for &(d, _) in &DWARF_TO_USER {
                let rule = row.register(Register(d)).unwrap_or(RegisterRule::SameValue);
                let v = match rule {
                    RegisterRule::Undefined if d == RA => return (pcs, StackEnd::Outermost),
                    RegisterRule::Undefined => continue,
                    RegisterRule::SameValue => continue,
                    RegisterRule::Offset(o) => match self.core.u64_at(cfa.wrapping_add_signed(o)) {
                        Some(v) => v,
                        None => return (pcs, StackEnd::NoCfi),
                    },
                    RegisterRule::ValOffset(o) => cfa.wrapping_add_signed(o),
                    RegisterRule::Register(r) => vals[&r.0],
                    _ => return (pcs, StackEnd::NoCfi),
                };
                next.insert(d, v);
            }
            next.insert(RSP, cfa);
            if next[&RA] == 0 {
                return (pcs, StackEnd::Outermost);
            }
            vals = next;
        }
        (pcs, StackEnd::NoCfi)
    }
}
