//! An output file that is never lost: `collect` writes into a temporary file beside the output
//! (same folder, so the rename is atomic) and gives it the output's name only once the session
//! runs and the first sample is in it. A run that fails before then leaves an existing file
//! exactly as it was, and removes its temporary file.

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
        if path.is_dir() {
            return Err(io::Error::other("it is a directory"));
        }
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
}
