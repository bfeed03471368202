//! Writes an ELF core dump of a live Linux x86-64 process using ptrace, with
//! no help from the process itself: `collect(CollectOptions)`.
//!
//! The target's threads are stopped with PTRACE_SEIZE + PTRACE_INTERRUPT
//! (no SIGSTOP, so a killed dumper leaves it running), memory is selected by
//! dump type, read only where /proc/PID/pagemap says pages exist, and
//! written sparsely. The `cli` module is the `dn-dump collect` front end.

mod arena;
mod attempt;
pub mod cli;
mod collect;
mod copy;
mod dirty;
mod elf;
mod error;
mod gc;
mod linkmap;
mod memory;
mod modules;
mod notes;
mod output;
mod precopy;
mod refresh;
mod runtime_events;
mod select;
mod signals;
mod stage;
pub mod trigger;
pub mod units;
mod warm;
mod writeback;
mod xsave;

// The ptrace/maps/registers layer is dn-core's, shared with the live heap analyzer.
use dn_core::ptrace::{maps, procinfo, regs};

pub use collect::{collect, CollectOptions, CollectSummary, CopyMode, ProgressFn};
pub use dirty::Tracking;
pub use error::CollectError;
pub use gc::GcCheck;
pub use select::DumpType;

/// Exit status for an error of [`cli::run`]: see [`CollectError::exit_code`]; 1 for others.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(t) = e.downcast_ref::<trigger::TriggerError>() {
        return t.exit_code();
    }
    e.downcast_ref::<CollectError>()
        .map_or(1, CollectError::exit_code)
}
