//! The web fixture runs on .NET 8, 9, 10 and 11 and serves its diagnostic scenarios.

use dn_testkit::{build, Fixture, Runtime, Target};

fn serves_scenarios(rt: Runtime) {
    let t = Target::start(Fixture::SampleService, rt);
    assert!(t.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        t.http_get("/api/diagscenario/memleak/1"),
        (200, "success:memleak".to_string())
    );
    let (status, _) = t.http_get("/api/diagscenario/exception");
    assert_eq!(status, 500);
    assert!(t.socket_path().exists());
    assert!(t.built().runtime_dir.join("libmscordaccore.so").is_file());
}

#[test]
fn sample_service_on_net8() {
    serves_scenarios(Runtime::Net8);
}

#[test]
fn sample_service_on_net9() {
    serves_scenarios(Runtime::Net9);
}

#[test]
fn sample_service_on_net10() {
    serves_scenarios(Runtime::Net10);
}

#[test]
fn sample_service_on_net11() {
    serves_scenarios(Runtime::Net11);
}

#[test]
fn sample_service_scenarios_behave() {
    let t = Target::start(Fixture::SampleService, Runtime::Net10);
    let (status, body) = t.http_get("/api/diagscenario/highcpu/200");
    assert_eq!(status, 200);
    assert!(body.starts_with("success:highcpu"), "{body}");
    assert_eq!(
        t.http_get("/api/diagscenario/memspike/1"),
        (200, "success:memspike".to_string())
    );
    assert_eq!(
        t.http_get("/api/diagscenario/deadlock"),
        (200, "deadlocked".to_string())
    );
    // The deadlocked threads exist and the service still answers.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", t.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect();
    assert!(
        names.iter().filter(|n| n.starts_with("deadlock-")).count() == 2,
        "{names:?}"
    );
    assert_eq!(t.http_get("/").0, 200);
}

#[test]
fn sample_service_has_no_netcore31_build() {
    let err = build(Fixture::SampleService, Runtime::NetCore31).unwrap_err();
    assert!(format!("{err:#}").contains("ASP.NET Core"), "{err:#}");
}
