//! Complete cores: whatever the dump type, every loaded module's ELF headers, notes and unwind
//! sections are in the core byte for byte as in its file; native stacks unwind with the CFI
//! found in the core alone, to the frames gdb finds with the binaries present; gdb reads the
//! register notes and the vDSO without a warning, and its thread library works on heap and mini
//! cores. Oracles: the module files on disk (their section headers, which the collector never
//! reads), gdb.

mod common;
mod corefile;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use corefile::{CoreFile, StackEnd, Unwinder};
use dn_coredump::{collect, CollectOptions, DumpType};
use dn_testkit::{Fixture, Runtime, Target};
use goblin::elf::program_header::{PT_LOAD, PT_NOTE};
use goblin::elf::Elf;

fn dump(target: &Target, dir: &Path, kind: DumpType) -> std::path::PathBuf {
    let core = dir.join(format!("{kind:?}"));
    let mut opts = CollectOptions::new(target.pid(), &core);
    opts.dump_type = kind;
    let s = collect(opts).expect("collect");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_running(target.pid());
    core
}

/// What one module file says its header, notes and unwind sections are:
/// (what, address relative to the load bias, file offset, length).
fn parts_on_disk(elf: &Elf) -> Vec<(String, u64, u64, u64)> {
    let first = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.p_offset == 0)
        .expect("a PT_LOAD at offset 0");
    let h = &elf.header;
    let mut v = vec![(
        "ELF and program headers".to_string(),
        first.p_vaddr,
        0,
        h.e_phoff + u64::from(h.e_phnum) * u64::from(h.e_phentsize),
    )];
    for p in elf.program_headers.iter().filter(|p| p.p_type == PT_NOTE) {
        v.push(("PT_NOTE".into(), p.p_vaddr, p.p_offset, p.p_filesz));
    }
    for s in &elf.section_headers {
        let name = elf.shdr_strtab.get_at(s.sh_name).unwrap_or("");
        if matches!(name, ".eh_frame" | ".eh_frame_hdr") && s.sh_size > 0 {
            v.push((name.into(), s.sh_addr, s.sh_offset, s.sh_size));
        }
    }
    v
}

#[test]
fn module_headers_notes_and_unwind_sections_are_the_files_bytes_in_every_dump_type() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    assert_eq!(target.command("ping"), "pong");
    let dir = tempfile::tempdir().unwrap();
    for kind in [
        DumpType::Heap,
        DumpType::Mini,
        DumpType::Triage,
        DumpType::Full,
    ] {
        let path = dump(&target, dir.path(), kind);
        let core = CoreFile::open(&path);
        let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
        let mut modules = Vec::new();
        for (file, base) in core.module_bases() {
            if file.starts_with("/memfd:") {
                continue; // the runtime's double-mapped memory and IPC buffer, not modules
            }
            let Ok(bytes) = std::fs::read(&file) else {
                panic!("{kind:?}: module {file} of the target cannot be read from disk");
            };
            if !bytes.starts_with(b"\x7fELF") {
                continue; // PE assemblies and data files: only their first page is kept.
            }
            let elf = Elf::parse(&bytes).unwrap();
            let first = elf
                .program_headers
                .iter()
                .find(|p| p.p_type == PT_LOAD && p.p_offset == 0)
                .unwrap();
            let bias = base.wrapping_sub(first.p_vaddr & !0xfff);
            for (what, vaddr, off, len) in parts_on_disk(&elf) {
                let want = &bytes[off as usize..(off + len) as usize];
                let got = core.read(bias.wrapping_add(vaddr), len as usize);
                assert!(
                    got.as_deref() == Some(want),
                    "{kind:?}: {what} of {file} ({len} bytes at {:#x}) {}",
                    bias.wrapping_add(vaddr),
                    if got.is_some() {
                        "differs from the file"
                    } else {
                        "missing from the core"
                    }
                );
                let key = match what.as_str() {
                    ".eh_frame" => "eh_frame",
                    ".eh_frame_hdr" => "eh_frame_hdr",
                    "PT_NOTE" => "notes",
                    _ => "headers",
                };
                *checked.entry(key).or_default() += 1;
            }
            modules.push(file);
        }
        let has = |name: &str| modules.iter().any(|m| m.ends_with(name));
        assert!(
            has("/libcoreclr.so") && has("/libclrjit.so") && modules.iter().any(|m| m.contains("/libc.so")),
            "{kind:?}: the runtime, the JIT and libc must be among the modules checked: {modules:?}"
        );
        // Every ELF module has its headers checked; the system and runtime libraries all carry
        // notes and unwind tables.
        assert_eq!(checked["headers"], modules.len(), "{kind:?}");
        assert!(
            checked["notes"] >= modules.len() / 2,
            "{kind:?}: {checked:?}"
        );
        assert!(
            checked["eh_frame"] >= modules.len() - 1,
            "{kind:?}: {checked:?} {modules:?}"
        );
        assert_eq!(checked["eh_frame"], checked["eh_frame_hdr"], "{kind:?}");
    }
}

