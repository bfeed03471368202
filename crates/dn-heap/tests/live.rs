//! Analyzing a running process: its threads are held while the analysis runs, the results
//! equal ClrMD's on a core taken right after, and the process runs on afterwards.

mod common;

use common::*;
use dn_heap::commands::Session;
use dn_heap::heap::Runtime;
use dn_testkit::{Fixture, Runtime as Rt, StartOptions, Target};

fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("target alive");
    stat.rsplit(')')
        .next()
        .unwrap()
        .trim()
        .chars()
        .next()
        .unwrap()
}

#[test]
fn live_net10_matches_a_core_of_the_idle_target_and_the_target_runs_on() {
    let mut target = Target::start_with(Fixture::Console, Rt::Net10, StartOptions::default());
    assert!(target.command("leak 321").starts_with("ok"));
    // The core first, then the live walk, with no command in between: the idle target's heap
    // is the same in both, type by type, with no exception.
    let d = dump_of(target, Rt::Net10, "--withheap");
    let pid = d.target.pid();
    let (theirs, their_names) = oracle_stats(&d);

    let stats = {
        let rt = Runtime::attach(pid as u32, &dn_heap::dac::DacSearch::with_dac(None))
            .unwrap_or_else(|e| panic!("attach: {e:#}"));
        assert_eq!(state(pid), 't', "held while analysed");
        let s = Session::new(rt);
        let (stats, names, _) = our_stats(&s);
        // Stack roots need the held threads' registers.
        let leaked = names
            .iter()
            .find(|(_, n)| n.as_str() == "ConsoleTarget.LeakedItem")
            .map(|(m, _)| *m)
            .unwrap();
        assert_eq!(stats[&leaked].0, 321);
        let th = s.execute("clrthreads").unwrap().unwrap().to_json();
        assert!(th["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["os_id"] == pid as u64));
        stats
    };
    assert_ne!(state(pid), 't', "released when the analysis ends");
    let mut d = d;
    assert_eq!(d.target.command("ping"), "pong", "the target runs on");

    let problems = diff(&stats, &theirs, &their_names);
    assert!(problems.is_empty(), "live vs core: {problems:?}");
}

#[test]
fn attaching_to_a_missing_process_is_a_clear_error() {
    let e = Runtime::attach(999_999_999, &dn_heap::dac::DacSearch::with_dac(None)).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("999999999"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn analyze_pid_from_the_command_line_front_end() {
    let mut target = Target::start_with(Fixture::Console, Rt::Net8, StartOptions::default());
    assert!(target.command("leak 77").starts_with("ok"));
    let args = dn_heap::cli::AnalyzeArgs {
        dump: None,
        pid: Some(target.pid() as u32),
        commands: vec!["dumpheap -type ConsoleTarget.LeakedItem -stat".into()],
        json: true,
        dac: None,
        symbol_path: Vec::new(),
        symbol_server: None,
    };
    let mut out = Vec::new();
    dn_heap::cli::run_with(args, false, &mut std::io::empty(), &mut out).expect("analyze --pid");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON line");
    let item = v["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ConsoleTarget.LeakedItem")
        .unwrap();
    assert_eq!(item["count"], 77);
    assert_eq!(target.command("ping"), "pong", "the target runs on");
}
