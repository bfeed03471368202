//! Where the copier's chunks go. Streaming ([`WriteBehind`]) writes them to
//! the file while the target is stopped; staging ([`Staged`]) copies them into
//! the pre-faulted [`Arena`] and writes them once the target runs again,
//! streaming only what does not fit. File pages the target never touched are
//! not copied at all while it is stopped: they are the file's bytes, read after
//! the resume.

use crate::error::CollectError;
use crate::output::OutputFile;
use crate::writeback::WriteBehind;

/// Fills a chunk's buffer; returns whether it holds data (false: leave a hole).
pub type Fill<'f> = dyn FnMut(&mut [u8]) -> Result<bool, CollectError> + 'f;

pub trait Sink {
    /// Copies `len` bytes destined for file offset `at`, filled by `fill`.
    fn chunk(&mut self, at: u64, len: usize, fill: &mut Fill<'_>) -> Result<(), CollectError>;

    /// Offers untouched pages of a private file mapping (`map`, `addr`, `len`) to be read from
    /// the file after the resume; false if they must be copied now.
    fn defer(&mut self, _at: u64, _map: usize, _addr: u64, _len: usize) -> bool {
        false
    }
}

impl Sink for WriteBehind<'_> {
    fn chunk(&mut self, at: u64, len: usize, fill: &mut Fill<'_>) -> Result<(), CollectError> {
        let mut buf = self.buffer()?;
        if fill(&mut buf[..len])? {
            self.write(at, buf, len)
        } else {
            self.give_back(buf);
            Ok(())
        }
    }
}

/// A run of file pages to read after the resume.
#[derive(Debug, Clone, Copy)]
pub struct Deferred {
    pub at: u64,
    pub map: usize,
    pub addr: u64,
    pub len: usize,
}

/// A chunk held in the arena: `len` bytes at arena offset `from`, for file offset `at`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    at: u64,
    from: usize,
    len: usize,
}

/// Staging into the arena, streaming through `overflow` once it is full.
pub struct Staged<'a, 's> {
    arena: &'a mut [u8],
    used: usize,
    pieces: Vec<Piece>,
    pub deferred: Vec<Deferred>,
    overflow: WriteBehind<'s>,
    /// Bytes streamed while stopped because the arena was full.
    pub streamed_bytes: u64,
}

impl<'a, 's> Staged<'a, 's> {
    pub fn new(arena: &'a mut [u8], overflow: WriteBehind<'s>) -> Self {
        Staged {
            arena,
            used: 0,
            pieces: Vec::new(),
            deferred: Vec::new(),
            overflow,
            streamed_bytes: 0,
        }
    }

    pub fn staged_bytes(&self) -> u64 {
        self.used as u64
    }

    /// Waits for the streamed part (still while stopped: its writes must not fail unseen).
    /// Returns the staged part, to be written after the resume.
    pub fn finish_streaming(self) -> (Result<(), CollectError>, Staging<'a>) {
        let r = self.overflow.finish();
        let staging = Staging {
            arena: self.arena,
            pieces: self.pieces,
            deferred: self.deferred,
        };
        (r, staging)
    }
}

impl Sink for Staged<'_, '_> {
    fn chunk(&mut self, at: u64, len: usize, fill: &mut Fill<'_>) -> Result<(), CollectError> {
        let end = self
            .used
            .checked_add(len)
            .filter(|&e| e <= self.arena.len());
        let Some(end) = end else {
            self.streamed_bytes += len as u64;
            return self.overflow.chunk(at, len, fill);
        };
        if fill(&mut self.arena[self.used..end])? {
            self.pieces.push(Piece {
                at,
                from: self.used,
                len,
            });
            self.used = end;
        }
        Ok(())
    }

    fn defer(&mut self, at: u64, map: usize, addr: u64, len: usize) -> bool {
        self.deferred.push(Deferred { at, map, addr, len });
        true
    }
}

/// What is left to write once the target runs again.
pub struct Staging<'a> {
    arena: &'a mut [u8],
    pieces: Vec<Piece>,
    pub deferred: Vec<Deferred>,
}

impl Staging<'_> {
    /// Writes the arena's pieces (sparsely); `progress(bytes)` after each.
    pub fn write_pieces(
        &self,
        out: &OutputFile,
        progress: &mut dyn FnMut(u64) -> Result<(), CollectError>,
    ) -> Result<(), CollectError> {
        // The arena is page-aligned and so are the pieces: write them past the page cache where
        // the file system allows, so that the dump does not need as much fresh memory again.
        let direct = out.direct();
        for p in &self.pieces {
            let data = &self.arena[p.from..p.from + p.len];
            match &direct {
                Some(d) => d.write_sparse(p.at, data)?,
                None => out.write_sparse(p.at, data)?,
            };
            progress(p.len as u64)?;
        }
        Ok(())
    }
}
