//! Reads a nettrace file and prints one JSON line per event, or with `--count` only the number
//! of events and the time taken (used by the throughput benchmark).
//!
//! `--count-owned` counts through the iterator (an owned `Event` per event) instead of the
//! allocation-free callback.
//!
//! usage: nettrace_dump <file.nettrace> [--count | --count-owned]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use dn_nettrace::{EventReader, Fields};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: nettrace_dump <file.nettrace> [--count]");
        std::process::exit(2);
    }
    let mode = args.get(2).map(String::as_str).unwrap_or("");
    let count_only = mode == "--count" || mode == "--count-owned";
    let file = match File::open(&args[1]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot open {}: {e}", args[1]);
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut count = 0u64;
    if mode == "--count" {
        if let Err(e) = EventReader::new(file).for_each_event(|_| count += 1) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        println!(
            "{{\"events\":{count},\"seconds\":{}}}",
            started.elapsed().as_secs_f64()
        );
        return;
    }
    for event in EventReader::new(file) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        count += 1;
        if count_only {
            continue;
        }
        let fields = match event.decode() {
            Ok(f) => serde_json::to_value(Fields(&f)).unwrap_or_default(),
            Err(e) => serde_json::Value::String(format!("!{e}")),
        };
        let line = serde_json::json!({
            "provider": event.provider_name(),
            "id": event.event_id(),
            "name": event.event_name(),
            "version": event.metadata.version,
            "opcode": event.metadata.opcode,
            "ms": event.relative_msec(),
            "tid": event.thread_id,
            "seq": event.sequence,
            "stack": event.stack_id,
            "fields": fields,
        });
        let _ = writeln!(out, "{line}");
    }
    if count_only {
        let _ = writeln!(
            out,
            "{{\"events\":{count},\"seconds\":{}}}",
            started.elapsed().as_secs_f64()
        );
    }
}
