//! The seed walkthrough end to end, as a user lives it: find a leaking service, watch its memory
//! grow, capture it before and after, and explain what holds the memory.
//!
//! The .NET 10 run also keeps `docs/tutorial.md` honest: each ```console block under a
//! `<!-- step: NAME -->` marker is the output of that step. The test fails when the document no
//! longer matches what the tools print (numbers, addresses and paths aside);
//! `DN_UPDATE_DOCS=1 cargo test --test walkthrough` rewrites the blocks from a fresh run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

const LEAK_CALLS: u64 = 2;
const LEAK_KB: u64 = 20_000;
/// Each `memleak/{kb}` call caches kb*10 customers.
const CUSTOMERS: u64 = LEAK_CALLS * LEAK_KB * 10;

/// One step's command line (as shown to the reader) and its output.
struct Step {
    name: &'static str,
    shown: String,
    output: String,
}

struct Walkthrough {
    steps: Vec<Step>,
    /// Strings to hide from the document: machine paths, pids.
    masks: Vec<(String, String)>,
}

impl Walkthrough {
    fn run(&mut self, name: &'static str, tool: &str, args: &[&str]) -> String {
        let out = Command::new(exe(tool))
            .args(args)
            .output()
            .expect("run tool");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The reader sees both streams: progress and summaries go to stderr.
        let shown = format!("{}{stdout}", String::from_utf8_lossy(&out.stderr));
        self.record(name, tool, args, &shown);
        stdout
    }

