//! `clrstack -all`, `pe`, `syncblk`, `setthread`, `dumpasync` and `dso` against Microsoft's dotnet-dump
//! (10.0.750501, installed as a .NET tool) on the same cores of ConsoleTarget's `stacks`
//! scenario (a recursion of known depth, a contended lock, an exception in flight in a blocking
//! filter, a stored exception with an inner one), on .NET Core 3.1, 8, 9, 10 and 11, for cores written by
//! the runtime's createdump and by our own `collect`.

mod common;

use std::path::Path;
use std::process::Command;

use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

/// Frames of `Level(Int32)` on the recursing thread: Level(12) down to Level(0).
const LEVEL_FRAMES: usize = 13;

/// Our `analyze` with `commands`: text, or one JSON document per command.
fn ours(core: &Path, commands: &[String], json: bool) -> String {
    let mut args = vec!["analyze".to_string(), core.to_str().unwrap().to_string()];
    if json {
        args.push("--json".into());
    }
    for c in commands {
        args.push("-c".into());
        args.push(c.clone());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::dn_dump(&a);
    assert!(
        out.status.success(),
        "dn-dump analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ours_json(core: &Path, commands: &[String]) -> Vec<Value> {
    ours(core, commands, true)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect()
}

/// `clrstack -all` text as (OS thread id, rows); dotnet-dump's source-line suffixes (from
/// PDBs, which we do not read) removed.
fn stacks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("OS Thread Id: ") {
            out.push((id.trim().to_string(), Vec::new()));
            continue;
        }
        let Some((_, rows)) = out.last_mut() else {
            continue;
        };
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 3 || w[0] == "Child" || !w[0].chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let mut row = line.trim_end().to_string();
        if row.ends_with(']') {
            if let Some(at) = row.rfind(" [") {
                if row[at..].contains(" @ ") {
                    row.truncate(at);
                }
            }
        }
        rows.push(row);
    }
    out
}

/// The lines of one `pe` report, from "Exception object:" to "HResult:".
fn pe_block(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Exception object:"))
        .unwrap_or_else(|| panic!("no pe report in:\n{text}"));
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.starts_with("HResult:"))
            .expect("HResult line");
    lines[start..=end]
        .iter()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The rows of `syncblk` between its header and the `-----` line.
fn syncblk_rows(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Index"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----"))
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// `dumpasync`'s object rows (indentation kept) and stack headers.
fn async_rows(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// `dso`'s rows after its header.
fn dso_rows(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.contains("SP/REG"))
        .skip(1)
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 3 && w[1].chars().all(|c| c.is_ascii_hexdigit())
        })
        .map(|l| l.trim_end().to_string())
        .collect()
}

fn hex(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex").trim_start_matches("0x"), 16).expect("hex")
}

/// The OS id of the (only) thread whose stack holds `method`, from our JSON.
fn thread_with(stacks: &Value, method: &str) -> u64 {
    let hits: Vec<u64> = stacks["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["method"].as_str().is_some_and(|m| m.starts_with(method)))
        })
        .map(|t| t["os_thread_id"].as_u64().unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "threads with {method}: {hits:?}");
    hits[0]
}

