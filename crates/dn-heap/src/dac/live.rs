//! A live process as a DAC target: every thread held with ptrace (SEIZE + INTERRUPT, so a
//! tracer that dies never leaves the target stopped), memory read through /proc/PID/mem,
//! modules from /proc/PID/maps. The threads run on when the `LiveProcess` is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{bail, Context};

use super::DataTarget;
use crate::dump::{build_id_in_memory, Module};
use crate::memory::{MemoryError, MemorySource};

/// A process held still for analysis.
pub struct LiveProcess {
    pid: i32,
    mem: File,
    modules: Vec<Module>,
    /// Registers of every held thread, by TID.
    threads: BTreeMap<u32, [u64; 27]>,
    /// Held threads, with a signal to hand back on detach (0 = none).
    held: Vec<(i32, i32)>,
}

impl std::fmt::Debug for LiveProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveProcess")
            .field("pid", &self.pid)
            .field("threads", &self.held.len())
            .finish()
    }
}

fn tids(pid: i32) -> anyhow::Result<BTreeSet<i32>> {
    let dir = format!("/proc/{pid}/task");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("process {pid} does not exist or cannot be read"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// File-backed mappings from /proc/PID/maps, grouped per file.
fn read_modules(pid: i32) -> anyhow::Result<Vec<Module>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .with_context(|| format!("cannot read the memory map of process {pid}"))?;
    let mut by_path: BTreeMap<String, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(_perms), Some(offset), Some(_dev), Some(_inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path: String = f.collect::<Vec<_>>().join(" ");
        if !path.starts_with('/') {
            continue;
        }
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(s), Ok(e), Ok(o)) = (
            u64::from_str_radix(s, 16),
            u64::from_str_radix(e, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        by_path.entry(path).or_default().push((s, e, o));
    }
    let mut out: Vec<Module> = by_path
        .into_iter()
        .map(|(path, mut ranges)| {
            ranges.sort();
            let base = ranges
                .iter()
                .filter(|r| r.2 == 0)
                .map(|r| r.0)
                .min()
                .unwrap_or(ranges[0].0);
            Module { path, base, ranges }
        })
        .collect();
    out.sort_by_key(|m| m.base);
    Ok(out)
}

impl LiveProcess {
    /// Holds every thread of `pid` (threads started meanwhile are caught by rescanning) and
    /// reads their registers.
    pub fn attach(pid: u32) -> anyhow::Result<LiveProcess> {
        let pid = i32::try_from(pid).context("process id out of range")?;
        let modules = read_modules(pid)?;
        let mut lp = LiveProcess {
            pid,
            mem: File::open(format!("/proc/{pid}/mem")).with_context(|| {
                format!("cannot open the memory of process {pid} (permission?)")
            })?,
            modules,
            threads: BTreeMap::new(),
            held: Vec::new(),
        };
        // Rescan until a pass finds no new thread.
        for _ in 0..16 {
            let fresh: Vec<i32> = tids(pid)?
                .into_iter()
                .filter(|t| !lp.held.iter().any(|h| h.0 == *t))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for tid in fresh {
                lp.hold(tid)?;
            }
        }
        if lp.held.is_empty() {
            bail!("process {pid} has no threads that could be held");
        }
        Ok(lp)
    }

    /// Seizes and interrupts one thread, waits for it to stop, reads its registers.
    fn hold(&mut self, tid: i32) -> anyhow::Result<()> {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: plain ptrace requests on a thread id; no memory is passed to the kernel.
        let seized = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, null, null) };
        if seized != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ESRCH) {
                return Ok(()); // the thread ended meanwhile
            }
            bail!(
                "cannot attach to process {} (thread {tid}): {err}",
                self.pid
            );
        }
        // Held from here on: Drop detaches it whatever happens next.
        self.held.push((tid, 0));
        // SAFETY: as above.
        unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null) };
        let mut status = 0;
        loop {
            // SAFETY: waits for this one traced thread; `status` is a valid out pointer.
            let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
            if r == tid {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if err.raw_os_error() == Some(libc::ECHILD) {
                self.held.pop();
                return Ok(()); // gone
            }
            bail!("waiting for thread {tid} to stop: {err}");
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.held.pop();
            return Ok(());
        }
        // A signal that arrived first is handed back on detach.
        let event = (status >> 16) & 0xff;
        let sig = libc::WSTOPSIG(status);
        if event == 0 && sig != libc::SIGTRAP && sig != libc::SIGSTOP {
            if let Some(h) = self.held.last_mut() {
                h.1 = sig;
            }
        }
        // SAFETY: `regs` is a properly sized user_regs_struct for PTRACE_GETREGS.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        let ok = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGS,
                tid,
                null,
                &mut regs as *mut _ as *mut libc::c_void,
            )
        } == 0;
        if ok {
            let r = &regs;
            self.threads.insert(
                tid as u32,
                [
                    r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax,
                    r.rcx, r.rdx, r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss,
                    r.fs_base, r.gs_base, r.ds, r.es, r.fs, r.gs,
                ],
            );
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// TIDs of the held threads.
    pub fn threads(&self) -> Vec<u32> {
        self.threads.keys().copied().collect()
    }
}

impl Drop for LiveProcess {
    fn drop(&mut self) {
        for &(tid, sig) in &self.held {
            // SAFETY: detaching a thread we seized; `sig` (0 or a pending signal) is passed
            // as the data argument, as PTRACE_DETACH expects.
            unsafe {
                libc::ptrace(
                    libc::PTRACE_DETACH,
                    tid,
                    std::ptr::null_mut::<libc::c_void>(),
                    sig as usize as *mut libc::c_void,
                )
            };
        }
    }
}

impl MemorySource for LiveProcess {
    fn read(&self, addr: u64, buf: &mut [u8]) -> crate::memory::Result<usize> {
        // /proc/PID/mem reads up to the first unmapped page; nothing readable is an error.
        match self.mem.read_at(buf, addr) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(MemoryError::NotAvailable { addr }),
        }
    }
}

impl DataTarget for LiveProcess {
    fn modules(&self) -> Vec<Module> {
        self.modules.clone()
    }

    fn thread_registers(&self, tid: u32) -> Option<[u64; 27]> {
        self.threads.get(&tid).copied()
    }

    fn build_id(&self, base: u64) -> Option<Vec<u8>> {
        build_id_in_memory(self, base)
    }
}
