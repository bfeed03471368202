//! The runtime's version and its DAC when the dump has left the machine it was taken on: a copy
//! of a real core whose NT_FILE note names a runtime folder that does not exist. The version
//! must still come out right (from libcoreclr's data in the dump), the DAC must be found in a
//! symbol folder (flat or symbol-store layout) or fetched from an http symbol server, a DAC of
//! another build must be refused, and `--dac` must force one.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use dn_heap::dac::DacSearch;
use dn_heap::heap::Runtime as DnRuntime;
use dn_testkit::Runtime;

/// The symbol-store key of a DAC, spelled out here independently of the product's code.
fn store_key(coreclr_build_id: &str) -> String {
    format!("libmscordaccore.so/elf-buildid-coreclr-{coreclr_build_id}/libmscordaccore.so")
}

/// A copy of `d`'s core whose NT_FILE note names a runtime folder that does not exist (same
/// length, so the note's layout is unchanged), as if the dump had moved to another machine.
/// Returns the copy and the folder the original named.
fn moved_core(d: &Dump) -> (PathBuf, String) {
    let dump = dn_heap::dump::CoreDump::open(&d.core).expect("core");
    let coreclr = dump
        .modules()
        .into_iter()
        .find(|m| m.path.ends_with("/libcoreclr.so"))
        .expect("libcoreclr.so in the core")
        .path;
    let folder = coreclr.trim_end_matches("/libcoreclr.so").to_string();
    let fake = format!("/{}", "x".repeat(folder.len() - 1));
    assert!(!Path::new(&fake).exists());
    let mut bytes = std::fs::read(&d.core).expect("reading the core");
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phnum) = (u64_at(&bytes, 0x20), u16_at(&bytes, 0x38));
    let mut replaced = 0;
    for i in 0..phnum {
        let ph = phoff + i * 56;
        if u32::from_le_bytes(bytes[ph..ph + 4].try_into().unwrap()) != 4 {
            continue; // not PT_NOTE
        }
        let (off, size) = (u64_at(&bytes, ph + 8), u64_at(&bytes, ph + 32));
        let note = &mut bytes[off..off + size];
        let mut at = 0;
        while let Some(p) = note[at..]
            .windows(folder.len())
            .position(|w| w == folder.as_bytes())
        {
            note[at + p..at + p + folder.len()].copy_from_slice(fake.as_bytes());
            at += p + folder.len();
            replaced += 1;
        }
    }
    assert!(
        replaced > 0,
        "the runtime folder is not in the core's notes"
    );
    let copy = d.dir.path().join("moved.core");
    std::fs::write(&copy, bytes).expect("writing the moved core");
    (copy, folder)
}

/// The text after `@(#)Version ` in a file (the runtime's own version string).
fn version_text_of(file: &Path) -> String {
    let data = std::fs::read(file).unwrap();
    let marker = b"@(#)Version ";
    let i = data
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("a version string")
        + marker.len();
    let end = data[i..].iter().position(|&b| b == 0).unwrap() + i;
    String::from_utf8(data[i..end].to_vec()).unwrap()
}

fn search() -> DacSearch {
    DacSearch {
        installed: false,
        ..DacSearch::default()
    }
}

fn open(core: &Path, s: &DacSearch) -> Result<dn_heap::commands::Session, String> {
    DnRuntime::open_core_with(core, s)
        .map(dn_heap::commands::Session::new)
        .map_err(|e| format!("{e:#}"))
}

fn eeversion(s: &dn_heap::commands::Session) -> serde_json::Value {
    s.execute("eeversion").unwrap().unwrap().to_json()
}

/// The heap is read through the DAC found: the leaked items are all there.
fn assert_heap_readable(s: &dn_heap::commands::Session, leaked: u64) {
    let v = s
        .execute("dumpheap -stat -type ConsoleTarget.LeakedItem")
        .unwrap()
        .unwrap()
        .to_json();
    let count: u64 = v["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "ConsoleTarget.LeakedItem")
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, leaked);
}

