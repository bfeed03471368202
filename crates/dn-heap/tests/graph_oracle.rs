//! The heap graph against brute force over ClrMD: on a fixture whose shapes have known retained
//! sizes (an exclusive holder, two holders sharing one payload, a cycle hanging from one root,
//! objects held only by the finalizer queue, strings shared between holders), each object's
//! retained size equals what becomes unreachable when ClrMD's mark skips it; the live total
//! equals ClrMD's; and the shapes' dominator relations are the ones built.

mod common;

use common::{dump_of, hex, hex_list, oracle, Dump};
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

/// The fixture's shape types, and how many of each it builds.
const SHAPES: &[(&str, usize)] = &[
    ("ConsoleTarget.ExclusiveHolder", 1),
    ("ConsoleTarget.SharedHolder", 2),
    ("ConsoleTarget.SharedPayload", 1),
    ("ConsoleTarget.CycleNode", 3),
    ("ConsoleTarget.StringHolder", 2),
];

fn shapes_dump(rt: Runtime) -> Dump {
    let mut target = Target::start(Fixture::Console, rt);
    assert_eq!(target.command("shapes"), "ok");
    dump_of(target, rt, "--withheap")
}

fn run(s: &dn_heap::commands::Session, cmd: &str) -> Value {
    s.execute(cmd)
        .unwrap_or_else(|e| panic!("{cmd}: {e:#}"))
        .unwrap()
        .to_json()
}

/// Addresses of the objects whose type name is exactly `name`.
fn instances(s: &dn_heap::commands::Session, name: &str) -> Vec<u64> {
    let v = run(s, &format!("dumpheap -type {name}"));
    let mts: Vec<u64> = v["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == name)
        .map(|t| hex(&t["mt"]))
        .collect();
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| mts.contains(&hex(&o["mt"])))
        .map(|o| hex(&o["address"]))
        .collect()
}

fn node(s: &dn_heap::commands::Session, addr: u64) -> Value {
    run(s, &format!("dominators {addr:x} -depth 1 -top 100"))
}

fn check(rt: Runtime) {
    let d = shapes_dump(rt);
    let s = common::open_session(&d);
    let mut addrs = Vec::new();
    for &(name, n) in SHAPES {
        let found = instances(&s, name);
        assert_eq!(found.len(), n, "{}: instances of {name}", rt.label());
        addrs.extend(found);
    }
    let finalizable = instances(&s, "ConsoleTarget.FinalizableThing");
    assert_eq!(
        finalizable.len(),
        3,
        "{}: FinalizableThings waiting in the finalizer queue",
        rt.label()
    );
    addrs.extend(&finalizable);

    let theirs = oracle(&d, &["retained", &hex_list(&addrs)]);
    let root = run(&s, "dominators -depth 0");
    assert!(root["address"].is_null());
    assert_eq!(
        root["retained"].as_u64().unwrap(),
        theirs["live_bytes"].as_u64().unwrap(),
        "{}: live bytes",
        rt.label()
    );
    for r in theirs["results"].as_array().unwrap() {
        let a = hex(&r["address"]);
        let ours = node(&s, a);
        assert_eq!(
            ours["retained"].as_u64().unwrap(),
            r["retained"].as_u64().unwrap(),
            "{}: retained size of {a:x} ({})",
            rt.label(),
            ours["type"]
        );
    }

    // The shapes by construction.
    let retained = |a: u64| node(&s, a)["retained"].as_u64().unwrap();
    let size = |a: u64| node(&s, a)["size"].as_u64().unwrap();
    let children = |a: u64| -> Vec<String> {
        node(&s, a)["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap().to_string())
            .collect()
    };
    let exclusive = instances(&s, "ConsoleTarget.ExclusiveHolder")[0];
    // Holder + List<byte[]> + its array + ten byte[1000] (each 1000 + 24 bytes).
    assert!(
        retained(exclusive) > 10 * 1024,
        "exclusive holder retains its arrays"
    );
    assert_eq!(
        children(exclusive),
        vec!["System.Collections.Generic.List<System.Byte[]>"]
    );
    let payload = instances(&s, "ConsoleTarget.SharedPayload")[0];
    for h in instances(&s, "ConsoleTarget.SharedHolder") {
        // Itself and its own byte[500]: the shared payload is not its to retain.
        assert_eq!(retained(h), size(h) + 500 + 24, "shared holder {h:x}");
    }
    // Held by two holders: a top-level dominator of its own.
    let top: Vec<u64> = run(&s, "dominators -depth 1 -top 100000")["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| hex(&c["address"]))
        .collect();
    assert!(
        top.contains(&payload),
        "the shared payload is a top-level dominator"
    );
    let cycle = instances(&s, "ConsoleTarget.CycleNode");
    let heads: Vec<u64> = cycle.iter().copied().filter(|c| top.contains(c)).collect();
    assert_eq!(heads.len(), 1, "one cycle node is held by the static");
    let per_node = size(heads[0]) + 300 + 24;
    assert_eq!(
        retained(heads[0]),
        3 * per_node,
        "the head retains the ring"
    );
    for f in &finalizable {
        assert!(
            top.contains(f),
            "a queued finalizable object is a root of its own"
        );
        assert_eq!(retained(*f), size(*f) + 2000 + 24);
    }
}

#[test]
fn net10() {
    check(Runtime::Net10);
}

#[test]
fn net8() {
    check(Runtime::Net8);
}

#[test]
fn netcore31() {
    check(Runtime::NetCore31);
}
