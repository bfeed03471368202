//! Register sets of a stopped thread via PTRACE_GETREGSET, kept as the raw
//! bytes the kernel returns (that is exactly what the core notes hold).

use nix::errno::Errno;

use crate::elf::notes::{NT_PRFPREG, NT_PRSTATUS, NT_X86_XSTATE};

pub use crate::elf::notes::GP_REGS;
pub const FPREGS_LEN: usize = 512;
/// `sizeof(siginfo_t)` on Linux.
pub const SIGINFO_LEN: usize = 128;
/// Large enough for any XSAVE layout (AVX-512 + AMX is ~11 KiB).
const XSTATE_MAX: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct ThreadRegs {
    pub tid: i32,
    pub gp: [u64; GP_REGS],
    pub fp: Option<Vec<u8>>,
    pub xstate: Option<Vec<u8>>,
    /// `siginfo_t` of the signal that stopped the thread (PTRACE_GETSIGINFO), as gdb's
    /// `gcore` keeps it in NT_SIGINFO; `None` when the kernel has none for this stop.
    pub siginfo: Option<[u8; SIGINFO_LEN]>,
}

impl ThreadRegs {
    pub fn sp(&self) -> u64 {
        self.gp[19]
    }

    /// `fs_base`: on x86-64 Linux the thread pointer (glibc's `struct pthread`).
    pub fn fs_base(&self) -> u64 {
        self.gp[21]
    }
}

fn getregset(tid: i32, note_type: u32, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the iovec points into `buf`, which outlives the call; the kernel
    // writes at most iov_len bytes there and updates iov_len to what it wrote.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            note_type as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(iov.iov_len)
    }
}

/// The general-purpose registers (`user_regs_struct`) of a stopped thread.
pub fn read_gp_regs(tid: i32) -> Result<[u64; GP_REGS], Errno> {
    let mut raw = [0u8; GP_REGS * 8];
    let n = getregset(tid, NT_PRSTATUS, &mut raw)?;
    if n != raw.len() {
        return Err(Errno::EIO);
    }
    let mut gp = [0u64; GP_REGS];
    for (r, b) in gp.iter_mut().zip(raw.chunks_exact(8)) {
        *r = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
    Ok(gp)
}

/// The `siginfo_t` of the stop a traced thread is in.
pub fn read_siginfo(tid: i32) -> Result<[u8; SIGINFO_LEN], Errno> {
    let mut info = [0u8; SIGINFO_LEN];
    // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t (128 bytes on Linux) at the data
    // pointer, which points to a buffer of exactly that size that outlives the call.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            info.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(info)
    }
}

/// Reads all register sets of a stopped thread. FP and XSTATE are optional
/// (a CPU or kernel without them still gives a usable core).
pub fn read_thread_regs(tid: i32) -> Result<ThreadRegs, Errno> {
    let gp = read_gp_regs(tid)?;
    let mut fp = vec![0u8; FPREGS_LEN];
    let fp = match getregset(tid, NT_PRFPREG, &mut fp) {
        Ok(n) if n == FPREGS_LEN => Some(fp),
        _ => None,
    };
    let mut xs = vec![0u8; XSTATE_MAX];
    let xstate = match getregset(tid, NT_X86_XSTATE, &mut xs) {
        Ok(n) if n > 0 => {
            xs.truncate(n);
            Some(xs)
        }
        _ => None,
    };
    Ok(ThreadRegs {
        tid,
        gp,
        fp,
        xstate,
        siginfo: read_siginfo(tid).ok(),
    })
}
