//! Histograms: the percentiles asked for (among those the runtime computes, with a warning for
//! the others) and the number of observations per interval, which adds up to the requests made.

mod common;

use std::time::Duration;

use common::{name_is, JsonlCollect};
use dn_testkit::{Fixture, Runtime, Target};
use serial_test::serial;

fn percentiles_and_counts(rt: Runtime) {
    let target = Target::start(Fixture::SampleService, rt);
    let mut c = JsonlCollect::start(&[
        "-p",
        &target.pid().to_string(),
        "--counters",
        "Microsoft.AspNetCore.Hosting[http.server.request.duration]",
        "--percentiles",
        "99,50,90",
    ]);
    // An interval without requests reports nothing for the histogram: request until a count
    // comes (the session then runs), then let one more interval pass without requests.
    let mut first = None;
    for _ in 0..20 {
        target.http_get("/");
        first = c.wait_for(Duration::from_secs(1), |v| {
            name_is(v, &["http.server.request.duration.count"])
        });
        if first.is_some() {
            break;
        }
    }
    assert!(first.is_some(), "{}: no observation count", rt.label());
    c.wait_for(Duration::from_millis(1500), |_| false);
    let before: f64 = c
        .seen
        .iter()
        .filter(|v| name_is(v, &["http.server.request.duration.count"]))
        .map(|v| v["value"].as_f64().unwrap())
        .sum();
    const REQUESTS: usize = 7;
    for _ in 0..REQUESTS {
        target.http_get("/");
    }
    // Three more intervals: every request is in some interval's count.
    c.wait_for(Duration::from_secs(3), |_| false);
    let (code, err) = c.stop();
    assert_eq!(code, Some(0), "{err}");
    let counts: Vec<&serde_json::Value> = c
        .seen
        .iter()
        .filter(|v| name_is(v, &["http.server.request.duration.count"]))
        .collect();
    let total: f64 = counts.iter().map(|v| v["value"].as_f64().unwrap()).sum();
    assert_eq!(
        total - before,
        REQUESTS as f64,
        "{}: observations counted after the first interval",
        rt.label()
    );
    assert!(counts.iter().all(|v| v["kind"] == "rate"));
    let percentiles: std::collections::BTreeSet<&str> = c
        .seen
        .iter()
        .filter(|v| name_is(v, &["http.server.request.duration"]))
        .filter_map(|v| v["tags"]["Percentile"].as_str())
        .collect();
    assert_eq!(percentiles, ["50", "99"].into(), "{}", rt.label());
    assert!(
        err.contains("the runtime computes the 50, 95, 99 percentiles of histograms only; 90 cannot be shown"),
        "{err}"
    );
}

#[test]
#[serial]
fn percentiles_and_counts_net8() {
    percentiles_and_counts(Runtime::Net8);
}

#[test]
#[serial]
fn percentiles_and_counts_net10() {
    percentiles_and_counts(Runtime::Net10);
}
