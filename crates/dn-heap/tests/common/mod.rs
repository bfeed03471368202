//! Shared test helpers: a real .NET target, a core dump of it made by the runtime's own
//! createdump, and the ClrMD oracle.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use dn_testkit::{Fixture, Runtime, StartOptions, Target};

/// A core dump of a ConsoleTarget that leaked `leak` items.
pub struct Dump {
    pub dir: tempfile::TempDir,
    pub core: PathBuf,
    pub dac: PathBuf,
    pub runtime: Runtime,
    pub target: Target,
}

/// Starts ConsoleTarget on `rt` (server GC if asked), runs `leak N`, and dumps it with
/// createdump (`--withheap` or `--full`).
pub fn make_dump(rt: Runtime, server_gc: bool, leak: usize, kind: &str) -> Dump {
    let mut opts = StartOptions::default();
    if server_gc {
        opts.env.push(("DOTNET_gcServer".into(), "1".into()));
        // .NET Core 3.1 reads only the COMPlus_ prefix.
        opts.env.push(("COMPlus_gcServer".into(), "1".into()));
    }
    let mut target = Target::start_with(Fixture::Console, rt, opts);
    let reply = target.command(&format!("leak {leak}"));
    assert!(reply.starts_with("ok"), "leak command failed: {reply}");
    let dir = tempfile::tempdir().expect("temp dir");
    let core = dir.path().join(format!("core.{}", rt.label()));
    let runtime_dir = target.built().runtime_dir.clone();
    let createdump = runtime_dir.join("createdump");
    let out = Command::new(&createdump)
        .arg("-f")
        .arg(&core)
        .arg(kind)
        .arg(target.pid().to_string())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", createdump.display()));
    assert!(
        out.status.success() && core.is_file(),
        "createdump failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Dump {
        dir,
        core,
        dac: runtime_dir.join("libmscordaccore.so"),
        runtime: rt,
        target,
    }
}

/// (count, size) per MethodTable.
pub type Stats = BTreeMap<u64, (u64, u64)>;

/// What ClrMD counts per MethodTable in the dump.
pub fn oracle_stats(d: &Dump) -> (Stats, BTreeMap<u64, String>) {
    oracle_stats_mode(d, "stat")
}

/// `stat`, or `live` (only objects reachable from a root).
pub fn oracle_stats_mode(d: &Dump, mode: &str) -> (Stats, BTreeMap<u64, String>) {
    let out = dn_testkit::run_oracle(
        "HeapOracle",
        &[mode, d.core.to_str().unwrap(), d.dac.to_str().unwrap()],
    )
    .expect("HeapOracle stat");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("oracle JSON");
    let mut stats = Stats::new();
    let mut names = BTreeMap::new();
    for t in v["types"].as_array().expect("types") {
        let mt =
            u64::from_str_radix(t["mt"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        stats.insert(
            mt,
            (t["count"].as_u64().unwrap(), t["size"].as_u64().unwrap()),
        );
        names.insert(mt, t["name"].as_str().unwrap().to_string());
    }
    (stats, names)
}

/// Our `dumpheap -stat`, through the public command API.
pub fn our_stats(
    session: &dn_heap::commands::Session,
) -> (Stats, BTreeMap<u64, String>, serde_json::Value) {
    our_stats_of(session, "dumpheap -stat")
}

/// Per-MethodTable stats of any `dumpheap -stat ...` command.
pub fn our_stats_of(
    session: &dn_heap::commands::Session,
    command: &str,
) -> (Stats, BTreeMap<u64, String>, serde_json::Value) {
    let out = session.execute(command).expect(command).expect("output");
    let v = out.to_json();
    let mut stats = Stats::new();
    let mut names = BTreeMap::new();
    for t in v["types"].as_array().expect("types") {
        let mt =
            u64::from_str_radix(t["mt"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        stats.insert(
            mt,
            (t["count"].as_u64().unwrap(), t["size"].as_u64().unwrap()),
        );
        names.insert(mt, t["name"].as_str().unwrap().to_string());
    }
    (stats, names, v)
}

pub fn open_session(d: &Dump) -> dn_heap::commands::Session {
    let rt = dn_heap::heap::Runtime::open_core(&d.core, None)
        .unwrap_or_else(|e| panic!("opening {}: {e:#}", d.core.display()));
    dn_heap::commands::Session::new(rt)
}

/// Describes the differences between two stats tables (empty if equal).
pub fn diff(ours: &Stats, theirs: &Stats, names: &BTreeMap<u64, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (mt, t) in theirs {
        match ours.get(mt) {
            Some(o) if o == t => {}
            o => out.push(format!(
                "{mt:x} {}: ours {o:?} ClrMD {t:?}",
                names.get(mt).map_or("?", |s| s)
            )),
        }
    }
    for (mt, o) in ours {
        if !theirs.contains_key(mt) {
            out.push(format!("{mt:x}: ours {o:?}, not in ClrMD"));
        }
    }
    out
}
