//! The dynamic linker's list of loaded modules (`r_debug` and its `link_map` entries, with
//! their names), which every dump keeps: debuggers find a core's shared libraries through it
//! (gdb reads `DT_DEBUG` of the executable, then the list), and the entries live in memory a
//! mini or triage dump would otherwise leave out (the linker's and malloc's heaps).
//! Every pointer comes from the target and is followed only after a bounds check.

use crate::maps::Mapping;
use crate::modules::{mapping_at, ReadFn};

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHNUM: u64 = 5;
const PT_DYNAMIC: u32 = 2;
const PT_PHDR: u32 = 6;
const DT_NULL: u64 = 0;
const DT_DEBUG: u64 = 21;
/// `struct r_debug` up to `r_ldbase` (version, map, brk, state, ldbase), and the
/// `r_debug_extended` next pointer after it.
const R_DEBUG_LEN: u64 = 48;
/// `struct link_map`'s public head: l_addr, l_name, l_ld, l_next, l_prev.
const LINK_MAP_HEAD: u64 = 40;
/// More entries than any process loads: a cycle or damage ends the walk here.
const MAX_ENTRIES: usize = 16 * 1024;
const MAX_NAME: u64 = 4096;

/// Byte ranges of `r_debug`, each `link_map` head and each name.
pub fn link_map_parts(
    maps: &[Mapping],
    auxv: &[u8],
    read: &mut ReadFn,
) -> Result<Vec<(u64, u64)>, String> {
    let mut rd = |addr: u64, buf: &mut [u8]| -> Result<(), String> {
        if read_some(maps, read, addr, buf) == buf.len() {
            Ok(())
        } else {
            Err(format!("{addr:#x} is unreadable"))
        }
    };
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    let (mut phdr, mut phnum) = (0u64, 0u64);
    for e in auxv.chunks_exact(16) {
        match u64_at(e, 0) {
            AT_NULL => break,
            AT_PHDR => phdr = u64_at(e, 8),
            AT_PHNUM => phnum = u64_at(e, 8),
            _ => {}
        }
    }
    if phdr == 0 || phnum == 0 || phnum > 256 {
        return Err("the auxiliary vector names no program headers".into());
    }
    let mut phs = vec![0u8; phnum as usize * 56];
    rd(phdr, &mut phs)?;
    let ph = |k: usize| {
        (
            u32::from_le_bytes(phs[k * 56..k * 56 + 4].try_into().expect("4")),
            u64_at(&phs, k * 56 + 16),
            u64_at(&phs, k * 56 + 40),
        )
    };
    // The executable's load bias: where its program headers are minus where it said.
    let bias = (0..phnum as usize)
        .map(ph)
        .find(|p| p.0 == PT_PHDR)
        .map_or(0, |p| phdr.wrapping_sub(p.1));
    let Some((_, dyn_vaddr, dyn_size)) = (0..phnum as usize).map(ph).find(|p| p.0 == PT_DYNAMIC)
    else {
        // A static executable: no dynamic linker, no list to keep.
        return Ok(Vec::new());
    };
    let dyn_at = bias.wrapping_add(dyn_vaddr);
    let mut dynamic = vec![0u8; (dyn_size.min(64 * 1024) / 16 * 16) as usize];
    rd(dyn_at, &mut dynamic)?;
    let debug = dynamic
        .chunks_exact(16)
        .map(|e| (u64_at(e, 0), u64_at(e, 8)))
        .take_while(|&(tag, _)| tag != DT_NULL)
        .find(|&(tag, _)| tag == DT_DEBUG);
    let r_debug = match debug {
        // Linked without DT_DEBUG: debuggers find the list through the linker's `_r_debug`
        // symbol, in its data, which every dump keeps (written module data).
        None => return Ok(vec![(dyn_at, dyn_at + dynamic.len() as u64)]),
        Some((_, 0)) => return Err("DT_DEBUG is not set".into()),
        Some((_, v)) => v,
    };
    let mut out = vec![
        (dyn_at, dyn_at + dynamic.len() as u64),
        (r_debug, r_debug + R_DEBUG_LEN),
    ];
    let mut head = [0u8; R_DEBUG_LEN as usize];
    rd(r_debug, &mut head)?;
    let mut lm = u64_at(&head, 8);
    for _ in 0..MAX_ENTRIES {
        if lm == 0 {
            return Ok(out);
        }
        let mut entry = [0u8; LINK_MAP_HEAD as usize];
        rd(lm, &mut entry)?;
        out.push((lm, lm + LINK_MAP_HEAD));
        let name_at = u64_at(&entry, 8);
        if name_at != 0 && mapping_at(maps, name_at).is_some() {
            // A path is at most PATH_MAX bytes with its NUL (the range is cut at its mapping).
            out.push((name_at, name_at.saturating_add(MAX_NAME)));
        }
        lm = u64_at(&entry, 24);
    }
    Err(format!(
        "more than {MAX_ENTRIES} link_map entries (a cycle?)"
    ))
}

