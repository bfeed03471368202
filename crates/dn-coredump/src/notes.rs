//! The PT_NOTE contents of a Linux x86-64 core: NT_PRPSINFO, NT_AUXV,
//! NT_FILE, then per thread NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE (in the standard XSAVE
//! layout, see [`crate::xsave`]) and NT_SIGINFO (as gdb's `gcore` writes them).
//! Struct layouts are those of the kernel's `elf_prstatus` / `elf_prpsinfo`.

use dn_core::elf::notes::{
    NoteError, NoteWriter, NT_AUXV, NT_FILE, NT_PRFPREG, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO,
    NT_X86_XSTATE,
};
use scroll::{Pwrite, SizeWith};

use crate::maps::{Mapping, PAGE};
use crate::procinfo::Stat;
use crate::regs::ThreadRegs;
#[cfg(test)]
use crate::regs::GP_REGS;

#[derive(Debug, Default, Clone, Copy, Pwrite, SizeWith)]
#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

/// `struct elf_prstatus` (x86-64, 336 bytes).
#[derive(Debug, Default, Clone, Copy, Pwrite, SizeWith)]
#[repr(C)]
struct PrStatus {
    si_signo: i32,
    si_code: i32,
    si_errno: i32,
    cursig: u16,
    pad0: u16,
    sigpend: u64,
    sighold: u64,
    pid: i32,
    ppid: i32,
    pgrp: i32,
    sid: i32,
    utime: Timeval,
    stime: Timeval,
    cutime: Timeval,
    cstime: Timeval,
    reg: [u64; 27],
    fpvalid: i32,
    pad1: i32,
}

/// `struct elf_prpsinfo` (x86-64, 136 bytes).
#[derive(Debug, Clone, Copy, Pwrite, SizeWith)]
#[repr(C)]
struct PrPsInfo {
    state: u8,
    sname: u8,
    zomb: u8,
    nice: i8,
    pad0: u32,
    flag: u64,
    uid: u32,
    gid: u32,
    pid: i32,
    ppid: i32,
    pgrp: i32,
    sid: i32,
    fname: [u8; 16],
    psargs: [u8; 80],
}

#[cfg(test)]
const PRSTATUS_SIZE: usize = 336;
#[cfg(test)]
const PRPSINFO_SIZE: usize = 136;

/// Facts about the process (read before it was stopped where that matters).
pub struct ProcessFacts {
    pub pid: i32,
    pub stat: Stat,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub cmdline: Vec<u8>,
    pub auxv: Vec<u8>,
}

/// Per-thread facts besides registers.
#[derive(Default, Clone)]
pub struct ThreadFacts {
    pub sigpend: u64,
    pub sighold: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
}

fn to_bytes<
    T: scroll::ctx::TryIntoCtx<scroll::Endian, Error = scroll::Error>
        + scroll::ctx::SizeWith<scroll::Endian>,
>(
    v: T,
) -> Vec<u8> {
    let mut b = vec![0u8; T::size_with(&scroll::LE)];
    b.pwrite_with(v, 0, scroll::LE)
        .expect("buffer sized for the struct");
    b
}

fn timeval(ticks: u64, hz: u64) -> Timeval {
    Timeval {
        sec: (ticks / hz) as i64,
        usec: ((ticks % hz) * 1_000_000 / hz) as i64,
    }
}

fn prpsinfo(p: &ProcessFacts) -> Vec<u8> {
    let mut fname = [0u8; 16];
    let c = p.comm.as_bytes();
    fname[..c.len().min(15)].copy_from_slice(&c[..c.len().min(15)]);
    // Arguments separated by spaces, as the kernel writes them.
    let mut psargs = [0u8; 80];
    for (d, s) in psargs.iter_mut().zip(p.cmdline.iter().take(79)) {
        *d = if *s == 0 { b' ' } else { *s };
    }
    let state = "RSDTZW".find(p.stat.state).unwrap_or(0) as u8;
    to_bytes(PrPsInfo {
        state,
        sname: p.stat.state as u8,
        zomb: u8::from(p.stat.state == 'Z'),
        nice: p.stat.nice as i8,
        pad0: 0,
        flag: p.stat.flags,
        uid: p.uid,
        gid: p.gid,
        pid: p.pid,
        ppid: p.stat.ppid,
        pgrp: p.stat.pgrp,
        sid: p.stat.session,
        fname,
        psargs,
    })
}

