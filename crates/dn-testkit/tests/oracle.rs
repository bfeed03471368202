//! The process-listing oracle sees the targets the harness starts.

use dn_testkit::{run_oracle, Fixture, Runtime, Target};

#[test]
fn ps_oracle_lists_a_started_target() {
    let t = Target::start(Fixture::Console, Runtime::Net10);
    let out = run_oracle("PsOracle", &[]).expect("PsOracle runs");
    let pids: Vec<i32> = serde_json::from_str(out.trim()).expect("a JSON array of pids");
    assert!(pids.contains(&t.pid()), "{} not in {pids:?}", t.pid());
}

#[test]
fn unknown_oracle_is_a_clear_error() {
    let err = run_oracle("NoSuchOracle", &[]).unwrap_err();
    assert!(format!("{err:#}").contains("no oracle project"), "{err:#}");
}
