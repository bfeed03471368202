//! The ECMA-335 metadata the DAC asks for (`GetMetadata`) comes out of real assemblies: every
//! managed assembly of the installed shared framework yields a blob starting with the `BSJB`
//! signature, and native or non-PE files yield nothing (no panic).

use std::path::PathBuf;

use dn_heap::dac::metadata_from_pe_file;

fn shared_framework() -> PathBuf {
    let dotnet = dn_testkit::dotnet();
    let root = dotnet.canonicalize().unwrap_or(dotnet);
    let dir = root.parent().unwrap().join("shared/Microsoft.NETCore.App");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.pop().expect("a shared framework version")
}

#[test]
fn every_framework_assembly_has_its_metadata_found() {
    let dir = shared_framework();
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".dll") && !name.starts_with("Microsoft.DiaSymReader.Native") {
            let md = metadata_from_pe_file(&p).unwrap_or_else(|| panic!("no metadata in {name}"));
            assert!(
                md.starts_with(b"BSJB"),
                "{name}: {:02x?}",
                &md[..4.min(md.len())]
            );
            assert!(md.len() > 64, "{name}");
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "only {checked} assemblies in {}",
        dir.display()
    );
    assert_eq!(metadata_from_pe_file(&dir.join("libcoreclr.so")), None);
    assert_eq!(metadata_from_pe_file(&dir.join("no-such-file.dll")), None);
}
