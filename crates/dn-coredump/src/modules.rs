//! The parts of every loaded module a core keeps whatever its type, so that native tools can
//! identify the modules and unwind their stacks without the binaries: for an ELF module its
//! ELF header and program headers, its PT_NOTE segments (GNU build-id), its `.eh_frame_hdr`
//! (PT_GNU_EH_FRAME) and the `.eh_frame` that header points to; for a PE assembly its first
//! page. Everything is read from the target's memory (which is the module's file for these
//! read-only pages) and every offset and length is checked before use.

use goblin::elf::header::header64::Header;
use goblin::elf::program_header::program_header64::ProgramHeader;
use goblin::elf::program_header::{PT_GNU_EH_FRAME, PT_LOAD, PT_NOTE};
use scroll::Pread;

use crate::maps::{Mapping, PAGE};
use crate::select::dumpable;

/// Reads target memory: (mapping index, address, buffer) -> bytes read from the start.
pub type ReadFn<'a> = dyn FnMut(usize, u64, &mut [u8]) -> usize + 'a;

const PHDR_SIZE: u64 = 56;
/// Bytes fetched at a time while walking `.eh_frame` records.
const WINDOW: usize = 256 * 1024;

/// A byte range of the target to keep, and the warnings of modules whose parts could not be
/// found (their damaged or unreadable headers are named; the rest of the dump is unaffected).
#[derive(Debug, Default)]
pub struct ModuleParts {
    pub ranges: Vec<(u64, u64)>,
    pub warnings: Vec<String>,
}

/// Finds the parts to keep of every module mapped from file offset 0.
pub fn module_parts(maps: &[Mapping], read: &mut ReadFn) -> ModuleParts {
    let mut out = ModuleParts::default();
    let mut page = vec![0u8; PAGE as usize];
    for (i, m) in maps.iter().enumerate() {
        if !m.is_file_backed() || m.offset != 0 || !dumpable(m) {
            continue;
        }
        let n = read(i, m.start, &mut page);
        if n < 64 {
            continue;
        }
        if page.starts_with(b"MZ") {
            out.ranges.push((m.start, m.start + PAGE));
            continue;
        }
        if !page.starts_with(b"\x7fELF") {
            continue;
        }
        out.ranges.push((m.start, m.start + PAGE));
        if let Err(e) = elf_parts(maps, i, &page[..n], read, &mut out.ranges) {
            out.warnings.push(format!(
                "module {}: {e}; its unwind data may be missing",
                m.name
            ));
        }
    }
    out
}

/// Program headers, notes, `.eh_frame_hdr` and `.eh_frame` of the ELF module mapped at
/// `maps[i]`, whose first bytes are `head`.
fn elf_parts(
    maps: &[Mapping],
    i: usize,
    head: &[u8],
    read: &mut ReadFn,
    ranges: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    let m = &maps[i];
    if head.get(4) != Some(&2) {
        return Err("not a 64-bit ELF module".into());
    }
    let eh = head
        .pread_with::<Header>(0, scroll::LE)
        .map_err(|e| format!("ELF header unreadable ({e})"))?;
    let ph_size = u64::from(eh.e_phnum) * PHDR_SIZE;
    let ph_start = m
        .start
        .checked_add(eh.e_phoff)
        .filter(|s| s.checked_add(ph_size).is_some_and(|e| e <= m.end))
        .ok_or_else(|| {
            format!(
                "program headers at offset {:#x} lie outside the module's first mapping",
                eh.e_phoff
            )
        })?;
    ranges.push((ph_start, ph_start + ph_size));
    let mut phdrs = vec![0u8; ph_size as usize];
    if read(i, ph_start, &mut phdrs) < phdrs.len() {
        return Err("program headers unreadable".into());
    }
    let phs: Vec<ProgramHeader> = (0..usize::from(eh.e_phnum))
        .filter_map(|k| {
            phdrs
                .pread_with::<ProgramHeader>(k * PHDR_SIZE as usize, scroll::LE)
                .ok()
        })
        .collect();
    // The mapping at file offset 0 holds the segment with p_offset 0.
    let first = phs
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.p_offset == 0)
        .ok_or("no PT_LOAD segment at file offset 0")?;
    let bias = m.start.wrapping_sub(first.p_vaddr & !(PAGE - 1));
    let mut notes_mapped = true;
    for p in phs.iter().filter(|p| p.p_type == PT_NOTE) {
        let a = bias.wrapping_add(p.p_vaddr);
        match in_one_mapping(maps, a, p.p_memsz) {
            Some(end) => ranges.push((a, end)),
            None => notes_mapped = false,
        }
    }
    let unwind = unwind_parts(maps, &phs, bias, read, ranges);
    if !notes_mapped {
        return Err("a PT_NOTE segment is not mapped".into());
    }
    unwind
}