    fn record(&mut self, name: &'static str, tool: &str, args: &[&str], output: &str) {
        let shown = std::iter::once(tool.to_string())
            .chain(args.iter().map(|a| {
                if a.contains(' ') || a.contains('\\') {
                    format!("'{a}'")
                } else {
                    a.to_string()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ");
        self.steps.push(Step {
            name,
            shown: self.mask(&shown),
            output: self.mask(output),
        });
    }

    fn mask(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.masks {
            s = s.replace(from, to);
        }
        s
    }
}

fn exe(tool: &str) -> &'static str {
    match tool {
        "dn-ps" => env!("CARGO_BIN_EXE_dn-ps"),
        "dn-counters" => env!("CARGO_BIN_EXE_dn-counters"),
        "dn-dump" => env!("CARGO_BIN_EXE_dn-dump"),
        other => panic!("unknown tool {other}"),
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn walkthrough(rt: Runtime) -> Walkthrough {
    let dir = tempfile::tempdir().unwrap();
    let service = Target::start(Fixture::SampleService, rt);
    let pid = service.pid().to_string();
    let mut w = Walkthrough {
        steps: Vec::new(),
        masks: vec![
            (dir.path().display().to_string(), ".".into()),
            (
                dn_testkit::workspace_root().display().to_string(),
                "/srv".into(),
            ),
        ],
    };

    // 1. Find it.
    let rows: Vec<Value> = serde_json::from_str(&w.run("find-json", "dn-ps", &["--json"])).unwrap();
    let row = rows
        .iter()
        .find(|r| r["pid"].as_i64() == Some(service.pid() as i64))
        .expect("dn-ps lists the service");
    assert_eq!(row["entrypoint_assembly"], "SampleService");
    assert_eq!(
        row["runtime_version"].as_str().unwrap().split('.').next(),
        Some(rt.major().to_string().as_str())
    );
    let table = Command::new(exe("dn-ps")).arg("--wide").output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let mine: String = table
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.trim_start().starts_with(&format!("{pid} ")))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    // Other processes on the machine (one dn cannot fully talk to) may add a NOTE column.
    let mine = mine.replacen("  NOTE\n", "\n", 1);
    w.record("find", "dn-ps", &[], &mine);
    w.masks.push((pid.clone(), "4242".into()));

    // 3a. A dump before the leak.
    let before = dir.path().join("core_before");
    w.run(
        "collect-before",
        "dn-dump",
        &["collect", "-p", &pid, "-o", path(&before)],
    );

    // 2. Watch it while it leaks.
    let counters_file = dir.path().join("counters.jsonl");
    let counter_args = [
        "collect",
        "-p",
        &pid,
        "--counters",
        "EventCounters\\System.Runtime[gc-heap-size,working-set,gen-0-gc-count,gen-2-gc-count]",
        "--refresh-interval",
        "1",
        "--duration",
        "8",
        "--format",
        "jsonl",
        "-o",
        path(&counters_file),
    ];
    let mut counters = Command::new(exe("dn-counters"))
        .args(counter_args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    for _ in 0..LEAK_CALLS {
        let (code, body) = service.http_get(&format!("/api/diagscenario/memleak/{LEAK_KB}"));
        assert_eq!(code, 200, "{body}");
    }
    assert!(
        counters.wait().unwrap().success(),
        "dn-counters collect failed"
    );
    let samples = json_lines(&std::fs::read_to_string(&counters_file).unwrap());
    let heap_mb: Vec<f64> = samples
        .iter()
        .filter(|s| s["name"] == "gc-heap-size")
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert!(
        heap_mb.len() >= 4,
        "too few gc-heap-size samples: {samples:?}"
    );
    // Each customer is a 24-byte object plus its 96-byte Guid string.
    let leaked_mb = (CUSTOMERS * (24 + 96)) as f64 / 1e6;
    let growth = heap_mb.iter().cloned().fold(f64::MIN, f64::max) - heap_mb[0];
    assert!(
        growth >= leaked_mb,
        "GC heap grew {growth:.1} MB, the leak holds {leaked_mb:.1} MB"
    );
    let shown: String = samples
        .iter()
        .filter(|s| s["name"] == "gc-heap-size")
        .map(|s| format!("{s}\n"))
        .collect();
    w.record("watch", "dn-counters", &counter_args, "");
    w.steps
        .last_mut()
        .unwrap()
        .shown
        .push_str(" && grep gc-heap-size counters.jsonl");
    w.steps.last_mut().unwrap().output = w.mask(&shown);

    // 3b. A dump after the leak.
    let after = dir.path().join("core_after");
    w.run(
        "collect-after",
        "dn-dump",
        &["collect", "-p", &pid, "-o", path(&after)],
    );

    // 4. Explain it.
    let stat = &json_lines(&w.run(
        "stat-json",
        "dn-dump",
        &["analyze", path(&after), "--json", "-c", "dumpheap -stat"],
    ))[0];
    let customer = stat["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "SampleService.Customer")
        .expect("Customer in dumpheap -stat");
    assert_eq!(customer["count"].as_u64(), Some(CUSTOMERS), "{customer}");
    let strings = stat["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "System.String")
        .unwrap();
    assert!(strings["count"].as_u64().unwrap() >= CUSTOMERS);
    let mt = customer["mt"].as_str().unwrap().to_string();
    w.run(
        "stat",
        "dn-dump",
        &[
            "analyze",
            path(&after),
            "-c",
            "dumpheap -stat -type Customer",
        ],
    );

    let objects = Command::new(exe("dn-dump"))
        .args([
            "analyze",
            path(&after),
            "-c",
            &format!("dumpheap -mt {mt} -short"),
        ])
        .output()
        .unwrap();
    let first_customer = String::from_utf8_lossy(&objects.stdout)
        .lines()
        .find(|l| l.trim().starts_with("0x") || l.trim().chars().all(|c| c.is_ascii_hexdigit()))
        .expect("an address")
        .trim()
        .to_string();
    let obj = &json_lines(&w.run(
        "dumpobj-customer-json",
        "dn-dump",
        &[
            "analyze",
            path(&after),
            "--json",
            "-c",
            &format!("dumpobj {first_customer}"),
        ],
    ))[0];
    let id_field = obj["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Id")
        .expect("Customer.Id field");
    let string_addr = id_field["value"]
        .as_str()
        .expect("Id holds a string address")
        .to_string();
    w.run(
        "dumpobj-customer",
        "dn-dump",
        &[
            "analyze",
            path(&after),
            "-c",
            &format!("dumpobj {first_customer}"),
        ],
    );

    let roots = &json_lines(&w.run(
        "gcroot-json",
        "dn-dump",
        &[
            "analyze",
            path(&after),
            "--json",
            "-c",
            &format!("gcroot {string_addr}"),
        ],
    ))[0];
    let root = &roots["roots"].as_array().expect("roots")[0];
    let chain: Vec<(String, String)> = root["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["address"].as_str().unwrap().to_string(),
                n["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let types: Vec<&str> = chain.iter().map(|(_, t)| t.as_str()).collect();
    let expected = [
        "SampleService.Processor",
        "SampleService.CustomerCache",
        "System.Collections.Generic.List<SampleService.Customer>",
        "SampleService.Customer[]",
        "SampleService.Customer",
        "System.String",
    ];
    assert_eq!(
        &types[types.len() - expected.len()..],
        &expected,
        "gcroot chain: {types:?}"
    );
    assert_eq!(
        chain.last().unwrap().0,
        string_addr,
        "the path ends at the asked object"
    );
    w.run(
        "gcroot",
        "dn-dump",
        &[
            "analyze",
            path(&after),
            "-c",
            &format!("gcroot {string_addr}"),
        ],
    );
    // dumpobj prints every object of the chain.
    for (addr, ty) in &chain {
        let out = Command::new(exe("dn-dump"))
            .args(["analyze", path(&after), "-c", &format!("dumpobj {addr}")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(ty.as_str()),
            "dumpobj {addr} ({ty}): {text}"
        );
    }
    let processor = &chain[types.len() - expected.len()].0;
    w.run(
        "dumpobj-processor",
        "dn-dump",
        &[
            "analyze",
            path(&after),
            "-c",
            &format!("dumpobj {processor}"),
        ],
    );

    // 5. What grew between the two dumps.
    let diff = &json_lines(&w.run(
        "diff-json",
        "dn-dump",
        &["diff", path(&before), path(&after), "--json", "--top", "4"],
    ))[0];
    // Free space is the GC's gaps, not a type that grew: how much of it lies between the
    // objects depends on when the last GC ran, so it may rank anywhere among these.
    let top: Vec<&str> = diff["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .filter(|&n| n != "Free")
        .take(3)
        .collect();
    for name in [
        "SampleService.Customer",
        "System.String",
        "SampleService.Customer[]",
    ] {
        assert!(
            top.contains(&name),
            "{name} is not in the top 3 of the diff: {top:?}"
        );
    }
    let grown = diff["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "SampleService.Customer")
        .unwrap();
    assert_eq!(
        grown["count_b"].as_u64().unwrap() - grown["count_a"].as_u64().unwrap(),
        CUSTOMERS
    );
    // The top four only: below Free, the runtime's own small rows trade places from run to run.
    w.run(
        "diff",
        "dn-dump",
        &["diff", path(&before), path(&after), "--top", "4"],
    );

    // 6. Who holds the memory: the leak suspects.
    let suspects = &json_lines(&w.run(
        "suspects-json",
        "dn-dump",
        &["analyze", path(&after), "--json", "-c", "suspects"],
    ))[0];
    let first = &suspects["suspects"][0];
    assert_eq!(first["kind"], "single", "{suspects}");
    assert_eq!(first["type"], "SampleService.Processor", "{suspects}");
    assert_eq!(first["root"]["kind"], "static", "{suspects}");
    assert_eq!(
        first["root"]["field"], "SampleService.DiagScenarioController.p",
        "the static field holding the Processor"
    );
    assert_eq!(
        first["path"].as_array().unwrap().len(),
        1,
        "held straight by the static"
    );
    let point = &first["accumulation_point"];
    assert_eq!(point["type"], "SampleService.Customer[]", "{suspects}");
    assert_eq!(
        point["owner"]["type"], "System.Collections.Generic.List<SampleService.Customer>",
        "the array is the List's storage"
    );
    let customers = first["accumulated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "SampleService.Customer")
        .expect("customers accumulate");
    assert_eq!(customers["count"].as_u64().unwrap(), CUSTOMERS);
    // The Processor retains the customers, their strings and the array: over 90% of the live
    // heap of this small service.
    assert!(first["percent"].as_f64().unwrap() > 90.0, "{suspects}");
    w.run(
        "suspects",
        "dn-dump",
        &["analyze", path(&after), "-c", "suspects"],
    );
    w
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn walkthrough_on_net10_matches_the_tutorial() {
    let w = walkthrough(Runtime::Net10);
    let doc_path = dn_testkit::workspace_root().join("docs/tutorial.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/tutorial.md");
    if std::env::var_os("DN_UPDATE_DOCS").is_some() {
        std::fs::write(&doc_path, fill_blocks(&doc, &w.steps)).unwrap();
        return;
    }
    let blocks = read_blocks(&doc);
    for step in w.steps.iter().filter(|s| !s.name.ends_with("-json")) {
        let Some(block) = blocks.iter().find(|(n, _)| n == step.name) else {
            panic!("docs/tutorial.md has no block for step {}", step.name);
        };
        let fresh = normalize(step.name, &format!("$ {}\n{}", step.shown, step.output));
        let documented = normalize(step.name, &block.1);
        assert_eq!(
            documented, fresh,
            "docs/tutorial.md is stale at step {}: run `DN_UPDATE_DOCS=1 cargo test --test walkthrough`",
            step.name
        );
    }
}

#[test]
fn walkthrough_on_net8() {
    walkthrough(Runtime::Net8);
}

const MARK: &str = "<!-- step: ";

/// The (step, block text) pairs of the document.
fn read_blocks(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(MARK) {
        rest = &rest[i + MARK.len()..];
        let name = rest[..rest.find(" -->").unwrap()].to_string();
        let start = rest.find("```console\n").unwrap() + "```console\n".len();
        let end = start + rest[start..].find("```").unwrap();
        out.push((name, rest[start..end].to_string()));
        rest = &rest[end..];
    }
    out
}

fn fill_blocks(doc: &str, steps: &[Step]) -> String {
    let mut out = String::new();
    let mut rest = doc;
    while let Some(i) = rest.find(MARK) {
        out.push_str(&rest[..i + MARK.len()]);
        rest = &rest[i + MARK.len()..];
        let name = &rest[..rest.find(" -->").unwrap()];
        let step = steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name}"));
        let start = rest.find("```console\n").unwrap() + "```console\n".len();
        let end = start + rest[start..].find("```").unwrap();
        out.push_str(&rest[..start]);
        out.push_str(&format!("$ {}\n{}\n", step.shown, step.output.trim_end()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Whether the numbers of `line` in step `step` are the fixture's own and must not change: the
/// service's objects are deterministic (400,000 customers of 24 bytes, each with a 94-byte id
/// string, in a `List` whose arrays double to 524,288 slots), so the lines that count or size them
/// are pinned. What the runtime, the machine or timing decides (pids, addresses, thread ids,
/// timings, dump sizes, counter samples, the runtime's own objects, the live heap total and the
/// percentages of it) stays masked.
fn pinned(step: &str, line: &str, in_accumulated: bool) -> bool {
    match step {
        // `dumpheap -stat -type Customer` lists only the service's types; dumpobj prints the
        // service's objects' sizes and field offsets.
        "stat" | "dumpobj-customer" | "dumpobj-processor" => true,
        // The service's rows; the runtime's (strings, Free, reflection) vary.
        "diff" => line.contains("SampleService."),
        // The suspect's sizes and the accumulated rows (the customers' id strings included).
        "suspects" => line.contains("SampleService.") || in_accumulated,
        _ => false,
    }
}

/// What must not change: the words, the shape and the numbers the fixture decides (see
/// [`pinned`]). Addresses, MethodTables and thread ids always become H; other numbers become N
/// unless pinned; percentages are always masked (they are shares of the live heap, which holds
/// the runtime's own objects too).
fn normalize(step: &str, text: &str) -> Vec<String> {
    let mut in_accumulated = false;
    text.lines()
        // Whether the kernel keeps soft-dirty bits depends on the machine, not on dn.
        .filter(|l| !l.starts_with("note: this kernel keeps no soft-dirty bits"))
        .map(|l| {
            if l.starts_with("Accumulated objects by type:") {
                in_accumulated = true;
            }
            let pin = pinned(step, l, in_accumulated);
            let mut after_thread = false;
            l.split_whitespace()
                .map(|tok| {
                    let after_thread = std::mem::replace(&mut after_thread, tok == "Thread");
                    let core = tok.trim_matches(|c: char| {
                        matches!(c, '\'' | '"' | ':' | ',' | '(' | ')' | '.')
                    });
                    let (prefixed, hex) = match core.strip_prefix("0x") {
                        Some(h) => (true, h),
                        None => (false, core),
                    };
                    let has_digit = hex.chars().any(|c| c.is_ascii_digit());
                    let has_letter = hex.chars().any(|c| c.is_ascii_alphabetic());
                    // Addresses, ids and plain integers all become H when not pinned; hex words
                    // need a digit (or 0x), and thread ids ("cdd") sit after "Thread". A pinned
                    // plain number stays; a pinned hex word with a letter (an address) does not.
                    let hexlike = !hex.is_empty()
                        && hex.chars().all(|c| c.is_ascii_hexdigit())
                        && (prefixed || has_digit || (has_letter && after_thread));
                    if hexlike && !(pin && !prefixed && !has_letter) {
                        "H".to_string()
                    } else if pin && !tok.contains('%') {
                        tok.to_string()
                    } else {
                        mask_numbers(tok)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// Replaces each run of digits (with `,` and `.` inside) by `N`.
fn mask_numbers(tok: &str) -> String {
    let mut s = String::new();
    let mut chars = tok.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
            {
                chars.next();
            }
            s.push('N');
        } else {
            s.push(c);
        }
    }
    s
}
