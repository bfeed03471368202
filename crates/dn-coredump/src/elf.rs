//! ELF core file headers: Elf64_Ehdr, the optional PN_XNUM section header,
//! and the program headers (PT_NOTE first, then one PT_LOAD per region), all at
//! the start of the file ([`layout`]), or, for a pre-copied core whose data was
//! placed before the final count of segments was known, the ELF header at the
//! start and the program headers and notes after the data ([`tail_layout`]).

use goblin::elf::header::header64::Header;
use goblin::elf::header::{
    EI_CLASS, EI_DATA, EI_VERSION, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, ET_CORE, EV_CURRENT,
};
use goblin::elf::program_header::program_header64::ProgramHeader;
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE};
use goblin::elf::section_header::section_header64::SectionHeader;
use scroll::Pwrite;

use crate::maps::PAGE;

const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;
/// e_phnum value meaning "the real count is in section header 0's sh_info".
pub const PN_XNUM: u16 = 0xffff;

/// One memory segment of the core.
#[derive(Debug, Clone, Copy)]
pub struct LoadSegment {
    pub vaddr: u64,
    pub size: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// Where everything goes in the file.
pub struct Layout {
    /// Ehdr, optional Shdr, Phdrs: written at offset 0.
    pub headers: Vec<u8>,
    pub notes_offset: u64,
    /// File offset of each load segment's bytes, same order as given.
    pub segment_offsets: Vec<u64>,
    /// Logical size of the whole file.
    pub total_size: u64,
}

pub fn layout(segments: &[LoadSegment], notes_len: u64) -> Layout {
    let phnum = segments.len() as u64 + 1;
    let phoff = EHDR_SIZE + shdr_len(phnum);
    let notes_offset = phoff + phnum * PHDR_SIZE;
    let data_start = (notes_offset + notes_len).div_ceil(PAGE) * PAGE;

    let mut segment_offsets = Vec::with_capacity(segments.len());
    let mut off = data_start;
    for s in segments {
        segment_offsets.push(off);
        off += s.size;
    }
    let mut headers = vec![0u8; notes_offset as usize];
    let (ehdr, phdrs) = headers.split_at_mut(phoff as usize);
    write_ehdr(ehdr, phnum, phoff);
    write_phdrs(phdrs, segments, &segment_offsets, notes_offset, notes_len);
    Layout {
        headers,
        notes_offset,
        segment_offsets,
        total_size: off,
    }
}

/// Headers for segments whose file offsets were chosen beforehand (the pre-copy): the ELF
/// header (and the PN_XNUM section header) at offset 0, in [`HEAD_RESERVED`] bytes; the program
/// headers, then the notes, at `tail` (past all data).
pub struct TailLayout {
    /// Written at offset 0.
    pub head: Vec<u8>,
    /// Program headers, written at `tail`.
    pub phdrs: Vec<u8>,
    pub notes_offset: u64,
    pub total_size: u64,
}

/// Bytes at the start of a pre-copied core kept for the ELF header (one page).
pub const HEAD_RESERVED: u64 = PAGE;

pub fn tail_layout(
    segments: &[LoadSegment],
    offsets: &[u64],
    notes_len: u64,
    tail: u64,
) -> TailLayout {
    let phnum = segments.len() as u64 + 1;
    let mut head = vec![0u8; (EHDR_SIZE + shdr_len(phnum)) as usize];
    write_ehdr(&mut head, phnum, tail);
    let notes_offset = tail + phnum * PHDR_SIZE;
    let mut phdrs = vec![0u8; (phnum * PHDR_SIZE) as usize];
    write_phdrs(&mut phdrs, segments, offsets, notes_offset, notes_len);
    TailLayout {
        head,
        phdrs,
        notes_offset,
        total_size: notes_offset + notes_len,
    }
}

fn shdr_len(phnum: u64) -> u64 {
    if phnum >= u64::from(PN_XNUM) {
        SHDR_SIZE
    } else {
        0
    }
}

/// The ELF header (and, past PN_XNUM program headers, section header 0) into `out`.
fn write_ehdr(out: &mut [u8], phnum: u64, phoff: u64) {
    let extended = phnum >= u64::from(PN_XNUM);
    let mut e_ident = [0u8; 16];
    e_ident[..4].copy_from_slice(ELFMAG);
    e_ident[EI_CLASS] = ELFCLASS64;
    e_ident[EI_DATA] = ELFDATA2LSB;
    e_ident[EI_VERSION] = EV_CURRENT;
    let eh = Header {
        e_ident,
        e_type: ET_CORE,
        e_machine: EM_X86_64,
        e_version: u32::from(EV_CURRENT),
        e_entry: 0,
        e_phoff: phoff,
        e_shoff: if extended { EHDR_SIZE } else { 0 },
        e_flags: 0,
        e_ehsize: EHDR_SIZE as u16,
        e_phentsize: PHDR_SIZE as u16,
        e_phnum: if extended { PN_XNUM } else { phnum as u16 },
        e_shentsize: if extended { SHDR_SIZE as u16 } else { 0 },
        e_shnum: u16::from(extended),
        e_shstrndx: 0,
    };
    out.pwrite_with(eh, 0, scroll::LE).expect("sized");
    if extended {
        // Section header 0 carries the real program header count (PN_XNUM).
        let sh = SectionHeader {
            sh_info: phnum as u32,
            ..Default::default()
        };
        out.pwrite_with(sh, EHDR_SIZE as usize, scroll::LE)
            .expect("sized");
    }
}

/// PT_NOTE, then one PT_LOAD per segment, into `out` (`(segments + 1) * PHDR_SIZE` bytes).
fn write_phdrs(
    out: &mut [u8],
    segments: &[LoadSegment],
    offsets: &[u64],
    notes_offset: u64,
    notes_len: u64,
) {
    let note = ProgramHeader {
        p_type: PT_NOTE,
        p_flags: 0,
        p_offset: notes_offset,
        p_vaddr: 0,
        p_paddr: 0,
        p_filesz: notes_len,
        p_memsz: 0,
        p_align: 4,
    };
    out.pwrite_with(note, 0, scroll::LE).expect("sized");
    for (i, (s, &off)) in segments.iter().zip(offsets).enumerate() {
        let flags = (if s.read { PF_R } else { 0 })
            | (if s.write { PF_W } else { 0 })
            | (if s.exec { PF_X } else { 0 });
        let ph = ProgramHeader {
            p_type: PT_LOAD,
            p_flags: flags,
            p_offset: off,
            p_vaddr: s.vaddr,
            p_paddr: 0,
            p_filesz: s.size,
            p_memsz: s.size,
            p_align: PAGE,
        };
        let at = (i as u64 + 1) * PHDR_SIZE;
        out.pwrite_with(ph, at as usize, scroll::LE).expect("sized");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goblin::elf::Elf;

    fn seg(vaddr: u64) -> LoadSegment {
        LoadSegment {
            vaddr,
            size: PAGE,
            read: true,
            write: true,
            exec: false,
        }
    }

    #[test]
    fn small_core_layout_parses_with_goblin() {
        let l = layout(&[seg(0x1000), seg(0x5000)], 100);
        let mut file = l.headers.clone();
        file.resize(l.total_size as usize, 0);
        let elf = Elf::parse(&file).unwrap();
        assert_eq!(elf.header.e_type, ET_CORE);
        assert_eq!(elf.program_headers.len(), 3);
        assert_eq!(elf.program_headers[0].p_type, PT_NOTE);
        assert_eq!(elf.program_headers[1].p_vaddr, 0x1000);
        assert_eq!(elf.program_headers[1].p_offset % PAGE, 0);
        assert_eq!(
            elf.program_headers[2].p_offset,
            elf.program_headers[1].p_offset + PAGE
        );
        assert_eq!(l.total_size, elf.program_headers[2].p_offset + PAGE);
    }

    #[test]
    fn tail_layout_parses_with_goblin() {
        let segs = [seg(0x1000), seg(0x5000)];
        let offsets = [3 * PAGE, PAGE];
        let l = tail_layout(&segs, &offsets, 100, 4 * PAGE);
        let mut file = vec![0u8; l.total_size as usize];
        file[..l.head.len()].copy_from_slice(&l.head);
        file[4 * PAGE as usize..][..l.phdrs.len()].copy_from_slice(&l.phdrs);
        let elf = Elf::parse(&file).unwrap();
        assert_eq!(elf.header.e_phoff, 4 * PAGE);
        assert_eq!(elf.program_headers.len(), 3);
        assert_eq!(elf.program_headers[0].p_type, PT_NOTE);
        assert_eq!(elf.program_headers[0].p_offset, 4 * PAGE + 3 * PHDR_SIZE);
        assert_eq!(elf.program_headers[1].p_offset, 3 * PAGE);
        assert_eq!(elf.program_headers[2].p_vaddr, 0x5000);
        assert_eq!(elf.program_headers[2].p_offset, PAGE);
        assert_eq!(l.total_size, 4 * PAGE + 3 * PHDR_SIZE + 100);
    }

    #[test]
    fn readelf_reads_the_pn_xnum_count() {
        let segs: Vec<LoadSegment> = (0..66_000u64).map(|i| seg(i * 2 * PAGE)).collect();
        let l = layout(&segs, 0);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("core");
        let f = std::fs::File::create(&p).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &l.headers, 0).unwrap();
        f.set_len(l.total_size).unwrap();
        let out = std::process::Command::new("readelf")
            .arg("-h")
            .arg(&p)
            .output()
            .expect("readelf installed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("Number of program headers"))
            .unwrap_or("");
        assert!(line.contains("66001"), "{text}");
    }

    #[test]
    fn many_segments_use_pn_xnum() {
        let segs: Vec<LoadSegment> = (0..70_000u64).map(|i| seg(i * 2 * PAGE)).collect();
        let l = layout(&segs, 16);
        let h = &l.headers;
        assert_eq!(u16::from_le_bytes([h[56], h[57]]), PN_XNUM);
        assert_eq!(
            u64::from_le_bytes(h[32..40].try_into().unwrap()),
            128,
            "e_phoff after the shdr"
        );
        assert_eq!(
            u64::from_le_bytes(h[40..48].try_into().unwrap()),
            64,
            "e_shoff"
        );
        assert_eq!(u16::from_le_bytes([h[60], h[61]]), 1, "e_shnum");
        // sh_info of section header 0 (offset 64 + 44).
        assert_eq!(u32::from_le_bytes(h[108..112].try_into().unwrap()), 70_001);
    }
}
