//! Property tests of IPC reply decoding on real replies: the test asks a .NET 10 runtime for
//! ProcessInfo3 and ProcessEnvironment, keeps the raw bytes it answered, and replays mutants of
//! them through the real client code (`send_request` over a socket pair, then the decoders):
//! bit flips, the header's size and every string length set to extremes, cuts at every field,
//! strings swapped. Every mutant decodes or fails with a one-line `IpcError`; none panics or
//! hangs, and none allocates what a length field claims beyond the protocol's bounds.
//!
//! `PROPTEST_CASES` sets the case count per property (default 2048); a longer developer run:
//! `PROPTEST_CASES=100000`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::Duration;

use dn_core::ipc::client::{send_request, Reply};
use dn_core::ipc::process::{process_environment, process_info, CommandChannel};
use dn_core::ipc::protocol::{commands, encode_request, Command};
use dn_core::ipc::{DiagnosticsClient, IpcError};
use dn_testkit::mutate::{self, cases};
use dn_testkit::{Fixture, Runtime, Target};
use proptest::prelude::*;

/// A real reply and the offsets of its fields.
struct Captured {
    bytes: Vec<u8>,
    /// (offset, width) of the size and length fields.
    fields: Vec<(usize, usize)>,
    /// Byte ranges of the length-prefixed strings.
    strings: Vec<std::ops::Range<usize>>,
}

struct Corpus {
    info: Captured,
    env: Captured,
}

/// Everything the runtime answers to `cmd` on a fresh connection, until it closes it.
fn raw_reply(pid: i32, cmd: Command) -> Vec<u8> {
    let client = DiagnosticsClient::for_pid(pid).expect("socket");
    let mut s = client.connect().expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&encode_request(cmd, &[]).unwrap()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the runtime answers and closes");
    out
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Walks `count` strings starting at `at`, recording their length fields and ranges.
fn strings(
    bytes: Vec<u8>,
    mut fields: Vec<(usize, usize)>,
    mut at: usize,
    count: usize,
) -> Captured {
    let mut ranges = Vec::new();
    for _ in 0..count {
        let n = u32_at(&bytes, at);
        fields.push((at, 4));
        ranges.push(at..at + 4 + 2 * n);
        at += 4 + 2 * n;
    }
    assert_eq!(at, bytes.len(), "the walk covers the whole reply");
    Captured {
        bytes,
        fields,
        strings: ranges,
    }
}

fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        let t = Target::start(Fixture::Console, Runtime::Net10);
        let info = raw_reply(t.pid(), commands::PROCESS_INFO3);
        let env = raw_reply(t.pid(), commands::PROCESS_ENVIRONMENT);
        // ProcessInfo3: header, version, pid, cookie, then six strings.
        let info = strings(info, vec![(14, 2), (16, 1), (17, 1), (20, 4)], 48, 6);
        // ProcessEnvironment: header, payload (continuation length, 2 reserved bytes), then
        // the continuation: count, strings.
        let count = u32_at(&env, 26);
        let env = strings(env, vec![(14, 2), (17, 1), (20, 4), (26, 4)], 30, count);
        Corpus { info, env }
    })
}

/// Replays `reply` as the runtime's answer to whatever command is sent.
struct Replay<'a>(&'a [u8]);

impl CommandChannel for Replay<'_> {
    fn exchange(&self, cmd: Command, payload: &[u8]) -> Result<Reply, IpcError> {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        theirs.write_all(self.0).unwrap();
        theirs.shutdown(std::net::Shutdown::Write).unwrap();
        // `theirs` stays open until the reply is read: the request write must not fail.
        let r = send_request(ours, cmd, payload);
        drop(theirs);
        r
    }
}

const EXTREMES: [u32; 8] = [0, 1, 2, 0x7fff, 0xffff, 0x8000_0000, 0xffff_fffe, u32::MAX];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Extreme { field: usize, value: usize },
    Cut { field: usize, delta: i8 },
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), 0..EXTREMES.len())
            .prop_map(|(field, value)| Mutation::Extreme { field, value }),
        (any::<usize>(), -3i8..=3).prop_map(|(field, delta)| Mutation::Cut { field, delta }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn apply(c: &Captured, b: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Flip { at, bit } => {
            let at = at % b.len().max(1);
            mutate::flip(b, (at, 1), usize::from(bit));
        }
        Mutation::Extreme { field, value } => {
            let f = c.fields[field % c.fields.len()];
            mutate::set(b, f, u64::from(EXTREMES[value]));
        }
        Mutation::Cut { field, delta } => {
            mutate::cut(b, c.fields[field % c.fields.len()].0, delta.into());
        }
        Mutation::Swap(x, y) => {
            let n = c.strings.len();
            mutate::swap(b, c.strings[x % n].clone(), c.strings[y % n].clone());
        }
    }
}

fn one_line<T>(r: &Result<T, IpcError>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        let msg = e.to_string();
        prop_assert!(!msg.contains('\n'), "{msg}");
        prop_assert!(
            !matches!(e, IpcError::Timeout { .. }),
            "a short reply hangs: {msg}"
        );
    }
    Ok(())
}

#[test]
fn the_captured_replies_decode_as_the_runtime_meant() {
    let c = corpus();
    let info = process_info(&Replay(&c.info.bytes)).unwrap();
    assert_eq!(info.runtime_major(), Some(10));
    assert_eq!(info.os, "Linux");
    let env = process_environment(&Replay(&c.env.bytes)).unwrap();
    assert!(env.iter().any(|(k, _)| k == "PATH"), "{env:?}");
    assert_eq!(env.len(), c.env.strings.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2048), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_process_info_replies_decode_or_fail_cleanly(muts in proptest::collection::vec(mutation(), 1..4)) {
        let c = &corpus().info;
        let mut b = c.bytes.clone();
        for m in &muts {
            apply(c, &mut b, m);
        }
        one_line(&process_info(&Replay(&b)))?;
    }

    #[test]
    fn mutated_environment_replies_decode_or_fail_cleanly(muts in proptest::collection::vec(mutation(), 1..4)) {
        let c = &corpus().env;
        let mut b = c.bytes.clone();
        for m in &muts {
            apply(c, &mut b, m);
        }
        let r = process_environment(&Replay(&b));
        one_line(&r)?;
        if let Ok(vars) = &r {
            // Never more variables than the reply has bytes for (4 per length field).
            prop_assert!(vars.len() <= b.len() / 4);
        }
    }
}
