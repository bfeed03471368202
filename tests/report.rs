//! `dn-dump report` on real dumps of a leaking .NET process, loaded in headless Chromium: the
//! page's numbers are the `--json` numbers, it loads with no console message and no network
//! request, and a screenshot is written next to the page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{chromium, dn_dump};
use dn_heap::report::model;
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

/// Where the page and its screenshot stay after the test, for people to look at.
fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `analyze CORE --json -c C...`: one document per command, in order.
fn analyze_json(core: &Path, commands: &[&str]) -> Vec<Value> {
    let mut args = vec!["analyze", core.to_str().unwrap(), "--json"];
    for c in commands {
        args.extend(["-c", c]);
    }
    let text = ok(&dn_dump(&args));
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(docs.len(), commands.len(), "{text}");
    docs
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The attributes of every start tag that begins with `start` (e.g. `<g class="cell"`).
fn tags(html: &str, start: &str) -> Vec<BTreeMap<String, String>> {
    html.match_indices(start)
        .map(|(i, _)| {
            let end = html[i..].find('>').map_or(html.len(), |e| i + e);
            let mut attrs = BTreeMap::new();
            let mut rest = &html[i..end];
            while let Some(eq) = rest.find("=\"") {
                let key = rest[..eq].rsplit([' ', '<']).next().unwrap().to_string();
                let after = &rest[eq + 2..];
                let close = after.find('"').unwrap_or(after.len());
                attrs.insert(key, unescape(&after[..close]));
                rest = &after[(close + 1).min(after.len())..];
            }
            attrs
        })
        .collect()
}

/// The text of every `<span class="CLASS">` inside `html`.
fn spans(html: &str, class: &str) -> Vec<String> {
    let open = format!("<span class=\"{class}\">");
    html.match_indices(&open)
        .map(|(i, _)| {
            let from = i + open.len();
            let to = html[from..]
                .find("</span>")
                .map_or(html.len(), |e| from + e);
            unescape(&html[from..to])
        })
        .collect()
}

fn num(text: &str) -> u64 {
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{text}"))
}

/// The number in `<span data-k="KEY">`.
fn fact(html: &str, key: &str) -> u64 {
    let open = format!("data-k=\"{key}\">");
    let i = html.find(&open).unwrap_or_else(|| panic!("{key} missing")) + open.len();
    num(&html[i..i + html[i..].find('<').unwrap()])
}

#[test]
fn report_of_a_leak_shows_the_cli_numbers_and_loads_cleanly_in_chromium() {
    let dir = out_dir("report");
    let (a, b) = (dir.join("core_a"), dir.join("core_b"));
    let counters = dir.join("counters.jsonl");
    let mut t = Target::start(Fixture::Console, Runtime::Net10);
    ok(&common::collect(&t, &a, &["--type", "heap"]));
    assert_eq!(t.command("leak 20000"), "ok 20000");
    // Counters around the second dump, so its time falls inside the charts.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_dn-counters"))
        .args(["collect", "-p", &t.pid().to_string(), "--format", "jsonl"])
        .args(["--duration", "10", "-o"])
        .arg(&counters)
        .spawn()
        .expect("dn-counters");
    // The dump once samples are on disk (the first can take seconds on a busy machine); the
    // session goes on for seconds after it.
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&counters).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            started.elapsed().as_secs() < 8,
            "no counter sample within 8 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(&common::collect(&t, &b, &["--type", "heap"]));
    assert!(watch.wait().unwrap().success());

    let page = dir.join("report.html");
    let (bs, as_, cs, ps) = (
        b.to_str().unwrap(),
        a.to_str().unwrap(),
        counters.to_str().unwrap(),
        page.to_str().unwrap(),
    );
    ok(&dn_dump(&[
        "report",
        bs,
        "--baseline",
        as_,
        "--counters",
        cs,
        "-o",
        ps,
    ]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 5 << 20, "{} bytes", html.len());
    for outside in [
        "http://",
        "https://",
        " src=",
        "url(",
        "@import",
        "@font-face",
    ] {
        assert!(
            !html.contains(outside),
            "the page refers outside: {outside}"
        );
    }

    let dominators = format!(
        "dominators -depth {} -top {}",
        model::DOMINATOR_DEPTH,
        model::DOMINATOR_TOP
    );
    let docs = analyze_json(
        &b,
        &[
            "suspects",
            "dumpheap -stat -retained",
            "dumpheap -stat -dead",
            &dominators,
        ],
    );
    let (sus, stat, dead, dom) = (&docs[0], &docs[1], &docs[2], &docs[3]);

    // Summary: the same totals.
    assert_eq!(
        fact(&html, "total_objects"),
        stat["total_objects"].as_u64().unwrap()
    );
    assert_eq!(
        fact(&html, "total_bytes"),
        stat["total_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        fact(&html, "live_bytes"),
        sus["live_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        fact(&html, "dead_bytes"),
        dead["total_bytes"].as_u64().unwrap()
    );

    // Treemap: one cell per type at or above the cut-off, with its row's numbers.
    let live = sus["live_bytes"].as_u64().unwrap();
    let legend = &tags(&html, "<p class=\"sub\" id=\"treemap-legend\"")[0];
    let cutoff: u64 = legend["data-cutoff"].parse().unwrap();
    assert_eq!(
        cutoff,
        (live * model::TREEMAP_CUTOFF_PER_MILLE / 1000).max(1)
    );
    let mut expected: Vec<&Value> = stat["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] != "Free" && t["retained"].as_u64().unwrap() >= cutoff)
        .collect();
    expected.sort_by_key(|t| std::cmp::Reverse(t["retained"].as_u64().unwrap()));
    expected.truncate(model::TREEMAP_MAX_CELLS);
    let cells = tags(&html, "<g class=\"cell\"");
    assert_eq!(cells.len(), expected.len());
    let by_name: BTreeMap<&str, &BTreeMap<String, String>> =
        cells.iter().map(|c| (c["data-type"].as_str(), c)).collect();
    for t in &expected {
        let c = by_name[t["name"].as_str().unwrap()];
        assert_eq!(c["data-count"], t["count"].to_string(), "{t}");
        assert_eq!(c["data-shallow"], t["size"].to_string(), "{t}");
        assert_eq!(c["data-retained"], t["retained"].to_string(), "{t}");
    }

    // Suspects: the chain names the path's types, root first, then the accumulation point.
    let list = sus["suspects"].as_array().unwrap();
    assert!(!list.is_empty(), "the leak is a suspect: {sus}");
    let articles: Vec<&str> = html.split("<article class=\"suspect\"").skip(1).collect();
    assert_eq!(articles.len(), list.len());
    for (s, art) in list.iter().zip(&articles) {
        let chain = &art[art.find("<ol class=\"chain\">").unwrap()..art.find("</ol>").unwrap()];
        let mut want: Vec<String> = vec![s["root"]["kind"].as_str().unwrap().to_string()];
        want.extend(
            s["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].as_str().unwrap().to_string()),
        );
        let point = &s["accumulation_point"];
        if !point.is_null()
            && !s["path"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["address"] == point["address"])
        {
            want.push(point["type"].as_str().unwrap().to_string());
        }
        // The boxes `suspects` names, in its order; between the suspect and the accumulation
        // point, boxes of what the suspect holds on the way ("via"), each named by the
        // dominator tree below the suspect.
        let boxes: Vec<&str> = chain.split("<li class=\"box ").skip(1).collect();
        let named: Vec<String> = boxes
            .iter()
            .filter(|b| !b.starts_with("obj via"))
            .flat_map(|b| spans(b, "type"))
            .collect();
        assert_eq!(named, want);
        let at = |prefix: &str| boxes.iter().position(|b| b.starts_with(prefix));
        let (end, point_box) = (at("obj suspect-end"), at("obj accum"));
        for (i, b) in boxes.iter().enumerate() {
            if b.starts_with("obj via") {
                assert!(end < Some(i) && Some(i) < point_box, "{chain}");
            }
        }
        assert!(chain.contains("accumulation point"), "{chain}");
        let acc: Vec<String> = s["accumulated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["type"].as_str().unwrap().to_string())
            .collect();
        let table = &art[art.find("<tbody>").unwrap()..art.find("</tbody>").unwrap()];
        assert_eq!(
            spans(
                &table
                    .replace("<td class=\"type\">", "<span class=\"type\">")
                    .replace("</td></tr>", "</span>"),
                "type"
            ),
            acc
        );
    }
    assert!(html.contains("ConsoleTarget.LeakedItem"));

    // Dominator tree: the first level as `dominators` lists it.
    let first: Vec<String> = dom["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["retained"], c["type"].as_str().unwrap()))
        .collect();
    let shown: Vec<String> = html
        .split("data-level=\"1\"")
        .skip(1)
        .map(|part| format!("{} {}", num(&spans(part, "ret")[0]), spans(part, "type")[0]))
        .collect();
    let shown: Vec<String> = shown.into_iter().take(first.len()).collect();
    assert_eq!(shown, first);

    // Growth: the rows' numbers are `diff`'s.
    let diff = serde_json::from_str::<Value>(&ok(&dn_dump(&["diff", as_, bs, "--json"]))).unwrap();
    let rows = tags(&html, "<g class=\"row\"");
    assert!(!rows.is_empty() && rows.len() <= model::GROWTH_TOP);
    let leak = diff["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ConsoleTarget.LeakedItem")
        .unwrap();
    let title = html
        .split("<g class=\"row\" data-type=\"ConsoleTarget.LeakedItem\"><title>")
        .nth(1)
        .expect("leak row");
    let title = &title[..title.find("</title>").unwrap()];
    assert!(
        title.contains(&format!(
            "Count: {} -&gt; {}",
            leak["count_a"],
            n0(leak["count_b"].as_u64().unwrap())
        )),
        "{title}"
    );
    assert!(
        title.contains(&format!(
            "Size: {} -&gt; {} bytes",
            n0(leak["size_a"].as_u64().unwrap()),
            n0(leak["size_b"].as_u64().unwrap())
        )),
        "{title}"
    );

    // Counters: charts, and the second dump marked on them.
    assert!(html.matches("<figure class=\"counter\">").count() >= 3);
    assert!(
        html.contains("<g class=\"mark\">"),
        "the dump's time is inside the counters' range"
    );

    // In the browser: the script ran, nothing logged, nothing fetched, the biggest type named.
    let loaded = chromium::dump_dom(&page);
    assert!(
        loaded.dom.contains("data-script=\"ran\""),
        "the page's script did not run"
    );
    assert!(loaded.console.is_empty(), "console: {:#?}", loaded.console);
    assert!(
        loaded.requests.is_empty(),
        "requests: {:#?}",
        loaded.requests
    );
    let biggest = expected[0]["name"].as_str().unwrap();
    let cell = loaded
        .dom
        .split("<g class=\"cell\"")
        .find(|c| c.contains(&format!("data-type=\"{}\"", escape(biggest))))
        .expect("the biggest cell in the DOM");
    let label = &cell[cell.find("class=\"cell-label\"").expect("labelled")..];
    let label_tag = &label[..label.find('>').unwrap()];
    assert!(
        !label_tag.contains("display=\"none\""),
        "the browser hid {biggest}'s label"
    );
    let text = unescape(&label[label.find('>').unwrap() + 1..label.find("</text>").unwrap()]);
    assert!(biggest.ends_with(&text), "label '{text}' for {biggest}");
    let png = dir.join("report.png");
    let shot = chromium::screenshot(&page, &png, 1280, 2400);
    assert!(shot.console.is_empty() && shot.requests.is_empty());
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    println!("page: {} screenshot: {}", page.display(), png.display());
}

/// How Chromium writes an attribute value.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn n0(v: u64) -> String {
    dn_heap::commands::n0(v)
}

/// The proxy does see a page's requests and the log its console: the checks above can fail.
#[test]
fn the_browser_checks_catch_a_request_and_a_console_error() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img alt=x src=\"http://dn-report-test.invalid/x.png\"><script>nope();</script></body></html>",
    )
    .unwrap();
    let loaded = chromium::dump_dom(&page);
    assert!(
        loaded
            .requests
            .iter()
            .any(|r| r.contains("dn-report-test.invalid")),
        "{:?}",
        loaded.requests
    );
    assert!(
        loaded.console.iter().any(|l| l.contains("nope")),
        "{:?}",
        loaded.console
    );
}

/// One line on stderr, a failure exit, and no file left where the page would go.
fn refused(args: &[&str], dir: &Path, expect: &str) {
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = dn_dump(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(expect), "{args:?}: {err}");
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "{args:?} left files behind");
}

#[test]
fn bad_input_is_refused_in_one_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    // Only the ELF header: enough to pass the first check, not a core a runtime can be read from.
    std::fs::write(d.join("fake.core"), b"\x7fELF\x02\x01\x01\x00").unwrap();
    std::fs::write(
        d.join("heap.gcdump"),
        b"Nettrace\x00\x00\x00\x00!FastSerialization.1",
    )
    .unwrap();
    std::fs::write(d.join("top.txt"), "PID USER %CPU\n1 root 0.0\n").unwrap();
    std::fs::write(d.join("other.json"), "{\"traceEvents\": []}").unwrap();
    std::fs::write(d.join("exists.html"), "keep me").unwrap();
    let out = p("r.html");
    refused(
        &["report", &p("missing.core"), "-o", &out],
        d,
        "missing.core",
    );
    refused(
        &["report", &p("heap.gcdump"), "-o", &out],
        d,
        ".gcdump files are not supported yet",
    );
    refused(&["report", &p("top.txt"), "-o", &out], d, "not a core dump");
    refused(
        &[
            "report",
            &p("fake.core"),
            "--baseline",
            &p("heap.gcdump"),
            "-o",
            &out,
        ],
        d,
        "not supported yet",
    );
    for counters in ["top.txt", "other.json", "missing.csv"] {
        refused(
            &[
                "report",
                &p("fake.core"),
                "--counters",
                &p(counters),
                "-o",
                &out,
            ],
            d,
            counters,
        );
    }
    refused(
        &[
            "report",
            &p("fake.core"),
            "--counters",
            &p("top.txt"),
            "-o",
            &out,
        ],
        d,
        "not a dn-counters collect file (csv, json or jsonl)",
    );
    refused(
        &["report", &p("fake.core"), "-o", &p("exists.html")],
        d,
        "--force",
    );
    assert_eq!(
        std::fs::read_to_string(d.join("exists.html")).unwrap(),
        "keep me"
    );
    refused(
        &["report", &p("fake.core"), "-o", &p("no/such/dir/r.html")],
        d,
        "does not exist",
    );
    // Past the checks, the core itself cannot be read: still one line and no page.
    refused(&["report", &p("fake.core"), "-o", &out], d, "fake.core");
    refused(
        &[
            "report",
            &p("fake.core"),
            "-o",
            &p("exists.html"),
            "--force",
        ],
        d,
        "fake.core",
    );
    assert_eq!(
        std::fs::read_to_string(d.join("exists.html")).unwrap(),
        "keep me"
    );
}
