//! Bad input gives a clear one-line error, never a panic: truncated cores, files that are not
//! cores. Mutated cores: `core_mutations.rs`.

mod common;

use std::sync::{Mutex, OnceLock};

use common::*;
use dn_heap::dump::CoreDump;
use dn_testkit::Runtime;

/// One real core shared by the tests of this file (bytes + the dump it came from).
fn real_core() -> &'static (Vec<u8>, Mutex<Dump>) {
    static CORE: OnceLock<(Vec<u8>, Mutex<Dump>)> = OnceLock::new();
    CORE.get_or_init(|| {
        let d = make_dump(Runtime::Net10, false, 100, "--withheap");
        (std::fs::read(&d.core).expect("read core"), Mutex::new(d))
    })
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("core");
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

#[test]
fn not_a_core_is_a_clear_error() {
    let (_d, p) = write_temp(
        b"hello, this is not an ELF file at all, just some text bytes....................",
    );
    let e = CoreDump::open(&p).unwrap_err().to_string();
    assert!(e.contains("not an ELF core file"), "{e}");
    let (_d2, empty) = write_temp(b"");
    let e = CoreDump::open(&empty).unwrap_err().to_string();
    assert!(e.contains("not an ELF core file"), "{e}");
    let e = CoreDump::open("/nonexistent/dir/core")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot open"), "{e}");
    // An ELF that is not a core (this test binary).
    let exe = std::env::current_exe().unwrap();
    let e = CoreDump::open(&exe).unwrap_err().to_string();
    assert!(e.contains("not ET_CORE"), "{e}");
}

/// `dumpheap -stat` of a core as JSON, or the one-line error.
fn stat_of(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let rt = dn_heap::heap::Runtime::open_core(path, None).map_err(|e| format!("{e:#}"))?;
    let s = dn_heap::commands::Session::new(rt);
    match s.execute("dumpheap -stat") {
        Ok(Some(out)) => Ok(out.to_json()),
        Ok(None) => Err("dumpheap -stat printed nothing".into()),
        Err(e) => Err(format!("{e:#}")),
    }
}

#[test]
fn truncated_cores_fail_cleanly_or_say_what_is_missing() {
    let (bytes, d) = real_core();
    let full = stat_of(&d.lock().unwrap_or_else(|e| e.into_inner()).core).expect("whole core");
    for cut in [
        100usize,
        4096,
        64 << 10,
        bytes.len() / 4,
        bytes.len() / 2,
        bytes.len() - 4096,
    ] {
        let (_d, p) = write_temp(&bytes[..cut]);
        match stat_of(&p) {
            Ok(v) => {
                // A cut core may still hold the whole heap; if it answers without a warning,
                // its answer must be the whole core's answer.
                let warned = v["warnings"].as_array().is_some_and(|w| !w.is_empty());
                if !warned {
                    assert_eq!(
                        (&v["total_objects"], &v["total_bytes"]),
                        (&full["total_objects"], &full["total_bytes"]),
                        "cut at {cut}: a silent answer differs from the whole core's"
                    );
                }
            }
            Err(msg) => {
                assert!(!msg.contains('\n'), "one-line error for cut {cut}: {msg}");
                assert!(
                    msg.contains("truncated"),
                    "the error names the cause for cut {cut}: {msg}"
                );
            }
        }
    }
}

#[test]
fn the_whole_core_still_works_after_the_corruption_tests() {
    let (_, d) = real_core();
    let s = open_session(&d.lock().unwrap_or_else(|e| e.into_inner()));
    let v = s.execute("dumpheap -stat").unwrap().unwrap().to_json();
    assert!(v["total_objects"].as_u64().unwrap() > 100);
}

/// The file offset of `addr` in an ELF64 core: the PT_LOAD segment whose file bytes hold it.
fn file_offset(bytes: &[u8], addr: u64) -> Option<usize> {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    (0..phnum).find_map(|i| {
        let ph = phoff + i * phentsize;
        let is_load = u32::from_le_bytes(bytes[ph..ph + 4].try_into().unwrap()) == 1;
        let (offset, vaddr, filesz) = (u64_at(ph + 8), u64_at(ph + 16), u64_at(ph + 32));
        (is_load && addr >= vaddr && addr - vaddr < filesz)
            .then(|| (offset + addr - vaddr) as usize)
    })
}

#[test]
fn a_type_the_dac_refuses_is_counted_in_the_warnings_not_skipped_silently() {
    let (bytes, d) = real_core();
    let whole = open_session(&d.lock().unwrap_or_else(|e| e.into_inner()));
    let healthy = whole.execute("suspects").unwrap().unwrap().to_json();
    assert_eq!(statics_warnings(&healthy), Vec::<String>::new());
    let found = whole
        .execute("name2ee ConsoleTarget.dll ConsoleTarget.LeakRoot")
        .unwrap()
        .unwrap()
        .to_json();
    let mt = found["modules"][0]["matches"]
        .as_array()
        .expect("name2ee matches")
        .iter()
        .find(|m| m["name"] == "ConsoleTarget.LeakRoot")
        .map(|m| hex(&m["method_table"]))
        .expect("LeakRoot's MethodTable");

    // Zero the head of LeakRoot's MethodTable (flags, sizes, parent, module, class): the DAC
    // refuses it as a MethodTable, so the walk cannot read its static field `Items`.
    let at = file_offset(bytes, mt).expect("the MethodTable is in the core");
    let mut broken = bytes.clone();
    broken[at..at + 48].fill(0);
    let (_dir, p) = write_temp(&broken);
    let rt = dn_heap::heap::Runtime::open_core(&p, None).expect("the broken core opens");
    let s = dn_heap::commands::Session::new(rt);
    let v = s.execute("suspects").unwrap().unwrap().to_json();
    let expected = vec![format!(
        "1 type(s) whose static fields the DAC could not read (first: MT {mt:#x}): their \
         statics (or some of them) are not roots"
    )];
    assert_eq!(statics_warnings(&v), expected, "{v}");
    // gcroot on any object says it too, in JSON and in text.
    let obj = hex(&v["suspects"][0]["address"]);
    let out = s.execute(&format!("gcroot {obj:x}")).unwrap().unwrap();
    assert_eq!(statics_warnings(&out.to_json()), expected);
    assert!(
        out.to_text().contains(&format!("Warning: {}", expected[0])),
        "{}",
        out.to_text()
    );
}
