//! Property tests of the ELF core reader on a real core: the test dumps a .NET 10 target, keeps
//! the part of the core that holds the structure (ELF header, program headers, notes and the
//! first segments), and mutates it where the structure is: bit flips in header fields, length
//! and offset fields set to extremes, truncation at every boundary, program headers and notes
//! swapped. Every mutant either opens (and then every query answers without a panic) or fails
//! with a one-line `DumpError` that is not an I/O error and names an offset inside the file.
//!
//! Runs in the test profile (overflow checks on). `PROPTEST_CASES` sets the case count per
//! property (default 2048 each); a longer developer run: `PROPTEST_CASES=100000`.

mod common;

use std::sync::OnceLock;

use common::make_dump;
use dn_core::elf::notes;
use dn_heap::dac::DataTarget;
use dn_heap::dump::{CoreDump, DumpError};
use dn_heap::memory::MemorySource;
use dn_testkit::mutate::{self, cases};
use dn_testkit::Runtime;
use proptest::prelude::*;

const PHDR: usize = 56;

/// The structural part of a real core and where its fields are.
struct Corpus {
    bytes: Vec<u8>,
    /// (offset, width) of every length, offset, count and type field worth mutating.
    fields: Vec<(usize, usize)>,
    /// Offsets where a cut changes what the reader sees.
    cuts: Vec<usize>,
    /// Program header table: offset and count.
    phoff: usize,
    phnum: usize,
    /// Byte range of each note of the first PT_NOTE segment.
    notes: Vec<std::ops::Range<usize>>,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        let d = make_dump(Runtime::Net10, false, 10, "--withheap");
        let full = std::fs::read(&d.core).expect("read core");
        let phoff = u64_at(&full, 0x20) as usize;
        let phnum = u16::from_le_bytes([full[0x38], full[0x39]]) as usize;
        let mut fields = vec![
            (0x20, 8),
            (0x28, 8),
            (0x36, 2),
            (0x38, 2),
            (0x3c, 2),
            (0x10, 2),
        ];
        let mut cuts = vec![0, 4, 16, 63, 64, phoff, phoff + phnum * PHDR];
        let mut notes_range = 0..0;
        let mut loads = Vec::new();
        for i in 0..phnum {
            let p = phoff + i * PHDR;
            fields.extend([(p, 4), (p + 8, 8), (p + 16, 8), (p + 32, 8), (p + 40, 8)]);
            cuts.extend([p, p + 8, p + PHDR - 1]);
            let (ty, off, filesz) = (
                u32::from_le_bytes(full[p..p + 4].try_into().unwrap()),
                u64_at(&full, p + 8) as usize,
                u64_at(&full, p + 32) as usize,
            );
            if ty == 4 && notes_range.is_empty() {
                notes_range = off..off + filesz;
            } else if ty == 1 && loads.len() < 8 {
                loads.push(off);
            }
        }
        let mut note_ranges = Vec::new();
        for n in notes::notes(&full[notes_range.clone()], notes_range.start as u64) {
            let n = n.expect("the runtime's core has well-formed notes");
            let start = n.offset as usize;
            let desc = n.desc_offset as usize;
            let end = (desc + n.desc.len() + 3) & !3;
            note_ranges.push(start..end.min(notes_range.end));
            fields.extend([(start, 4), (start + 4, 4), (start + 8, 4)]);
            cuts.extend([start, start + 6, desc, desc + n.desc.len() / 2]);
            if n.is("CORE", notes::NT_FILE) {
                fields.extend([(desc, 8), (desc + 8, 8)]);
                let count = u64_at(n.desc, 0) as usize;
                for e in (0..count.min(8)).chain(count.saturating_sub(2)..count) {
                    let at = desc + 16 + e * 24;
                    fields.extend([(at, 8), (at + 8, 8), (at + 16, 8)]);
                }
            }
        }
        // Keep the notes and the first segments: enough structure, small enough to write often.
        loads.retain(|&l| l < notes_range.end + (256 << 10));
        let keep = loads
            .iter()
            .copied()
            .chain([notes_range.end])
            .max()
            .unwrap()
            .saturating_add(16 << 10)
            .min(full.len());
        eprintln!(
            "corpus: {keep} of {} bytes, {} segments kept",
            full.len(),
            loads.len()
        );
        for &l in &loads {
            cuts.extend([l, l + 1, l + 4096]);
        }
        cuts.extend([notes_range.end, keep - 1, keep]);
        cuts.retain(|&c| c <= keep);
        fields.retain(|&(at, w)| at + w <= keep);
        Corpus {
            bytes: full[..keep].to_vec(),
            fields,
            cuts,
            phoff,
            phnum,
            notes: note_ranges,
        }
    })
}

