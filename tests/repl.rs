//! The interactive prompt of `dn-dump analyze`, driven through a pseudo-terminal (a small
//! Python `pty` driver, `tests/pty/repl_ctrlc.py`): Ctrl-C cancels the running command only and
//! the prompt returns; Ctrl-C at an empty prompt says how to quit; Ctrl-D quits.

mod common;

use std::process::Command;

use dn_testkit::{Fixture, Runtime, Target};

#[test]
fn ctrl_c_cancels_the_command_not_the_session() {
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    // A heap big enough that `dumpheap -live` (a heap walk and a graph) is still running when
    // the Ctrl-C arrives 0.3 s after the command.
    assert!(t.command("leak 1500000").starts_with("ok"));
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    let out = common::collect(&t, &core, &["--type", "heap"]);
    assert!(
        out.status.success(),
        "collect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let driver = dn_testkit::workspace_root().join("tests/pty/repl_ctrlc.py");
    let run = Command::new("python3")
        .arg(&driver)
        .arg(env!("CARGO_BIN_EXE_dn-dump"))
        .arg(&core)
        .env("TMPDIR", dir.path())
        .output()
        .expect("python3 is needed to drive the prompt through a pseudo-terminal");
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
