//! The output file. It is written unnamed (`O_TMPFILE`) in the destination directory and
//! linked under its final name only once complete, so no partial dump ever carries the final
//! name, not even after a SIGKILL (the kernel frees an unlinked file with its last
//! descriptor). Where the file system has no `O_TMPFILE`, a hidden `.NAME.partial-PID` file
//! takes its place and is removed on every path but SIGKILL. Never overwrites, never follows
//! a symlink, mode 0600. Data is written sparsely: all-zero pages stay holes.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, AT_FDCWD};

use crate::error::CollectError;
use crate::maps::PAGE;

pub struct OutputFile {
    file: File,
    /// The final name.
    path: PathBuf,
    /// The hidden name written to when `O_TMPFILE` is not available.
    partial: Option<PathBuf>,
}

impl OutputFile {
    pub fn create(path: &Path) -> Result<Self, CollectError> {
        // Checked now so that a dump is not taken for nothing; checked again when linking.
        if path.symlink_metadata().is_ok() {
            return Err(CollectError::OutputExists(path.to_path_buf()));
        }
        let create_err = |source| CollectError::CreateOutput {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let unnamed = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir);
        let (file, partial) = match unnamed {
            Ok(f) => (f, None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&partial)
                    .map_err(create_err)?;
                (f, Some(partial))
            }
            Err(e) => return Err(create_err(e)),
        };
        let out = OutputFile {
            file,
            path: path.to_path_buf(),
            partial,
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

    /// Reads the file's bytes at `offset` into `buf` (holes and bytes past the end read as zero).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CollectError> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Err(CollectError::write(&self.path, e)),
            }
        }
        buf[done..].fill(0);
        Ok(())
    }

    /// Turns `[offset, offset + len)` into a hole (reads as zeros, takes no space).
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<(), CollectError> {
        use nix::fcntl::{fallocate, FallocateFlags};
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(CollectError::write(
                &self.path,
                std::io::Error::from_raw_os_error(libc::EFBIG),
            ));
        };
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&self.file, flags, off, n) {
            Ok(()) => Ok(()),
            // No hole punching here: write the zeros.
            Err(Errno::EOPNOTSUPP) => {
                let zeros = vec![0u8; PAGE as usize];
                let mut at = offset;
                while at < offset + len {
                    let k = (offset + len - at).min(PAGE) as usize;
                    self.write_at(at, &zeros[..k])?;
                    at += k as u64;
                }
                Ok(())
            }
            Err(e) => Err(CollectError::write(&self.path, e.into())),
        }
    }

    /// Writes `data` at `offset`, skipping whole pages of zeros (left as holes).
    /// `data` and `offset` are page-aligned in practice; a partial last page is
    /// handled like a full one.
    pub fn write_sparse(&self, offset: u64, data: &[u8]) -> Result<u64, CollectError> {
        sparse_runs(offset, data, &mut |at, run| self.write_at(at, run))
    }

    /// A second descriptor on the file that bypasses the page cache (`O_DIRECT`), for writing
    /// page-aligned memory after the target runs again without filling the page cache with
    /// fresh pages; `None` where the file system refuses it (tmpfs).
    pub fn direct(&self) -> Option<DirectFile<'_>> {
        let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(fd)
            .ok()?;
        Some(DirectFile { file, out: self })
    }

    /// Sets the logical size (trailing holes), hands the file to the invoking user when run
    /// through sudo, and gives it its final name (failing if that name appeared meanwhile).
    pub fn finish(self, size: u64) -> Result<(PathBuf, u64), CollectError> {
        self.file
            .set_len(size)
            .map_err(|e| CollectError::write(&self.path, e))?;
        chown_to_sudo_user(&self.file);
        let blocks = self.file.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
        let linked = match &self.partial {
            None => {
                let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                nix::unistd::linkat(
                    AT_FDCWD,
                    fd.as_str(),
                    AT_FDCWD,
                    &self.path,
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
            }
            Some(p) => nix::unistd::linkat(AT_FDCWD, p, AT_FDCWD, &self.path, AtFlags::empty()),
        };
        match linked {
            Ok(()) => {}
            Err(Errno::EEXIST) => return Err(CollectError::OutputExists(self.path.clone())),
            Err(e) => return Err(CollectError::write(&self.path, e.into())),
        }
        Ok((self.path.clone(), blocks))
    }
}

/// See [`OutputFile::direct`].
pub struct DirectFile<'a> {
    file: File,
    out: &'a OutputFile,
}

impl DirectFile<'_> {
    /// As [`OutputFile::write_sparse`]; `data` and `offset` must be page-aligned (a run the
    /// device refuses is written through the page cache instead).
    pub fn write_sparse(&self, offset: u64, data: &[u8]) -> Result<u64, CollectError> {
        sparse_runs(
            offset,
            data,
            &mut |at, run| match self.file.write_all_at(run, at) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.out.write_at(at, run),
                Err(e) => Err(CollectError::write(&self.out.path, e)),
            },
        )
    }
}

/// Writes one run of bytes at a file offset.
type WriteRun<'w> = dyn FnMut(u64, &[u8]) -> Result<(), CollectError> + 'w;

/// Calls `write` for each run of `data` that is not whole pages of zeros; returns the bytes
/// written.
fn sparse_runs(offset: u64, data: &[u8], write: &mut WriteRun<'_>) -> Result<u64, CollectError> {
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
                write(offset + s as u64, &data[s..i])?;
                written += (i - s) as u64;
                run_start = None;
            }
            _ => {}
        }
        i = end;
    }
    if let Some(s) = run_start {
        write(offset + s as u64, &data[s..])?;
        written += (data.len() - s) as u64;
    }
    Ok(written)
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // The unnamed file needs nothing: it vanishes with its descriptor.
        if let Some(p) = &self.partial {
            let _ = std::fs::remove_file(p);
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
        f.write_at(0, b"x").unwrap();
        assert!(
            !p.exists(),
            "no file under the final name before it is complete"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