/// `.eh_frame_hdr` (PT_GNU_EH_FRAME) and the `.eh_frame` it points to, if the module has them.
fn unwind_parts(
    maps: &[Mapping],
    phs: &[ProgramHeader],
    bias: u64,
    read: &mut ReadFn,
    ranges: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    let Some(hdr_ph) = phs.iter().find(|p| p.p_type == PT_GNU_EH_FRAME) else {
        return Ok(());
    };
    let hdr_at = bias.wrapping_add(hdr_ph.p_vaddr);
    let hdr_end =
        in_one_mapping(maps, hdr_at, hdr_ph.p_memsz).ok_or(".eh_frame_hdr is not mapped")?;
    ranges.push((hdr_at, hdr_end));
    let mut hdr = [0u8; 16];
    let hi = mapping_at(maps, hdr_at).ok_or(".eh_frame_hdr is not mapped")?;
    let got = read(hi, hdr_at, &mut hdr);
    let frame_at = eh_frame_ptr(&hdr[..got], hdr_at).map_err(|e| format!(".eh_frame_hdr: {e}"))?;
    let Some(frame_at) = frame_at else {
        return Ok(());
    };
    let fi = mapping_at(maps, frame_at).ok_or(".eh_frame is not mapped")?;
    let limit = maps[fi].end;
    let len = eh_frame_len(frame_at, limit, &mut |a, b| read(fi, a, b))
        .map_err(|e| format!(".eh_frame: {e}"))?;
    ranges.push((frame_at, frame_at + len));
    Ok(())
}

/// The end of [addr, addr + len), cut at the end of the mapping holding `addr` (a segment's
/// size comes from the target: a damaged one must not pull in the mappings after it).
fn in_one_mapping(maps: &[Mapping], addr: u64, len: u64) -> Option<u64> {
    let m = &maps[mapping_at(maps, addr)?];
    Some(addr.saturating_add(len).min(m.end))
}

pub fn mapping_at(maps: &[Mapping], addr: u64) -> Option<usize> {
    let i = maps.partition_point(|m| m.end <= addr);
    maps.get(i).filter(|m| m.start <= addr).map(|_| i)
}

// DW_EH_PE pointer encodings (value format in the low nibble, application in the high one).
const DW_EH_PE_OMIT: u8 = 0xff;
const DW_EH_PE_ABSPTR: u8 = 0x00;
const DW_EH_PE_UDATA2: u8 = 0x02;
const DW_EH_PE_UDATA4: u8 = 0x03;
const DW_EH_PE_UDATA8: u8 = 0x04;
const DW_EH_PE_SDATA2: u8 = 0x0a;
const DW_EH_PE_SDATA4: u8 = 0x0b;
const DW_EH_PE_SDATA8: u8 = 0x0c;
const DW_EH_PE_PCREL: u8 = 0x10;
const DW_EH_PE_DATAREL: u8 = 0x30;

