//! The main job, end to end, against a real .NET service started for it:
//! build the sample service, start it, find it with dn-ps, make it leak, watch it with
//! dn-counters, capture it with dn-dump collect, explain it with dn-dump analyze, see what grew
//! with dn-dump diff, name the leak suspects (who holds the memory), and put it all on one page
//! with dn-dump report.
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
    let pid = service.pid().to_string();
    let dir = std::env::temp_dir().join(format!("dn-demo-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let (before, after) = (dir.join("core_before"), dir.join("core_after"));
    let counters_file = dir.join("counters.csv");

    // Counters to a file all along, for the report's charts (both dumps fall inside).
    let mut recording = Command::new(tool("dn-counters"));
    recording
        .args(["collect", "-p", &pid, "--duration", "12", "-o"])
        .arg(&counters_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    println!("== dn-counters collect: record counters to a file while all this happens");
    println!("$ {}", shown(&recording));
    let mut recording = recording.spawn().expect("dn-counters");
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let mut collect = Command::new(tool("dn-dump"));
    collect.args(["collect", "-p", &pid, "-o"]).arg(&before);
    step("dn-dump collect: a baseline before the leak", collect);

    let mut counters = Command::new(tool("dn-counters"));
    counters.args([
        "monitor",
        "-p",
        &pid,
        "--counters",
        "EventCounters\\System.Runtime[gc-heap-size,working-set,gen-0-gc-count,exception-count]",
        "--duration",
        "4",
    ]);
    println!("== dn-counters monitor: watch it while it leaks (GET /api/diagscenario/memleak/20000 twice)");
    println!("$ {}", shown(&counters));
    let mut watching = counters.spawn().expect("dn-counters");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..2 {
        let (code, _) = service.http_get("/api/diagscenario/memleak/20000");
        assert_eq!(code, 200);
    }
    let _ = watching.wait();

    let mut collect = Command::new(tool("dn-dump"));
    collect.args(["collect", "-p", &pid, "-o"]).arg(&after);
    step("dn-dump collect: capture the grown heap", collect);

    let mut analyze = Command::new(tool("dn-dump"));
    analyze
        .arg("analyze")
        .arg(&after)
        .args(["-c", "dumpheap -stat -type Customer"]);
    step("dn-dump analyze: what fills the heap", analyze);

    if let Some(string) = a_customer_id_string(&tool("dn-dump"), &after) {
        let mut gcroot = Command::new(tool("dn-dump"));
        gcroot
            .arg("analyze")
            .arg(&after)
            .args(["-c", &format!("gcroot {string}")]);
        step(
            "dn-dump analyze: why one customer's Id string stays alive",
            gcroot,
        );
    }

    let mut diff = Command::new(tool("dn-dump"));
    diff.arg("diff")
        .arg(&before)
        .arg(&after)
        .args(["--top", "5"]);
    step("dn-dump diff: what grew between the two dumps", diff);

    let mut suspects = Command::new(tool("dn-dump"));
    suspects.arg("analyze").arg(&after).args(["-c", "suspects"]);
    step(
        "dn-dump analyze: who holds the memory (leak suspects)",
        suspects,
    );

    let _ = recording.wait();
    let page = std::env::temp_dir().join("dn-demo-report.html");
    let mut report = Command::new(tool("dn-dump"));
    report
        .arg("report")
        .arg(&after)
        .arg("--baseline")
        .arg(&before)
        .arg("--counters")
        .arg(&counters_file)
        .arg("-o")
        .arg(&page)
        .arg("--force");
    step(
        "dn-dump report: one HTML page with all of it (open it in a browser)",
        report,
    );
    println!("   {}", page.display());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The address of the `Id` string of some `Customer` in the dump, found with dn-dump's JSON.
fn a_customer_id_string(dn_dump: &std::path::Path, core: &std::path::Path) -> Option<String> {
    let json = |c: &str| -> Option<serde_json::Value> {
        let out = Command::new(dn_dump)
            .arg("analyze")
            .arg(core)
            .args(["--json", "-c", c])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    let stat = json("dumpheap -stat -type SampleService.Customer")?;
    let mt = stat["types"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == "SampleService.Customer")?["mt"]
        .as_str()?
        .to_string();
    let out = Command::new(dn_dump)
        .arg("analyze")
        .arg(core)
        .args(["-c", &format!("dumpheap -mt {mt} -short")])
        .output()
        .ok()?;
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_hexdigit()))?
        .to_string();
    let obj = json(&format!("dumpobj {first}"))?;
    obj["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == "Id")?["value"]
        .as_str()
        .map(str::to_string)
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
