//! ASP.NET Core (SampleService) on .NET 8, 9 and 10: the leak shows in the GC heap, thrown
//! exceptions are counted, and Microsoft.AspNetCore.Hosting comes from its Meter (request
//! duration percentiles) in preference to its EventCounters.

mod common;

use std::time::Duration;

use common::JsonlCollect;
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

const WAIT: Duration = Duration::from_secs(20);
/// memleak/10000 keeps 100,000 `Customer`s alive: object (24 B) + 36-char string (96 B) + list
/// slot (8 B) each; 100 B each is a safe lower bound.
const LEAK_KB: u32 = 10_000;
const LEAK_BYTES_AT_LEAST: f64 = 100_000.0 * 100.0;

fn web(rt: Runtime) {
    let t = Target::start(Fixture::SampleService, rt);
    let pid = t.pid().to_string();
    let mut c = JsonlCollect::start(&[
        "-p",
        &pid,
        "--counters",
        "EventCounters\\System.Runtime[gc-heap-size,exception-count],Microsoft.AspNetCore.Hosting",
    ]);
    let before = c
        .wait_state(WAIT, |s| s.sum_latest("gc-heap-size"))
        .unwrap_or_else(|| panic!("{}: no gc-heap-size: {:?}", rt.label(), c.stop()));
    let (status, body) = t.http_get(&format!("/api/diagscenario/memleak/{LEAK_KB}"));
    assert_eq!((status, body.as_str()), (200, "success:memleak"));
    let grown = c.wait_state(WAIT, |s| {
        s.sum_latest("gc-heap-size")
            .filter(|h| h - before >= LEAK_BYTES_AT_LEAST)
    });
    assert!(
        grown.is_some(),
        "{}: GC heap {before} -> {:?}, expected +{LEAK_BYTES_AT_LEAST}",
        rt.label(),
        c.state.sum_latest("gc-heap-size")
    );

    for _ in 0..5 {
        assert_eq!(t.http_get("/api/diagscenario/exception").0, 500);
    }
    let counted = c.wait_state(WAIT, |s| {
        s.sums.get("exception-count").copied().filter(|n| *n >= 5.0)
    });
    assert!(
        counted.is_some(),
        "{}: exceptions {:?}",
        rt.label(),
        c.state.sums.get("exception-count")
    );

    // The Hosting Meter: request duration percentiles with the route tag.
    let hist = c.wait_for(WAIT, |v| {
        v["name"] == "http.server.request.duration" && v["tags"]["Percentile"] == "95"
    });
    let (_, hist) = hist.unwrap_or_else(|| panic!("{}: no request duration histogram", rt.label()));
    assert_eq!(hist["provider"], "Microsoft.AspNetCore.Hosting");
    assert_eq!(hist["unit"], "s");
    assert_eq!(hist["kind"], "histogram");
    assert!(hist["tags"]["http.route"].is_string(), "{hist}");
    // Once the Meter reports, the provider's EventCounters are no longer written.
    let first_meter = c
        .seen
        .iter()
        .position(|v| {
            v["provider"] == "Microsoft.AspNetCore.Hosting"
                && v["name"].as_str().unwrap().contains('.')
        })
        .expect("a meter sample");
    let later_event_counters = c.seen[first_meter..]
        .iter()
        .filter(|v| v["name"] == "total-requests" || v["name"] == "requests-per-second")
        .count();
    assert_eq!(later_event_counters, 0, "{}", rt.label());
    let (code, err) = c.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
#[serial]
fn web_counters_net8() {
    web(Runtime::Net8);
}

#[test]
#[serial]
fn web_counters_net9() {
    web(Runtime::Net9);
}

#[test]
#[serial]
fn web_counters_net10() {
    web(Runtime::Net10);
}
