//! `dumpstackobjects` / `dso [TOP [BOTTOM]]`: the objects whose addresses are on the current
//! thread's stack (or in its registers), as current SOS's managed command finds them: every
//! pointer-sized stack word that is the start of a real object on the GC heap.

use std::ops::ControlFlow;

use anyhow::{bail, Context};
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{parse_addr, ser_hex, Render, Session};
use crate::dac::context::X64Regs;
use crate::dac::{FrameKind, WalkOptions};

/// Past the highest managed frame SOS also scans this much (the caller's frame).
const ABOVE_LAST_FRAME: u64 = 0x2000;
/// Without managed frames: this much above SP.
const NO_FRAMES_RANGE: u64 = 0xFFFF;
/// Frame SPs further apart than this are on different stacks (an alternate signal stack).
const STACK_GAP: u64 = 4 << 20;
/// Largest range scanned (a wild TOP/BOTTOM must not read gigabytes).
const MAX_RANGE: u64 = 64 << 20;
const CHUNK: u64 = 64 << 10;

#[derive(Debug, Clone, Serialize)]
pub struct StackObject {
    /// The stack address holding the reference, or `None` for a register.
    #[serde(serialize_with = "super::ser_hex_opt")]
    pub stack_address: Option<u64>,
    pub register: Option<String>,
    #[serde(serialize_with = "ser_hex")]
    pub object: u64,
    pub type_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackRange {
    #[serde(serialize_with = "ser_hex")]
    pub start: u64,
    #[serde(serialize_with = "ser_hex")]
    pub end: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DumpStackObjects {
    pub os_thread_id: u32,
    pub index: usize,
    pub ranges: Vec<StackRange>,
    pub objects: Vec<StackObject>,
    pub warnings: Vec<String>,
}

/// The ranges SOS scans: from SP (or the lowest frame) to past the highest managed frame,
/// split where frames jump to another stack.
fn default_ranges(sp: u64, mut frame_sps: Vec<u64>) -> Vec<(u64, u64)> {
    frame_sps.retain(|&v| v != 0);
    frame_sps.sort_unstable();
    if frame_sps.is_empty() {
        return vec![(sp, sp.saturating_add(NO_FRAMES_RANGE))];
    }
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut start = frame_sps[0].min(sp);
    let mut last = frame_sps[0];
    for &v in &frame_sps[1..] {
        if v - last > STACK_GAP {
            out.push((start, last.saturating_add(ABOVE_LAST_FRAME)));
            start = v;
        }
        last = v;
    }
    out.push((start, last.saturating_add(ABOVE_LAST_FRAME)));
    out
}

pub fn dso(s: &Session, args: &[&str]) -> anyhow::Result<DumpStackObjects> {
    let (index, tid) = s.current_thread()?;
    let words: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(o) = args
        .iter()
        .find(|a| a.starts_with('-') && !a.eq_ignore_ascii_case("-verify"))
    {
        bail!("unknown dso option '{o}': usage: dso [-verify] [TOP [BOTTOM]]");
    }
    let regs = s
        .runtime
        .target
        .thread_registers(tid)
        .map(|w| X64Regs::from_words(&w))
        .with_context(|| format!("no registers for thread 0x{tid:x}"))?;
    let mut warnings = Vec::new();
    let ranges: Vec<(u64, u64)> = match words.as_slice() {
        [] => {
            let sps = match s
                .runtime
                .dac
                .walk_stack(tid, WalkOptions::default(), &s.cancel)
            {
                Ok(w) => {
                    if let Some(why) = w.stopped {
                        warnings.push(format!("stack walk: {why}"));
                    }
                    w.frames
                        .iter()
                        .filter(|f| f.kind == FrameKind::Managed)
                        .map(|f| f.sp)
                        .collect()
                }
                Err(_) => Vec::new(),
            };
            default_ranges(regs.rsp, sps)
        }
        [top] => {
            let t = parse_addr(Some(top), "dso [TOP [BOTTOM]]")?;
            vec![(t, t.saturating_add(NO_FRAMES_RANGE))]
        }
        [top, bottom, ..] => {
            let (t, b) = (
                parse_addr(Some(top), "dso TOP BOTTOM")?,
                parse_addr(Some(bottom), "dso TOP BOTTOM")?,
            );
            if b <= t {
                bail!("BOTTOM ({b:x}) must be above TOP ({t:x})");
            }
            vec![(t, b)]
        }
    };
    let heap = &s.runtime.heap;
    let mem = heap.memory();
    let (lo, hi) = heap
        .segments
        .iter()
        .fold((u64::MAX, 0u64), |(l, h), g| (l.min(g.start), h.max(g.end)));
    // Candidates: (value -> where it was seen).
    let mut slots: Vec<(u64, Option<u64>, Option<&'static str>)> = Vec::new();
    let named = [
        ("rax", regs.rax),
        ("rbx", regs.rbx),
        ("rcx", regs.rcx),
        ("rdx", regs.rdx),
        ("rsi", regs.rsi),
        ("rdi", regs.rdi),
        ("rbp", regs.rbp),
        ("r8", regs.r8),
        ("r9", regs.r9),
        ("r10", regs.r10),
        ("r11", regs.r11),
        ("r12", regs.r12),
        ("r13", regs.r13),
        ("r14", regs.r14),
        ("r15", regs.r15),
    ];
    for (n, v) in named {
        if (lo..hi).contains(&v) {
            slots.push((v, None, Some(n)));
        }
    }
    for &(start, end) in &ranges {
        let start = start & !7;
        if end.saturating_sub(start) > MAX_RANGE {
            bail!(
                "the range {start:x}..{end:x} is larger than {} MiB",
                MAX_RANGE >> 20
            );
        }
        let mut at = start;
        let mut read_any = false;
        while at < end {
            if s.cancelled() {
                warnings.push("cancelled: the stack was not scanned to the end".into());
                break;
            }
            let n = (end - at).min(CHUNK) as usize;
            let mut buf = vec![0u8; n];
            match mem.read(at, &mut buf) {
                Ok(got) => {
                    read_any = true;
                    for (i, w) in buf[..got - got % 8].chunks_exact(8).enumerate() {
                        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                        if (lo..hi).contains(&v) {
                            slots.push((v, Some(at + i as u64 * 8), None));
                        }
                    }
                    at += (got as u64).max(8);
                }
                // Past the top of the thread's stack mapping: the range ends there.
                Err(_) if read_any => break,
                Err(_) => {
                    warnings.push(format!("stack memory at {at:x} is not in the target"));
                    break;
                }
            }
        }
    }
    // Keep the values that are real object starts: walk only the segments holding candidates.
    let mut want: FxHashMap<u64, String> = slots.iter().map(|c| (c.0, String::new())).collect();
    let mut segs: Vec<usize> = heap
        .segments
        .iter()
        .enumerate()
        .filter(|(_, g)| want.keys().any(|&v| g.contains(v)))
        .map(|(i, _)| i)
        .collect();
    segs.sort_by_key(|&i| heap.segments[i].start);
    // Free-space markers count as objects here, as SOS lists them ("Free").
    let mut found: FxHashMap<u64, u64> = FxHashMap::default();
    let issues = heap.walk_segments(&s.runtime.dac, segs.into_iter(), Some(&s.cancel), |o| {
        if want.contains_key(&o.address) {
            found.insert(o.address, o.mt);
        }
        ControlFlow::Continue(())
    })?;
    warnings.extend(
        issues
            .iter()
            .map(|i| format!("heap walk: {:x}: {}", i.address, i.message)),
    );
    for (v, name) in want.iter_mut() {
        if let Some(&mt) = found.get(v) {
            *name = heap.type_name(&s.runtime.dac, mt);
        }
    }
    let mut objects: Vec<StackObject> = slots
        .into_iter()
        .filter(|(v, _, _)| found.contains_key(v))
        .map(|(v, at, reg)| StackObject {
            stack_address: at,
            register: reg.map(str::to_string),
            object: v,
            type_name: want[&v].clone(),
        })
        .collect();
    // Registers first, then by stack address; one row per stack slot.
    objects.sort_by_key(|o| (o.stack_address.is_some(), o.stack_address));
    objects.dedup_by_key(|o| (o.stack_address, o.register.clone()));
    Ok(DumpStackObjects {
        os_thread_id: tid,
        index,
        ranges: ranges
            .into_iter()
            .map(|(start, end)| StackRange { start, end })
            .collect(),
        objects,
        warnings,
    })
}

impl Render for DumpStackObjects {
    fn render(&self) -> String {
        let mut out = format!(
            "OS Thread Id: 0x{:x} ({})\n{:>16} {:>16} Name\n",
            self.os_thread_id, self.index, "SP/REG", "Object"
        );
        for o in &self.objects {
            let at = match (&o.register, o.stack_address) {
                (Some(r), _) => r.clone(),
                (None, Some(a)) => format!("{a:x}"),
                (None, None) => String::new(),
            };
            out.push_str(&format!("{at:>16} {:>16x} {}\n", o.object, o.type_name));
        }
        crate::commands::push_warnings(&mut out, &self.warnings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_frames_and_split_at_a_stack_jump() {
        assert_eq!(
            default_ranges(0x1000, vec![]),
            vec![(0x1000, 0x1000 + NO_FRAMES_RANGE)]
        );
        assert_eq!(
            default_ranges(0x1000, vec![0x1200, 0x1100]),
            vec![(0x1000, 0x1200 + ABOVE_LAST_FRAME)]
        );
        let far = 0x1100 + STACK_GAP + 1;
        assert_eq!(
            default_ranges(0x1000, vec![0x1100, far]),
            vec![
                (0x1000, 0x1100 + ABOVE_LAST_FRAME),
                (far, far + ABOVE_LAST_FRAME)
            ]
        );
    }
}
