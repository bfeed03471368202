//! The `.gcdump` reader on damaged real files: one of our snapshots and one of dotnet-gcdump's,
//! both of the .NET 10 console fixture, captured once per run. Bit flips, bytes overwritten,
//! 4-byte fields set to extremes (lengths, counts, offsets), truncation: the reader (in this
//! debug build, with overflow checks) never panics; it either fails with an error naming the
//! offset, or reads a snapshot whose columns are consistent and can be reported.
//! `PROPTEST_CASES=100000 cargo test --test gcdump_mutations` runs it longer.

use std::process::Command;
use std::sync::OnceLock;

use dn_gcdump::read::{read_histogram, Histogram};
use dn_gcdump::Snapshot;
use dn_testkit::mutate::{cases, cut, flip, set};
use dn_testkit::{Fixture, Runtime, Target};
use proptest::prelude::*;

mod common;

/// (name, bytes): our snapshot and dotnet-gcdump's of the same target.
fn corpus() -> &'static [(String, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Target::start(Fixture::Console, Runtime::Net10);
        assert!(t.command("leak 200").starts_with("ok"));
        let pid = t.pid().to_string();
        let ours = dir.path().join("ours.gcdump");
        let out = common::dn_dump(&[
            "gcdump",
            "collect",
            "-p",
            &pid,
            "-o",
            ours.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tool = dn_testkit::dotnet_tool("dotnet-gcdump").expect("dotnet-gcdump");
        let theirs = dir.path().join("theirs.gcdump");
        let out = Command::new(tool)
            .args(["collect", "-p", &pid, "-o"])
            .arg(&theirs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        vec![
            ("ours".to_string(), std::fs::read(&ours).unwrap()),
            (
                "dotnet-gcdump's".to_string(),
                std::fs::read(&theirs).unwrap(),
            ),
        ]
    })
}

/// Reads `b` both ways; panics (fails the case) on anything but a clean error or a consistent
/// snapshot.
fn read_checked(name: &str, b: &[u8]) -> Result<(), TestCaseError> {
    match dn_gcdump::read_gcdump(b) {
        Ok(s) => consistent(&s)?,
        Err(e) => {
            let e = e.to_string();
            prop_assert!(
                e.contains("offset") || e.contains("not a .gcdump"),
                "{name}: {e}"
            );
        }
    }
    match read_histogram(b) {
        Ok((s, h)) => {
            histogram_fits(&s, &h)?;
            let r = dn_gcdump::report::report_of(&s, &h);
            prop_assert!(r.rows.iter().all(|row| row.count > 0), "{name}: empty row");
        }
        Err(e) => {
            let e = e.to_string();
            prop_assert!(
                e.contains("offset") || e.contains("not a .gcdump"),
                "{name}: {e}"
            );
        }
    }
    Ok(())
}

fn consistent(s: &Snapshot) -> Result<(), TestCaseError> {
    let n = s.node_count();
    prop_assert_eq!(s.node_sizes.len(), n);
    prop_assert_eq!(s.addresses.len(), n);
    prop_assert_eq!(s.child_offsets.len(), n + 1);
    prop_assert!(s.child_offsets.windows(2).all(|w| w[0] <= w[1]));
    prop_assert_eq!(*s.child_offsets.last().unwrap() as usize, s.children.len());
    prop_assert!(s.children.iter().all(|&c| (c as usize) < n));
    prop_assert!(s.node_types.iter().all(|&t| (t as usize) < s.types.len()));
    Ok(())
}

fn histogram_fits(s: &Snapshot, h: &Histogram) -> Result<(), TestCaseError> {
    prop_assert_eq!(h.counts.len(), s.types.len());
    prop_assert_eq!(h.bytes.len(), s.types.len());
    Ok(())
}

#[test]
fn the_corpus_reads_whole() {
    for (name, b) in corpus() {
        let s = dn_gcdump::read_gcdump(b).unwrap_or_else(|e| panic!("{name}: {e}"));
        consistent(&s).unwrap();
        assert!(s.node_count() > 1000, "{name}: {} nodes", s.node_count());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(300), ..ProptestConfig::default() })]

    #[test]
    fn flipped_and_overwritten_bytes(
        which in 0usize..2,
        flips in proptest::collection::vec((0.0f64..1.0, 0usize..8), 0..6),
        writes in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..6),
    ) {
        let (name, data) = &corpus()[which];
        let mut b = data.clone();
        for (at, bit) in flips {
            let i = (b.len() as f64 * at) as usize;
            flip(&mut b, (i, 1), bit);
        }
        for (at, v) in writes {
            let i = (b.len() as f64 * at) as usize;
            let last = b.len() - 1;
            b[i.min(last)] = v;
        }
        read_checked(name, &b)?;
    }

    #[test]
    fn fields_set_to_extremes(
        which in 0usize..2,
        at in 0.0f64..1.0,
        width in prop_oneof![Just(1usize), Just(4), Just(8)],
        value in prop_oneof![
            Just(0u64), Just(1), Just(0x7f), Just(0xff), Just(0x7fff_ffff),
            Just(0x8000_0000), Just(0xffff_ffff), Just(u64::MAX), Just(1 << 60)
        ],
    ) {
        let (name, data) = &corpus()[which];
        let mut b = data.clone();
        // At any byte: the layout's ints and lengths are not aligned.
        let i = (b.len() as f64 * at) as usize;
        set(&mut b, (i, width), value);
        read_checked(name, &b)?;
    }

    #[test]
    fn truncated_anywhere(which in 0usize..2, at in 0.0f64..1.0, delta in -8isize..8) {
        let (name, data) = &corpus()[which];
        let mut b = data.clone();
        let i = (b.len() as f64 * at) as usize;
        cut(&mut b, i, delta);
        if b.len() < data.len() {
            let e = dn_gcdump::read_gcdump(&b).err().map(|e| e.to_string());
            prop_assert!(
                e.as_deref().is_some_and(|e| e.contains("offset") || e.contains("not a .gcdump")),
                "{} cut to {}: {:?}", name, b.len(), e
            );
        }
        read_checked(name, &b)?;
    }
}
