//! Managed heap analysis of .NET core dumps and running processes on Linux x64.
//!
//! * [`dump`] reads ELF core files (memory, mapped files, threads).
//! * [`memory`] is the small memory-reading trait everything else uses.
//! * [`dac`] hosts the runtime's own data access component (`libmscordaccore.so`) over a
//!   [`dac::DataTarget`] (a core file, or a live process held with ptrace); it is the only
//!   module with FFI.
//! * [`heap`] walks the GC heap by reading memory directly (one DAC call per MethodTable).
//! * [`commands`] implements SOS-style commands returning typed, serializable results.
//! * [`names`] turns the DAC's type names into SOS's.
//! * [`snapshot`] answers the graph commands on a `.gcdump` heap snapshot.
//! * [`cli`] is the `analyze` front end (`-c`, `--json`, piped commands, a prompt).

pub mod cli;
pub mod commands;
pub mod dac;
pub mod diff;
pub mod dump;
pub mod graph;
pub mod heap;
pub mod memory;
pub mod names;
pub mod report;
pub mod roots;
pub mod snapshot;