/// Reads from the mapping holding `addr`; the bytes read from the start of `buf`.
fn read_some(maps: &[Mapping], read: &mut ReadFn, addr: u64, buf: &mut [u8]) -> usize {
    mapping_at(maps, addr).map_or(0, |i| read(i, addr, buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::parse_smaps;

    const BASE: u64 = 0x1000;

    fn put(mem: &mut [u8], addr: u64, vals: &[u64]) {
        for (k, v) in vals.iter().enumerate() {
            let at = (addr - BASE) as usize + k * 8;
            mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// An executable at 0x1000 (PT_PHDR at 0x40, PT_DYNAMIC at 0x200) whose DT_DEBUG points
    /// to an r_debug at 0x2000 listing `entries`.
    fn process(entries: &[u64], next_of_last: u64) -> (Vec<u8>, Vec<u8>) {
        let mut mem = vec![0u8; 0x2000];
        let mut ph = [0u8; 112];
        ph[..4].copy_from_slice(&PT_PHDR.to_le_bytes());
        ph[16..24].copy_from_slice(&0x40u64.to_le_bytes());
        ph[56..60].copy_from_slice(&PT_DYNAMIC.to_le_bytes());
        ph[72..80].copy_from_slice(&0x200u64.to_le_bytes());
        ph[96..104].copy_from_slice(&32u64.to_le_bytes());
        mem[0x40..0x40 + 112].copy_from_slice(&ph);
        put(&mut mem, 0x1200, &[DT_DEBUG, 0x2000, DT_NULL, 0]);
        put(
            &mut mem,
            0x2000,
            &[1, entries.first().copied().unwrap_or(0)],
        );
        for (k, &e) in entries.iter().enumerate() {
            let next = entries.get(k + 1).copied().unwrap_or(next_of_last);
            put(&mut mem, e, &[0, e + 0x80, 0, next, 0]);
        }
        let mut auxv = Vec::new();
        for v in [AT_PHDR, 0x1040, AT_PHNUM, 2, AT_NULL, 0] {
            auxv.extend_from_slice(&v.to_le_bytes());
        }
        (mem, auxv)
    }

    fn walk(mem: &[u8], auxv: &[u8]) -> Result<Vec<(u64, u64)>, String> {
        let maps = parse_smaps("00001000-00003000 rw-p 00000000 00:00 0 \n");
        let mut read = |_: usize, a: u64, b: &mut [u8]| {
            let off = (a - BASE) as usize;
            let n = b.len().min(mem.len().saturating_sub(off));
            b[..n].copy_from_slice(&mem[off..off + n]);
            n
        };
        link_map_parts(&maps, auxv, &mut read)
    }

    #[test]
    fn the_list_heads_and_names_are_kept() {
        let (mem, auxv) = process(&[0x2100, 0x2300], 0);
        let r = walk(&mem, &auxv).unwrap();
        assert!(r.contains(&(0x1200, 0x1220)), "the dynamic section: {r:x?}");
        assert!(r.contains(&(0x2000, 0x2000 + R_DEBUG_LEN)));
        for e in [0x2100, 0x2300] {
            assert!(r.contains(&(e, e + LINK_MAP_HEAD)), "{r:x?}");
            assert!(r.contains(&(e + 0x80, e + 0x80 + MAX_NAME)), "{r:x?}");
        }
    }

    #[test]
    fn a_cycle_a_wild_pointer_or_no_auxv_is_an_error() {
        let (mem, auxv) = process(&[0x2100, 0x2300], 0x2100);
        assert!(walk(&mem, &auxv).unwrap_err().contains("cycle"));
        let (mem, auxv) = process(&[0x2100], 0x9_0000);
        assert!(walk(&mem, &auxv).unwrap_err().contains("0x90000"));
        let (mem, _) = process(&[0x2100], 0);
        assert!(walk(&mem, &[]).is_err());
        // DT_DEBUG present but never set by a dynamic linker.
        let (mut mem, auxv) = process(&[0x2100], 0);
        put(&mut mem, 0x1200, &[DT_DEBUG, 0]);
        assert_eq!(walk(&mem, &auxv).unwrap_err(), "DT_DEBUG is not set");
    }

    #[test]
    fn a_static_executable_has_no_list_to_keep() {
        let (mut mem, auxv) = process(&[0x2100], 0);
        // The PT_DYNAMIC header becomes PT_LOAD (1).
        mem[0x40 + 56..0x40 + 60].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(walk(&mem, &auxv), Ok(vec![]));
    }
}
