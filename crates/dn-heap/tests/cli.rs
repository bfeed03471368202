//! `analyze` front end: `-c` commands, piped commands, `--json` lines, errors.

mod common;

use common::*;
use dn_heap::cli::{run_with, AnalyzeArgs};
use dn_testkit::Runtime;

fn args(d: &Dump, json: bool, commands: &[&str]) -> AnalyzeArgs {
    AnalyzeArgs {
        dump: Some(d.core.clone()),
        pid: None,
        commands: commands.iter().map(|c| c.to_string()).collect(),
        json,
        dac: None,
        symbol_path: Vec::new(),
        symbol_server: None,
    }
}

#[test]
fn json_lines_one_per_command_and_errors_reported() {
    let d = make_dump(Runtime::Net10, false, 50, "--withheap");
    let mut out = Vec::new();
    let r = run_with(
        args(
            &d,
            true,
            &[
                "dumpheap -stat",
                "nosuchcommand",
                "dumpheap -type ConsoleTarget.LeakedItem -stat",
                "help",
            ],
        ),
        false,
        &mut std::io::empty(),
        &mut out,
    );
    let e = r
        .expect_err("a failed command makes the run fail")
        .to_string();
    assert!(e.contains("1 command(s) failed"), "{e}");
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0]["total_objects"].as_u64().unwrap() > 50);
    assert_eq!(lines[1]["command"], "nosuchcommand");
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("unknown command"));
    let leaked = lines[2]["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ConsoleTarget.LeakedItem")
        .unwrap();
    assert_eq!(leaked["count"], 50);
    assert!(lines[3]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "gcroot"));
}

#[test]
fn piped_commands_run_until_exit_in_text_form() {
    let d = make_dump(Runtime::Net10, false, 10, "--withheap");
    let mut out = Vec::new();
    let mut input =
        std::io::Cursor::new(b"dumpheap -stat\n\neeheap -gc\nexit\ndumpheap\n".to_vec());
    run_with(args(&d, false, &[]), false, &mut input, &mut out).expect("runs");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Statistics:\n"), "{text}");
    assert!(text.contains("ConsoleTarget.LeakedItem\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("Total ") && l.ends_with(" bytes")),
        "{text}"
    );
    assert!(text.contains("Number of GC Heaps: 1"), "{text}");
    // Nothing after `exit` ran: the object list would have an "Address" header.
    assert!(!text.contains("     Address "), "{text}");
}

#[test]
fn an_address_inside_an_object_is_not_an_object() {
    let d = make_dump(Runtime::Net10, false, 5, "--withheap");
    let s = open_session(&d);
    let items = s
        .execute("dumpheap -type ConsoleTarget.LeakedItem -short")
        .unwrap()
        .unwrap()
        .to_json();
    let item = items["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["size"] == 32)
        .expect("a LeakedItem");
    let addr = hex(&item["address"]);
    assert!(s.execute(&format!("dumpobj {addr:x}")).is_ok());
    let e = s
        .execute(&format!("dumpobj {:x}", addr + 8))
        .err()
        .expect("interior address")
        .to_string();
    assert!(e.contains("Invalid object"), "{e}");
    let e = s
        .execute("dumpobj 10")
        .err()
        .expect("unmapped address")
        .to_string();
    assert!(e.contains("Invalid object"), "{e}");
}

#[test]
fn a_missing_dump_is_a_clear_error() {
    let a = AnalyzeArgs {
        dump: Some("/nonexistent/core.1".into()),
        pid: None,
        commands: vec!["dumpheap -stat".into()],
        json: true,
        dac: None,
        symbol_path: Vec::new(),
        symbol_server: None,
    };
    let e = run_with(a, false, &mut std::io::empty(), &mut Vec::new()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("cannot open /nonexistent/core.1"), "{msg}");
}
