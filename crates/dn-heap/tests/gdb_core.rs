//! Cores written by gdb's `gcore` leave file-backed mappings out; reading them from the files
//! on disk (NT_FILE) still gives ClrMD's counts and sizes, and real type names where ClrMD
//! has none.

mod common;

use std::process::Command;

use common::*;
use dn_testkit::{Fixture, Runtime, StartOptions, Target};

#[test]
fn gcore_net10_counts_match_clrmd_and_names_resolve() {
    let mut target = Target::start_with(Fixture::Console, Runtime::Net10, StartOptions::default());
    assert!(target.command("leak 300").starts_with("ok"));
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("gcore");
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-p", &target.pid().to_string(), "-ex"])
        .arg(format!("gcore {}", core.display()))
        .output()
        .expect("gdb is required for this test (apt-get install gdb)");
    assert!(
        core.is_file(),
        "gdb wrote no core: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        target.command("ping"),
        "pong",
        "the target runs on after gcore"
    );

    let dac = target.built().runtime_dir.join("libmscordaccore.so");
    let d = Dump {
        dir,
        core,
        dac,
        runtime: Runtime::Net10,
        target,
    };
    let s = open_session(&d);
    let (ours, our_names, _) = our_stats(&s);
    let (theirs, names) = oracle_stats(&d);
    let problems = diff(&ours, &theirs, &names);
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let items: Vec<_> = our_names
        .iter()
        .filter(|(_, n)| n.as_str() == "ConsoleTarget.LeakedItem")
        .collect();
    assert_eq!(
        items.len(),
        1,
        "LeakedItem named through the on-disk fallback"
    );
    assert_eq!(ours[items[0].0].0, 300);
    let unknown = our_names
        .values()
        .filter(|n| n.starts_with("<unknown"))
        .count();
    assert_eq!(unknown, 0, "every type has a name");
}
