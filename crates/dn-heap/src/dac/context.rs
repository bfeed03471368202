//! Thread registers, typed: x86-64's `user_regs_struct` (what NT_PRSTATUS in a core and
//! PTRACE_GETREGSET on a live thread give) and the Windows-layout AMD64 `CONTEXT` the DAC reads
//! and writes.

/// x86-64 `user_regs_struct`, in the kernel's order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct X64Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl X64Regs {
    /// From the 27 words of `user_regs_struct` (`dn_core::elf::notes::GP_REGS`).
    pub fn from_words(w: &[u64; 27]) -> X64Regs {
        X64Regs {
            r15: w[0],
            r14: w[1],
            r13: w[2],
            r12: w[3],
            rbp: w[4],
            rbx: w[5],
            r11: w[6],
            r10: w[7],
            r9: w[8],
            r8: w[9],
            rax: w[10],
            rcx: w[11],
            rdx: w[12],
            rsi: w[13],
            rdi: w[14],
            orig_rax: w[15],
            rip: w[16],
            cs: w[17],
            eflags: w[18],
            rsp: w[19],
            ss: w[20],
            fs_base: w[21],
            gs_base: w[22],
            ds: w[23],
            es: w[24],
            fs: w[25],
            gs: w[26],
        }
    }
}

/// `CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS`.
pub const CONTEXT_AMD64_CIS: u32 = 0x0010_0007;
/// `CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT | DEBUG_REGISTERS`.
pub const CONTEXT_AMD64_ALL: u32 = 0x0010_001F;

/// The Windows AMD64 `CONTEXT` (winnt.h), 0x4D0 bytes, 16-byte aligned.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct Amd64Context {
    pub home: [u64; 6],
    pub context_flags: u32,
    pub mx_csr: u32,
    pub seg_cs: u16,
    pub seg_ds: u16,
    pub seg_es: u16,
    pub seg_fs: u16,
    pub seg_gs: u16,
    pub seg_ss: u16,
    pub eflags: u32,
    pub dr: [u64; 6],
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rbx: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub flt_save: [u8; 512],
    pub vector_register: [u8; 26 * 16],
    pub vector_control: u64,
    pub debug_control: u64,
    pub last_branch: [u64; 4],
}

pub const AMD64_CONTEXT_SIZE: usize = std::mem::size_of::<Amd64Context>();

const _: () = {
    use std::mem::offset_of;
    assert!(AMD64_CONTEXT_SIZE == 0x4D0);
    assert!(offset_of!(Amd64Context, context_flags) == 0x30);
    assert!(offset_of!(Amd64Context, seg_cs) == 0x38);
    assert!(offset_of!(Amd64Context, eflags) == 0x44);
    assert!(offset_of!(Amd64Context, rax) == 0x78);
    assert!(offset_of!(Amd64Context, rsp) == 0x98);
    assert!(offset_of!(Amd64Context, rip) == 0xF8);
    assert!(offset_of!(Amd64Context, flt_save) == 0x100);
    assert!(offset_of!(Amd64Context, vector_control) == 0x4A0);
};

impl Default for Amd64Context {
    fn default() -> Self {
        Amd64Context {
            home: [0; 6],
            context_flags: 0,
            mx_csr: 0,
            seg_cs: 0,
            seg_ds: 0,
            seg_es: 0,
            seg_fs: 0,
            seg_gs: 0,
            seg_ss: 0,
            eflags: 0,
            dr: [0; 6],
            rax: 0,
            rcx: 0,
            rdx: 0,
            rbx: 0,
            rsp: 0,
            rbp: 0,
            rsi: 0,
            rdi: 0,
            r8: 0,
            r9: 0,
            r10: 0,
            r11: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rip: 0,
            flt_save: [0; 512],
            vector_register: [0; 26 * 16],
            vector_control: 0,
            debug_control: 0,
            last_branch: [0; 4],
        }
    }
}

impl Amd64Context {
    /// The integer, control and segment registers of a Linux thread.
    pub fn from_regs(r: &X64Regs) -> Amd64Context {
        Amd64Context {
            context_flags: CONTEXT_AMD64_CIS,
            seg_cs: r.cs as u16,
            seg_ds: r.ds as u16,
            seg_es: r.es as u16,
            seg_fs: r.fs as u16,
            seg_gs: r.gs as u16,
            seg_ss: r.ss as u16,
            eflags: r.eflags as u32,
            rax: r.rax,
            rcx: r.rcx,
            rdx: r.rdx,
            rbx: r.rbx,
            rsp: r.rsp,
            rbp: r.rbp,
            rsi: r.rsi,
            rdi: r.rdi,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: r.rip,
            ..Default::default()
        }
    }

    /// The context as the bytes the DAC exchanges.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: a `#[repr(C)]` struct of integers whose layout (asserted above) has no padding,
        // so all AMD64_CONTEXT_SIZE bytes are initialised.
        unsafe { std::slice::from_raw_parts(self as *const Self as *const u8, AMD64_CONTEXT_SIZE) }
    }

    /// The name and value of an integer register by the DAC's CLR register number (the order
    /// of the CONTEXT's integer block: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15).
    pub fn register_name(n: u32) -> Option<&'static str> {
        const NAMES: [&str; 16] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
            "r12", "r13", "r14", "r15",
        ];
        NAMES.get(n as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_land_where_windows_puts_them() {
        let mut w = [0u64; 27];
        for (i, v) in w.iter_mut().enumerate() {
            *v = 0x1000 + i as u64;
        }
        let r = X64Regs::from_words(&w);
        assert_eq!(r.rip, 0x1000 + 16);
        assert_eq!(r.rsp, 0x1000 + 19);
        let c = Amd64Context::from_regs(&r);
        let b = c.as_bytes();
        let at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(at(0xF8), r.rip);
        assert_eq!(at(0x98), r.rsp);
        assert_eq!(at(0xA0), r.rbp);
        assert_eq!(at(0x78), r.rax);
        assert_eq!(at(0xF0), r.r15);
        assert_eq!(
            u32::from_le_bytes(b[0x30..0x34].try_into().unwrap()),
            CONTEXT_AMD64_CIS
        );
    }
}
