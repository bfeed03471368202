//! Stack commands on bad input: a thread index or OS id that does not exist, and a stack the
//! DAC cannot unwind (the recursing thread's stack overwritten in a copy of the core). Clear
//! lines, no panic, the session goes on, and what was unwound is kept.

mod common;

use std::path::Path;

use common::*;
use dn_heap::commands::Session;
use dn_testkit::{Fixture, Runtime, Target};
use serde_json::Value;

fn stacks_dump(rt: Runtime) -> Dump {
    let mut t = Target::start(Fixture::Console, rt);
    assert_eq!(t.command("stacks"), "READY");
    dump_of(t, rt, "--withheap")
}

fn session(core: &Path, dac: &Path) -> Session {
    Session::new(dn_heap::heap::Runtime::open_core(core, Some(dac)).expect("open core"))
}

fn json(s: &Session, cmd: &str) -> Value {
    s.execute(cmd).expect(cmd).expect("output").to_json()
}

#[test]
fn a_missing_thread_is_one_clear_error_and_the_session_goes_on() {
    let d = stacks_dump(Runtime::Net10);
    let s = session(&d.core, &d.dac);
    let n = json(&s, "setthread")["threads"].as_array().unwrap().len();
    let e = format!(
        "{:#}",
        s.execute("setthread 999").err().expect("no thread 999")
    );
    assert_eq!(
        e,
        format!(
            "no thread with index 999: the target has {n} threads (0..{})",
            n - 1
        )
    );
    let e = format!("{:#}", s.execute("setthread -t 1").err().expect("no TID 1"));
    assert_eq!(e, "no thread with OS id 1 (0x1) in the target");
    assert!(s.execute("setthread x").is_err());
    assert!(s.execute("clrstack -bogus").is_err());
    // The current thread did not change, and the commands still run.
    let cur = json(&s, "clrstack");
    assert_eq!(cur["threads"][0]["index"], 0);
    assert!(!cur["threads"][0]["frames"].as_array().unwrap().is_empty());
    let last = n - 1;
    assert_eq!(json(&s, &format!("setthread {last}"))["index"], last);
}

/// Virtual address to file offset through the core's PT_LOAD headers.
fn file_offset(core: &[u8], addr: u64) -> Option<usize> {
    let elf = goblin::elf::Elf::parse(core).ok()?;
    elf.program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
        .find(|p| addr >= p.p_vaddr && addr < p.p_vaddr + p.p_filesz)
        .map(|p| (p.p_offset + (addr - p.p_vaddr)) as usize)
}

#[test]
fn a_stack_the_dac_cannot_unwind_keeps_what_was_unwound_and_says_so() {
    let d = stacks_dump(Runtime::Net10);
    let all = json(&session(&d.core, &d.dac), "clrstack -all");
    let thread = all["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["method"] == "ConsoleTarget.StackScenarios.Recurse()")
        })
        .expect("the recursing thread")
        .clone();
    let frames = thread["frames"].as_array().unwrap();
    let levels: Vec<&Value> = frames
        .iter()
        .filter(|f| f["method"] == "ConsoleTarget.StackScenarios.Level(Int32)")
        .collect();
    // Overwrite the stack from the 4th Level frame's SP up to past the thread's start: its
    // saved frame pointers and return addresses become garbage.
    let sp = hex(&levels[3]["sp"]);
    let top = hex(&frames.last().unwrap()["sp"]);
    let mut bytes = std::fs::read(&d.core).unwrap();
    let (from, to) = (
        file_offset(&bytes, sp).expect("stack in the core"),
        file_offset(&bytes, top).expect("stack top in the core"),
    );
    for b in &mut bytes[from..to] {
        *b = 0x41;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("core.bad");
    std::fs::write(&bad, &bytes).unwrap();

    let s = session(&bad, &d.dac);
    let tid = thread["os_thread_id"].as_u64().unwrap();
    let index = json(&s, &format!("setthread -t {tid}"))["index"].clone();
    assert!(index.is_u64());
    let out = s.execute("clrstack").expect("clrstack").expect("output");
    let v = out.to_json();
    let t = &v["threads"][0];
    let got = t["frames"].as_array().unwrap();
    // What lies below the damage is unwound as before.
    assert!(got.len() >= 4, "{v}");
    for (a, b) in got.iter().zip(frames).take(4) {
        assert_eq!(a["method"], b["method"], "{v}");
        assert_eq!(a["sp"], b["sp"], "{v}");
    }
    // Above it, the walk cannot reach the thread's start; it says so.
    assert!(
        !got.iter()
            .any(|f| f["method"] == "ConsoleTarget.StackScenarios.Recurse()"),
        "the walk went through garbage: {v}"
    );
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(t["incomplete"].is_string(), "{v}");
    let text = out.to_text();
    assert!(
        text.contains("Stack Walk failed. Reported stack incomplete."),
        "{text}"
    );
    // The session is still usable.
    assert!(
        json(&s, "clrstack -all")["threads"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
}