fn moved_runtime(rt: Runtime) {
    let d = make_dump(rt, false, 40, "--withheap");
    let (core, folder) = moved_core(&d);
    let coreclr = Path::new(&folder).join("libcoreclr.so");
    let want = version_text_of(&coreclr);
    let build_id = {
        let out = Command::new("readelf")
            .args(["-n", coreclr.to_str().unwrap()])
            .output()
            .expect("readelf");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Build ID: "))
            .expect("readelf names a build id")
            .trim()
            .to_string()
    };

    // Nowhere to look: one line naming what was looked for and where.
    let e = open(&core, &search()).err().expect("no DAC to be found");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains(&build_id), "{e}");
    assert!(
        e.contains(&format!("/{}", "x".repeat(folder.len() - 1))),
        "{e}"
    );
    assert!(e.contains("--symbol-path"), "{e}");

    // Symbol-store layout.
    let store = tempfile::tempdir().unwrap();
    let keyed = store.path().join(store_key(&build_id));
    std::fs::create_dir_all(keyed.parent().unwrap()).unwrap();
    std::fs::copy(&d.dac, &keyed).unwrap();
    let mut s = search();
    s.symbol_paths.push(store.path().to_path_buf());
    let session = open(&core, &s).expect("DAC from the symbol store");
    let v = eeversion(&session);
    assert_eq!(v["dac_source"], "symbol_store", "{v}");
    // createdump's heap dumps leave libcoreclr's data pages out: the version comes from the
    // DAC the build id found.
    assert_eq!(v["version_from"], "matched_dac", "{v}");
    assert_eq!(v["version_string"], want.as_str(), "{v}");
    assert_eq!(
        v["file_version"],
        want.split_whitespace().next().unwrap(),
        "{v}"
    );
    if rt == Runtime::Net10 {
        // Framework-dependent: the folder the dump named is the product version.
        let product = Path::new(&folder).file_name().unwrap().to_str().unwrap();
        assert!(
            product.starts_with("10."),
            "{folder} is not a shared runtime folder"
        );
        // The dump names a folder that no longer exists; its name was replaced too, so the
        // product version comes from the version string alone.
        assert_eq!(v["product_version"], product, "{v}");
    }
    assert_heap_readable(&session, 40);
    drop(session);

    // Flat, beside a copy of its libcoreclr.so: tied by the build id of that file.
    let flat = tempfile::tempdir().unwrap();
    std::fs::copy(&d.dac, flat.path().join("libmscordaccore.so")).unwrap();
    std::fs::copy(&coreclr, flat.path().join("libcoreclr.so")).unwrap();
    let mut s = search();
    s.symbol_paths.push(flat.path().to_path_buf());
    let session = open(&core, &s).expect("DAC from a runtime folder's copy");
    assert_eq!(eeversion(&session)["dac_source"], "symbol_path_runtime");
    assert_heap_readable(&session, 40);
    drop(session);

    // The DAC alone in a flat folder: this dump holds no version string to compare with,
    // so nothing ties the DAC to it: refused, saying where to file it.
    std::fs::remove_file(flat.path().join("libcoreclr.so")).unwrap();
    let e = open(&core, &s).err().expect("an untied DAC must not load");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("nothing ties it to the runtime"), "{e}");
    assert!(e.contains(&store_key(&build_id)), "{e}");
}

#[test]
fn moved_runtime_net8() {
    moved_runtime(Runtime::Net8);
}

#[test]
fn moved_runtime_net10() {
    moved_runtime(Runtime::Net10);
}