/// gdb's PCs of every frame of every thread, by LWP: `frame apply all` prints `$pc` per frame.
/// Separate debug info (where installed) is kept away: with it gdb adds frames CFI cannot
/// know of (inlined functions, tail calls from DWARF call sites); without it gdb unwinds with
/// the CFI of the binaries on disk.
fn gdb_frames(core: &Path, exe: &Path) -> BTreeMap<u32, Vec<u64>> {
    let no_debug = tempfile::tempdir().unwrap();
    let out = run(Command::new("gdb")
        .args(["-batch", "-nx", "-iex"])
        .arg(format!(
            "set debug-file-directory {}",
            no_debug.path().display()
        ))
        .args(["-iex", "set debuginfod enabled off", "-c"])
        .arg(core)
        .arg(exe)
        .args([
            "-ex",
            "thread apply all -ascending frame apply all -q p/x $pc",
        ]));
    let mut frames: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut lwp = None;
    for l in out.lines() {
        if l.starts_with("Thread ") {
            lwp = l
                .split("(LWP ")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|n| n.parse().ok());
            continue;
        }
        if let (Some(t), Some(v)) = (lwp, l.split(" = 0x").nth(1)) {
            if l.starts_with('$') {
                let pc = u64::from_str_radix(v.trim(), 16).unwrap();
                frames.entry(t).or_default().push(pc);
            }
        }
    }
    frames
}

#[test]
fn native_stacks_unwind_with_the_cores_own_cfi_to_gdbs_frames() {
    for rt in [Runtime::Net8, Runtime::Net10] {
        unwind_on(rt);
    }
}

fn unwind_on(rt: Runtime) {
    let mut target = Target::start(Fixture::Console, rt);
    assert_eq!(target.command("ping"), "pong");
    let dir = tempfile::tempdir().unwrap();
    for kind in [DumpType::Mini, DumpType::Heap] {
        let path = dump(&target, dir.path(), kind);
        let core = CoreFile::open(&path);
        let unwinder = Unwinder::new(&core);
        let gdb = gdb_frames(&path, &exe_of(target.pid()));
        let threads = core.threads();
        assert_eq!(gdb.len(), threads.len(), "{kind:?}: gdb sees every thread");
        let (mut compared, mut outermost) = (0usize, 0usize);
        for (i, (tid, regs)) in threads.iter().enumerate() {
            let (ours, end) = unwinder.unwind(regs, 64);
            let theirs = &gdb[tid];
            assert!(
                theirs.len() >= ours.len() && theirs[..ours.len()] == ours[..],
                "{rt:?} {kind:?}: thread {tid} unwound from the core's CFI as {ours:x?} ({end:?}), gdb: {theirs:x?}"
            );
            if i == 0 {
                // Waiting for a command: libc's read, called by libSystem.Native, called by
                // JIT-compiled code (no CFI).
                assert!(
                    ours.len() >= 2 && end == StackEnd::NoCfi,
                    "{kind:?}: main thread {ours:x?} {end:?}"
                );
            }
            if end == StackEnd::Outermost {
                // The whole stack down to the thread's start: gdb stops there too.
                assert_eq!(ours.len(), theirs.len(), "{kind:?}: thread {tid}");
                outermost += 1;
            }
            compared += ours.len();
        }
        // The runtime's native threads (signal handler, finalizer and tiering waits, the
        // diagnostics server...) are blocked in native code and unwind whole: 8 of 9 threads
        // and 70-80 frames on .NET 10; which threads exist at a moment varies a little.
        assert!(
            outermost >= 4,
            "{kind:?}: {outermost} threads unwound to their start"
        );
        assert!(compared >= 40, "{kind:?}: only {compared} frames compared");
        assert!(unwinder.module_count() >= 5, "{kind:?}");
    }
}

