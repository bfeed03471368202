//! The output file: created exclusively (never overwrites, never follows a
//! symlink), mode 0600, removed again unless the dump completes. Data is
//! written sparsely: all-zero pages are never written, they stay holes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::CollectError;
use crate::maps::PAGE;

pub struct OutputFile {
    file: File,
    path: PathBuf,
    keep: bool,
}

impl OutputFile {
    pub fn create(path: &Path) -> Result<Self, CollectError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => CollectError::OutputExists(path.to_path_buf()),
                _ => CollectError::CreateOutput {
                    path: path.to_path_buf(),
                    source: e,
                },
            })?;
        let out = OutputFile {
            file,
            path: path.to_path_buf(),
            keep: false,
        };
        // The umask may have cleared bits but never adds any; make it exact.
        out.file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CollectError::write(path, e))?;
        Ok(out)
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), CollectError> {
        self.file
            .write_all_at(data, offset)
            .map_err(|e| CollectError::write(&self.path, e))
    }

    /// Writes `data` at `offset`, skipping whole pages of zeros (left as holes).
    /// `data` and `offset` are page-aligned in practice; a partial last page is
    /// handled like a full one.
    pub fn write_sparse(&self, offset: u64, data: &[u8]) -> Result<u64, CollectError> {
        let page = PAGE as usize;
        let mut written = 0u64;
        let mut run_start: Option<usize> = None;
        let mut i = 0;
        while i < data.len() {
            let end = (i + page).min(data.len());
            let zero = is_zero(&data[i..end]);
            match (zero, run_start) {
                (false, None) => run_start = Some(i),
                (true, Some(s)) => {
                    self.write_at(offset + s as u64, &data[s..i])?;
                    written += (i - s) as u64;
                    run_start = None;
                }
                _ => {}
            }
            i = end;
        }
        if let Some(s) = run_start {
            self.write_at(offset + s as u64, &data[s..])?;
            written += (data.len() - s) as u64;
        }
        Ok(written)
    }

    /// Sets the logical size (trailing holes) and hands the file to the
    /// invoking user when run through sudo.
    pub fn finish(mut self, size: u64) -> Result<(PathBuf, u64), CollectError> {
        self.file
            .set_len(size)
            .map_err(|e| CollectError::write(&self.path, e))?;
        chown_to_sudo_user(&self.file);
        let blocks = self.file.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
        self.keep = true;
        Ok((self.path.clone(), blocks))
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// All-zero test over 16-byte words (early exit on the first non-zero word).
fn is_zero(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(16);
    words
        .by_ref()
        .all(|w| u128::from_ne_bytes(w.try_into().unwrap()) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

/// When root runs us through sudo, the dump belongs to the user who asked.
fn chown_to_sudo_user(file: &File) {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let id = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
        let _ = nix::unistd::fchown(file, Some(uid.into()), Some(gid.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_existing_file_and_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("core");
        std::fs::write(&p, b"keep").unwrap();
        assert!(matches!(
            OutputFile::create(&p),
            Err(CollectError::OutputExists(_))
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"keep");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert!(OutputFile::create(&link).is_err());
        assert!(!dir.path().join("target").exists());
    }

    #[test]
    fn removed_unless_finished_and_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("core");
        {
            let f = OutputFile::create(&p).unwrap();
            f.write_at(0, b"x").unwrap();
        }
        assert!(!p.exists());
        let f = OutputFile::create(&p).unwrap();
        let mut data = vec![0u8; 64 * PAGE as usize];
        data[5] = 1;
        data[40 * PAGE as usize] = 2;
        assert_eq!(f.write_sparse(0, &data).unwrap(), 2 * PAGE);
        let (path, on_disk) = f.finish(1 << 30).unwrap();
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(md.len(), 1 << 30);
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        assert!(on_disk < 1 << 20, "sparse: {on_disk}");
        let back = std::fs::read(&path).unwrap();
        assert_eq!(&back[..data.len()], &data[..]);
    }
}
