//! Holding a live process still and reading its state: every thread stopped with
//! PTRACE_SEIZE + PTRACE_INTERRUPT ([`stop`]), its mappings from /proc/PID/smaps ([`maps`]),
//! register sets with PTRACE_GETREGSET ([`regs`]), small /proc readers ([`procinfo`]).
//! One layer for the core writer (`dn-dump collect`) and the live heap analyzer.
//!
//! The only `unsafe` of dn-core is here (ptrace requests that pass buffers, `sysconf`); each block says
//! why it is sound.

pub mod maps;
pub mod procinfo;
pub mod regs;
pub mod stop;

pub use stop::{permission_hint, StopError, StoppedProcess};