#[test]
fn a_dac_of_another_build_is_refused_and_dac_forces_it() {
    let d = make_dump(Runtime::Net8, false, 30, "--withheap");
    let (core, _) = moved_core(&d);
    // A folder holding another runtime (.NET 10's libcoreclr.so and DAC).
    let net10 = dn_testkit::build(dn_testkit::Fixture::Console, Runtime::Net10)
        .expect("the .NET 10 runtime")
        .runtime_dir;
    let other = tempfile::tempdir().unwrap();
    for f in ["libcoreclr.so", "libmscordaccore.so"] {
        std::fs::copy(net10.join(f), other.path().join(f)).unwrap();
    }
    let mut s = search();
    s.symbol_paths.push(other.path().to_path_buf());
    let e = open(&core, &s)
        .err()
        .expect("a DAC of another build must not load");
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.contains(&format!(
            "{} not loaded: the libcoreclr.so beside it has build id",
            other.path().join("libmscordaccore.so").display()
        )),
        "{e}"
    );

    // --dac loads what it is given: here the right DAC, in a folder whose libcoreclr.so says
    // otherwise, so it comes with a warning.
    let forced = other.path().join("forced");
    std::fs::create_dir(&forced).unwrap();
    std::fs::copy(&d.dac, forced.join("libmscordaccore.so")).unwrap();
    std::fs::copy(net10.join("libcoreclr.so"), forced.join("libcoreclr.so")).unwrap();
    let mut s = search();
    s.explicit = Some(forced.join("libmscordaccore.so"));
    let session = open(&core, &s).expect("--dac forces the DAC");
    let v = eeversion(&session);
    assert_eq!(v["dac_source"], "explicit", "{v}");
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("loaded because --dac says so")),
        "{v}"
    );
    // A forced DAC does not vouch for the version.
    assert!(v["version_string"].is_null(), "{v}");
    assert_heap_readable(&session, 30);
}

/// `python3 -m http.server` serving `dir`, stopped on drop.
struct HttpServer {
    child: Child,
    url: String,
}

impl HttpServer {
    fn serve(dir: &Path) -> HttpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed to serve a symbol store over http");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the http server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dac_from_an_http_symbol_server() {
    let d = make_dump(Runtime::Net10, false, 20, "--withheap");
    let (core, _) = moved_core(&d);
    let dump = dn_heap::dump::CoreDump::open(&d.core).unwrap();
    let build_id = dn_heap::dac::runtime_module(&dump)
        .unwrap()
        .build_id
        .expect("build id");
    let served = tempfile::tempdir().unwrap();
    let keyed = served.path().join(store_key(&build_id));
    std::fs::create_dir_all(keyed.parent().unwrap()).unwrap();
    std::fs::copy(&d.dac, &keyed).unwrap();
    let server = HttpServer::serve(served.path());
    let cache = tempfile::tempdir().unwrap();

    let mut s = search();
    s.symbol_server = Some(server.url.clone());
    s.cache = Some(cache.path().to_path_buf());
    let session = open(&core, &s).expect("DAC from the symbol server");
    let v = eeversion(&session);
    assert_eq!(v["dac_source"], "symbol_server", "{v}");
    let cached = cache.path().join(store_key(&build_id));
    assert_eq!(v["dac_path"], cached.to_str().unwrap(), "{v}");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&d.dac).unwrap()
    );
    assert_heap_readable(&session, 20);
    drop(session);

    // A server without it: 404, said in the one error line; nothing left in the cache.
    let empty = tempfile::tempdir().unwrap();
    let server = HttpServer::serve(empty.path());
    let cache = tempfile::tempdir().unwrap();
    let mut s = search();
    s.symbol_server = Some(server.url.clone());
    s.cache = Some(cache.path().to_path_buf());
    let e = open(&core, &s).err().expect("not on the server");
    assert!(e.contains("HTTP 404"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    let left: Vec<_> = walk(cache.path());
    assert!(left.is_empty(), "files left in the cache: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn analyze_takes_symbol_path_from_the_command_line() {
    let d = make_dump(Runtime::Net10, false, 10, "--withheap");
    let (core, _) = moved_core(&d);
    let (store, build_id) = (tempfile::tempdir().unwrap(), {
        let dump = dn_heap::dump::CoreDump::open(&d.core).unwrap();
        dn_heap::dac::runtime_module(&dump)
            .unwrap()
            .build_id
            .unwrap()
    });
    let keyed = store.path().join(store_key(&build_id));
    std::fs::create_dir_all(keyed.parent().unwrap()).unwrap();
    std::fs::copy(&d.dac, &keyed).unwrap();
    let args = dn_heap::cli::AnalyzeArgs {
        dump: Some(core),
        pid: None,
        commands: vec!["eeversion".into()],
        json: true,
        dac: None,
        symbol_path: vec![store.path().to_path_buf()],
        symbol_server: None,
    };
    let mut out = Vec::new();
    dn_heap::cli::run_with(args, false, &mut std::io::empty(), &mut out).expect("analyze");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON line");
    assert_eq!(v["dac_source"], "symbol_store", "{v}");
}
