//! `eeheap -loader` and `eeheap` against Microsoft's dotnet-dump (10.0.750501) on the same
//! createdump cores: every domain's heaps by kind (each block's address, reserved and held
//! size), each JIT manager's code heaps, every "Total size" line, and the "Total bytes consumed
//! by CLR" of `eeheap` with no option.

mod common;

use common::sos::dotnet_dump;
use common::*;
use dn_testkit::Runtime;

/// (address, reserved, held) of a block.
type Block = (u64, u64, u64);

/// One `Kind: blocks Size: ... bytes total[, ... bytes wasted].` row.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    kind: String,
    blocks: Vec<Block>,
    size: u64,
    wasted: u64,
}

/// A domain's or a JIT manager's section.
#[derive(Debug, PartialEq, Eq)]
struct Section {
    /// "System Domain", "Domain 1", "JIT Manager".
    label: String,
    address: u64,
    rows: Vec<Row>,
    /// The "Total size:" line; `None` for "No unique loader heaps found."
    total: Option<(u64, u64)>,
}

/// `0x1f (31)` or nothing (SOS prints an empty string for 0).
fn size_in(s: &str) -> u64 {
    s.split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(n, _)| n.parse().unwrap())
        .unwrap_or(0)
}

/// "Size: A bytes total[, B bytes wasted]." as (A, B).
fn size_and_wasted(text: &str) -> (u64, u64) {
    let t = text.trim().trim_end_matches('.');
    let t = t.strip_prefix("Size:").expect("a Size: field").trim();
    let (size, rest) = t.split_once("bytes total").expect("bytes total");
    let wasted = rest
        .trim_start_matches(',')
        .trim()
        .strip_suffix("bytes wasted")
        .map(size_in)
        .unwrap_or(0);
    (size_in(size), wasted)
}

fn hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// SOS's loader part, from "Loader Heap:" up to the GC part.
fn sos_sections(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let body = text
        .lines()
        .skip_while(|l| !l.starts_with("Loader Heap:"))
        .skip(1)
        .take_while(|l| !l.starts_with("DATAS") && !l.starts_with("===="));
    for line in body {
        if line.starts_with("----") || line.trim().is_empty() {
            continue;
        }
        if line.starts_with("No unique loader heaps found.") {
            continue;
        }
        let (label, value) = line.split_once(':').expect("a 'Label: value' line");
        let value = value.trim();
        match label {
            "LoaderAllocator" => {}
            "Total size" => {
                out.last_mut().expect("a section").total = Some(size_and_wasted(value));
            }
            l if l.ends_with("Domain") || l.starts_with("Domain ") || l == "JIT Manager" => out
                .push(Section {
                    label: l.to_string(),
                    address: hex_u64(value),
                    rows: Vec::new(),
                    total: None,
                }),
            kind => {
                let (blocks, size) = value.split_at(value.find("Size:").expect("Size:"));
                let blocks = blocks
                    .split_whitespace()
                    .map(|b| match b.split_once('(') {
                        Some((a, r)) => {
                            let (res, held) = r.trim_end_matches(')').split_once(':').unwrap();
                            (hex_u64(a), hex_u64(res), hex_u64(held))
                        }
                        None => (hex_u64(b), 0, 0),
                    })
                    .collect();
                let (size, wasted) = size_and_wasted(size);
                out.last_mut().expect("a section").rows.push(Row {
                    kind: kind.to_string(),
                    blocks,
                    size,
                    wasted,
                });
            }
        }
    }
    out
}

fn num(v: &serde_json::Value) -> u64 {
    v.as_u64().expect("a number")
}

fn block(b: &serde_json::Value) -> Block {
    (
        hex(&b["address"]),
        num(&b["reserved"]),
        num(&b["committed"]),
    )
}

/// Our `eeheap -loader` JSON in the same shape.
fn our_sections(v: &serde_json::Value) -> Vec<Section> {
    let mut out = Vec::new();
    for d in v["domains"].as_array().unwrap() {
        let size = num(&d["size"]);
        out.push(Section {
            label: d["name"].as_str().unwrap().to_string(),
            address: hex(&d["address"]),
            rows: d["heaps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| Row {
                    kind: k["kind"].as_str().unwrap().to_string(),
                    blocks: k["blocks"].as_array().unwrap().iter().map(block).collect(),
                    size: num(&k["size"]),
                    wasted: num(&k["wasted"]),
                })
                .collect(),
            total: (size > 0).then(|| (size, num(&d["wasted"]))),
        });
    }
    for j in v["jit_managers"].as_array().unwrap() {
        out.push(Section {
            label: "JIT Manager".into(),
            address: hex(&j["address"]),
            rows: j["heaps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| Row {
                    kind: h["kind"].as_str().unwrap().to_string(),
                    blocks: vec![block(h)],
                    size: num(&h["committed"]),
                    wasted: num(&h["wasted"]),
                })
                .collect(),
            total: Some((num(&j["size"]), num(&j["wasted"]))),
        });
    }
    out
}

fn eeheap_equal(rt: Runtime) {
    let d = make_dump(rt, false, 300, "--withheap");
    let s = open_session(&d);
    let ours = s
        .execute("eeheap -loader")
        .unwrap_or_else(|e| panic!("eeheap -loader: {e:#}"))
        .expect("output")
        .to_json();
    let warnings = ours["warnings"].as_array().unwrap();
    assert!(warnings.is_empty(), "{}: {warnings:?}", rt.label());
    let text = dotnet_dump(&d.core, &["eeheap -loader".to_string()]);
    let theirs = sos_sections(&text);
    assert!(
        theirs.iter().any(|s| !s.rows.is_empty()),
        "dotnet-dump listed no loader heap: {text}"
    );
    assert!(
        theirs.iter().any(|s| s.label == "JIT Manager"),
        "dotnet-dump listed no JIT manager: {text}"
    );
    assert_eq!(our_sections(&ours), theirs, "{}: {text}", rt.label());
    // SOS prints no module thunk heap section on these runtimes; neither do we.
    assert_eq!(
        ours["module_thunk_heaps"].is_null(),
        !text.contains("Module Thunk heaps:"),
        "{text}"
    );

    // With no option: both parts and their sum.
    let all = s.execute("eeheap").unwrap().expect("output").to_json();
    let text = dotnet_dump(&d.core, &["eeheap".to_string()]);
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("Total bytes consumed by CLR:"))
        .map(size_in)
        .unwrap_or_else(|| panic!("no total in dotnet-dump's eeheap: {text}"));
    assert_eq!(num(&all["total_bytes"]), total, "{}: {text}", rt.label());
    let committed = text
        .lines()
        .find_map(|l| l.strip_prefix("GC Committed Heap Size:"))
        .map(size_in)
        .expect("GC Committed Heap Size");
    assert_eq!(num(&all["gc"]["committed_bytes"]), committed, "{text}");
    assert_eq!(
        num(&all["loader"]["total_size"]),
        num(&ours["total_size"]),
        "eeheap's loader part is eeheap -loader's"
    );
}

#[test]
fn eeheap_loader_net8() {
    eeheap_equal(Runtime::Net8);
}

#[test]
fn eeheap_loader_net9() {
    eeheap_equal(Runtime::Net9);
}

#[test]
fn eeheap_loader_net10() {
    eeheap_equal(Runtime::Net10);
}

#[test]
fn eeheap_loader_net11() {
    eeheap_equal(Runtime::Net11);
}

#[test]
fn eeheap_loader_netcore31() {
    eeheap_equal(Runtime::NetCore31);
}
