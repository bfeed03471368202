//! A live process as a DAC target: every thread held with ptrace (SEIZE + INTERRUPT, so a
//! tracer that dies never leaves the target stopped), memory read through /proc/PID/mem,
//! modules from /proc/PID/smaps. The stopping, the mappings and the registers are dn-core's
//! ptrace layer, the one `dn-dump collect` uses. The threads run on when the `LiveProcess` is
//! dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::Context;
use dn_core::ptrace::{maps, regs, StoppedProcess};

use super::DataTarget;
use crate::dump::{build_id_in_memory, version_in_memory, Module, VersionString};
use crate::memory::{MemoryError, MemorySource};

/// A process held still for analysis.
pub struct LiveProcess {
    pid: i32,
    mem: File,
    modules: Vec<Module>,
    /// Registers of every held thread, by TID.
    threads: BTreeMap<u32, [u64; 27]>,
    /// Detaches every thread when dropped.
    stopped: StoppedProcess,
}

impl std::fmt::Debug for LiveProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveProcess")
            .field("pid", &self.pid)
            .field("threads", &self.stopped.tids().len())
            .finish()
    }
}

/// File-backed mappings, grouped per file.
fn modules_of(mappings: &[maps::Mapping]) -> Vec<Module> {
    let mut by_path: BTreeMap<&str, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for m in mappings.iter().filter(|m| m.is_file_backed()) {
        by_path
            .entry(&m.name)
            .or_default()
            .push((m.start, m.end, m.offset));
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
            Module {
                path: path.to_string(),
                base,
                ranges,
            }
        })
        .collect();
    out.sort_by_key(|m| m.base);
    out
}

impl LiveProcess {
    /// Holds every thread of `pid` (threads started meanwhile are caught by rescanning) and
    /// reads their registers.
    pub fn attach(pid: u32) -> anyhow::Result<LiveProcess> {
        let pid = i32::try_from(pid).context("process id out of range")?;
        let mem = File::open(format!("/proc/{pid}/mem"))
            .with_context(|| format!("cannot open the memory of process {pid} (permission?)"))?;
        let stopped = StoppedProcess::stop(pid)?;
        // Read once stopped: the mappings cannot change under us any more.
        let mappings = maps::read_mappings(pid)
            .with_context(|| format!("cannot read the memory map of process {pid}"))?;
        let mut threads = BTreeMap::new();
        for &tid in stopped.tids() {
            // A thread whose registers cannot be read is still held; it just has no context.
            if let Ok(gp) = regs::read_gp_regs(tid) {
                threads.insert(tid as u32, gp);
            }
        }
        Ok(LiveProcess {
            pid,
            mem,
            modules: modules_of(&mappings),
            threads,
            stopped,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// TIDs of the held threads.
    pub fn threads(&self) -> Vec<u32> {
        self.threads.keys().copied().collect()
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

    /// The main thread (TID = PID) first, then by TID: the order threads were created in.
    fn thread_ids(&self) -> Vec<u32> {
        let mut t = self.threads();
        t.sort_by_key(|&tid| (tid != self.pid as u32, tid));
        t
    }

    fn build_id(&self, base: u64) -> Option<Vec<u8>> {
        build_id_in_memory(self, base)
    }

    fn version_string(&self, base: u64) -> Option<VersionString> {
        version_in_memory(self, base)
    }
}
