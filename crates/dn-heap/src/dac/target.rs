//! What the DAC needs from a target besides memory.

use crate::dump::{build_id_in_memory, version_in_memory, CoreDump, Module, VersionString};
use crate::memory::{MemoryError, MemorySource};

/// A target the DAC can inspect: memory, mapped modules and thread registers. A core file is
/// one; a stopped live process can be another.
pub trait DataTarget: MemorySource {
    /// Files mapped in the target (for finding the runtime and its build).
    fn modules(&self) -> Vec<Module>;

    /// `user_regs_struct` of a thread (Linux TID).
    fn thread_registers(&self, tid: u32) -> Option<[u64; 27]>;

    /// Linux TIDs of the target's threads, in the order a debugger numbers them (a core's
    /// NT_PRSTATUS order).
    fn thread_ids(&self) -> Vec<u32>;

    /// Load base of a module by file name (case-insensitive; a path is reduced to its name).
    fn image_base(&self, name: &str) -> Option<u64> {
        let want = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
        self.modules()
            .into_iter()
            .filter(|m| {
                m.path
                    .rsplit('/')
                    .next()
                    .unwrap_or(&m.path)
                    .to_ascii_lowercase()
                    == want
            })
            .map(|m| m.base)
            .min()
    }

    /// GNU build id of the ELF image mapped at `base`, read from the target itself.
    fn build_id(&self, base: u64) -> Option<Vec<u8>>;

    /// The `@(#)Version` string of the ELF image mapped at `base`, read from the target itself.
    fn version_string(&self, base: u64) -> Option<VersionString>;
}

impl DataTarget for CoreDump {
    fn modules(&self) -> Vec<Module> {
        CoreDump::modules(self)
    }

    fn thread_registers(&self, tid: u32) -> Option<[u64; 27]> {
        self.thread(tid).map(|t| t.regs)
    }

    fn thread_ids(&self) -> Vec<u32> {
        self.threads().iter().map(|t| t.tid).collect()
    }

    fn image_base(&self, name: &str) -> Option<u64> {
        CoreDump::image_base(self, name)
    }

    /// From the core's bytes only: the on-disk file must not vouch for itself.
    fn build_id(&self, base: u64) -> Option<Vec<u8>> {
        build_id_in_memory(&CoreOnly(self), base)
    }

    /// From the core's bytes only, likewise.
    fn version_string(&self, base: u64) -> Option<VersionString> {
        version_in_memory(&CoreOnly(self), base)
    }
}

/// Memory of the core only, never the files on disk.
struct CoreOnly<'a>(&'a CoreDump);

impl MemorySource for CoreOnly<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> crate::memory::Result<usize> {
        match self.0.slice(addr, 1) {
            Some(_) => self.0.read_core_only(addr, buf),
            None => Err(MemoryError::NotAvailable { addr }),
        }
    }
}
