//! Indexing an ELF core: the header, the program header table, the PT_LOAD segments and the
//! notes (through `dn_core::elf::notes`). Every offset and length read from the file is
//! checked; a bad one is an error naming the file offset where it was read.

use dn_core::elf::notes::{self, NT_FILE, NT_PRSTATUS};
use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{Header, EM_X86_64, ET_CORE};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE};

use super::{FileMapping, ThreadInfo};

const PN_XNUM: u16 = 0xffff;
const PHDR_SIZE: usize = 56;
/// Offsets of `e_phoff` and `e_shoff` in the ELF64 header; of `sh_info` in a section header.
const E_PHOFF: u64 = 0x20;
const E_SHOFF: u64 = 0x28;
const SH_INFO: usize = 44;

/// One PT_LOAD segment: `[vaddr, vaddr + filesz)` is backed by `offset..offset + filesz`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    pub vaddr: u64,
    /// `vaddr + memsz`, checked when parsed.
    pub end: u64,
    pub filesz: u64,
    pub offset: u64,
}

/// Why the bytes are not a core we can read; `offset` is the file offset of the bad field.
pub(super) enum ParseError {
    NotCore(String),
    Corrupt { offset: u64, reason: String },
}

fn corrupt(offset: u64, reason: impl Into<String>) -> ParseError {
    ParseError::Corrupt {
        offset,
        reason: reason.into(),
    }
}

pub(super) struct Parsed {
    pub loads: Vec<Load>,
    pub files: Vec<FileMapping>,
    pub threads: Vec<ThreadInfo>,
    /// File size the segment table promises.
    pub expected_size: u64,
}

pub(super) fn parse(data: &[u8]) -> Result<Parsed, ParseError> {
    use ParseError::NotCore;
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err(NotCore("no ELF header".into()));
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(NotCore(
            "only 64-bit little-endian cores are supported".into(),
        ));
    }
    let header: Header =
        goblin::elf::Elf::parse_header(data).map_err(|e| corrupt(0, format!("ELF header: {e}")))?;
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
    let phdrs = program_headers(data, &header)?;
    let mut parsed = Parsed {
        loads: Vec::new(),
        files: Vec::new(),
        threads: Vec::new(),
        expected_size: 0,
    };
    for (i, ph) in phdrs.iter().enumerate() {
        // File offset of this program header, for errors.
        let at = header.e_phoff.saturating_add((i * PHDR_SIZE) as u64);
        match ph.p_type {
            PT_LOAD => load(data, ph, at, &mut parsed)?,
            PT_NOTE => note_segment(data, ph, at, &mut parsed)?,
            _ => {}
        }
    }
    if parsed.loads.is_empty() {
        return Err(corrupt(
            E_PHOFF,
            "no memory segments in the program header table",
        ));
    }
    parsed.loads.sort_by_key(|l| l.vaddr);
    parsed.files.sort_by_key(|f| f.start);
    Ok(parsed)
}

fn program_headers(data: &[u8], header: &Header) -> Result<Vec<ProgramHeader>, ParseError> {
    let mut phnum = usize::from(header.e_phnum);
    if header.e_phnum == PN_XNUM {
        // The real count lives in section header 0's sh_info.
        let v = usize::try_from(header.e_shoff)
            .ok()
            .and_then(|sh| sh.checked_add(SH_INFO))
            .and_then(|at| data.get(at..at.checked_add(4)?))
            .ok_or_else(|| corrupt(E_SHOFF, "PN_XNUM without a section header"))?;
        phnum = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize;
    }
    if usize::from(header.e_phentsize) != PHDR_SIZE {
        return Err(corrupt(
            0x36,
            format!("program header size {}", header.e_phentsize),
        ));
    }
    let phoff = usize::try_from(header.e_phoff).ok();
    let fits = phoff
        .and_then(|off| phnum.checked_mul(PHDR_SIZE)?.checked_add(off))
        .is_some_and(|end| end <= data.len());
    let Some(phoff) = phoff.filter(|_| fits) else {
        return Err(corrupt(
            E_PHOFF,
            format!(
                "program header table at {:#x} ({phnum} entries) runs past the end of the file",
                header.e_phoff
            ),
        ));
    };
    let ctx = Ctx::new(Container::Big, Endian::Little);
    ProgramHeader::parse(data, phoff, phnum, ctx)
        .map_err(|e| corrupt(E_PHOFF, format!("program headers: {e}")))
}

fn load(data: &[u8], ph: &ProgramHeader, at: u64, parsed: &mut Parsed) -> Result<(), ParseError> {
    if ph.p_memsz == 0 {
        return Ok(());
    }
    let end = ph
        .p_vaddr
        .checked_add(ph.p_memsz)
        .ok_or_else(|| corrupt(at, "PT_LOAD segment ends past the address space"))?;
    let declared = ph.p_filesz.min(ph.p_memsz);
    let declared_end = ph
        .p_offset
        .checked_add(declared)
        .ok_or_else(|| corrupt(at, "PT_LOAD file range ends past 2^64"))?;
    // A truncated core keeps the segments that are wholly present; a segment cut short keeps
    // what is there.
    let avail = (data.len() as u64).saturating_sub(ph.p_offset);
    parsed.expected_size = parsed.expected_size.max(declared_end);
    parsed.loads.push(Load {
        vaddr: ph.p_vaddr,
        end,
        filesz: declared.min(avail),
        offset: ph.p_offset,
    });
    Ok(())
}

fn note_segment(
    data: &[u8],
    ph: &ProgramHeader,
    at: u64,
    parsed: &mut Parsed,
) -> Result<(), ParseError> {
    let range = usize::try_from(ph.p_offset)
        .ok()
        .zip(usize::try_from(ph.p_filesz).ok())
        .and_then(|(s, n)| Some(s..s.checked_add(n)?))
        .filter(|r| r.end <= data.len())
        .ok_or_else(|| corrupt(at, "note segment runs past the end of the file"))?;
    for note in notes::notes(&data[range], ph.p_offset) {
        let note = note.map_err(note_error)?;
        if note.is("CORE", NT_PRSTATUS) {
            if let Some((tid, regs)) = notes::prstatus(&note) {
                parsed.threads.push(ThreadInfo { tid, regs });
            }
        } else if note.is("CORE", NT_FILE) {
            parsed
                .files
                .extend(notes::nt_file(&note).map_err(note_error)?);
        }
    }
    Ok(())
}

fn note_error(e: notes::NoteError) -> ParseError {
    corrupt(e.offset, e.reason)
}
