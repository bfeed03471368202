//! Helpers shared by the integration tests: the real captures under `fixtures/traces`.

#![allow(dead_code)]

use std::path::PathBuf;

use dn_nettrace::{Event, NettraceParser};

pub fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/traces")
}

/// Every capture, sorted by name. Fails loudly if the fixtures are missing.
pub fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(traces_dir())
        .expect("fixtures/traces must exist")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nettrace"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 6,
        "expected the real captures in fixtures/traces, found {v:?}"
    );
    v
}

pub fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Feeds `data` in pieces whose sizes come from `sizes` (cycled) and collects all events,
/// then signals end of input. Returns the events and the final result.
pub fn parse_in_pieces(
    data: &[u8],
    sizes: &[usize],
) -> (Vec<Event>, Result<(), dn_nettrace::ParseError>) {
    let mut parser = NettraceParser::new();
    let mut events = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = sizes[i % sizes.len()].max(1).min(data.len() - pos);
        i += 1;
        if let Err(e) = parser.feed(&data[pos..pos + n]) {
            return (events, Err(e));
        }
        pos += n;
        loop {
            match parser.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Err(e)),
            }
        }
    }
    let end = parser.end_of_input();
    (events, end)
}

/// A comparable summary of an event's header fields.
pub fn summary(e: &Event) -> (u32, i64, u64, u64, u32, u32, Vec<u8>) {
    (
        e.metadata.metadata_id,
        e.timestamp,
        e.thread_id,
        e.capture_thread_id,
        e.sequence,
        e.stack_id,
        e.payload.to_vec(),
    )
}
