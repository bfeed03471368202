//! The main job, end to end, against a real .NET service started for it:
//! build the sample service, start it, find it with dn-ps, make it leak, watch it with
//! dn-counters, capture it with dn-dump collect and explain it with dn-dump analyze.
//!
//! Run: `cargo run --release --example demo`

use std::process::Command;

use dn_testkit::{Fixture, Runtime, Target};

fn main() {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.to_path_buf()))
        .expect("the example runs from the target folder");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bins"])
        .current_dir(dn_testkit::workspace_root())
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the dn tools failed");
    let tool = |name: &str| bin_dir.join(name);

    println!("== starting the sample service (.NET 10)");
    let service = Target::start(Fixture::SampleService, Runtime::Net10);
    println!(
        "   pid {} listening on {}",
        service.pid(),
        service.base_url()
    );

    step("dn-ps: find it", Command::new(tool("dn-ps")));

    println!("== making it leak: GET /api/diagscenario/memleak/20000");
    let (code, _) = service.http_get("/api/diagscenario/memleak/20000");
    println!("   HTTP {code}");

    let mut counters = Command::new(tool("dn-counters"));
    counters.args([
        "collect",
        "-p",
        &service.pid().to_string(),
        "--duration",
        "3",
        "--format",
        "jsonl",
        "-o",
        "-",
    ]);
    step("dn-counters collect: watch it (3 s, JSONL)", counters);

    let dump = std::env::temp_dir().join(format!("dn-demo-core-{}", service.pid()));
    let _ = std::fs::remove_file(&dump);
    let mut collect = Command::new(tool("dn-dump"));
    collect
        .args(["collect", "-p", &service.pid().to_string(), "-o"])
        .arg(&dump);
    step("dn-dump collect: capture it", collect);

    let mut analyze = Command::new(tool("dn-dump"));
    analyze
        .arg("analyze")
        .arg(&dump)
        .args(["-c", "dumpheap -stat -type Customer"]);
    step("dn-dump analyze: explain it", analyze);
    let _ = std::fs::remove_file(&dump);
}

fn step(title: &str, mut cmd: Command) {
    println!("== {title}");
    println!("$ {}", shown(&cmd));
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => println!("   (exited with {s})"),
        Err(e) => println!("   (could not run: {e})"),
    }
}

fn shown(cmd: &Command) -> String {
    let prog = std::path::Path::new(cmd.get_program())
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::iter::once(prog)
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}
