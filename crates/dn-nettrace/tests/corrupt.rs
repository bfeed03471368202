//! Truncated and corrupted real captures: always a `ParseError` naming an offset inside the
//! input, never a panic or an endless loop.

mod common;

use common::{captures, parse_in_pieces, read, summary};
use dn_nettrace::{ErrorKind, EventReader};
use dn_testkit::mutate::cases;
use proptest::prelude::*;

fn all() -> Vec<(String, Vec<u8>)> {
    captures()
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read(&p),
            )
        })
        .collect()
}

fn small() -> Vec<(String, Vec<u8>)> {
    all()
        .into_iter()
        .filter(|(_, d)| d.len() < 100_000)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn a_cut_stream_reports_truncation_at_the_cut(which in 0usize..16, cut in 0.0f64..1.0, piece in 1usize..5000) {
        let files = all();
        let (name, data) = &files[which % files.len()];
        let cut = ((data.len() as f64) * cut) as usize;
        let (full, _) = parse_in_pieces(data, &[data.len()]);
        let (events, result) = parse_in_pieces(&data[..cut], &[piece]);
        let err = result.expect_err("a cut stream must not end cleanly");
        prop_assert!(matches!(err.kind, ErrorKind::Truncated(_)), "{name} cut at {cut}: {err}");
        prop_assert_eq!(err.offset, cut as u64, "{} cut at {}: {}", name, cut, err);
        // Everything delivered before the cut is exactly what the whole stream delivers.
        prop_assert!(events.len() <= full.len());
        prop_assert!(events.iter().zip(&full).all(|(a, b)| summary(a) == summary(b)));
    }

    #[test]
    fn mutated_bytes_never_panic(
        which in 0usize..16,
        edits in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..12),
        piece in 1usize..9000,
    ) {
        let files = all();
        let (_, data) = &files[which % files.len()];
        let mut data = data.clone();
        for (at, b) in edits {
            let i = ((data.len() as f64) * at) as usize;
            data[i] = b;
        }
        let (events, result) = parse_in_pieces(&data, &[piece]);
        if let Err(e) = &result {
            prop_assert!(e.offset <= data.len() as u64, "{e}");
        }
        for e in &events {
            if let Ok(fields) = e.decode() {
                let _ = serde_json::to_string(&dn_nettrace::Fields(&fields));
            }
            let _ = e.counter_payload();
            let _ = e.wall_clock();
            let _ = e.time_since_start();
        }
    }

    #[test]
    fn inserted_or_deleted_bytes_never_panic(
        which in 0usize..16,
        at in 0.0f64..1.0,
        len in 1usize..64,
        insert in any::<bool>(),
        fill in any::<u8>(),
    ) {
        let files = small();
        let (_, data) = &files[which % files.len()];
        let mut data = data.clone();
        let i = ((data.len() as f64) * at) as usize;
        if insert {
            data.splice(i..i, std::iter::repeat_n(fill, len));
        } else {
            let end = (i + len).min(data.len());
            data.drain(i..end);
        }
        let mut n = 0;
        for e in EventReader::new(&data[..]) {
            match e {
                Ok(e) => { let _ = e.decode(); n += 1; }
                Err(e) => { prop_assert!(e.offset <= data.len() as u64, "{e}"); break; }
            }
        }
        prop_assert!(n < 1_000_000);
    }
}

fn first(name: &str) -> Vec<u8> {
    read(&common::traces_dir().join(name))
}

fn error_of(data: &[u8]) -> dn_nettrace::ParseError {
    EventReader::new(data)
        .find_map(Result::err)
        .expect("expected a parse error")
}

#[test]
fn a_huge_block_size_is_rejected_at_its_offset() {
    let mut data = first("counters-net10.nettrace");
    // The first MetadataBlock's size field sits at offset 131 in every runtime stream.
    data[131..135].copy_from_slice(&0x7fff_0000i32.to_le_bytes());
    let e = error_of(&data);
    assert_eq!(e.offset, 131);
    assert!(matches!(e.kind, ErrorKind::BadBlockSize(_)), "{e}");
    data[131..135].copy_from_slice(&(-4i32).to_le_bytes());
    assert!(matches!(error_of(&data).kind, ErrorKind::BadBlockSize(-4)));
}

#[test]
fn a_string_running_past_its_block_is_an_error() {
    let mut data = first("counters-net10.nettrace");
    let size = i32::from_le_bytes(data[131..135].try_into().unwrap()) as usize;
    let block_end = 136 + size;
    let name: Vec<u8> = "System.Runtime"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let at = data
        .windows(name.len())
        .position(|w| w == name.as_slice())
        .unwrap();
    assert!(
        at < block_end,
        "provider name inside the first metadata block"
    );
    for b in &mut data[at..block_end] {
        *b = b'A';
    }
    let e = error_of(&data);
    assert!(matches!(e.kind, ErrorKind::Malformed(_)), "{e}");
    assert!(e.offset >= at as u64 && e.offset <= block_end as u64, "{e}");
}

#[test]
fn other_input_is_not_nettrace() {
    let e = error_of(b"MZ\x90\x00 this is not a trace at all");
    assert_eq!((e.offset, e.kind), (0, ErrorKind::BadMagic));
    let mut data = first("counters-net10.nettrace");
    data[12] = b'?';
    assert_eq!(error_of(&data).kind, ErrorKind::BadSerializationHeader);
}

#[test]
fn bytes_after_the_end_marker_are_an_error_for_the_push_parser() {
    let mut data = first("counters-net10.nettrace");
    assert_eq!(
        *data.last().unwrap(),
        1,
        "streams end with a NullReference tag"
    );
    data.extend_from_slice(&[5, 5]);
    let (_, result) = parse_in_pieces(&data, &[data.len()]);
    let e = result.unwrap_err();
    assert_eq!(
        (e.offset, e.kind),
        (data.len() as u64 - 2, ErrorKind::DataAfterEnd)
    );
}

#[test]
fn errors_read_as_one_line_with_the_offset() {
    let data = first("counters-net10.nettrace");
    let e = error_of(&data[..5000]);
    assert_eq!(
        e.to_string(),
        "nettrace: stream ends inside a block at byte offset 5000"
    );
}
