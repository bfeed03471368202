//! Bad input, checked before any long work, and the output written whole or not at all.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use dn_counters::output::{Committed, PendingFile};

/// What an INPUT file is, from its first bytes and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// An ELF core.
    Core,
    /// A `.gcdump` snapshot (nettrace / FastSerialization).
    GcDump,
    Other,
}

pub fn input_kind(path: &Path) -> anyhow::Result<InputKind> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        bail!("{} is a directory, not a dump", path.display());
    }
    let mut head = [0u8; 32];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    let head = &head[..n];
    let by_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gcdump"));
    Ok(if head.starts_with(b"\x7fELF") {
        InputKind::Core
    } else if by_name || head.starts_with(b"Nettrace") || contains(head, b"FastSerialization") {
        InputKind::GcDump
    } else {
        InputKind::Other
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Fails unless `path` is a core dump, with the reason in one line.
pub fn check_input(path: &Path, role: &str) -> anyhow::Result<()> {
    match input_kind(path)? {
        InputKind::Core => Ok(()),
        InputKind::GcDump => bail!(
            "{role} {} is a .gcdump snapshot: .gcdump files are not supported yet by dn-dump report (give it a core dump from dn-dump collect)",
            path.display()
        ),
        InputKind::Other => bail!(
            "{role} {} is not a core dump (no ELF header)",
            path.display()
        ),
    }
}

/// Checks where the page will go: the directory exists, the file does not (unless `force`).
pub fn check_output(path: &Path, force: bool) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!(
            "cannot write {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!("cannot write {}: it is a directory", path.display());
    }
    if !force && path.symlink_metadata().is_ok() {
        bail!(
            "{} exists: use --force to replace it, or -o to write elsewhere",
            path.display()
        );
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` whole or not at all (dn-counters' [`PendingFile`]: a temporary
/// file beside the output, then a rename with `force`, else a link that fails if the name
/// exists).
pub fn write_atomically(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    check_output(path, force)?;
    let cannot = || format!("cannot write {}", path.display());
    let mut pending = PendingFile::create(path).with_context(cannot)?;
    let mut file = pending.writer().with_context(cannot)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(cannot)?;
    if force {
        pending.commit_replacing().with_context(cannot)?;
    } else if pending.commit_if_absent().with_context(cannot)? == Committed::KeptExisting {
        bail!(
            "{} exists: use --force to replace it, or -o to write elsewhere",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_content_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let core = dir.path().join("core.1");
        std::fs::write(&core, b"\x7fELF\x02\x01\x01").unwrap();
        assert_eq!(input_kind(&core).unwrap(), InputKind::Core);
        let gc = dir.path().join("x.gcdump");
        std::fs::write(&gc, b"Nettrace\x00\x00!FastSerialization.1").unwrap();
        assert_eq!(input_kind(&gc).unwrap(), InputKind::GcDump);
        let msg = check_input(&gc, "INPUT").unwrap_err().to_string();
        assert!(
            msg.contains(".gcdump") && msg.contains("not supported yet"),
            "{msg}"
        );
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, b"hello").unwrap();
        assert!(check_input(&txt, "INPUT").is_err());
        assert!(check_input(&dir.path().join("missing"), "INPUT").is_err());
        assert!(check_input(dir.path(), "INPUT").is_err());
    }

    #[test]
    fn written_whole_refused_when_present_replaced_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.html");
        write_atomically(&out, b"one", false).unwrap();
        let err = write_atomically(&out, b"two", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), b"one");
        write_atomically(&out, b"two", true).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"two");
        let missing = dir.path().join("nope/r.html");
        let err = check_output(&missing, true).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        // Nothing but the page is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
