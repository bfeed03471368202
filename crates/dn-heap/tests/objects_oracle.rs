//! `objsize`, `finalizequeue` and `gchandles` agree with ClrMD on the same core.

mod common;

use std::collections::BTreeSet;

use common::*;
use dn_testkit::Runtime;

fn check(rt: Runtime, server_gc: bool) {
    let d = make_dump(rt, server_gc, 200, "--withheap");
    let s = open_session(&d);
    let names = std::collections::BTreeMap::new();
    let label = format!("{} server={server_gc}", rt.label());

    // objsize of the leak's List: the list, its array, 200 items with their strings and arrays.
    let lists = s
        .execute("dumpheap -type System.Collections.Generic.List<ConsoleTarget.LeakedItem> -short")
        .unwrap()
        .unwrap()
        .to_json();
    let list = hex(&lists["objects"][0]["address"]);
    let ours = s
        .execute(&format!("objsize {list:x} -stat"))
        .unwrap()
        .unwrap()
        .to_json();
    let theirs = oracle(&d, &["objsize", &format!("{list:x}")]);
    let problems = diff(&stats(&ours), &stats(&theirs), &names);
    assert!(
        problems.is_empty(),
        "{label} objsize: {}",
        problems.join("\n")
    );
    assert_eq!(
        ours["total_objects"],
        2 + 3 * 200,
        "{label}: list + array + 200 x (item, string, payload)"
    );

    // objsize of a few objects spread over the heap.
    let objects = heap_objects(&s);
    for a in spread(&objects, 8) {
        let ours = s
            .execute(&format!("objsize {a:x} -stat"))
            .unwrap()
            .unwrap()
            .to_json();
        let theirs = oracle(&d, &["objsize", &format!("{a:x}")]);
        let problems = diff(&stats(&ours), &stats(&theirs), &names);
        assert!(
            problems.is_empty(),
            "{label} objsize {a:x}: {}",
            problems.join("\n")
        );
    }

    // finalizequeue.
    let ours = s.execute("finalizequeue").unwrap().unwrap().to_json();
    let theirs = oracle(&d, &["finalizable"]);
    let problems = diff(&stats(&ours), &stats(&theirs), &names);
    assert!(
        problems.is_empty(),
        "{label} finalizequeue: {}",
        problems.join("\n")
    );
    assert!(
        ours["total_objects"].as_u64().unwrap() > 0,
        "{label}: some finalizable objects"
    );
    assert_eq!(
        ours["ready_for_finalization"], theirs["ready_for_finalization"],
        "{label}: ready"
    );

    // gchandles.
    let ours = s.execute("gchandles").unwrap().unwrap().to_json();
    let kind = |k: &str| -> String {
        match k {
            "WeakShort" => "weak short",
            "WeakLong" => "weak long",
            "Strong" => "strong",
            "Pinned" => "pinned",
            "RefCounted" => "ref counted",
            "Dependent" => "dependent",
            "AsyncPinned" => "async pinned",
            "SizedRef" => "sized ref",
            "WeakWinRT" => "weak WinRT",
            other => other,
        }
        .to_string()
    };
    let ours: BTreeSet<(u64, String, u64)> = ours["handles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                hex(&h["handle"]),
                h["kind"].as_str().unwrap().to_string(),
                hex(&h["object"]),
            )
        })
        .collect();
    let theirs: BTreeSet<(u64, String, u64)> = oracle(&d, &["handles"])["handles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                hex(&h["handle"]),
                kind(h["kind"].as_str().unwrap()),
                hex(&h["object"]),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "{label}: handles");
    assert!(
        ours.iter().any(|h| h.1 == "strong"),
        "{label}: strong handles exist"
    );
}

#[test]
fn net10_workstation() {
    check(Runtime::Net10, false);
}

#[test]
fn net10_server() {
    check(Runtime::Net10, true);
}

#[test]
fn net8_workstation() {
    check(Runtime::Net8, false);
}

#[test]
fn net9_server() {
    check(Runtime::Net9, true);
}

#[test]
fn netcore31_workstation() {
    check(Runtime::NetCore31, false);
}

#[test]
fn net11_workstation() {
    check(Runtime::Net11, false);
}
