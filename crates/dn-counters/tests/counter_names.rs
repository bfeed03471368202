//! `--counters` names: a list mixing EventCounter and Meter names of one provider gets both, and
//! names (or providers) the target does not publish get a warning with the closest known name.

mod common;

use std::time::Duration;

use common::{name_is, JsonlCollect};
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

/// .NET 9+: System.Runtime is both a Meter and EventCounters; named counters come from each.
fn mixed_names(rt: Runtime) {
    let target = Target::start(Fixture::Console, rt);
    let mut c = JsonlCollect::start(&[
        "-p",
        &target.pid().to_string(),
        "--counters",
        "System.Runtime[gc-heap-size,dotnet.gc.collections,gc-heap-sise],System.Runtme",
    ]);
    let both = c.wait_state(Duration::from_secs(20), |s| {
        (!s.series("gc-heap-size").is_empty() && !s.series("dotnet.gc.collections").is_empty())
            .then_some(())
    });
    // Past the check (three intervals and a margin), with samples still flowing.
    c.wait_for(Duration::from_secs(6), |_| false);
    let (code, err) = c.stop();
    let names: std::collections::BTreeSet<&str> =
        c.seen.iter().filter_map(|v| v["name"].as_str()).collect();
    assert!(
        both.is_some(),
        "{}: not both kinds in {names:?}",
        rt.label()
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        names,
        ["dotnet.gc.collections", "gc-heap-size"].into(),
        "{}: only what was asked for",
        rt.label()
    );
    assert!(
        c.seen
            .iter()
            .filter(|v| name_is(v, &["gc-heap-size"]))
            .all(|v| v["kind"] == "gauge" && v["unit"] == "MB"),
        "gc-heap-size is the EventCounter gauge in MB"
    );
    assert!(
        err.contains(
            "counter gc-heap-sise of System.Runtime was not published so far; did you mean gc-heap-size?"
        ),
        "{err}"
    );
    assert!(
        err.contains("provider System.Runtme published no counters so far")
            && err.contains("did you mean System.Runtime?"),
        "{err}"
    );
    assert_eq!(err.matches("did you mean").count(), 2, "{err}");
}

#[test]
#[serial]
fn mixed_names_and_typos_net9() {
    mixed_names(Runtime::Net9);
}

#[test]
#[serial]
fn mixed_names_and_typos_net10() {
    mixed_names(Runtime::Net10);
}

/// .NET 8 has no System.Runtime Meter: a Meter name there is reported, the EventCounter comes.
#[test]
#[serial]
fn meter_name_on_net8_is_reported() {
    let target = Target::start(Fixture::Console, Runtime::Net8);
    let mut c = JsonlCollect::start(&[
        "-p",
        &target.pid().to_string(),
        "--counters",
        "System.Runtime[cpu-usage,dotnet.gc.collections]",
    ]);
    assert!(c
        .wait_for(Duration::from_secs(15), |v| name_is(v, &["cpu-usage"]))
        .is_some());
    c.wait_for(Duration::from_secs(5), |_| false);
    let (code, err) = c.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("counter dotnet.gc.collections of System.Runtime was not published so far"),
        "{err}"
    );
}

/// `--counters '*'`: the runtime's Meter, ASP.NET Core's Meters (some only reachable through the
/// `*` wildcard) and the EventCounters of the known EventSources, all at once.
#[test]
#[serial]
fn star_means_every_counter_net9() {
    let target = Target::start(Fixture::SampleService, Runtime::Net9);
    let mut c = JsonlCollect::start(&["-p", &target.pid().to_string(), "--counters", "*"]);
    let want = [
        ("System.Runtime", "dotnet.gc.heap.total_allocated"),
        (
            "Microsoft.AspNetCore.Hosting",
            "http.server.request.duration",
        ),
        (
            "Microsoft.AspNetCore.Server.Kestrel",
            "kestrel.active_connections",
        ),
        ("Microsoft-AspNetCore-Server-Kestrel", "current-connections"),
        ("System.Net.Sockets", "bytes-received"),
    ];
    let got = c.wait_state(Duration::from_secs(20), |s| {
        target.http_get("/");
        want.iter()
            .all(|(p, n)| s.series(n).iter().any(|v| v["provider"] == *p))
            .then_some(())
    });
    let (code, err) = c.stop();
    let providers: std::collections::BTreeSet<String> = c
        .seen
        .iter()
        .map(|v| format!("{}/{}", v["provider"], v["name"]))
        .collect();
    assert!(got.is_some(), "missing some of {want:?} in {providers:?}");
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
}
