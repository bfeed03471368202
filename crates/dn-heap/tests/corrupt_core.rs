//! Bad input gives a clear one-line error, never a panic: truncated and mutated cores,
//! files that are not cores.

mod common;

use std::sync::{Mutex, OnceLock};

use common::*;
use dn_heap::dump::CoreDump;
use dn_heap::memory::MemorySource;
use dn_testkit::Runtime;
use proptest::prelude::*;

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

#[test]
fn truncated_cores_fail_cleanly_or_still_work() {
    let (bytes, _) = real_core();
    for cut in [
        100usize,
        4096,
        64 << 10,
        bytes.len() / 4,
        bytes.len() / 2,
        bytes.len() - 4096,
    ] {
        let (_d, p) = write_temp(&bytes[..cut]);
        match dn_heap::heap::Runtime::open_core(&p, None) {
            Ok(rt) => {
                let s = dn_heap::commands::Session::new(rt);
                // Must not panic; a short heap gives warnings or fewer objects.
                let _ = s.execute("dumpheap -stat");
            }
            Err(e) => {
                let msg = format!("{e:#}");
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random byte changes in the headers and notes never panic the reader.
    #[test]
    fn mutated_headers_never_panic(muts in proptest::collection::vec((0usize..65536, any::<u8>()), 1..64)) {
        let (bytes, _) = real_core();
        let mut b = bytes[..(256 << 10).min(bytes.len())].to_vec();
        for (at, v) in muts {
            let i = at % b.len();
            b[i] = v;
        }
        let (_d, p) = write_temp(&b);
        if let Ok(core) = CoreDump::open(&p) {
            let _ = core.modules();
            let _ = core.threads().len();
            let mut buf = [0u8; 64];
            for m in core.file_mappings().iter().take(16) {
                let _ = core.read(m.start, &mut buf);
            }
            let _ = core.read(u64::MAX - 8, &mut buf);
        }
    }
}
