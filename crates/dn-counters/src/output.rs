//! An output file that is never lost: `collect` writes into a temporary file beside the output
//! (same folder, so the rename is atomic) and gives it the output's name only once the session
//! runs and the first sample is in it. A run that fails before then leaves an existing file
//! exactly as it was, and removes its temporary file. Outputs that are not regular files
//! (`/dev/stdout`, `/dev/null`, a FIFO) are written in place: there is nothing to lose in them,
//! and replacing them would be a disaster. A symbolic link keeps pointing where it did: the file
//! it points to is the one replaced.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub struct PendingFile {
    path: PathBuf,
    temp: PathBuf,
    file: File,
    committed: bool,
}

/// What [`PendingFile::commit_if_absent`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Written,
    /// The output existed and was left untouched; the temporary file is gone.
    KeptExisting,
}

impl PendingFile {
    /// Creates the temporary file for `path`; the output itself is not touched.
    pub fn create(path: &Path) -> io::Result<PendingFile> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(io::Error::other("it is a directory")),
            Ok(m) if !m.is_file() => {
                let file = OpenOptions::new().write(true).open(path)?;
                return Ok(PendingFile {
                    path: path.to_path_buf(),
                    temp: PathBuf::new(),
                    file,
                    committed: true,
                });
            }
            _ => {}
        }
        let resolved;
        let path = if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
            resolved = std::fs::canonicalize(path)?;
            resolved.as_path()
        } else {
            path
        };
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("not a file name"))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let temp = dir.join(format!(
            ".{}.{}.part",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(PendingFile {
            path: path.to_path_buf(),
            temp,
            file,
            committed: false,
        })
    }

    /// A handle on the file to write to; stays valid after the rename.
    pub fn writer(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    pub fn is_committed(&self) -> bool {
        self.committed
    }

    /// Gives the written file the output's name, replacing an existing file in one step.
    pub fn commit_replacing(&mut self) -> io::Result<()> {
        if !self.committed {
            std::fs::rename(&self.temp, &self.path)?;
            self.committed = true;
        }
        Ok(())
    }

    /// Gives the written file the output's name only if no file has that name.
    pub fn commit_if_absent(&mut self) -> io::Result<Committed> {
        if self.committed {
            return Ok(Committed::Written);
        }
        // A hard link fails if the name exists: no window in which an existing file is replaced.
        match std::fs::hard_link(&self.temp, &self.path) {
            Ok(()) => {
                self.committed = true;
                let _ = std::fs::remove_file(&self.temp);
                Ok(Committed::Written)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Committed::KeptExisting),
            Err(e) => Err(e),
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn existing_file_untouched_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c.csv");
        std::fs::write(&out, b"old").unwrap();
        let mut p = PendingFile::create(&out).unwrap();
        p.writer().unwrap().write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(p.commit_if_absent().unwrap(), Committed::KeptExisting);
        p.commit_replacing().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Dropped without commit: the temporary file goes, the output stays.
        let p = PendingFile::create(&out).unwrap();
        p.writer().unwrap().write_all(b"lost").unwrap();
        drop(p);
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn special_files_and_links_are_never_replaced() {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut p = PendingFile::create(&fifo).unwrap();
        p.writer().unwrap().write_all(b"data").unwrap();
        p.commit_replacing().unwrap();
        drop(p);
        let m = std::fs::symlink_metadata(&fifo).unwrap();
        assert!(m.file_type().is_fifo(), "the FIFO is still a FIFO");
        let real = dir.path().join("real.csv");
        let link = dir.path().join("link.csv");
        std::fs::write(&real, b"old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut p = PendingFile::create(&link).unwrap();
        p.writer().unwrap().write_all(b"new").unwrap();
        p.commit_replacing().unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
    }
}