/// NT_FILE in the kernel's layout: count, page size, (start, end, offset in
/// pages) per file mapping, then the NUL-terminated names. The descriptor
/// ends at the last NUL (gdb rejects padding inside it).
fn nt_file(maps: &[Mapping]) -> Vec<u8> {
    let files: Vec<&Mapping> = maps.iter().filter(|m| m.is_file_backed()).collect();
    let mut d = Vec::new();
    d.extend_from_slice(&(files.len() as u64).to_le_bytes());
    d.extend_from_slice(&PAGE.to_le_bytes());
    for m in &files {
        d.extend_from_slice(&m.start.to_le_bytes());
        d.extend_from_slice(&m.end.to_le_bytes());
        d.extend_from_slice(&(m.offset / PAGE).to_le_bytes());
    }
    for m in &files {
        d.extend_from_slice(m.name.as_bytes());
        d.push(0);
    }
    d
}

fn prstatus(p: &ProcessFacts, t: &ThreadRegs, f: &ThreadFacts, hz: u64) -> Vec<u8> {
    to_bytes(PrStatus {
        sigpend: f.sigpend,
        sighold: f.sighold,
        pid: t.tid,
        ppid: p.stat.ppid,
        pgrp: p.stat.pgrp,
        sid: p.stat.session,
        utime: timeval(f.utime_ticks, hz),
        stime: timeval(f.stime_ticks, hz),
        reg: t.gp,
        fpvalid: i32::from(t.fp.is_some()),
        ..Default::default()
    })
}

/// Builds the whole note segment. The first thread must be the main thread.
pub fn build_notes(
    p: &ProcessFacts,
    maps: &[Mapping],
    threads: &[(ThreadRegs, ThreadFacts)],
    hz: u64,
) -> Result<Vec<u8>, NoteError> {
    let cpu = crate::xsave::cpu_layout();
    let mut w = NoteWriter::new();
    w.add("CORE", NT_PRPSINFO, &prpsinfo(p))?;
    w.add("CORE", NT_AUXV, &p.auxv)?;
    w.add("CORE", NT_FILE, &nt_file(maps))?;
    for (t, f) in threads {
        w.add("CORE", NT_PRSTATUS, &prstatus(p, t, f, hz))?;
        if let Some(fp) = &t.fp {
            w.add("CORE", NT_PRFPREG, fp)?;
        }
        if let Some(xs) = &t.xstate {
            w.add(
                "LINUX",
                NT_X86_XSTATE,
                &crate::xsave::to_standard_layout(xs, &cpu),
            )?;
        }
        if let Some(info) = &t.siginfo {
            w.add("CORE", NT_SIGINFO, info)?;
        }
    }
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_kernel() {
        use scroll::ctx::SizeWith;
        assert_eq!(PrStatus::size_with(&scroll::LE), PRSTATUS_SIZE);
        assert_eq!(PrPsInfo::size_with(&scroll::LE), PRPSINFO_SIZE);
    }

    #[test]
    fn prstatus_puts_tid_and_rip_where_readers_expect() {
        let p = ProcessFacts {
            pid: 10,
            stat: Stat::default(),
            uid: 0,
            gid: 0,
            comm: "x".into(),
            cmdline: vec![],
            auxv: vec![],
        };
        let mut gp = [0u64; GP_REGS];
        gp[16] = 0x1122_3344_5566_7788;
        let t = ThreadRegs {
            tid: 11,
            gp,
            fp: None,
            xstate: None,
            siginfo: None,
        };
        let b = prstatus(&p, &t, &ThreadFacts::default(), 100);
        assert_eq!(i32::from_le_bytes(b[32..36].try_into().unwrap()), 11);
        assert_eq!(
            u64::from_le_bytes(b[112 + 128..112 + 136].try_into().unwrap()),
            gp[16]
        );
    }

    #[test]
    fn nt_file_has_no_trailing_padding_and_reads_back() {
        let maps = crate::maps::parse_smaps("00400000-00402000 r--p 00001000 fd:01 10 /a/b\n");
        let d = nt_file(&maps);
        assert_eq!(d.len(), 16 + 24 + 5);
        assert_eq!(u64::from_le_bytes(d[32..40].try_into().unwrap()), 1);
        let mut w = NoteWriter::new();
        w.add("CORE", NT_FILE, &d).unwrap();
        let seg = w.into_bytes();
        assert_eq!(u32::from_le_bytes(seg[4..8].try_into().unwrap()), 45);
        assert_eq!(seg.len() % 4, 0);
        // The reader the heap analyzer uses sees what was written.
        let note = dn_core::elf::notes::notes(&seg, 0).next().unwrap().unwrap();
        let files = dn_core::elf::notes::nt_file(&note).unwrap();
        assert_eq!((files[0].start, files[0].file_offset), (0x400000, 0x1000));
        assert_eq!(files[0].path, "/a/b");
    }
}
