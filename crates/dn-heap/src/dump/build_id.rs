//! GNU build ids of ELF images, from a target's memory or from a file on disk. Offsets and
//! sizes come from the image's own headers and are checked; a bad one means "no build id".

use std::path::Path;

use dn_core::elf::notes::gnu_build_id;
use goblin::elf::program_header::PT_NOTE;

use crate::memory::MemorySource;

/// Build-id notes are tiny; a note segment larger than this is not read whole.
const MAX_NOTES: u64 = 1 << 16;
const PHDR_SIZE: usize = 56;

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// GNU build id of an ELF image mapped at `base` in `mem` (read from its program headers).
pub fn build_id_in_memory(mem: &dyn MemorySource, base: u64) -> Option<Vec<u8>> {
    let hdr = mem.read_vec(base, 64).ok()?;
    if !hdr.starts_with(b"\x7fELF") {
        return None;
    }
    let phoff = u64_at(&hdr, 0x20)?;
    let phnum = usize::from(u16::from_le_bytes([hdr[0x38], hdr[0x39]]));
    let ph = mem
        .read_vec(base.checked_add(phoff)?, phnum * PHDR_SIZE)
        .ok()?;
    for p in ph.chunks_exact(PHDR_SIZE) {
        if u32::from_le_bytes([p[0], p[1], p[2], p[3]]) != PT_NOTE {
            continue;
        }
        let vaddr = u64_at(p, 16)?;
        let size = u64_at(p, 32)?.min(MAX_NOTES) as usize;
        let notes = mem.read_vec(base.checked_add(vaddr)?, size).ok()?;
        if let Some(id) = gnu_build_id(&notes) {
            return Some(id.to_vec());
        }
    }
    None
}

/// GNU build id of an ELF file on disk.
pub fn build_id_of_file(path: &Path) -> Option<Vec<u8>> {
    let data = std::fs::read(path).ok()?;
    let elf = goblin::elf::Elf::parse(&data).ok()?;
    elf.program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_NOTE)
        .find_map(|ph| {
            let s = usize::try_from(ph.p_offset).ok()?;
            let e = s.checked_add(usize::try_from(ph.p_filesz).ok()?)?;
            gnu_build_id(data.get(s..e)?).map(<[u8]>::to_vec)
        })
}

/// Lowercase hex of a byte string (build ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
