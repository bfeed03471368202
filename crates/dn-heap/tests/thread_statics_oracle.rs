//! Thread-static fields as roots of their own, against ClrMD: on a fixture whose main thread
//! and three workers each hold a List of their own items through a `[ThreadStatic]` field,
//! our thread-static roots (field, thread, object) are exactly ClrMD's thread-static values;
//! each List is a top-level dominator (not the runtime's thread-statics storage) whose retained
//! size equals the brute-force one; the biggest is the leak suspect, rooted at its field and
//! thread; and `dumpheap -stat -live` equals ClrMD's live objects.

mod common;

use std::collections::BTreeSet;

use common::{dump_of, hex, hex_list, oracle, Dump};
use dn_graph::RootKind;
use dn_heap::roots::{RootDetail, RootOptions};
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

/// (field, OS thread id, object).
type Roots = BTreeSet<(String, u32, u64)>;

const FIELD: &str = "ConsoleTarget.ThreadStaticHolder.Items";

fn thread_statics_dump(rt: Runtime) -> Dump {
    let mut target = Target::start(Fixture::Console, rt);
    assert_eq!(target.command("thread-statics 3"), "ok");
    dump_of(target, rt, "--withheap")
}

/// Our thread-static roots, and the warnings of the root walk.
fn ours(d: &Dump) -> (Roots, Vec<String>) {
    let rt = dn_heap::heap::Runtime::open_core(&d.core, None).expect("open core");
    let set = dn_heap::roots::collect(
        &rt,
        RootOptions {
            stacks: false,
            statics: true,
        },
    );
    let roots = set
        .roots
        .iter()
        .filter(|r| r.kind == RootKind::ThreadStatic)
        .map(|r| match &r.detail {
            RootDetail::ThreadStatic { field, thread } => (field.clone(), *thread, r.object),
            d => panic!("a thread-static root with detail {d:?}"),
        })
        .collect();
    (roots, set.warnings)
}

/// ClrMD's non-null thread-static values of reference type, on live threads.
fn theirs(d: &Dump) -> Roots {
    let v = oracle(d, &["threadstatics"]);
    v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["os_id"].as_u64().unwrap() as u32,
                hex(&f["object"]),
            )
        })
        .collect()
}

fn run(s: &dn_heap::commands::Session, cmd: &str) -> Value {
    s.execute(cmd)
        .unwrap_or_else(|e| panic!("{cmd}: {e:#}"))
        .unwrap()
        .to_json()
}

fn check(rt: Runtime) {
    let label = rt.label();
    let d = thread_statics_dump(rt);
    let (ours, warnings) = ours(&d);
    let theirs = theirs(&d);
    assert_eq!(ours, theirs, "{label}: thread-static roots");
    assert_eq!(
        common::statics_warnings(&serde_json::json!({ "warnings": warnings })),
        Vec::<String>::new(),
        "{label}: statics warnings"
    );
    // The fixture's: the main thread and three workers, each with its own List.
    let lists: Vec<(u32, u64)> = ours
        .iter()
        .filter(|r| r.0 == FIELD)
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(lists.len(), 4, "{label}: one List per thread: {lists:x?}");

    let s = common::open_session(&d);
    let top = run(&s, "dominators -depth 1 -top 100000");
    let top: Vec<u64> = top["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| hex(&c["address"]))
        .collect();
    let addrs: Vec<u64> = lists.iter().map(|l| l.1).collect();
    let brute = oracle(&d, &["retained", &hex_list(&addrs)]);
    for r in brute["results"].as_array().unwrap() {
        let a = hex(&r["address"]);
        assert!(
            top.contains(&a),
            "{label}: the List {a:x} a thread-static field holds is a top-level dominator"
        );
        let node = run(&s, &format!("dominators {a:x} -depth 0"));
        assert_eq!(
            node["retained"].as_u64().unwrap(),
            r["retained"].as_u64().unwrap(),
            "{label}: retained size of the List {a:x}"
        );
    }

    // gcroot names the field on the hop to each List: out of the handle-held storage before
    // .NET 9, as the thread-static root itself from .NET 9 (no handle holds thread statics).
    for &(thread, list) in &lists {
        let g = run(&s, &format!("gcroot {list:x}"));
        let named = g["roots"].as_array().unwrap().iter().any(|r| {
            r["path"].as_array().unwrap().iter().any(|n| {
                n["address"]
                    .as_str()
                    .is_some_and(|_| hex(&n["address"]) == list)
                    && n["static_field"] == FIELD
            }) && (r["kind"] != "thread static" || r["thread"] == thread)
        });
        assert!(named, "{label}: gcroot {list:x} names {FIELD}: {g}");
    }

    // The biggest List (the last worker's) is the leak suspect, rooted at its field.
    let (thread, biggest) = lists
        .iter()
        .copied()
        .max_by_key(|&(_, a)| {
            brute["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| hex(&r["address"]) == a)
                .unwrap()["retained"]
                .as_u64()
        })
        .unwrap();
    let sus = run(&s, "suspects");
    let suspect = sus["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| {
            x["address"]
                .as_str()
                .is_some_and(|_| hex(&x["address"]) == biggest)
        })
        .unwrap_or_else(|| panic!("{label}: the List {biggest:x} is not a suspect: {sus}"));
    assert_eq!(
        suspect["root"]["kind"], "thread static",
        "{label}: {suspect}"
    );
    assert_eq!(suspect["root"]["field"], FIELD, "{label}: {suspect}");
    assert_eq!(suspect["root"]["thread"], thread, "{label}: {suspect}");

    // Thread-static objects are live, as ClrMD says.
    let (live, names, _) = common::our_stats_of(&s, "dumpheap -stat -live");
    let (their_live, _) = common::oracle_stats_mode(&d, "live");
    let diff = common::diff(&live, &their_live, &names);
    assert!(diff.is_empty(), "{label}: dumpheap -stat -live: {diff:#?}");
}

#[test]
fn net10() {
    check(Runtime::Net10);
}

#[test]
fn net9() {
    check(Runtime::Net9);
}

#[test]
fn net8() {
    check(Runtime::Net8);
}

#[test]
fn net11() {
    check(Runtime::Net11);
}

#[test]
fn netcore31() {
    check(Runtime::NetCore31);
}
