//! Live EventPipe sessions over the diagnostics socket of real .NET processes (the ConsoleTarget
//! fixture on .NET Core 3.1, .NET 8 and .NET 10): the runtime writes the nettrace stream in many small pieces
//! while the session runs, and `EventReader` parses it straight from the socket as it arrives,
//! through StopTracing, the rundown and the end-of-stream marker.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use dn_nettrace::EventReader;
use dn_testkit::{Fixture, Runtime, StartOptions, Target};

/// A diagnostics IPC message: 20-byte header (magic, total size, command set/id) + payload.
fn ipc_message(command_set: u8, command_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = b"DOTNET_IPC_V1\0".to_vec();
    m.extend(u16::try_from(20 + payload.len()).unwrap().to_le_bytes());
    m.extend([command_set, command_id, 0, 0]);
    m.extend(payload);
    m
}

/// IPC string: u32 UTF-16 unit count including the NUL, then the units.
fn ipc_string(s: &str) -> Vec<u8> {
    let units: Vec<u16> = s.encode_utf16().chain([0]).collect();
    let mut v = (units.len() as u32).to_le_bytes().to_vec();
    v.extend(units.iter().flat_map(|u| u.to_le_bytes()));
    v
}

/// CollectTracing2: 256 MB buffer, nettrace format, rundown on, the given providers.
fn collect_tracing2(providers: &[(u64, u32, &str, &str)]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(256u32.to_le_bytes());
    p.extend(1u32.to_le_bytes());
    p.push(1);
    p.extend((providers.len() as u32).to_le_bytes());
    for (keywords, level, name, args) in providers {
        p.extend(keywords.to_le_bytes());
        p.extend(level.to_le_bytes());
        p.extend(ipc_string(name));
        p.extend(ipc_string(args));
    }
    ipc_message(0x02, 0x03, &p)
}

/// Reads one reply; returns (command set, command id, payload).
fn read_reply(s: &mut UnixStream) -> (u8, u8, Vec<u8>) {
    let mut header = [0u8; 20];
    s.read_exact(&mut header).expect("IPC reply header");
    assert_eq!(&header[..14], b"DOTNET_IPC_V1\0");
    let size = u16::from_le_bytes([header[14], header[15]]) as usize;
    let mut payload = vec![0u8; size - 20];
    s.read_exact(&mut payload).expect("IPC reply payload");
    (header[16], header[17], payload)
}

/// `min_counters`: System.Runtime has 19 EventCounters on 3.1 and 27 on .NET 8 and later.
fn live_counters_session(rt: Runtime, min_counters: usize) {
    let mut target = Target::start_with(Fixture::Console, rt, StartOptions::default());
    let socket = target.socket_path();
    let mut stream = UnixStream::connect(&socket).expect("connect to the diagnostics socket");
    stream
        .write_all(&collect_tracing2(&[
            (0, 4, "System.Runtime", "EventCounterIntervalSec=1"),
            // Exception events with stacks, to have more than counters on the wire.
            (0x8000, 4, "Microsoft-Windows-DotNETRuntime", ""),
        ]))
        .unwrap();
    let (set, id, payload) = read_reply(&mut stream);
    assert_eq!(
        (set, id),
        (0xFF, 0x00),
        "CollectTracing2 refused: {payload:02x?}"
    );
    let session_id: [u8; 8] = payload[..8].try_into().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    // Stop after a few counter intervals, on a second connection, while this thread keeps
    // draining the stream (the runtime answers StopTracing only once the stream is written).
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2600));
        let mut s = UnixStream::connect(&socket).expect("connect for StopTracing");
        s.write_all(&ipc_message(0x02, 0x01, &session_id)).unwrap();
        read_reply(&mut s)
    });
    // Drain from the first byte on, in a thread, while the target throws: this is how a tool
    // reads a live session, and it gives the runtime time to enable the providers (.NET Core 3.1
    // answers CollectTracing2 a moment before its exception events flow).
    let label = rt.label();
    let started = Instant::now();
    let drain = std::thread::spawn(move || {
        let mut reader = EventReader::new(stream);
        let info = reader.trace_info().expect("Trace object");
        let mut counters = std::collections::BTreeSet::new();
        let (mut exceptions, mut rundown, mut total) = (0, 0, 0);
        for event in reader.by_ref() {
            let event = event.unwrap_or_else(|e| panic!("{label}: {e}"));
            total += 1;
            if let Some(p) = event.counter_payload().unwrap() {
                let name = dn_nettrace::field(&p, "Name")
                    .and_then(|v| v.as_str())
                    .unwrap();
                counters.insert(name.to_string());
            }
            match (event.provider_name(), event.event_id()) {
                ("Microsoft-Windows-DotNETRuntime", 80) => exceptions += 1, // ExceptionThrown_V1
                ("Microsoft-Windows-DotNETRuntimeRundown", _) => rundown += 1,
                _ => {}
            }
        }
        let finished = reader.parser().is_finished();
        (info, counters, exceptions, rundown, total, finished)
    });
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        assert!(target.command("throw 50").starts_with("ok"));
    }
    let (info, counters, exceptions, rundown, total, finished) = drain.join().unwrap();
    assert_eq!(info.process_id as i32, target.pid());
    assert!(
        finished,
        "{}: stream ended without its end marker",
        rt.label()
    );
    let (set, _, _) = stopper.join().unwrap();
    assert_eq!(set, 0xFF, "StopTracing answered");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        counters.contains("cpu-usage") && counters.contains("working-set"),
        "{counters:?}"
    );
    assert!(
        counters.len() >= min_counters,
        "{}: {} counters: {counters:?}",
        rt.label(),
        counters.len()
    );
    assert!(
        exceptions >= 150,
        "{}: {exceptions} ExceptionThrown events",
        rt.label()
    );
    assert!(rundown > 100, "{}: {rundown} rundown events", rt.label());
    assert!(total > exceptions + rundown);
}

#[test]
fn live_session_on_net10() {
    live_counters_session(Runtime::Net10, 27);
}

#[test]
fn live_session_on_net8() {
    live_counters_session(Runtime::Net8, 27);
}

#[test]
fn live_session_on_netcore31() {
    live_counters_session(Runtime::NetCore31, 19);
}
