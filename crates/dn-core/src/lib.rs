//! dn-core: the logic behind the dn tools.
//!
//! - [`elf`]: ELF core notes, read and written (the one note format of dn).
//! - [`hugealloc`]: the analyzing tools' allocator (huge pages for big blocks).
//! - [`eventpipe`]: EventPipe sessions (start, drain, stop) over the IPC channel.
//! - [`ipc`]: the runtime's diagnostics IPC channel (discovery, framing, process commands).
//! - [`ps`]: listing .NET processes with what can be known about each.
//! - [`ptrace`]: holding a live process still: threads, mappings, registers.
//! - [`render`]: plain-text tables shared by the tools' human output.

pub mod elf;
pub mod eventpipe;
pub mod hugealloc;
pub mod ipc;
pub mod ps;
pub mod ptrace;
pub mod render;
