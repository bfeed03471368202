//! The NT_X86_XSTATE note in the standard XSAVE layout readers assume.
//!
//! PTRACE_GETREGSET gives a thread's XSAVE area as the CPU lays it out: each state component
//! at the offset CPUID leaf 0xD sub-leaf *i* names. Readers of cores (gdb up to 13, lldb) do
//! not know that CPU; they place the components at the offsets of the first CPUs that had
//! them (AVX at 576, MPX at 960, AVX-512 at 1088/1152/1664, PKRU at 2688) and refuse a note
//! shorter than that layout ("`.reg-xstate` ... too small"). Where the CPU's layout differs
//! (AMD Zen 4 keeps AVX-512 at 832/896/1408, without MPX's gap) the components are moved to
//! those standard offsets, so every register reads back right; where they agree, or a
//! component has no standard offset, the bytes are kept as they are.

/// One state component of the XSAVE area: its XCR0 bit, size and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub bit: u32,
    pub size: u32,
    pub offset: u32,
}

/// Legacy area (512) and XSAVE header (64): the same on every CPU.
const FIXED_PART: usize = 576;
/// Where Linux's ptrace puts XCR0 in the legacy area's software-reserved bytes.
const XCR0_OFFSET: usize = 464;

/// The standard offsets of the user state components readers know (Intel SDM, table 13-1).
const STANDARD: [Component; 7] = [
    Component {
        bit: 2,
        size: 256,
        offset: 576,
    }, // AVX (YMM_Hi128)
    Component {
        bit: 3,
        size: 64,
        offset: 960,
    }, // MPX BNDREGS
    Component {
        bit: 4,
        size: 64,
        offset: 1024,
    }, // MPX BNDCSR
    Component {
        bit: 5,
        size: 64,
        offset: 1088,
    }, // AVX-512 opmask
    Component {
        bit: 6,
        size: 512,
        offset: 1152,
    }, // AVX-512 ZMM_Hi256
    Component {
        bit: 7,
        size: 1024,
        offset: 1664,
    }, // AVX-512 Hi16_ZMM
    Component {
        bit: 9,
        size: 8,
        offset: 2688,
    }, // PKRU
];

/// The CPU's layout of the user state components 2..=18 (CPUID leaf 0xD).
pub fn cpu_layout() -> Vec<Component> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid_count;
        (2..=18)
            .filter_map(|bit| {
                let r = __cpuid_count(0xd, bit);
                // ECX bit 0 set: a supervisor component, never in a user XSAVE area.
                (r.eax != 0 && r.ecx & 1 == 0).then_some(Component {
                    bit,
                    size: r.eax,
                    offset: r.ebx,
                })
            })
            .collect()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// `xs` (as PTRACE_GETREGSET returned it on a CPU with layout `cpu`) in the standard layout.
pub fn to_standard_layout(xs: &[u8], cpu: &[Component]) -> Vec<u8> {
    let Some(xcr0) = xs
        .get(XCR0_OFFSET..XCR0_OFFSET + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return xs.to_vec();
    };
    let mut moves = Vec::new();
    for bit in (2..64).filter(|b| xcr0 & (1u64 << b) != 0) {
        let std = STANDARD.iter().find(|c| c.bit == bit);
        let here = cpu.iter().find(|c| c.bit == bit);
        match (std, here) {
            (Some(s), Some(h)) if s.size == h.size => moves.push((*h, *s)),
            // A component readers have no fixed place for (AMX tiles, ...): keep the CPU's.
            _ => return xs.to_vec(),
        }
    }
    if moves.iter().all(|(h, s)| h.offset == s.offset) {
        return xs.to_vec();
    }
    let end = moves
        .iter()
        .map(|(_, s)| (s.offset + s.size) as usize)
        .max()
        .unwrap_or(FIXED_PART);
    let mut out = vec![0u8; end.max(FIXED_PART)];
    let fixed = FIXED_PART.min(xs.len());
    out[..fixed].copy_from_slice(&xs[..fixed]);
    for (h, s) in moves {
        let (from, to, n) = (h.offset as usize, s.offset as usize, h.size as usize);
        if let Some(src) = xs.get(from..from + n) {
            out[to..to + n].copy_from_slice(src);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPUID leaf 0xD of an AMD EPYC (Zen 4) with XCR0 = 0xe7: AVX, then AVX-512 right after.
    const ZEN4: [Component; 4] = [
        Component {
            bit: 2,
            size: 256,
            offset: 576,
        },
        Component {
            bit: 5,
            size: 64,
            offset: 832,
        },
        Component {
            bit: 6,
            size: 512,
            offset: 896,
        },
        Component {
            bit: 7,
            size: 1024,
            offset: 1408,
        },
    ];

    fn area(xcr0: u64, len: usize) -> Vec<u8> {
        let mut xs: Vec<u8> = (0..len).map(|i| (i / 64) as u8).collect();
        xs[XCR0_OFFSET..XCR0_OFFSET + 8].copy_from_slice(&xcr0.to_le_bytes());
        xs
    }

    #[test]
    fn zen4_avx512_state_moves_to_the_standard_offsets() {
        let xs = area(0xe7, 2432);
        let out = to_standard_layout(&xs, &ZEN4);
        assert_eq!(out.len(), 2688, "the size gdb expects for XCR0 0xe7");
        assert_eq!(out[..832], xs[..832], "legacy, header and AVX stay");
        assert_eq!(out[1088..1152], xs[832..896], "opmask");
        assert_eq!(out[1152..1664], xs[896..1408], "ZMM_Hi256");
        assert_eq!(out[1664..2688], xs[1408..2432], "Hi16_ZMM");
        assert!(out[960..1088].iter().all(|&b| b == 0), "no MPX state");
    }

    #[test]
    fn a_standard_cpu_or_an_unknown_component_keeps_the_bytes() {
        let intel = [
            Component {
                bit: 2,
                size: 256,
                offset: 576,
            },
            Component {
                bit: 5,
                size: 64,
                offset: 1088,
            },
            Component {
                bit: 6,
                size: 512,
                offset: 1152,
            },
            Component {
                bit: 7,
                size: 1024,
                offset: 1664,
            },
        ];
        let xs = area(0xe7, 2688);
        assert_eq!(to_standard_layout(&xs, &intel), xs);
        // AMX tile data (bit 18) has no standard place: nothing moves.
        let xs = area(0xe7 | 1 << 17 | 1 << 18, 2432);
        assert_eq!(to_standard_layout(&xs, &ZEN4), xs);
        // Too short to hold XCR0: kept.
        assert_eq!(to_standard_layout(&[1, 2, 3], &ZEN4), vec![1, 2, 3]);
    }
}
