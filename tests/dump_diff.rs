//! `dn-dump diff` on real dumps: growth found by type name, warnings for unrelated dumps.

use std::path::Path;

mod common;

use common::dn_dump;
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

fn collect(t: &Target, path: &Path) {
    let out = common::collect(t, path, &["--type", "heap"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn diff_json(a: &Path, b: &Path) -> Value {
    let out = dn_dump(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn growth_of<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn growth_of_one_process_ranks_the_leak_first_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    collect(&t, &a);
    assert_eq!(t.command("leak 5000"), "ok 5000");
    collect(&t, &b);
    let d = diff_json(&a, &b);
    assert!(d.get("warnings").is_none(), "{d}");
    let item = growth_of(&d, "ConsoleTarget.LeakedItem");
    assert_eq!(
        (item["count_a"].as_u64(), item["count_b"].as_u64()),
        (Some(0), Some(5000))
    );
    assert_eq!(
        item["mt_a"],
        Value::Null,
        "the type did not exist in the first dump"
    );
    let top3: Vec<&str> = d["types"].as_array().unwrap()[..3]
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["ConsoleTarget.LeakedItem", "System.String", "System.Byte[]"] {
        assert!(top3.contains(&name), "{name} not in {top3:?}");
    }
    // The table puts the same first.
    let out = dn_dump(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--top",
        "3",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 5, "header, 3 rows, total: {text}");
    assert!(text.lines().nth(1).unwrap().contains('+'), "{text}");
}

#[test]
fn unrelated_dumps_get_a_clear_warning() {
    let dir = tempfile::tempdir().unwrap();
    let t10 = Target::start(Fixture::Console, Runtime::Net10);
    let t8 = Target::start(Fixture::Console, Runtime::Net8);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    collect(&t10, &a);
    collect(&t8, &b);
    let d = diff_json(&a, &b);
    let warnings: Vec<&str> = d["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("different processes")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("different runtimes")),
        "{warnings:?}"
    );
    // In text mode the warnings go to stderr, the table to stdout.
    let out = dn_dump(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Warning: the dumps come from different processes"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Warning"));
}

#[test]
fn a_missing_or_corrupt_dump_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a core file at all").unwrap();
    for (a, b) in [
        ("/nonexistent/core", junk.to_str().unwrap()),
        (junk.to_str().unwrap(), junk.to_str().unwrap()),
    ] {
        let out = dn_dump(&["diff", a, b]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("dn-dump: "), "{err}");
    }
}