fn check_core(rt: Runtime, core: &Path, what: &str) {
    // Ours, as JSON: where the scenario's threads and objects are.
    let docs = ours_json(
        core,
        &[
            "clrstack -all".into(),
            "threads".into(),
            "dumpheap -type System.InvalidOperationException".into(),
        ],
    );
    let (all, threads, heap) = (&docs[0], &docs[1], &docs[2]);
    let index_of = |tid: u64| -> u64 {
        threads["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["os_thread_id"].as_u64() == Some(tid))
            .map(|t| t["index"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("{what}: thread {tid:x} not listed"))
    };
    let recurser = thread_with(all, "ConsoleTarget.StackScenarios.Recurse(");
    let frames = all["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["os_thread_id"].as_u64() == Some(recurser))
        .unwrap()["frames"]
        .as_array()
        .unwrap()
        .clone();
    let levels = frames
        .iter()
        .filter(|f| f["method"].as_str() == Some("ConsoleTarget.StackScenarios.Level(Int32)"))
        .count();
    assert_eq!(
        levels, LEVEL_FRAMES,
        "{what}: Level frames on the recursing thread"
    );
    assert!(
        all["warnings"].as_array().unwrap().is_empty(),
        "{what}: {}",
        all["warnings"]
    );
    let owner = thread_with(all, "ConsoleTarget.StackScenarios.HoldLock(");
    let filter = thread_with(all, "ConsoleTarget.StackScenarios.BlockInFilter(");
    let nested = thread_with(all, "ConsoleTarget.StackScenarios.BlockInNestedFilter(");
    let stored: Vec<u64> = heap["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| hex(&o["address"]))
        .collect();
    assert_eq!(
        stored.len(),
        1,
        "{what}: one stored InvalidOperationException"
    );

    let commands: Vec<String> = vec![
        "clrstack -all".into(),
        "syncblk".into(),
        format!("pe {:x}", stored[0]),
        format!("setthread {}", index_of(filter)),
        "pe".into(),
        "clrstack".into(),
        "dumpasync".into(),
        "dso".into(),
        format!("setthread {}", index_of(nested)),
        "pe -nested".into(),
    ];
    // Each command's text alone, so the outputs can be told apart.
    let theirs: Vec<String> = {
        let t = dn_testkit::dotnet_dump_analyze(core, &commands);
        split_by_markers(&t, &commands)
    };
    let mine: Vec<String> = {
        let t = ours(core, &commands, false);
        split_by_markers(&t, &commands)
    };

    // clrstack -all: every managed thread, every row (SP, IP, frame or method), in order.
    let (a, b) = (stacks(&mine[0]), stacks(&theirs[0]));
    assert_eq!(
        a.iter().map(|t| &t.0).collect::<Vec<_>>(),
        b.iter().map(|t| &t.0).collect::<Vec<_>>(),
        "{what}: the managed threads"
    );
    for ((tid, ours_rows), (_, their_rows)) in a.iter().zip(&b) {
        assert_eq!(ours_rows, their_rows, "{what}: clrstack of thread {tid}");
    }

    // syncblk: the same rows, and the owner is the thread inside `lock`.
    let rows = syncblk_rows(&mine[1]);
    assert_eq!(rows, syncblk_rows(&theirs[1]), "{what}: syncblk");
    assert_eq!(rows.len(), 1, "{what}: one lock held");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        u64::from_str_radix(cols[5], 16).unwrap(),
        owner,
        "{what}: syncblk names the owner thread: {}",
        rows[0]
    );

    // pe on the stored exception (with its inner one) and on the filter thread's in-flight one.
    let stored_pe = pe_block(&mine[2]);
    assert_eq!(
        stored_pe,
        pe_block(&theirs[2]),
        "{what}: pe of the stored exception"
    );
    assert!(
        stored_pe
            .iter()
            .any(|l| l.starts_with("InnerException:   System.ArgumentException")),
        "{what}: {stored_pe:?}"
    );
    let in_flight = pe_block(&mine[4]);
    assert_eq!(
        in_flight,
        pe_block(&theirs[4]),
        "{what}: pe on the filter thread"
    );
    assert!(
        in_flight
            .iter()
            .any(|l| l.contains("System.FormatException")),
        "{what}: {in_flight:?}"
    );
    // clrstack on the thread setthread selected: the same header (index) and rows.
    assert_eq!(
        stacks(&mine[5]),
        stacks(&theirs[5]),
        "{what}: clrstack after setthread"
    );
    assert!(
        mine[5].starts_with(&format!(
            "OS Thread Id: 0x{filter:x} ({})",
            index_of(filter)
        )),
        "{what}: {}",
        mine[5]
    );
    // dumpasync: the same stacks, and the chain is the TaskCompletionSource's task awaited by
    // InnerAsync, awaited by MiddleAsync, awaited by OuterAsync.
    let rows = async_rows(&mine[6]);
    assert_eq!(rows, async_rows(&theirs[6]), "{what}: dumpasync");
    // The state machines' names end in a compiler-chosen `d__N`.
    let chain: Vec<&str> = rows
        .iter()
        .map(|r| {
            let name = r.split_whitespace().last().unwrap();
            name.rsplit_once("d__").map_or(name, |(head, _)| head)
        })
        .collect();
    assert_eq!(
        chain,
        [
            "System.Threading.Tasks.Task<System.Int32>",
            "ConsoleTarget.StackScenarios+<InnerAsync>",
            "ConsoleTarget.StackScenarios+<MiddleAsync>",
            "ConsoleTarget.StackScenarios+<OuterAsync>",
        ],
        "{what}: {rows:?}"
    );
    let depth: Vec<usize> = rows
        .iter()
        .map(|r| r.len() - r.trim_start().len())
        .collect();
    assert_eq!(depth, [0, 2, 4, 6], "{what}: each awaiter one level in");
    // dso on the filter thread: the same stack slots and objects, the exception in flight among
    // them.
    let rows = dso_rows(&mine[7]);
    assert_eq!(rows, dso_rows(&theirs[7]), "{what}: dso");
    assert!(
        rows.iter().any(|r| r.ends_with(" System.FormatException")),
        "{what}: {rows:?}"
    );
    // pe -nested on the thread where a second exception is in flight under the first.
    let text = |t: &str| -> Vec<String> {
        t.lines()
            .skip_while(|l| !l.starts_with("Exception object:"))
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let nested_pe = text(&mine[9]);
    assert_eq!(nested_pe, text(&theirs[9]), "{what}: pe -nested");
    assert!(
        nested_pe
            .iter()
            .any(|l| l.starts_with("Nested exception ---"))
            && nested_pe
                .iter()
                .any(|l| l.ends_with("System.NotSupportedException")),
        "{what}: {nested_pe:?}"
    );
    dumpasync_views(core, what);
    // `dumpasync --roots` builds the heap graph with every stack's roots. On this scenario's
    // .NET 10 cores (ours and createdump's) the .NET 10 DAC's stack-reference walk
    // (GetStackReferences, which `gcroot` uses too) crashes inside libmscordaccore on some
    // threads. dotnet-dump dies there, so it cannot be compared with; dn walks each stack in a
    // child process and warns about the threads whose walk crashed.
    if rt != Runtime::Net10 {
        dumpasync_roots(core, what);
    } else {
        roots_despite_a_dac_crash(core, what);
    }
    eprintln!("{} {what}: {} threads equal", rt.label(), a.len());
}

/// On a core where the DAC crashes in the stack-reference walk: dotnet-dump dies, while our
/// `dumpasync --roots` and `suspects` finish, with the roots of every other stack and a warning
/// naming the crash.
fn roots_despite_a_dac_crash(core: &Path, what: &str) {
    let peer = Command::new(dn_testkit::dotnet_tool("dotnet-dump").expect("dotnet-dump"))
        .arg("analyze")
        .arg(core)
        .args(["-c", "dumpheap -stat -live", "-c", "exit"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        !peer.status.success(),
        "{what}: dotnet-dump's root walk survived this core: compare with it as on other runtimes"
    );
    let doc = ours_json(
        core,
        &["dumpasync --roots".to_string(), "suspects".to_string()],
    );
    let crash = "the runtime's DAC crashed walking the stacks of";
    for d in &doc {
        assert!(
            d.to_string().contains(crash),
            "{what}: the crash is said: {d}"
        );
    }
    let roots = doc[0]["stacks"][0]["roots"]["roots"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no roots in {}", doc[0]));
    assert!(!roots.is_empty(), "{what}: the other roots are still found");
    assert!(
        doc[1]["live_bytes"].as_u64().unwrap() > 0,
        "{what}: suspects"
    );
    let text = ours(core, &["suspects".to_string()], false);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Warning: ") && l.contains(crash)),
        "{what}: {text}"
    );
}

/// A `dumpasync --fields` row's words: address, MT, type, value, name.
fn field_words(line: &str) -> Option<Vec<&str>> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let hex16 = |s: &str| s.len() == 16 && s.chars().all(|c| c.is_ascii_hexdigit());
    (w.len() == 5 && hex16(w[0]) && hex16(w[1]) && line.starts_with("        ")).then_some(w)
}

/// `dumpasync --fields`, `--coalesce` and `--stats`: the same lines as dotnet-dump's (its .NET
/// 11 notice about runtime-async aside). One known difference: for an embedded struct inside a
/// struct state machine SOS's Value column is the struct's address plus 8 (it reads the state
/// machine as if it were an object); ours is the struct's address, the Address column in both.
fn dumpasync_views(core: &Path, what: &str) {
    let body = |t: &str| -> Vec<String> {
        t.lines()
            .skip_while(|l| !(l.starts_with("STACK") || l.starts_with("MT ")))
            .filter(|l| !l.trim().is_empty() && !l.starts_with("Warning:"))
            .filter(|l| !l.starts_with("The dump async command"))
            .map(|l| l.trim_end().to_string())
            .collect()
    };
    for command in [
        "dumpasync --fields",
        "dumpasync --coalesce",
        "dumpasync --stats",
    ] {
        let c = [command.to_string()];
        let theirs = body(&dn_testkit::dotnet_dump_analyze(core, &c));
        let mine = body(&ours(core, &c, false));
        assert!(
            !theirs.is_empty(),
            "{what}: {command}: dotnet-dump printed nothing"
        );
        assert_eq!(
            mine.len(),
            theirs.len(),
            "{what}: {command}:\n{mine:#?}\n{theirs:#?}"
        );
        for (m, t) in mine.iter().zip(&theirs) {
            if m == t {
                continue;
            }
            let (Some(mw), Some(tw)) = (field_words(m), field_words(t)) else {
                panic!("{what}: {command}: ours\n{m}\ntheirs\n{t}");
            };
            let value = |s: &str| u64::from_str_radix(s, 16).ok();
            let embedded_struct = mw[3] == mw[0]
                && value(tw[3])
                    .zip(value(mw[3]))
                    .is_some_and(|(t, m)| t == m + 8);
            assert!(
                embedded_struct && mw[..3] == tw[..3] && mw[4] == tw[4],
                "{what}: {command}: ours\n{m}\ntheirs\n{t}"
            );
        }
        if command == "dumpasync --stats" {
            assert!(
                mine.iter().any(|l| l.contains("<OuterAsync>")),
                "{what}: {mine:?}"
            );
        }
    }
    // The JSON of --coalesce: one stack of four single frames, the task first.
    let doc = ours_json(core, &["dumpasync --coalesce".to_string()]);
    let mut g = &doc[0]["stacks"][0];
    let mut depth = 0;
    while !g.is_null() {
        assert_eq!(g["count"].as_u64(), Some(1), "{what}: {g}");
        g = &g["continuations"][0];
        depth += 1;
    }
    assert_eq!(depth, 4, "{what}: {}", doc[0]);
}

/// `dumpasync --roots`: the roots of each stack's last frame are those dotnet-dump's gcroot finds
/// for it: as many, and the same handles.
fn dumpasync_roots(core: &Path, what: &str) {
    let doc = ours_json(core, &["dumpasync --roots".to_string()]);
    let stack = &doc[0]["stacks"][0];
    let tail = stack["frames"].as_array().unwrap().last().unwrap()["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x")
        .to_string();
    let roots = stack["roots"]["roots"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no roots in {stack}"));
    let mut our_handles: Vec<u64> = roots
        .iter()
        .filter(|r| r.get("thread").is_none())
        .map(hex_root)
        .collect();
    let text = dn_testkit::dotnet_dump_analyze(core, &[format!("gcroot {tail}")]);
    let mut their_handles: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (l.starts_with("    ") && w.len() >= 2 && w[0].len() == 16 && w[1].starts_with('('))
                .then(|| u64::from_str_radix(w[0], 16).unwrap())
        })
        .collect();
    our_handles.sort_unstable();
    their_handles.sort_unstable();
    assert!(!their_handles.is_empty(), "{what}: gcroot {tail}: {text}");
    assert_eq!(our_handles, their_handles, "{what}: gcroot {tail}: {text}");
    let found = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("Found ")?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("{what}: {text}"));
    assert_eq!(roots.len(), found, "{what}: gcroot {tail}: {text}\n{stack}");
}

fn hex_root(r: &Value) -> u64 {
    u64::from_str_radix(r["root"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Splits a run's output into one piece per command. Both tools print the commands' outputs
/// back to back, so a command is told apart by the first line only it prints.
fn split_by_markers(text: &str, commands: &[String]) -> Vec<String> {
    let starts = [
        "OS Thread Id:",
        "Index ",
        "Exception object:",
        "",
        "Exception object:",
        "OS Thread Id:",
        "STACK ",
        "OS Thread Id:",
        "",
        "Exception object:",
    ];
    assert_eq!(starts.len(), commands.len());
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0usize;
    let mut out = Vec::new();
    for (i, s) in starts.iter().enumerate() {
        if s.is_empty() {
            out.push(String::new());
            continue;
        }
        let begin = (at..lines.len())
            .find(|&j| lines[j].starts_with(s))
            .unwrap_or_else(|| panic!("no output of '{}' in:\n{text}", commands[i]));
        // The piece ends where the next command's first line starts.
        let end = match starts[i + 1..].iter().find(|n| !n.is_empty()) {
            Some(n) => (begin + 1..lines.len())
                .find(|&j| lines[j].starts_with(n))
                .unwrap_or(lines.len()),
            None => lines.len(),
        };
        out.push(lines[begin..end].join("\n"));
        at = end;
    }
    out
}

fn scenario(rt: Runtime) {
    let mut t = Target::start(Fixture::Console, rt);
    assert_eq!(
        t.command("stacks"),
        "READY",
        "{}: the stacks scenario",
        rt.label()
    );
    let dir = tempfile::tempdir().unwrap();

    let ours_core = dir.path().join("core.ours");
    let out = common::collect(&t, &ours_core, &["--type", "heap"]);
    assert!(
        out.status.success(),
        "collect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_core(rt, &ours_core, "our core");
    std::fs::remove_file(&ours_core).unwrap();

    let theirs_core = dir.path().join("core.createdump");
    let createdump = t.built().runtime_dir.join("createdump");
    let out = Command::new(&createdump)
        .arg("-f")
        .arg(&theirs_core)
        .arg("--withheap")
        .arg(t.pid().to_string())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", createdump.display()));
    assert!(
        out.status.success(),
        "createdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_core(rt, &theirs_core, "createdump's core");
}

/// `analyze --pid` walks a running process's stacks (registers through ptrace): the same rows as
/// dotnet-dump's on a core of the same, blocked, process.
#[test]
fn live_stacks_equal_a_cores_net10() {
    let rt = Runtime::Net10;
    let mut t = Target::start(Fixture::Console, rt);
    assert_eq!(t.command("stacks"), "READY");
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let out = Command::new(t.built().runtime_dir.join("createdump"))
        .arg("-f")
        .arg(&core)
        .arg("--withheap")
        .arg(t.pid().to_string())
        .output()
        .expect("createdump");
    assert!(
        out.status.success(),
        "createdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = stacks(&dn_testkit::dotnet_dump_analyze(
        &core,
        &["clrstack -all".into()],
    ));
    let pid = t.pid().to_string();
    let out = common::dn_dump(&["analyze", "--pid", &pid, "-c", "clrstack -all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mine = stacks(&String::from_utf8_lossy(&out.stdout));
    // The core and the live walk are moments apart: runtime worker threads that run no managed
    // method (only the runtime's own catch frame; the tiered-compilation worker exits when idle)
    // may come or go in between. Every thread running managed code must match exactly.
    let managed = |s: &Vec<(String, Vec<String>)>| -> Vec<(String, Vec<String>)> {
        s.iter()
            .filter(|(_, frames)| {
                !(frames.len() == 1 && frames[0].contains("[DebuggerU2MCatchHandlerFrame"))
            })
            .cloned()
            .collect()
    };
    let (mine, theirs) = (managed(&mine), managed(&theirs));
    assert!(
        theirs.len() >= 6,
        "the stacks scenario's threads: {theirs:?}"
    );
    assert_eq!(
        mine, theirs,
        "live clrstack -all against dotnet-dump on a core"
    );
    assert!(
        mine.iter()
            .flat_map(|t| &t.1)
            .filter(|r| r.ends_with("StackScenarios.Level(Int32)"))
            .count()
            == LEVEL_FRAMES
    );
    // The target runs on.
    assert_eq!(t.command("ping"), "pong");
}

#[test]
fn stacks_net8() {
    scenario(Runtime::Net8);
}

#[test]
fn stacks_net10() {
    scenario(Runtime::Net10);
}

#[test]
fn stacks_net11() {
    scenario(Runtime::Net11);
}

#[test]
fn stacks_net9() {
    scenario(Runtime::Net9);
}

#[test]
fn stacks_netcore31() {
    scenario(Runtime::NetCore31);
}
