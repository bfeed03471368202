//! The shared build cache: a folder per build under `<workspace>/target/dn-fixtures`,
//! guarded by a cross-process file lock and keyed by a hash of everything that goes
//! into the build, so parallel test binaries build each fixture once.

use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

/// Bump when the way builds are made changes, to invalidate old caches.
const HARNESS_VERSION: &str = "dn-testkit build 1";

/// Root of the build cache.
pub(crate) fn cache_root() -> PathBuf {
    crate::workspace_root().join("target").join("dn-fixtures")
}

/// An exclusive lock on one cache entry, released on drop (closing the file releases it).
pub(crate) struct EntryLock {
    _file: File,
}

pub(crate) fn lock_entry(root: &Path, key: &str) -> Result<EntryLock> {
    fs::create_dir_all(root).with_context(|| format!("creating build cache {}", root.display()))?;
    let path = root.join(format!("{key}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    // flock() locks are per open file, so threads of one test binary exclude each other too.
    fs4::FileExt::lock(&file).with_context(|| format!("locking {}", path.display()))?;
    Ok(EntryLock { _file: file })
}

/// Source files of a project folder, relative and sorted; skips build outputs and dot files.
pub(crate) fn source_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    collect(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

fn collect(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = base.join(rel);
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str.starts_with('.') || name_str == "bin" || name_str == "obj" {
            continue;
        }
        let rel_child = rel.join(&name);
        if entry.file_type()?.is_dir() {
            collect(base, &rel_child, out)?;
        } else {
            out.push(rel_child);
        }
    }
    Ok(())
}

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
pub(crate) struct StableHash(u64);

impl StableHash {
    pub(crate) fn new() -> Self {
        let mut h = StableHash(0xcbf2_9ce4_8422_2325);
        h.add(HARNESS_VERSION.as_bytes());
        h
    }

    pub(crate) fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }

    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Hash of the source files (names and contents) plus any extra inputs.
pub(crate) fn hash_inputs(dir: &Path, files: &[PathBuf], extra: &[&str]) -> Result<String> {
    let mut h = StableHash::new();
    for e in extra {
        h.add(e.as_bytes());
    }
    for rel in files {
        h.add(rel.to_string_lossy().as_bytes());
        let path = dir.join(rel);
        h.add(&fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(h.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_fields_and_is_stable() {
        let mut a = StableHash::new();
        a.add(b"ab");
        a.add(b"c");
        let mut b = StableHash::new();
        b.add(b"a");
        b.add(b"bc");
        assert_ne!(a.hex(), b.hex());
        let mut c = StableHash::new();
        c.add(b"ab");
        c.add(b"c");
        assert_eq!(a.hex(), c.hex());
    }
}