/// The address of `.eh_frame` from the start of `.eh_frame_hdr` (`hdr`, read at `hdr_at`):
/// version 1, then `eh_frame_ptr_enc` and the encoded pointer at byte 4. `None` when the
/// encoding says the pointer is omitted.
pub fn eh_frame_ptr(hdr: &[u8], hdr_at: u64) -> Result<Option<u64>, String> {
    if hdr.len() < 4 {
        return Err("header cut short".into());
    }
    if hdr[0] != 1 {
        return Err(format!("version {} (1 expected)", hdr[0]));
    }
    let enc = hdr[1];
    if enc == DW_EH_PE_OMIT {
        return Ok(None);
    }
    let field = &hdr[4..];
    let need = |n: usize| -> Result<&[u8], String> {
        field
            .get(..n)
            .ok_or_else(|| "eh_frame_ptr cut short".to_string())
    };
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x));
    let value: i128 = match enc & 0x0f {
        DW_EH_PE_ABSPTR | DW_EH_PE_UDATA8 => i128::from(le(need(8)?)),
        DW_EH_PE_UDATA2 => i128::from(le(need(2)?)),
        DW_EH_PE_UDATA4 => i128::from(le(need(4)?)),
        DW_EH_PE_SDATA2 => i128::from(le(need(2)?) as u16 as i16),
        DW_EH_PE_SDATA4 => i128::from(le(need(4)?) as u32 as i32),
        DW_EH_PE_SDATA8 => i128::from(le(need(8)?) as i64),
        f => return Err(format!("eh_frame_ptr value format {f:#x} not supported")),
    };
    let base: i128 = match enc & 0x70 {
        0 => 0,
        DW_EH_PE_PCREL => i128::from(hdr_at) + 4,
        DW_EH_PE_DATAREL => i128::from(hdr_at),
        a => return Err(format!("eh_frame_ptr application {a:#x} not supported")),
    };
    if enc & 0x80 != 0 {
        return Err("indirect eh_frame_ptr not supported".into());
    }
    u64::try_from(base + value)
        .map(Some)
        .map_err(|_| "eh_frame_ptr out of the address space".into())
}

