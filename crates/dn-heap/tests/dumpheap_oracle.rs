//! `dumpheap -stat` per MethodTable equals ClrMD's count and total size, exactly, on cores of
//! a real .NET process; `leak N` shows exactly N LeakedItem objects.

mod common;

use common::*;
use dn_testkit::Runtime;

const LEAK: usize = 1000;

fn check(rt: Runtime, server_gc: bool, kind: &str) {
    let d = make_dump(rt, server_gc, LEAK, kind);
    let session = open_session(&d);
    assert_eq!(
        session.runtime.heap.server, server_gc,
        "GC mode seen in the dump"
    );
    let (ours, our_names, json) = our_stats(&session);
    let (theirs, names) = oracle_stats(&d);
    let problems = diff(&ours, &theirs, &names);
    assert!(
        problems.is_empty(),
        "{} {kind} server={server_gc}: {} differences:\n{}",
        rt.label(),
        problems.len(),
        problems.join("\n")
    );
    let leaked: Vec<_> = our_names
        .iter()
        .filter(|(_, n)| n.as_str() == "ConsoleTarget.LeakedItem")
        .collect();
    assert_eq!(leaked.len(), 1, "one LeakedItem MethodTable");
    assert_eq!(ours[leaked[0].0].0, LEAK as u64, "LeakedItem count");
    let total: u64 = theirs.values().map(|v| v.0).sum();
    assert_eq!(json["total_objects"].as_u64(), Some(total));
    // Names agree with ClrMD's, generic ones included.
    for (mt, n) in &names {
        if n != "<unknown>" {
            assert_eq!(our_names.get(mt), Some(n), "name of {mt:x}");
        }
    }
}

#[test]
fn net10_workstation_withheap() {
    check(Runtime::Net10, false, "--withheap");
}

#[test]
fn net10_workstation_full() {
    check(Runtime::Net10, false, "--full");
}

#[test]
fn net10_server() {
    check(Runtime::Net10, true, "--withheap");
}

#[test]
fn net9_workstation() {
    check(Runtime::Net9, false, "--withheap");
}

#[test]
fn net9_server() {
    check(Runtime::Net9, true, "--withheap");
}

#[test]
fn net8_workstation() {
    check(Runtime::Net8, false, "--withheap");
}

#[test]
fn net8_server() {
    check(Runtime::Net8, true, "--withheap");
}

#[test]
fn netcore31_workstation() {
    check(Runtime::NetCore31, false, "--withheap");
}

#[test]
fn netcore31_server() {
    check(Runtime::NetCore31, true, "--withheap");
}

#[test]
fn net11_workstation() {
    check(Runtime::Net11, false, "--withheap");
}

/// `-live` equals SOS's live-object computation (ClrMD); `-dead` is everything else but free
/// space.
fn check_live(rt: Runtime, server_gc: bool) {
    let d = make_dump(rt, server_gc, LEAK, "--withheap");
    let session = open_session(&d);
    let (live, _, _) = our_stats_of(&session, "dumpheap -stat -live");
    let (theirs, names) = oracle_stats_mode(&d, "live");
    let problems = diff(&live, &theirs, &names);
    assert!(
        problems.is_empty(),
        "{} -live: {} differences:\n{}",
        rt.label(),
        problems.len(),
        problems.join("\n")
    );
    let leaked = names
        .iter()
        .find(|(_, n)| n.as_str() == "ConsoleTarget.LeakedItem")
        .map(|(m, _)| *m)
        .unwrap();
    assert_eq!(live[&leaked].0, LEAK as u64, "every leaked item is live");

    let (dead, _, _) = our_stats_of(&session, "dumpheap -stat -dead");
    let (all, all_names, _) = our_stats(&session);
    let free = all_names
        .iter()
        .find(|(_, n)| n.as_str() == "Free")
        .map(|(m, _)| *m);
    // Unreferenced objects on frozen segments are never freed: -dead sets them apart, and
    // they are exactly the frozen objects that are not live.
    let run = |c: &str| session.execute(c).unwrap().unwrap().to_json();
    let frozen_aside = &run("dumpheap -stat -dead")["frozen_unreferenced"];
    let aside = (
        frozen_aside["count"].as_u64().unwrap_or(0),
        frozen_aside["size"].as_u64().unwrap_or(0),
    );
    let frozen_all = run("dumpheap -stat -gen frozen");
    let frozen_live = run("dumpheap -stat -gen frozen -live");
    let totals = |v: &serde_json::Value| {
        (
            v["total_objects"].as_u64().unwrap(),
            v["total_bytes"].as_u64().unwrap(),
        )
    };
    let (fa, fl) = (totals(&frozen_all), totals(&frozen_live));
    assert_eq!(
        aside,
        (fa.0 - fl.0, fa.1 - fl.1),
        "{}: -dead sets aside exactly the unreferenced frozen objects",
        rt.label()
    );
    let mut missing = (0u64, 0u64);
    for (mt, (count, size)) in &all {
        if Some(*mt) == free {
            assert!(
                !live.contains_key(mt) && !dead.contains_key(mt),
                "free space is neither live nor dead"
            );
            continue;
        }
        let l = live.get(mt).copied().unwrap_or((0, 0));
        let x = dead.get(mt).copied().unwrap_or((0, 0));
        missing.0 += count - (l.0 + x.0);
        missing.1 += size - (l.1 + x.1);
    }
    assert_eq!(
        missing,
        aside,
        "{}: live + dead + frozen set aside = all",
        rt.label()
    );

    // Above, no command had built the heap graph: -live/-dead came from the mark pass. Once
    // the graph exists they come from it, with the same answers.
    let before = (run("dumpheap -stat -live"), run("dumpheap -stat -dead"));
    run("dominators -depth 1");
    let after = (run("dumpheap -stat -live"), run("dumpheap -stat -dead"));
    assert_eq!(
        before,
        after,
        "{}: -live/-dead from the mark pass and from the graph",
        rt.label()
    );
}

#[test]
fn live_dead_net10_workstation() {
    check_live(Runtime::Net10, false);
}

#[test]
fn live_dead_net10_server() {
    check_live(Runtime::Net10, true);
}

#[test]
fn live_dead_net8_workstation() {
    check_live(Runtime::Net8, false);
}

#[test]
fn live_dead_netcore31() {
    check_live(Runtime::NetCore31, false);
}
