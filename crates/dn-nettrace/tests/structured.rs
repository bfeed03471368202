//! Structure-aware property tests of the parser on the real captures: the test finds every
//! block object of a capture (MetadataBlock, StackBlock, EventBlock, SPBlock) and mutates the
//! stream where its structure is: block sizes, versions and name lengths set to extremes or
//! bit-flipped, the headers inside blocks damaged, cuts at every object boundary, whole blocks
//! swapped, duplicated or dropped. Every mutant parses or fails with a `ParseError` whose
//! offset lies inside the input; nothing panics or loops.
//!
//! `PROPTEST_CASES` sets the case count per property (default 2048); a longer developer run:
//! `PROPTEST_CASES=100000`.

mod common;

use std::ops::Range;
use std::sync::OnceLock;

use common::{captures, parse_in_pieces, read};
use dn_testkit::mutate::{self, cases};
use proptest::prelude::*;

/// A capture and its block objects.
struct Capture {
    bytes: Vec<u8>,
    /// Whole objects, from their BeginPrivateObject tag to their EndObject tag.
    blocks: Vec<Range<usize>>,
    /// (offset, width) of the version, name length, block size and block header fields.
    fields: Vec<(usize, usize)>,
    /// Object boundaries and the offsets of their fields.
    cuts: Vec<usize>,
}

const BLOCK_NAMES: [&[u8]; 4] = [b"MetadataBlock", b"StackBlock", b"EventBlock", b"SPBlock"];

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn index(bytes: Vec<u8>) -> Capture {
    let mut blocks = Vec::new();
    let mut fields = Vec::new();
    let mut cuts = vec![0, 8, 12, bytes.len()];
    let mut at = 0;
    while at + 16 < bytes.len() {
        // Object header: 05 05 01, i32 version, i32 min reader version, i32 name length, name,
        // 06, then the block: i32 size, padding to 4 bytes, content, 06.
        let hit = bytes[at..at + 3] == [5, 5, 1] && {
            let n = i32_at(&bytes, at + 11) as usize;
            let name = bytes.get(at + 15..at + 15 + n);
            name.is_some_and(|nm| BLOCK_NAMES.contains(&nm)) && bytes.get(at + 15 + n) == Some(&6)
        };
        if !hit {
            at += 1;
            continue;
        }
        let name_len = i32_at(&bytes, at + 11) as usize;
        let size_at = at + 16 + name_len;
        let size = i32_at(&bytes, size_at) as usize;
        let content = (size_at + 4).next_multiple_of(4);
        let end = content + size + 1;
        fields.extend([
            (at + 3, 4),
            (at + 7, 4),
            (at + 11, 4),
            (size_at, 4),
            (content, 2),
            (content, 4),
            (content + 4, 4),
        ]);
        cuts.extend([
            at,
            at + 3,
            size_at,
            content,
            content + size / 2,
            end - 1,
            end,
        ]);
        blocks.push(at..end);
        at = end;
    }
    cuts.retain(|&c| c <= bytes.len());
    fields.retain(|&(f, w)| f + w <= bytes.len());
    Capture {
        bytes,
        blocks,
        fields,
        cuts,
    }
}

fn corpus() -> &'static Vec<Capture> {
    static C: OnceLock<Vec<Capture>> = OnceLock::new();
    C.get_or_init(|| {
        captures()
            .iter()
            .map(read)
            .filter(|d| d.len() < 100_000)
            .map(index)
            .collect()
    })
}

const EXTREMES: [u32; 9] = [
    0,
    1,
    3,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffc,
    u32::MAX,
    64 << 20,
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { field: usize, bit: u8 },
    Extreme { field: usize, value: usize },
    Cut { at: usize, delta: i8 },
    Swap(usize, usize),
    Duplicate(usize),
    Drop(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..32).prop_map(|(field, bit)| Mutation::Flip { field, bit }),
        3 => (any::<usize>(), 0..EXTREMES.len()).prop_map(|(field, value)| Mutation::Extreme { field, value }),
        2 => (any::<usize>(), -2i8..=2).prop_map(|(at, delta)| Mutation::Cut { at, delta }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => any::<usize>().prop_map(Mutation::Drop),
    ]
}

/// Applies `m`; block ranges refer to the unmutated capture, so a mutation that would need
/// them after an earlier length change is skipped when they no longer fit.
fn apply(c: &Capture, b: &mut Vec<u8>, m: &Mutation) {
    let n = c.blocks.len();
    match *m {
        Mutation::Flip { field, bit } => {
            mutate::flip(b, c.fields[field % c.fields.len()], bit.into());
        }
        Mutation::Extreme { field, value } => {
            let f = c.fields[field % c.fields.len()];
            mutate::set(b, f, u64::from(EXTREMES[value]));
        }
        Mutation::Cut { at, delta } => {
            mutate::cut(b, c.cuts[at % c.cuts.len()], delta.into());
        }
        Mutation::Swap(x, y) if n > 1 => {
            mutate::swap(b, c.blocks[x % n].clone(), c.blocks[y % n].clone());
        }
        Mutation::Duplicate(x) if n > 0 => {
            let r = c.blocks[x % n].clone();
            if r.end <= b.len() {
                let copy = b[r.clone()].to_vec();
                b.splice(r.end..r.end, copy);
            }
        }
        Mutation::Drop(x) if n > 0 => {
            let r = c.blocks[x % n].clone();
            if r.end <= b.len() {
                b.drain(r);
            }
        }
        _ => {}
    }
}

fn check(data: &[u8], piece: usize) -> Result<(), TestCaseError> {
    let (events, result) = parse_in_pieces(data, &[piece]);
    if let Err(e) = &result {
        prop_assert!(e.offset <= data.len() as u64, "{e}");
        prop_assert!(!e.to_string().contains('\n'), "{e}");
    }
    prop_assert!(events.len() <= data.len(), "more events than bytes");
    for e in &events {
        if let Ok(fields) = e.decode() {
            let _ = serde_json::to_string(&dn_nettrace::Fields(&fields));
        }
        let _ = e.counter_payload();
    }
    Ok(())
}

#[test]
fn every_capture_is_indexed_block_by_block() {
    for c in corpus() {
        assert!(c.blocks.len() >= 3, "{} blocks", c.blocks.len());
        // The blocks tile the stream after the trace object, up to the end tag.
        assert_eq!(c.blocks.last().unwrap().end + 1, c.bytes.len());
        let (_, result) = parse_in_pieces(&c.bytes, &[c.bytes.len()]);
        result.expect("the unmutated capture parses");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2048), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn structurally_mutated_streams_parse_or_fail_at_an_offset(
        which in any::<usize>(),
        muts in proptest::collection::vec(mutation(), 1..4),
        piece in 1usize..20_000,
    ) {
        let all = corpus();
        let c = &all[which % all.len()];
        let mut b = c.bytes.clone();
        for m in &muts {
            apply(c, &mut b, m);
        }
        check(&b, piece)?;
    }
}