fn vdso_range(pid: &str) -> (u64, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let l = maps
        .lines()
        .find(|l| l.ends_with("[vdso]"))
        .expect("a vDSO");
    let (a, b) = l
        .split_whitespace()
        .next()
        .unwrap()
        .split_once('-')
        .unwrap();
    (
        u64::from_str_radix(a, 16).unwrap(),
        u64::from_str_radix(b, 16).unwrap(),
    )
}

/// This process's vDSO: its address and bytes.
fn own_vdso() -> (u64, Vec<u8>) {
    use std::os::unix::fs::FileExt;
    let (a, b) = vdso_range("self");
    let mut buf = vec![0u8; (b - a) as usize];
    std::fs::File::open("/proc/self/mem")
        .unwrap()
        .read_exact_at(&mut buf, a)
        .unwrap();
    (a, buf)
}

fn target_vdso(pid: i32) -> u64 {
    vdso_range(&pid.to_string()).0
}

/// Size of this CPU's XSAVE area for the enabled features (CPUID leaf 0xD, EBX).
fn cpu_xsave_size() -> usize {
    std::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize
}

#[test]
fn gdb_reads_register_notes_siginfo_and_vdso_without_warnings() {
    let mut target = Target::start(Fixture::Console, Runtime::Net10);
    assert_eq!(target.command("ping"), "pong");
    let dir = tempfile::tempdir().unwrap();
    for kind in [DumpType::Heap, DumpType::Mini, DumpType::Triage] {
        let path = dump(&target, dir.path(), kind);
        let core = CoreFile::open(&path);
        let threads = core.threads().len();
        let xstate = core.note_descs("LINUX", 0x202);
        assert_eq!(xstate.len(), threads, "{kind:?}: NT_X86_XSTATE per thread");
        assert!(
            xstate.iter().all(|x| x.len() >= cpu_xsave_size()),
            "{kind:?}: XSAVE notes of {:?} bytes, the CPU's area is {}",
            xstate.iter().map(Vec::len).collect::<Vec<_>>(),
            cpu_xsave_size()
        );
        // Every process maps the same vDSO image of the running kernel: ours is the oracle.
        let (vdso_at, vdso) = own_vdso();
        let in_core = core.read(target_vdso(target.pid()), vdso.len());
        assert!(
            in_core.as_deref() == Some(&vdso[..]),
            "{kind:?}: vDSO ({} bytes; ours at {vdso_at:#x}) {}",
            vdso.len(),
            if in_core.is_some() {
                "differs"
            } else {
                "missing"
            }
        );
        let siginfo = core.note_descs("CORE", 0x5349_4749);
        assert_eq!(siginfo.len(), threads, "{kind:?}: NT_SIGINFO per thread");
        assert!(siginfo.iter().all(|s| s.len() == 128));
        let out = run(Command::new("gdb")
            .args(["-batch", "-nx", "-c"])
            .arg(&path)
            .arg(exe_of(target.pid()))
            .args([
                "-ex",
                "info sharedlibrary",
                "-ex",
                "p $_siginfo.si_signo",
                "-ex",
                "p/x $ymm0.v8_int32",
            ]));
        let bad: Vec<&str> = out
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("reg-xstate")
                    || l.contains("too small")
                    || l.contains("vdso")
                    || l.contains("system-supplied dso")
                    || l.contains("vsyscall")
            })
            .filter(|l| !l.trim_start().starts_with("0x"))
            .collect();
        assert!(bad.is_empty(), "{kind:?}: gdb warned: {bad:?}\n{out}");
        if kind != DumpType::Triage {
            // The threads' control blocks and the loader's lists are in the core (triage keeps
            // no module data but the runtime's, so no thread library there).
            assert!(out.contains("libthread_db enabled"), "{kind:?}: {out}");
        }
        // The stop signal ptrace reported for the main thread (SIGTRAP of PTRACE_INTERRUPT).
        assert!(
            out.lines().any(|l| l.starts_with("$1 = 5")),
            "{kind:?}: {out}"
        );
        assert!(
            out.lines().any(|l| l.starts_with("$2 = {")),
            "{kind:?}: no ymm0: {out}"
        );
    }
}