/// Values a damaged length or offset field takes.
const EXTREMES: [u64; 10] = [
    0,
    1,
    0x7f,
    0xffff,
    0xffff_ffff,
    0x8000_0000,
    1 << 60,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 55,
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { field: usize, bit: u32 },
    Extreme { field: usize, value: usize },
    Truncate { cut: usize, delta: i8 },
    SwapPhdrs(usize, usize),
    SwapNotes(usize, usize),
    Byte { at: usize, value: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0u32..64).prop_map(|(field, bit)| Mutation::Flip { field, bit }),
        3 => (any::<usize>(), 0..EXTREMES.len()).prop_map(|(field, value)| Mutation::Extreme { field, value }),
        2 => (any::<usize>(), -2i8..=2).prop_map(|(cut, delta)| Mutation::Truncate { cut, delta }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapPhdrs(a, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapNotes(a, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
    ]
}

fn apply(c: &Corpus, b: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Flip { field, bit } => {
            mutate::flip(b, c.fields[field % c.fields.len()], bit as usize);
        }
        Mutation::Extreme { field, value } => {
            mutate::set(b, c.fields[field % c.fields.len()], EXTREMES[value]);
        }
        Mutation::Truncate { cut, delta } => {
            mutate::cut(b, c.cuts[cut % c.cuts.len()], delta.into());
        }
        Mutation::SwapPhdrs(x, y) => {
            let (px, py) = (c.phoff + x % c.phnum * PHDR, c.phoff + y % c.phnum * PHDR);
            mutate::swap(b, px..px + PHDR, py..py + PHDR);
        }
        Mutation::SwapNotes(x, y) => {
            let n = c.notes.len();
            mutate::swap(b, c.notes[x % n].clone(), c.notes[y % n].clone());
        }
        Mutation::Byte { at, value } => {
            let at = at % b.len().max(1);
            mutate::set(b, (at, 1), value.into());
        }
    }
}

/// Opens `bytes` as a core and asks it everything a session would.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core");
    std::fs::write(&path, bytes).unwrap();
    match CoreDump::open(&path) {
        Ok(mut core) => {
            core.set_file_fallback(false);
            exercise(&core);
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "one line: {msg}");
            match e {
                DumpError::NotACore { .. } => {}
                DumpError::Corrupt { offset, .. } => {
                    // The end of the file itself is where a cut structure is found wanting.
                    prop_assert!(
                        offset <= bytes.len() as u64,
                        "offset inside the file: {msg}"
                    )
                }
                DumpError::Io { .. } => prop_assert!(false, "an I/O error for bad bytes: {msg}"),
            }
        }
    }
    Ok(())
}

fn exercise(core: &CoreDump) {
    let mut buf = [0u8; 256];
    let _ = core.truncation();
    let _ = core.memory_bytes();
    for t in core.threads() {
        let _ = core.thread_registers(t.tid);
    }
    for m in core.modules() {
        let _ = core.build_id(m.base);
        let _ = core.image_base(&m.path);
    }
    for f in core.file_mappings().iter().take(16) {
        let _ = core.read(f.start, &mut buf);
        let _ = core.read(f.end.wrapping_sub(8), &mut buf);
        assert!(core.read_vec(f.start, 1 << 60).is_err());
    }
    for addr in [0, u64::MAX, u64::MAX - 8] {
        let _ = core.read(addr, &mut buf);
        let _ = core.read_exact(addr, &mut buf);
    }
}

#[test]
fn the_unmutated_corpus_opens_with_its_threads_and_files() {
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core");
    std::fs::write(&path, &c.bytes).unwrap();
    let core = CoreDump::open(&path).expect("the kept part of a real core opens");
    assert!(!core.threads().is_empty());
    assert!(core
        .file_mappings()
        .iter()
        .any(|f| f.path.ends_with("libcoreclr.so")));
    assert!(core.truncation().is_some(), "the corpus is a cut core");
    assert!(c.notes.len() > 3 && c.fields.len() > 50 && c.cuts.len() > 20);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2048), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_cores_open_or_fail_with_a_typed_error(muts in proptest::collection::vec(mutation(), 1..4)) {
        let c = corpus();
        let mut b = c.bytes.clone();
        for m in &muts {
            apply(c, &mut b, m);
        }
        check(&b)?;
    }

    #[test]
    fn every_cut_of_the_structure_is_handled(cut in 0usize..4096, step in 1usize..64) {
        // Cuts anywhere in the first pages (headers and notes live there), at a stride.
        let c = corpus();
        let at = (cut * step).min(c.bytes.len());
        check(&c.bytes[..at])?;
    }
}
