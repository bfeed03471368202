//! `eeheap -gc` segments, `clrthreads` and `dumpobj` agree with what ClrMD reads from the same
//! core.

mod common;

use std::collections::BTreeSet;

use common::*;
use dn_testkit::Runtime;

fn check(rt: Runtime, server_gc: bool) {
    let d = make_dump(rt, server_gc, 100, "--withheap");
    let s = open_session(&d);
    let theirs = oracle(&d, &["layout"]);

    // Segments: the same object ranges, the same kinds.
    let ee = s.execute("eeheap -gc").unwrap().unwrap().to_json();
    let kind = |k: &str| match k {
        "Generation0" => "gen0",
        "Generation1" => "gen1",
        "Generation2" => "gen2",
        "Large" => "loh",
        "Pinned" => "poh",
        "Frozen" => "frozen",
        "Ephemeral" => "ephemeral",
        other => panic!("unexpected ClrMD segment kind {other}"),
    };
    let ours: BTreeSet<(u64, u64, String)> = ee["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["size"].as_u64().unwrap() > 0)
        .map(|g| {
            (
                hex(&g["begin"]),
                hex(&g["allocated"]),
                g["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let clrmd: BTreeSet<(u64, u64, String)> = theirs["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                hex(&g["start"]),
                hex(&g["end"]),
                kind(g["kind"].as_str().unwrap()).to_string(),
            )
        })
        .collect();
    assert_eq!(ours, clrmd, "{} server={server_gc}: segments", rt.label());
    assert_eq!(ee["server"], theirs["server"]);
    assert_eq!(ee["heap_count"], theirs["heaps"]);

    // Threads.
    let th = s.execute("clrthreads").unwrap().unwrap().to_json();
    let ours: BTreeSet<(u64, u64, u64)> = th["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                hex(&t["thread"]),
                t["os_id"].as_u64().unwrap(),
                t["managed_id"].as_u64().unwrap(),
            )
        })
        .collect();
    let clrmd: BTreeSet<(u64, u64, u64)> = theirs["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                hex(&t["address"]),
                t["os_id"].as_u64().unwrap(),
                t["managed_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours, clrmd, "{} server={server_gc}: threads", rt.label());
    assert!(
        ours.iter().any(|t| t.1 == d.target.pid() as u64),
        "the main thread is the process id"
    );

    // dumpobj on objects sampled across the heap.
    let objects = heap_objects(&s);
    let sample = spread(&objects, 60);
    let theirs = oracle(&d, &["objects", &hex_list(&sample)]);
    let mut arrays_checked = 0;
    for (addr, t) in sample.iter().zip(theirs["objects"].as_array().unwrap()) {
        let o = s
            .execute(&format!("dumpobj {addr:x}"))
            .unwrap()
            .unwrap()
            .to_json();
        let what = format!("{} {addr:x} {}", rt.label(), t["type"]);
        assert_eq!(o["type"], t["type"], "{what}: type");
        assert_eq!(o["size"], t["size"], "{what}: size");
        if let Some(st) = t["string"].as_str() {
            let ours = o["string"].as_str().unwrap_or("");
            let at = ours
                .chars()
                .zip(st.chars())
                .position(|(a, b)| a != b)
                .unwrap_or(ours.chars().count().min(st.chars().count()));
            assert!(
                ours == st,
                "{what}: string differs at char {at} (ours {} chars, ClrMD {}): ours {:?} ClrMD {:?}",
                ours.chars().count(),
                st.chars().count(),
                ours.chars().skip(at.saturating_sub(20)).take(60).collect::<String>(),
                st.chars().skip(at.saturating_sub(20)).take(60).collect::<String>()
            );
        }
        let mt = s
            .execute(&format!("dumpmt {}", t["mt"].as_str().unwrap()))
            .unwrap()
            .unwrap()
            .to_json();
        assert_eq!(mt["name"], t["type"], "{what}: dumpmt name");
        assert_eq!(mt["base_size"], t["base_size"], "{what}: dumpmt base size");
        assert_eq!(
            mt["component_size"], t["component_size"],
            "{what}: dumpmt component size"
        );
        assert_eq!(
            mt["contains_pointers"], t["contains_pointers"],
            "{what}: dumpmt contains pointers"
        );
        if t["length"].as_i64().unwrap() >= 0 {
            assert_eq!(
                o["array"]["length"].as_i64(),
                t["length"].as_i64(),
                "{what}: array length"
            );
            if let Some(expected) = t["elements"].as_array() {
                let arr = s
                    .execute(&format!("dumparray {addr:x} -length 8"))
                    .unwrap()
                    .unwrap()
                    .to_json();
                let ours: Vec<String> = arr["elements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| match &e["value"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let theirs: Vec<String> = expected
                    .iter()
                    .map(|e| e.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(ours, theirs, "{what}: dumparray elements");
                if !theirs.is_empty() {
                    arrays_checked += 1;
                }
            }
            continue;
        }
        // Fields whose value ClrMD cannot give (it did not resolve the field's type: seen on
        // System.Diagnostics.Process's delegate and wait-handle fields): name and offset only.
        let no_value: BTreeSet<&str> = t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["value"].is_null())
            .filter_map(|f| f["name"].as_str())
            .collect();
        let ours: BTreeSet<(String, u64, Option<String>)> = o["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["is_static"] == false)
            .map(|f| {
                let v = match &f["value"] {
                    serde_json::Value::String(s) if !f["is_value_type"].as_bool().unwrap() => {
                        Some(s.clone())
                    }
                    serde_json::Value::Number(n)
                        if matches!(f["type"].as_str(), Some("System.Int32" | "System.Int64")) =>
                    {
                        Some(n.to_string())
                    }
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                }
                .filter(|_| !no_value.contains(f["name"].as_str().unwrap_or("")));
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["offset"].as_u64().unwrap() - 8,
                    v,
                )
            })
            .collect();
        let clrmd: BTreeSet<(String, u64, Option<String>)> = t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["offset"].as_u64().unwrap(),
                    f["value"].as_str().map(String::from),
                )
            })
            .collect();
        assert_eq!(ours, clrmd, "{what}: fields");
    }
    assert!(
        arrays_checked > 0,
        "the sample held arrays with comparable elements"
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
fn net9_workstation() {
    check(Runtime::Net9, false);
}

#[test]
fn net8_server() {
    check(Runtime::Net8, true);
}

#[test]
fn netcore31_workstation() {
    check(Runtime::NetCore31, false);
}

#[test]
fn net11_workstation() {
    check(Runtime::Net11, false);
}
