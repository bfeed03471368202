//! Builds are cached: a second build of unchanged sources reuses the first.

use dn_testkit::{build, Fixture, Runtime};
use std::time::Instant;

#[test]
fn second_build_is_served_from_cache() {
    let first = build(Fixture::Console, Runtime::Net10).expect("build");
    let stamp = std::fs::metadata(first.dir.join("stamp"))
        .unwrap()
        .modified()
        .unwrap();
    let started = Instant::now();
    let second = build(Fixture::Console, Runtime::Net10).expect("cached build");
    let took = started.elapsed();
    assert_eq!(first.program, second.program);
    assert_eq!(first.args, second.args);
    let stamp_again = std::fs::metadata(second.dir.join("stamp"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(stamp, stamp_again, "the cached build was redone");
    assert!(took.as_secs() < 2, "cache lookup took {took:?}");
}
