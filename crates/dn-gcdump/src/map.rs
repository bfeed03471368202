//! A `.gcdump` file's bytes, memory-mapped: reading a 100 MB file into a fresh buffer costs more
//! than parsing it (a page fault per page of new memory, then a copy), while a read-only mapping
//! of the page cache costs neither.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

/// The whole file, mapped (or read, where it cannot be mapped: an empty file, a pipe).
pub enum FileBytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Read(v) => v,
        }
    }
}

/// Opens `path` for reading as one byte slice.
pub fn open(path: &Path) -> std::io::Result<FileBytes> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() || file.metadata()?.len() == 0 {
        return std::fs::read(path).map(FileBytes::Read);
    }
    // SAFETY: a read-only, private mapping of a regular file we opened; the slice lives no longer
    // than the mapping (it borrows the `FileBytes`). The one thing Rust cannot promise is that no
    // other process truncates or rewrites the file meanwhile: a truncation ends our process with
    // SIGBUS (no wrong result is printed), a rewrite changes bytes the reader then checks like
    // any other input (every offset and length is bounds-checked), so neither reads outside the
    // mapping. `dn-heap::dump` maps cores on the same terms.
    #[allow(unsafe_code)]
    let mapped = unsafe { memmap2::Mmap::map(&file) };
    match mapped {
        Ok(m) => Ok(FileBytes::Mapped(m)),
        Err(_) => std::fs::read(path).map(FileBytes::Read),
    }
}
