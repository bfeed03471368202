//! Streaming behaviour on the real captures: arbitrary fragmentation, the pull reader, trace
//! info, time conversions, and EventCounters / Metrics payloads.

mod common;

use std::fs::File;
use std::io::Read;
use std::time::{Duration, UNIX_EPOCH};

use common::{captures, parse_in_pieces, read, summary};
use dn_nettrace::{EventReader, NettraceParser, Value};

#[test]
fn byte_at_a_time_equals_one_piece() {
    for path in captures() {
        let data = read(&path);
        let (whole, r1) = parse_in_pieces(&data, &[data.len()]);
        let (bytes, r2) = parse_in_pieces(&data, &[1]);
        r1.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        r2.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!whole.is_empty());
        assert_eq!(
            whole.iter().map(summary).collect::<Vec<_>>(),
            bytes.iter().map(summary).collect::<Vec<_>>(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn runtime_like_tiny_writes_equal_one_piece() {
    // The runtime writes headers in 1-, 2-, 4- and 8-byte pieces, payloads in larger ones.
    let pattern = [1, 2, 4, 8, 1, 1, 4, 300, 2, 8, 8, 4096, 3, 7, 65536];
    for path in captures() {
        let data = read(&path);
        let (whole, _) = parse_in_pieces(&data, &[data.len()]);
        let (pieces, r) = parse_in_pieces(&data, &pattern);
        r.unwrap();
        assert_eq!(whole.len(), pieces.len(), "{}", path.display());
        assert!(whole
            .iter()
            .zip(&pieces)
            .all(|(a, b)| summary(a) == summary(b)));
    }
}

/// A `Read` that hands out at most `max` bytes per call, like a socket under load.
struct Trickle<R> {
    inner: R,
    max: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}

#[test]
fn event_reader_on_a_trickling_source_equals_file_reader() {
    for path in captures() {
        let from_file: Vec<_> = EventReader::new(File::open(&path).unwrap())
            .map(|e| summary(&e.unwrap()))
            .collect();
        let trickle = Trickle {
            inner: File::open(&path).unwrap(),
            max: 3,
        };
        let from_trickle: Vec<_> = EventReader::new(trickle)
            .map(|e| summary(&e.unwrap()))
            .collect();
        assert!(!from_file.is_empty());
        assert_eq!(from_file, from_trickle, "{}", path.display());
    }
}

#[test]
fn parser_holds_at_most_one_block_plus_the_last_feed() {
    let path = common::traces_dir().join("cpu-net10.nettrace");
    let data = read(&path);
    let mut parser = NettraceParser::new();
    let mut max_buffered = 0;
    let mut n = 0;
    for chunk in data.chunks(4096) {
        parser.feed(chunk).unwrap();
        while parser.next_event().unwrap().is_some() {
            n += 1;
        }
        max_buffered = max_buffered.max(parser.buffered());
    }
    parser.end_of_input().unwrap();
    assert!(parser.is_finished());
    assert!(n > 1000);
    assert_eq!(parser.offset(), data.len() as u64);
    assert_eq!(parser.buffered(), 0);
    // The runtime's blocks are at most 100 KiB; a 1.2 MB stream never sits in memory whole.
    assert!(
        max_buffered <= 100 * 1024 + 4096 + 64,
        "buffered {max_buffered} bytes"
    );
}

#[test]
fn trace_info_is_available_after_the_trace_object() {
    for path in captures() {
        let data = read(&path);
        let mut parser = NettraceParser::new();
        parser.feed(&data[..100]).unwrap();
        assert!(
            parser.trace_info().is_none(),
            "Trace object ends at byte 101"
        );
        parser.feed(&data[100..102]).unwrap();
        let info = *parser.trace_info().expect("trace info after byte 101");
        assert_eq!(info.format_version, 4);
        assert_eq!(info.pointer_size, 8);
        assert_eq!(info.qpc_frequency, 1_000_000_000);
        assert!(info.process_id > 0 && info.cpu_count > 0);
        assert_eq!(info.expected_cpu_sampling_rate, 1_000_000);
        let start = info.sync_time_utc.to_system_time().unwrap();
        // Captures were recorded in 2026 or later, by a runtime whose clock said so.
        assert!(start > UNIX_EPOCH + Duration::from_secs(1_767_225_600 - 366 * 86_400));
    }
}

#[test]
fn metrics_interval_times_agree_with_event_wall_clock() {
    // CollectionStop carries the runtime's own wall-clock interval end (FILETIME): it must be
    // within a second of the wall clock we derive from the Trace object's sync time.
    let mut checked = 0;
    for name in ["metrics-net10.nettrace", "metrics-net9.nettrace"] {
        let path = common::traces_dir().join(name);
        for e in EventReader::new(File::open(path).unwrap()) {
            let e = e.unwrap();
            if e.provider_name() != "System.Diagnostics.Metrics"
                || e.event_name() != "CollectionStop"
            {
                continue;
            }
            assert_eq!(e.metadata.opcode, Some(2));
            let fields = e.decode().unwrap();
            let Some(Value::DateTime(end)) = dn_nettrace::field(&fields, "intervalEndTime") else {
                panic!("no intervalEndTime in {fields:?}");
            };
            let theirs = end.to_system_time().unwrap();
            let ours = e.wall_clock().unwrap();
            let diff = ours.duration_since(theirs).unwrap_or_else(|e| e.duration());
            assert!(
                diff < Duration::from_secs(1),
                "event wall clock {ours:?} vs payload {theirs:?}"
            );
            assert!(e.time_since_start() > Duration::from_millis(500));
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "expected CollectionStop events, saw {checked}"
    );
}

#[test]
fn event_counters_decode_into_named_fields() {
    for name in [
        "counters-net10",
        "counters-net9",
        "counters-net8",
        "counters-net31",
    ] {
        let path = common::traces_dir().join(format!("{name}.nettrace"));
        let mut seen = std::collections::BTreeSet::new();
        for e in EventReader::new(File::open(&path).unwrap()) {
            let e = e.unwrap();
            let Some(p) = e.counter_payload().unwrap() else {
                continue;
            };
            let f = |k: &str| {
                dn_nettrace::field(&p, k).unwrap_or_else(|| panic!("{name}: no {k} in {p:?}"))
            };
            let counter = f("Name").as_str().unwrap().to_string();
            let value = match f("CounterType").as_str().unwrap() {
                "Mean" => f("Mean"),
                "Sum" => f("Increment"),
                other => panic!("{name}: CounterType {other}"),
            };
            assert!(value.as_f64().unwrap().is_finite());
            let interval = f("IntervalSec").as_f64().unwrap();
            assert!(
                (0.5..2.0).contains(&interval),
                "{name}: IntervalSec {interval}"
            );
            assert_eq!(f("Series").as_str(), Some("Interval=1000"));
            f("DisplayName");
            f("DisplayUnits");
            seen.insert(counter);
        }
        assert!(
            seen.contains("cpu-usage") && seen.contains("working-set"),
            "{name}: {seen:?}"
        );
        assert!(seen.len() >= 19, "{name}: {seen:?}");
    }
}

#[test]
fn stacks_are_kept_on_request_and_reset_at_sequence_points() {
    let path = common::traces_dir().join("cpu-net10.nettrace");
    let reader = EventReader::with_parser(
        File::open(path).unwrap(),
        NettraceParser::new().keep_stacks(true),
    );
    let mut reader = reader;
    let mut with_frames = 0;
    while let Some(e) = reader.next() {
        let e = e.unwrap();
        let stack = reader
            .parser()
            .stack(e.stack_id)
            .expect("every event's stack id is known");
        assert_eq!(stack.len() % 8, 0);
        if e.provider_name() == "Microsoft-DotNETCore-SampleProfiler" && !stack.is_empty() {
            with_frames += 1;
        }
    }
    assert!(
        with_frames > 100,
        "sample-profiler events with stacks: {with_frames}"
    );
    let (sequence_points, blocks) = reader.parser().counts();
    assert!(sequence_points >= 1 && blocks > sequence_points);
    assert!(reader
        .parser()
        .last_sequence_point()
        .is_some_and(|sp| !sp.threads.is_empty()));
}

#[test]
fn callback_path_equals_iterator_path_also_when_mixed() {
    for path in captures() {
        let data = read(&path);
        let (owned, _) = parse_in_pieces(&data, &[data.len()]);
        // All through the callback, in 1000-byte pieces.
        let mut parser = NettraceParser::new();
        let mut seen = Vec::new();
        for chunk in data.chunks(1000) {
            parser
                .feed_each(chunk, |e| seen.push(summary(&e.to_event())))
                .unwrap();
        }
        parser.end_of_input().unwrap();
        assert_eq!(
            seen,
            owned.iter().map(summary).collect::<Vec<_>>(),
            "{}",
            path.display()
        );
        // Alternating: take one event with next_event, then hand the rest of the block to a callback.
        let mut parser = NettraceParser::new();
        let mut mixed = Vec::new();
        for chunk in data.chunks(7000) {
            parser.feed(chunk).unwrap();
            if let Some(e) = parser.next_event().unwrap() {
                mixed.push(summary(&e));
            }
            parser
                .feed_each(&[], |e| mixed.push(summary(&e.to_event())))
                .unwrap();
        }
        parser.end_of_input().unwrap();
        assert!(parser.is_finished());
        assert_eq!(mixed, seen, "{}", path.display());
        // And the reader's callback loop.
        let mut n = 0;
        EventReader::new(File::open(&path).unwrap())
            .for_each_event(|_| n += 1)
            .unwrap();
        assert_eq!(n, owned.len());
    }
}

#[test]
fn sequence_numbers_count_up_per_capture_thread_and_match_the_sequence_points() {
    for path in captures() {
        let mut reader = EventReader::new(File::open(&path).unwrap());
        let mut last: std::collections::HashMap<u64, u32> = Default::default();
        let mut gaps = 0;
        let mut checked_sp = 0;
        let mut sps_seen = 0;
        while let Some(e) = reader.next() {
            let e = e.unwrap();
            if let Some(prev) = last.insert(e.capture_thread_id, e.sequence) {
                if e.sequence != prev.wrapping_add(1) {
                    gaps += 1;
                }
            } else {
                assert!(
                    e.sequence >= 1,
                    "{}: sequence numbers start at 1",
                    path.display()
                );
            }
            // Right after a new sequence point, its per-thread numbers are the last ones written.
            let (sps, _) = reader.parser().counts();
            if sps > sps_seen {
                sps_seen = sps;
                let sp = reader.parser().last_sequence_point().unwrap();
                for (thread, seq) in &sp.threads {
                    if let Some(ours) = last.get(thread) {
                        // The event just taken came after the SP; compare with what preceded it.
                        let before = if *thread == e.capture_thread_id {
                            ours.wrapping_sub(1)
                        } else {
                            *ours
                        };
                        assert!(
                            before <= *seq,
                            "{}: thread {thread} seq {before} > SP {seq}",
                            path.display()
                        );
                        checked_sp += 1;
                    }
                }
            }
        }
        // Final sequence point (before the end marker): every thread's last event number.
        let sp = reader
            .parser()
            .last_sequence_point()
            .expect("streams end with a sequence point");
        for (thread, seq) in &sp.threads {
            if let Some(ours) = last.get(thread) {
                assert_eq!(ours, seq, "{}: capture thread {thread}", path.display());
                checked_sp += 1;
            }
        }
        assert!(checked_sp > 0, "{}", path.display());
        // Small captures lose nothing; the default-profile ones may drop a few samples.
        assert!(gaps <= 5, "{}: {gaps} sequence gaps", path.display());
    }
}

#[test]
fn event_reader_gives_trace_info_before_any_event() {
    for path in captures() {
        let mut all = EventReader::new(File::open(&path).unwrap());
        let n_all = all.by_ref().count();
        let trickle = Trickle {
            inner: File::open(&path).unwrap(),
            max: 1,
        };
        let mut reader = EventReader::new(trickle);
        let info = reader.trace_info().unwrap();
        // Byte by byte: exactly the 102 bytes up to the Trace object's end were needed.
        assert_eq!(reader.parser().offset(), 102);
        assert_eq!(info.pointer_size, 8);
        assert_eq!(reader.count(), n_all, "{}", path.display());
    }
    let e = EventReader::new(&b"Nettrace"[..]).trace_info().unwrap_err();
    assert_eq!(
        e.to_string(),
        "nettrace: stream ends inside the stream header at byte offset 8"
    );
}

#[test]
fn parser_reader_and_events_can_move_to_other_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<NettraceParser>();
    send::<EventReader<std::net::TcpStream>>();
    send_sync::<dn_nettrace::Event>();
    send_sync::<dn_nettrace::ParseError>();
    // And really do it: parse on one thread, consume on another.
    let path = common::traces_dir().join("counters-net10.nettrace");
    let (tx, rx) = std::sync::mpsc::channel();
    let producer = std::thread::spawn(move || {
        for e in EventReader::new(File::open(path).unwrap()) {
            tx.send(e.unwrap()).unwrap();
        }
    });
    let n = rx
        .iter()
        .filter(|e| e.counter_payload().unwrap().is_some())
        .count();
    producer.join().unwrap();
    assert!(n >= 27, "EventCounters events received: {n}");
}
