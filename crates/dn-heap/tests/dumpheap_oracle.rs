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
