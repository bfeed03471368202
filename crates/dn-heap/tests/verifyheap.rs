//! `verifyheap` on a healthy createdump core (no error, as dotnet-dump says too) and on a copy
//! with one reference field overwritten (the error names that object and field; dotnet-dump
//! finds the same corruption).

mod common;

use common::sos::dotnet_dump;
use common::*;
use dn_testkit::Runtime;

/// File offset of virtual address `addr` in an ELF core (from its PT_LOAD headers).
fn file_offset(core: &[u8], addr: u64) -> usize {
    let u64_at = |o: usize| u64::from_le_bytes(core[o..o + 8].try_into().unwrap());
    let phoff = u64_at(0x20) as usize;
    let phnum = u16::from_le_bytes([core[0x38], core[0x39]]) as usize;
    (0..phnum)
        .map(|i| phoff + i * 56)
        .filter(|&ph| u32::from_le_bytes(core[ph..ph + 4].try_into().unwrap()) == 1)
        .find_map(|ph| {
            let (off, vaddr, filesz) = (u64_at(ph + 8), u64_at(ph + 16), u64_at(ph + 32));
            (addr >= vaddr && addr + 8 <= vaddr + filesz).then(|| (off + addr - vaddr) as usize)
        })
        .expect("the address is in the core")
}

#[test]
fn healthy_heap_then_one_bad_reference() {
    let d = make_dump(Runtime::Net10, false, 200, "--withheap");
    let s = open_session(&d);
    let v = s.execute("verifyheap").unwrap().unwrap().to_json();
    assert_eq!(v["error_count"], 0, "{v}");
    assert!(v["objects"].as_u64().unwrap() > 400, "{v}");
    assert!(v["references"].as_u64().unwrap() > 400, "{v}");
    let theirs = dotnet_dump(&d.core, &["verifyheap".into()]);
    assert!(theirs.contains("No heap corruption detected"), "{theirs}");

    // One LeakedItem's first reference field (Id or Payload) made to point inside an object.
    let items = s
        .execute("dumpheap -type ConsoleTarget.LeakedItem -short")
        .unwrap()
        .unwrap()
        .to_json();
    let item = hex(&items["objects"][100]["address"]);
    drop(s);
    let mut bytes = std::fs::read(&d.core).unwrap();
    let at = file_offset(&bytes, item + 8);
    let old = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_ne!(old, 0);
    bytes[at..at + 8].copy_from_slice(&(old + 8).to_le_bytes());
    let bad = d.dir.path().join("bad.core");
    std::fs::write(&bad, bytes).unwrap();

    let rt = dn_heap::heap::Runtime::open_core(&bad, None).unwrap();
    let s = dn_heap::commands::Session::new(rt);
    let v = s.execute("verifyheap").unwrap().unwrap().to_json();
    assert_eq!(v["error_count"], 1, "{v}");
    let e = &v["errors"][0];
    assert_eq!(e["kind"], "bad_reference", "{v}");
    assert_eq!(hex(&e["object"]), item, "{v}");
    assert_eq!(hex(&e["field"]), item + 8, "{v}");
    let theirs = dotnet_dump(&bad, &["verifyheap".into()]);
    assert!(!theirs.contains("No heap corruption detected"), "{theirs}");
    assert!(
        theirs.to_ascii_lowercase().contains(&format!("{item:x}")),
        "dotnet-dump names another object: {theirs}"
    );
}

/// No false alarm on the other runtimes' healthy heaps (where dotnet-dump finds none either).
#[test]
fn healthy_heaps_net8_net11() {
    for rt in [Runtime::Net8, Runtime::Net11] {
        let d = make_dump(rt, false, 200, "--withheap");
        let s = open_session(&d);
        let v = s.execute("verifyheap").unwrap().unwrap().to_json();
        let theirs = dotnet_dump(&d.core, &["verifyheap".into()]);
        assert!(theirs.contains("No heap corruption detected"), "{theirs}");
        assert_eq!(v["error_count"], 0, "{}: {v}", rt.label());
        assert!(v["references"].as_u64().unwrap() > 400, "{v}");
    }
}
