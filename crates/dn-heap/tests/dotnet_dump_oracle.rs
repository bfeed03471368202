//! Against Microsoft's dotnet-dump (10.0.750501, installed as a .NET tool by the test) on the
//! same cores: `dumpheap -stat -live` per type, exactly; and on .NET 11, where ClrMD 4.2 (our
//! other oracle) predates the runtime, the number of roots `gcroot` finds for sampled objects.

mod common;

use common::*;
use dn_testkit::Runtime;

fn dotnet_dump(d: &Dump, commands: &[String]) -> String {
    sos::dotnet_dump(&d.core, commands)
}

fn live_equals_dotnet_dump(rt: Runtime) {
    let d = make_dump(rt, false, 1000, "--withheap");
    let s = open_session(&d);
    let (ours, names, _) = our_stats_of(&s, "dumpheap -stat -live");
    let (theirs, total) = sos::sos_stats(&dotnet_dump(&d, &["dumpheap -stat -live".into()]));
    let problems = diff(&ours, &theirs, &names);
    assert!(
        problems.is_empty(),
        "{} -live against dotnet-dump: {}",
        rt.label(),
        problems.join("\n")
    );
    let our_total = ours.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    assert_eq!(our_total, total, "{}: live totals", rt.label());
}

#[test]
fn live_net10() {
    live_equals_dotnet_dump(Runtime::Net10);
}

#[test]
fn live_net8() {
    live_equals_dotnet_dump(Runtime::Net8);
}

/// On .NET 11: for objects sampled across the heap, `gcroot` finds as many roots as
/// dotnet-dump's (SOS counts unique roots; so do we).
#[test]
fn gcroot_roots_net11() {
    let d = make_dump(Runtime::Net11, true, 100, "--withheap");
    let s = open_session(&d);
    let sample = spread(&heap_objects(&s), 40);
    let cmds: Vec<String> = sample.iter().map(|a| format!("gcroot {a:x}")).collect();
    let text = dotnet_dump(&d, &cmds);
    let theirs: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Found ")?
                .strip_suffix(" unique roots.")?
                .replace(',', "")
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(theirs.len(), sample.len(), "one answer per gcroot:\n{text}");
    let mut rooted = 0;
    for (addr, n) in sample.iter().zip(&theirs) {
        let ours = s
            .execute(&format!("gcroot {addr:x}"))
            .unwrap()
            .unwrap()
            .to_text();
        let found = ours
            .lines()
            .find_map(|l| l.strip_prefix("Found ")?.strip_suffix(" unique roots."))
            .map(|v| v.replace(',', "").parse::<u64>().unwrap())
            .expect("our total line");
        assert_eq!(found, *n, "roots of {addr:x}: ours\n{ours}");
        if found > 0 {
            rooted += 1;
        }
    }
    assert!(rooted >= 5, "only {rooted} sampled objects are rooted");
}
