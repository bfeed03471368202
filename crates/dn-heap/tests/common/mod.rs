//! Shared test helpers: a real .NET target, a core dump of it made by the runtime's own
//! createdump, and the ClrMD oracle.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use dn_testkit::{Fixture, Runtime, StartOptions, Target};

pub mod sos;

/// A core dump of a ConsoleTarget that leaked `leak` items.
pub struct Dump {
    pub dir: tempfile::TempDir,
    pub core: PathBuf,
    pub dac: PathBuf,
    pub runtime: Runtime,
    pub target: Target,
}

/// Starts ConsoleTarget on `rt` (server GC if asked), runs `leak N`, and dumps it.
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
    dump_of(target, rt, kind)
}

/// Dumps a running `target` with createdump (`--withheap` or `--full`).
pub fn dump_of(target: Target, rt: Runtime, kind: &str) -> Dump {
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

/// A `"0x..."` (or bare hex) string as a number.
pub fn hex(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex string").trim_start_matches("0x"), 16).expect("hex")
}

/// Runs HeapOracle's `args[0]` command on the dump; `args[1..]` follow the core and DAC paths.
pub fn oracle(d: &Dump, args: &[&str]) -> serde_json::Value {
    let mut a = vec![args[0], d.core.to_str().unwrap(), d.dac.to_str().unwrap()];
    a.extend_from_slice(&args[1..]);
    let out = dn_testkit::run_oracle("HeapOracle", &a).expect("HeapOracle");
    serde_json::from_str(out.trim()).expect("oracle JSON")
}

/// The `types` table (ours or ClrMD's: the same shape) as (count, size) per MethodTable.
pub fn stats(v: &serde_json::Value) -> Stats {
    v["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| {
            (
                hex(&t["mt"]),
                (t["count"].as_u64().unwrap(), t["size"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// The `types` table's name per MethodTable.
pub fn type_names(v: &serde_json::Value) -> BTreeMap<u64, String> {
    v["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| (hex(&t["mt"]), t["name"].as_str().unwrap().to_string()))
        .collect()
}

/// What ClrMD counts per MethodTable in the dump.
pub fn oracle_stats(d: &Dump) -> (Stats, BTreeMap<u64, String>) {
    oracle_stats_mode(d, "stat")
}

/// `stat`, or `live` (only objects reachable from a root).
pub fn oracle_stats_mode(d: &Dump, mode: &str) -> (Stats, BTreeMap<u64, String>) {
    let v = oracle(d, &[mode]);
    (stats(&v), type_names(&v))
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
    let v = session
        .execute(command)
        .expect(command)
        .expect("output")
        .to_json();
    (stats(&v), type_names(&v), v)
}

/// Addresses of every object `dumpheap` lists, free space left out.
pub fn heap_objects(session: &dn_heap::commands::Session) -> Vec<u64> {
    let all = session.execute("dumpheap").unwrap().unwrap().to_json();
    all["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("free").is_none())
        .map(|o| hex(&o["address"]))
        .collect()
}

/// About `n` of `objects`, evenly spread.
pub fn spread(objects: &[u64], n: usize) -> Vec<u64> {
    objects
        .iter()
        .step_by((objects.len() / n).max(1))
        .copied()
        .collect()
}

/// Addresses as HeapOracle takes a list of them: hex, comma-separated.
pub fn hex_list(addrs: &[u64]) -> String {
    addrs
        .iter()
        .map(|a| format!("{a:x}"))
        .collect::<Vec<_>>()
        .join(",")
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

/// The lines of a command's JSON `warnings` that say roots were skipped (a static root missing
/// or named by token, above all), or that a domain's modules were not listed.
pub fn statics_warnings(v: &serde_json::Value) -> Vec<String> {
    const SAYS_SKIPPED: [&str; 4] = [
        "are not roots",
        "named by metadata token",
        "could not list the modules",
        "AppDomain(s) could not be listed",
    ];
    v.get("warnings")
        .and_then(|w| w.as_array())
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
        .filter(|w| SAYS_SKIPPED.iter().any(|s| w.contains(s)))
        .map(str::to_string)
        .collect()
}