/// Length of the `.eh_frame` section at `start`: its CIE and FDE records up to and including
/// the zero terminator, or up to `limit` (the end of its mapping) when a linker left none.
/// `fetch(addr, buf)` reads memory and returns the bytes read.
pub fn eh_frame_len(
    start: u64,
    limit: u64,
    fetch: &mut dyn FnMut(u64, &mut [u8]) -> usize,
) -> Result<u64, String> {
    if start >= limit {
        return Err("starts at the end of its mapping".into());
    }
    let mut window = vec![0u8; WINDOW];
    let (mut win_at, mut win_len) = (start, 0usize);
    let mut pos = start;
    // Reads `n` bytes at `pos`, refilling the window when they are outside it.
    let mut bytes_at = |pos: u64, n: usize| -> Option<[u8; 12]> {
        let off = pos.checked_sub(win_at)? as usize;
        if off + n > win_len {
            let want = usize::try_from(limit - pos).unwrap_or(WINDOW).min(WINDOW);
            win_at = pos;
            win_len = fetch(pos, &mut window[..want]);
            if n > win_len {
                return None;
            }
        }
        let off = (pos - win_at) as usize;
        let mut b = [0u8; 12];
        b[..n].copy_from_slice(&window[off..off + n]);
        Some(b)
    };
    while pos < limit {
        if limit - pos < 4 {
            return Ok(limit - start);
        }
        let b = bytes_at(pos, 4).ok_or_else(|| format!("unreadable at {pos:#x}"))?;
        let len32 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let record = match len32 {
            0 => return Ok(pos + 4 - start),
            0xffff_ffff => {
                let b = bytes_at(pos, 12).ok_or_else(|| format!("unreadable at {pos:#x}"))?;
                let len64 = u64::from_le_bytes(b[4..12].try_into().expect("8 bytes"));
                len64.checked_add(12)
            }
            n => Some(u64::from(n) + 4),
        };
        pos = record
            .and_then(|r| pos.checked_add(r))
            .filter(|&e| e <= limit)
            .ok_or_else(|| format!("record at {pos:#x} runs past the end of its mapping"))?;
    }
    Ok(limit - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch_from(mem: &[u8], base: u64) -> impl FnMut(u64, &mut [u8]) -> usize + '_ {
        move |a, b| {
            let off = (a - base) as usize;
            let n = b.len().min(mem.len().saturating_sub(off));
            b[..n].copy_from_slice(&mem[off..off + n]);
            n
        }
    }

    fn record(len: u32) -> Vec<u8> {
        let mut r = len.to_le_bytes().to_vec();
        r.resize(4 + len as usize, 0xaa);
        r
    }

    const BASE: u64 = 0x10000;

    /// A module mapped at BASE: ELF header, three program headers (PT_LOAD at 0, PT_NOTE at
    /// `note_at`, PT_GNU_EH_FRAME at 0x1000), `.eh_frame_hdr` pointing to `.eh_frame` at 0x2000
    /// (two records and a terminator).
    fn module(note_at: u64) -> Vec<u8> {
        use scroll::Pwrite;
        let mut mem = vec![0u8; 0x4000];
        let mut eh = Header::default();
        eh.e_ident[..4].copy_from_slice(b"\x7fELF");
        eh.e_ident[4] = 2;
        eh.e_ident[5] = 1;
        eh.e_phoff = 64;
        eh.e_phnum = 3;
        mem.pwrite_with(eh, 0, scroll::LE).unwrap();
        let ph = |p_type, p_vaddr, p_memsz| ProgramHeader {
            p_type,
            p_vaddr,
            p_memsz,
            p_offset: p_vaddr,
            p_filesz: p_memsz,
            ..Default::default()
        };
        for (k, p) in [
            ph(PT_LOAD, 0, 0x4000),
            ph(PT_NOTE, note_at, 0x24),
            ph(PT_GNU_EH_FRAME, 0x1000, 0x20),
        ]
        .into_iter()
        .enumerate()
        {
            mem.pwrite_with(p, 64 + k * 56, scroll::LE).unwrap();
        }
        mem[0x1000..0x1004].copy_from_slice(&[1, 0x1b, 0x03, 0x3b]);
        let rel = (0x2000i64 - 0x1004) as i32;
        mem[0x1004..0x1008].copy_from_slice(&rel.to_le_bytes());
        let mut frame = record(20);
        frame.extend(record(12));
        mem[0x2000..0x2000 + frame.len()].copy_from_slice(&frame);
        mem
    }

    fn parts_of(mem: &[u8]) -> ModuleParts {
        let maps = crate::maps::parse_smaps("00010000-00014000 r--p 00000000 fd:01 10 /lib/x.so\n");
        module_parts(&maps, &mut fetch_shim(mem))
    }

    fn fetch_shim(mem: &[u8]) -> impl FnMut(usize, u64, &mut [u8]) -> usize + '_ {
        let mut f = fetch_from(mem, BASE);
        move |_, a, b| f(a, b)
    }

    #[test]
    fn an_elf_modules_headers_notes_and_unwind_tables_are_found() {
        let p = parts_of(&module(0x200));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        for want in [
            (BASE, BASE + PAGE),
            (BASE + 64, BASE + 64 + 3 * 56),
            (BASE + 0x200, BASE + 0x224),
            (BASE + 0x1000, BASE + 0x1020),
            (BASE + 0x2000, BASE + 0x2000 + 24 + 16 + 4),
        ] {
            assert!(p.ranges.contains(&want), "{want:x?} not in {:x?}", p.ranges);
        }
    }

    #[test]
    fn a_damaged_module_is_named_and_keeps_what_could_be_found() {
        // A note outside every mapping: a warning, the unwind tables are still found.
        let p = parts_of(&module(0x9_0000));
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("/lib/x.so") && p.warnings[0].contains("PT_NOTE"));
        assert!(
            p.ranges.contains(&(BASE + 0x2000, BASE + 0x2000 + 44)),
            "{:x?}",
            p.ranges
        );
        // Program headers said to lie beyond the mapping.
        let mut m = module(0x200);
        m[32..40].copy_from_slice(&0x8000u64.to_le_bytes());
        let p = parts_of(&m);
        assert!(
            p.warnings[0].contains("program headers"),
            "{:?}",
            p.warnings
        );
        assert_eq!(p.ranges, vec![(BASE, BASE + PAGE)]);
    }

    #[test]
    fn pcrel_sdata4_pointer_is_relative_to_the_field() {
        // version 1, pcrel|sdata4, udata4 count, datarel|sdata4 table; pointer -0x100.
        let mut h = vec![1, 0x1b, 0x03, 0x3b];
        h.extend_from_slice(&(-0x100i32).to_le_bytes());
        assert_eq!(eh_frame_ptr(&h, 0x5000), Ok(Some(0x5004 - 0x100)));
        h[1] = 0x03; // absolute udata4
        h[4..8].copy_from_slice(&0x1234u32.to_le_bytes());
        assert_eq!(eh_frame_ptr(&h, 0x5000), Ok(Some(0x1234)));
        h[1] = 0x3b; // datarel sdata4
        assert_eq!(eh_frame_ptr(&h, 0x5000), Ok(Some(0x5000 + 0x1234)));
        h[1] = DW_EH_PE_OMIT;
        assert_eq!(eh_frame_ptr(&h, 0x5000), Ok(None));
    }

    #[test]
    fn damaged_headers_are_errors_not_guesses() {
        assert!(eh_frame_ptr(&[1, 0x1b], 0).is_err());
        assert!(eh_frame_ptr(&[2, 0x1b, 3, 0x3b, 0, 0, 0, 0], 0).is_err());
        assert!(eh_frame_ptr(&[1, 0x1b, 3, 0x3b, 0, 0], 0).is_err());
        assert!(eh_frame_ptr(&[1, 0x9b, 3, 0x3b, 0, 0, 0, 0], 0).is_err());
        // A pointer below address 0.
        let mut h = vec![1, 0x1b, 0x03, 0x3b];
        h.extend_from_slice(&(-0x100i32).to_le_bytes());
        assert!(eh_frame_ptr(&h, 0x10).is_err());
    }

    #[test]
    fn eh_frame_ends_after_the_zero_terminator() {
        let mut mem = Vec::new();
        for len in [20u32, 36, 12] {
            mem.extend(record(len));
        }
        let body = mem.len() as u64;
        mem.extend_from_slice(&[0, 0, 0, 0]);
        mem.extend_from_slice(&[0x55; 64]);
        let len = eh_frame_len(
            0x1000,
            0x1000 + mem.len() as u64,
            &mut fetch_from(&mem, 0x1000),
        );
        assert_eq!(len, Ok(body + 4));
    }

    #[test]
    fn eh_frame_records_across_windows_and_64_bit_lengths() {
        let mut mem = Vec::new();
        while mem.len() < 3 * WINDOW {
            mem.extend(record(4096 - 4 + 20));
        }
        let mut big = vec![0xff; 4];
        big.extend_from_slice(&100u64.to_le_bytes());
        big.resize(112, 0xbb);
        mem.extend(big);
        let body = mem.len() as u64;
        mem.extend_from_slice(&[0; 4]);
        let len = eh_frame_len(0, mem.len() as u64 + 4096, &mut fetch_from(&mem, 0));
        assert_eq!(len, Ok(body + 4));
    }

    #[test]
    fn eh_frame_without_terminator_ends_at_the_mapping_and_overruns_are_errors() {
        let mut mem = record(28);
        mem.extend(record(28));
        let n = mem.len() as u64;
        assert_eq!(eh_frame_len(0, n, &mut fetch_from(&mem, 0)), Ok(n));
        let mut long = (u32::MAX - 1).to_le_bytes().to_vec();
        long.resize(4096, 0);
        let e = eh_frame_len(0, 4096, &mut fetch_from(&long, 0)).unwrap_err();
        assert!(e.contains("runs past"), "{e}");
        let e = eh_frame_len(0, 4096, &mut |_, _| 0).unwrap_err();
        assert!(e.contains("unreadable at 0x0"), "{e}");
    }
}
