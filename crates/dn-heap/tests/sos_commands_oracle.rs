//! `eeversion`, `lm`, `name2ee`, `dumpmt -md` and `dumpgen` against Microsoft's dotnet-dump
//! (10.0.750501) on the same createdump cores, on .NET 8, 10 and 11.

mod common;

use std::collections::BTreeSet;

use common::sos::{dotnet_dump, sos_rows};
use common::*;
use dn_testkit::Runtime;

fn ours(s: &dn_heap::commands::Session, command: &str) -> serde_json::Value {
    s.execute(command)
        .unwrap_or_else(|e| panic!("{command}: {e:#}"))
        .expect("output")
        .to_json()
}

fn theirs(d: &Dump, command: &str) -> String {
    dotnet_dump(&d.core, &[command.to_string()])
}

/// `Label: value` lines of SOS's output, in order.
fn labelled<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .collect()
}

fn hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn eeversion_and_lm(d: &Dump, s: &dn_heap::commands::Session) {
    let v = ours(s, "eeversion");
    let text = theirs(d, "eeversion");
    // Their first two lines after the loading banner: file version, then the version string.
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with(|c: char| c.is_ascii_digit()));
    assert_eq!(
        v["file_version"].as_str(),
        lines.next().map(|l| l.split_whitespace().next().unwrap()),
        "{text}"
    );
    assert_eq!(v["version_string"].as_str(), lines.next(), "{text}");

    // The module list: the same files at the same bases.
    let lm = ours(s, "lm");
    let our_mods: BTreeSet<(u64, String)> = lm["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (hex(&m["base"]), m["path"].as_str().unwrap().to_string()))
        .collect();
    let their_mods: BTreeSet<(u64, String)> = theirs(d, "lm")
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.splitn(3, ' ').collect();
            match w.as_slice() {
                [base, size, path]
                    if base.len() == 16
                        && size.chars().all(|c| c.is_ascii_hexdigit())
                        && path.starts_with('/') =>
                {
                    Some((hex_u64(base), path.to_string()))
                }
                _ => None,
            }
        })
        .collect();
    assert!(!their_mods.is_empty());
    assert_eq!(our_mods, their_mods, "{}", d.runtime.label());
}

/// (token, MethodTable or MethodDesc, name) of every match, ours and dotnet-dump's.
fn name2ee_equal(d: &Dump, s: &dn_heap::commands::Session, command: &str) {
    let v = ours(s, command);
    let mut our_rows = Vec::new();
    for m in v["modules"].as_array().unwrap() {
        for x in m["matches"].as_array().unwrap() {
            let addr = if x["method_desc"].is_null() {
                hex(&x["method_table"])
            } else {
                hex(&x["method_desc"])
            };
            our_rows.push((
                x["token"].as_u64().unwrap(),
                addr,
                x["name"].as_str().unwrap().to_string(),
            ));
        }
    }
    let text = theirs(d, command);
    let tokens = labelled(&text, "Token:");
    let addrs: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("MethodTable:")
                .or_else(|| l.strip_prefix("MethodDesc:"))
        })
        .map(str::trim)
        .collect();
    let names = labelled(&text, "Name:");
    assert_eq!(tokens.len(), names.len(), "{text}");
    let their_rows: Vec<(u64, u64, String)> = tokens
        .iter()
        .zip(&addrs)
        .zip(&names)
        .map(|((t, a), n)| (hex_u64(t), hex_u64(a), n.to_string()))
        .collect();
    assert!(!their_rows.is_empty(), "dotnet-dump found nothing: {text}");
    assert_eq!(our_rows, their_rows, "{command} on {}", d.runtime.label());
}

fn dumpmt_md_equal(d: &Dump, s: &dn_heap::commands::Session, mt: u64) {
    let v = ours(s, &format!("dumpmt -md {mt:x}"));
    let our_rows: Vec<(u64, String, String)> = v["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                hex(&m["method_desc"]),
                m["name"].as_str().unwrap().to_string(),
                match m["jit"].as_str().unwrap() {
                    "jit" => "JIT",
                    "prejit" => "PreJIT",
                    "fcall" => "FCALL",
                    _ => "NONE",
                }
                .to_string(),
            )
        })
        .collect();
    let text = theirs(d, &format!("dumpmt -md {mt:x}"));
    let their_rows: Vec<(u64, String, String)> = text
        .lines()
        .skip_while(|l| !l.contains("MethodDesc Table"))
        .skip(2)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 5 && w[0].len() == 16).then(|| {
                // Entry, MethodDesc, JIT, Slot, then the name (which has spaces).
                (hex_u64(w[1]), w[4..].join(" "), w[2].to_string())
            })
        })
        .collect();
    assert!(!their_rows.is_empty(), "{text}");
    assert_eq!(our_rows, their_rows, "dumpmt -md on {}", d.runtime.label());
    assert_eq!(
        v["num_methods"].as_u64(),
        labelled(&text, "Number of Methods:")
            .first()
            .map(|n| n.parse::<u64>().unwrap()),
        "{text}"
    );
}

fn dumpgen_equal(d: &Dump, s: &dn_heap::commands::Session) {
    let mut compared = 0;
    for gen in ["gen0", "gen1", "gen2", "loh"] {
        let (our_stats, names, _) = our_stats_of(s, &format!("dumpgen {gen}"));
        let their_stats = sos_rows(&theirs(d, &format!("dumpgen {gen}")));
        compared += their_stats.len();
        let problems = diff(&our_stats, &their_stats, &names);
        assert!(
            problems.is_empty(),
            "dumpgen {gen} on {}: {}",
            d.runtime.label(),
            problems.join("\n")
        );
    }
    assert!(
        compared > 0,
        "dotnet-dump's dumpgen listed no type in any generation"
    );
}

fn all_equal(rt: Runtime) {
    let d = make_dump(rt, false, 300, "--withheap");
    let s = open_session(&d);
    eeversion_and_lm(&d, &s);
    name2ee_equal(&d, &s, "name2ee ConsoleTarget ConsoleTarget.LeakedItem");
    name2ee_equal(&d, &s, "name2ee *!LeakedItem");
    name2ee_equal(
        &d,
        &s,
        "name2ee ConsoleTarget.dll ConsoleTarget.Program.Main",
    );
    let program = ours(&s, "name2ee ConsoleTarget ConsoleTarget.Program");
    let mt = hex(&program["modules"][0]["matches"][0]["method_table"]);
    dumpmt_md_equal(&d, &s, mt);
    dumpgen_equal(&d, &s);
}

#[test]
fn sos_commands_net8() {
    all_equal(Runtime::Net8);
}

#[test]
fn sos_commands_net10() {
    all_equal(Runtime::Net10);
}

#[test]
fn sos_commands_net11() {
    all_equal(Runtime::Net11);
}
