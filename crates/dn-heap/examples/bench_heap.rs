//! Benchmark: `dumpheap -stat` on a core vs a plain sequential read of the same heap bytes.
//!
//! cargo run --release -p dn-heap --example bench_heap -- CORE [RUNS]

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let core = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bench_heap CORE [RUNS]"))?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    // --read-first: time the sequential read before the walk (each first run pays for mapping
    // the core's pages into this process).
    let read_first = args.next().as_deref() == Some("--read-first");

    let t = Instant::now();
    let rt = dn_heap::heap::Runtime::open_core(core.as_ref(), None)?;
    let open = t.elapsed();
    let session = dn_heap::commands::Session::new(rt);

    let mut read_times = Vec::new();
    let mut heap_bytes = 0u64;
    let mut sink = 0u64;
    if read_first {
        sequential_read(&session, runs, &mut read_times, &mut heap_bytes, &mut sink);
    }
    let mut stat_times = Vec::new();
    let mut objects = 0;
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = session
            .execute("dumpheap -stat")?
            .expect("output")
            .to_json();
        stat_times.push(t.elapsed().as_secs_f64());
        objects = out["total_objects"].as_u64().unwrap_or(0);
        bytes = out["total_bytes"].as_u64().unwrap_or(0);
    }

    if !read_first {
        sequential_read(&session, runs, &mut read_times, &mut heap_bytes, &mut sink);
    }
    let min = |v: &Vec<f64>| v.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "{}",
        serde_json::json!({
            "core": core,
            "objects": objects,
            "object_bytes": bytes,
            "heap_bytes": heap_bytes,
            "open_seconds": open.as_secs_f64(),
            "dumpheap_stat_seconds": stat_times,
            "dumpheap_stat_best": min(&stat_times),
            "sequential_read_seconds": read_times,
            "sequential_read_best": min(&read_times),
            "checksum": sink,
        })
    );
    Ok(())
}

/// The floor: touch every heap byte once, in order, doing as little as possible with it.
fn sequential_read(
    session: &dn_heap::commands::Session,
    runs: usize,
    times: &mut Vec<f64>,
    heap_bytes: &mut u64,
    sink: &mut u64,
) {
    let heap = &session.runtime.heap;
    let mem = heap.memory();
    for _ in 0..runs {
        let t = Instant::now();
        *heap_bytes = 0;
        for seg in &heap.segments {
            let len = (seg.end - seg.start) as usize;
            *heap_bytes += len as u64;
            let data = match mem.slice(seg.start, len) {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(mem.read_vec(seg.start, len).unwrap_or_default()),
            };
            for c in data.chunks_exact(8) {
                *sink = sink.wrapping_add(u64::from_le_bytes(c.try_into().unwrap()));
            }
        }
        times.push(t.elapsed().as_secs_f64());
    }
}
