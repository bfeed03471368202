//! What the DAC needs from a target besides memory.

use crate::dump::CoreDump;
use crate::memory::MemorySource;

/// A target the DAC can inspect: memory, module bases and thread registers.
pub trait DataTarget: MemorySource {
    /// Load base of a module by file name (case-insensitive).
    fn image_base(&self, name: &str) -> Option<u64>;
    /// `user_regs_struct` of a thread (Linux TID).
    fn thread_registers(&self, tid: u32) -> Option<[u64; 27]>;
}

impl DataTarget for CoreDump {
    fn image_base(&self, name: &str) -> Option<u64> {
        CoreDump::image_base(self, name)
    }

    fn thread_registers(&self, tid: u32) -> Option<[u64; 27]> {
        self.thread(tid).map(|t| t.regs)
    }
}
