//! During the stop of a pre-copied dump: where each finally selected region's bytes go in the
//! file ([`place`]), and bringing the pre-copied bytes up to date ([`Refresh`]).
//!
//! A final region lying over pre-copied addresses of the same mapping (same file and offset,
//! or both anonymous and private) keeps the pre-copied bytes' place in the file; the parts of
//! it that were not pre-copied (a region that appeared or grew after the pre-copy, a shared
//! mapping, a stack a mini dump selects by its pointer) become segments of their own appended
//! past the pre-copied data and are copied whole during the stop. A region that grew thus
//! spans two adjacent segments, as adjacent mappings do in any core. Pre-copied bytes no final
//! region uses (a region unmapped or shrunk meanwhile) are turned into holes.
//!
//! What neither soft-dirty bits nor the comparison see: a page of a private file mapping that
//! the target had written (a copy-on-write page) and then gave back (`MADV_DONTNEED`) between
//! the pre-copy and the stop keeps its written bytes in the core, where the process now reads
//! the file's. Untouched pages of file mappings are not read again during the stop.

use crate::copy::{Copier, CHUNK};
use crate::dirty::Tracking;
use crate::error::CollectError;
use crate::maps::{Mapping, PAGE};
use crate::memory;
use crate::output::OutputFile;
use crate::select::Region;

/// pagemap entries read per batch (256 MiB of address space).
const BATCH: usize = 64 * 1024;
/// Bytes compared at a time: the target's copy and the file's stay in the CPU's cache between
/// their reads and the comparison (with 4 MiB runs both went to memory and back).
const COMPARE_RUN: usize = 256 << 10;

/// What a mapping maps, as far as the pre-copied bytes' validity goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    file: Option<(u32, u32, u64, u64)>,
}

impl Identity {
    /// Private mappings only (shared ones are never pre-copied); a file mapping by its device,
    /// inode and offset at address 0 (so that a mapping that grew still matches).
    pub fn of(m: &Mapping) -> Identity {
        let file = m.is_file_backed().then(|| {
            (
                m.dev_major,
                m.dev_minor,
                m.inode,
                m.offset.wrapping_sub(m.start),
            )
        });
        Identity { file }
    }
}

/// Pre-copied addresses [start, end) and their file offset.
#[derive(Debug, Clone, Copy)]
pub struct PreCopied {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub identity: Identity,
}

/// One PT_LOAD of the final core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub at: u64,
    /// Index into the final mappings.
    pub map: usize,
    /// Its bytes were pre-copied (to refresh); otherwise to copy whole during the stop.
    pub precopied: bool,
}

pub struct Placement {
    /// In the final regions' order.
    pub pieces: Vec<Piece>,
    /// Pre-copied file ranges (offset, length) no piece uses.
    pub unused: Vec<(u64, u64)>,
    /// File offset past the last byte of data.
    pub end: u64,
}

/// Places the final `regions` (of `maps`) on the pre-copied ones (`pre`, sorted by address);
/// what is new goes from `append_at` on.
pub fn place(pre: &[PreCopied], regions: &[Region], maps: &[Mapping], append_at: u64) -> Placement {
    let mut pieces = Vec::new();
    let mut end = append_at;
    let mut new_piece = |pieces: &mut Vec<Piece>, start: u64, stop: u64, map: usize| {
        pieces.push(Piece {
            start,
            end: stop,
            at: end,
            map,
            precopied: false,
        });
        end += stop - start;
    };
    for r in regions {
        let m = &maps[r.map];
        let identity = (!m.shared).then(|| Identity::of(m));
        let mut cursor = r.start;
        let first = pre.partition_point(|q| q.end <= r.start);
        for q in pre[first..].iter().take_while(|q| q.start < r.end) {
            if Some(q.identity) != identity {
                continue;
            }
            let s = q.start.max(cursor);
            let e = q.end.min(r.end);
            if s >= e {
                continue;
            }
            if s > cursor {
                new_piece(&mut pieces, cursor, s, r.map);
            }
            pieces.push(Piece {
                start: s,
                end: e,
                at: q.offset + (s - q.start),
                map: r.map,
                precopied: true,
            });
            cursor = e;
        }
        if cursor < r.end {
            new_piece(&mut pieces, cursor, r.end, r.map);
        }
    }
    let unused = unused_ranges(pre, &pieces);
    Placement {
        pieces,
        unused,
        end,
    }
}

/// The parts of the pre-copied file ranges no pre-copied piece lies on.
fn unused_ranges(pre: &[PreCopied], pieces: &[Piece]) -> Vec<(u64, u64)> {
    let mut used: Vec<(u64, u64)> = pieces
        .iter()
        .filter(|p| p.precopied)
        .map(|p| (p.at, p.at + (p.end - p.start)))
        .collect();
    used.sort_unstable();
    let mut out = Vec::new();
    for q in pre {
        let (mut from, to) = (q.offset, q.offset + (q.end - q.start));
        let first = used.partition_point(|u| u.1 <= from);
        for &(s, e) in used[first..].iter().take_while(|u| u.0 < to) {
            if s > from {
                out.push((from, s - from));
            }
            from = from.max(e);
        }
        if from < to {
            out.push((from, to - from));
        }
    }
    out
}

/// Brings pre-copied pieces up to date while the target is stopped.
pub struct Refresh<'o> {
    out: &'o OutputFile,
    tracking: Tracking,
    /// The target's bytes, then (compare) the file's: both touched before the stop.
    target: Vec<u8>,
    file: Vec<u8>,
    entries: Vec<u64>,
    /// Bytes read from the target during the stop.
    pub read_bytes: u64,
    /// Bytes rewritten because the target changed them after the pre-copy.
    pub recopied_bytes: u64,
}

impl<'o> Refresh<'o> {
    /// `copies_new`: this one also copies the new pieces (its buffer holds a whole chunk).
    /// Fresh memory is slow to touch on some VMs: each buffer is only as big as it must be.
    pub fn new(out: &'o OutputFile, tracking: Tracking, copies_new: bool) -> Self {
        let run = match tracking {
            Tracking::Compare => COMPARE_RUN,
            Tracking::SoftDirty => CHUNK,
        };
        let file = match tracking {
            Tracking::Compare => vec![1u8; COMPARE_RUN],
            Tracking::SoftDirty => Vec::new(),
        };
        Refresh {
            out,
            tracking,
            target: vec![1u8; if copies_new { CHUNK } else { run }],
            file,
            entries: Vec::new(),
            read_bytes: 0,
            recopied_bytes: 0,
        }
    }

    /// A buffer already faulted in, for copying new pieces: `CHUNK` bytes if made with
    /// `copies_new`.
    pub fn buffer(&mut self) -> &mut [u8] {
        &mut self.target
    }

    /// Updates `p` (pre-copied, of private mapping `m`): pages the target wrote meanwhile are
    /// copied again; anonymous pages it gave back meanwhile become holes. Untouched pages of a
    /// file mapping keep the file's bytes the pre-copy read.
    pub fn piece(
        &mut self,
        copier: &mut Copier<'_>,
        p: &Piece,
        m: &Mapping,
    ) -> Result<(), CollectError> {
        let total = ((p.end - p.start) / PAGE) as usize;
        let run = match self.tracking {
            Tracking::Compare => COMPARE_RUN,
            Tracking::SoftDirty => CHUNK,
        };
        let chunk_pages = run / PAGE as usize;
        let mut entries = std::mem::take(&mut self.entries);
        let mut first = 0usize;
        while first < total {
            let n = BATCH.min(total - first);
            let base = p.start + first as u64 * PAGE;
            if copier.pagemap_entries(base, n, &mut entries).is_err() {
                // The process is gone (pagemap reads short): nothing can be trusted.
                return Err(CollectError::TargetExited(copier.pid()));
            }
            let tracking = self.tracking;
            let class = |e: u64| match (memory::holds_data(e), tracking) {
                (true, Tracking::SoftDirty) if !memory::soft_dirty(e) => Class::Unchanged,
                (true, _) => Class::Read,
                (false, _) if m.is_private_anonymous() => Class::Hole,
                (false, _) => Class::Unchanged,
            };
            let mut i = 0;
            while i < n {
                let c = class(entries[i]);
                let mut j = i + 1;
                while j < n && class(entries[j]) == c && j - i < chunk_pages {
                    j += 1;
                }
                let addr = base + i as u64 * PAGE;
                let at = p.at + (addr - p.start);
                let len = (j - i) * PAGE as usize;
                match c {
                    Class::Unchanged => {}
                    Class::Hole => self.out.punch_hole(at, len as u64)?,
                    Class::Read => self.reread(copier, addr, at, len)?,
                }
                i = j;
            }
            first += n;
        }
        self.entries = entries;
        Ok(())
    }

    /// Reads `len` bytes at `addr` from the target and writes those of its pages that differ
    /// from the file's at `at` (soft-dirty: all of them, they were written).
    fn reread(
        &mut self,
        copier: &mut Copier<'_>,
        addr: u64,
        at: u64,
        len: usize,
    ) -> Result<(), CollectError> {
        let data = &mut self.target[..len];
        copier.fill_resident(addr, data)?;
        self.read_bytes += len as u64;
        if self.tracking == Tracking::SoftDirty {
            self.out.write_at(at, data)?;
            self.recopied_bytes += len as u64;
            return Ok(());
        }
        let old = &mut self.file[..len];
        self.out.read_at(at, old)?;
        let page = PAGE as usize;
        let mut k = 0;
        while k < len {
            if data[k..k + page] == old[k..k + page] {
                k += page;
                continue;
            }
            let mut e = k + page;
            while e < len && data[e..e + page] != old[e..e + page] {
                e += page;
            }
            self.out.write_at(at + k as u64, &data[k..e])?;
            self.recopied_bytes += (e - k) as u64;
            k = e;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The pre-copied bytes stand.
    Unchanged,
    /// Anonymous memory without pages: zeros.
    Hole,
    /// Read again from the target.
    Read,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64) -> Mapping {
        Mapping {
            start,
            end,
            read: true,
            write: true,
            exec: false,
            shared: false,
            offset: 0,
            dev_major: 0,
            dev_minor: 0,
            inode: 0,
            name: String::new(),
            dont_dump: false,
            io: false,
            anonymous_bytes: 0,
        }
    }

    fn pre(start: u64, end: u64, offset: u64, m: &Mapping) -> PreCopied {
        PreCopied {
            start,
            end,
            offset,
            identity: Identity::of(m),
        }
    }

    const P: u64 = PAGE;

    #[test]
    fn unchanged_regions_keep_their_place() {
        let maps = [anon(0x10 * P, 0x20 * P), anon(0x40 * P, 0x48 * P)];
        let pre = [
            pre(0x10 * P, 0x20 * P, P, &maps[0]),
            pre(0x40 * P, 0x48 * P, 0x11 * P, &maps[1]),
        ];
        let regions = [
            Region {
                start: 0x10 * P,
                end: 0x20 * P,
                map: 0,
            },
            Region {
                start: 0x40 * P,
                end: 0x48 * P,
                map: 1,
            },
        ];
        let pl = place(&pre, &regions, &maps, 0x19 * P);
        assert_eq!(pl.pieces.len(), 2);
        assert!(pl.pieces.iter().all(|p| p.precopied));
        assert_eq!((pl.pieces[0].at, pl.pieces[1].at), (P, 0x11 * P));
        assert!(pl.unused.is_empty());
        assert_eq!(pl.end, 0x19 * P);
    }

    #[test]
    fn grown_shrunk_new_and_gone_regions() {
        // Pre-copied: A [0x10,0x20) at P, B [0x30,0x38) at 0x11P, C [0x50,0x60) at 0x19P.
        // Final: A grew to 0x28, B shrank to [0x32,0x36), C is gone, D [0x70,0x72) is new.
        let old = [
            anon(0x10 * P, 0x20 * P),
            anon(0x30 * P, 0x38 * P),
            anon(0x50 * P, 0x60 * P),
        ];
        let pre = [
            pre(0x10 * P, 0x20 * P, P, &old[0]),
            pre(0x30 * P, 0x38 * P, 0x11 * P, &old[1]),
            pre(0x50 * P, 0x60 * P, 0x19 * P, &old[2]),
        ];
        let maps = [
            anon(0x10 * P, 0x28 * P),
            anon(0x32 * P, 0x36 * P),
            anon(0x70 * P, 0x72 * P),
        ];
        let regions: Vec<Region> = maps
            .iter()
            .enumerate()
            .map(|(i, m)| Region {
                start: m.start,
                end: m.end,
                map: i,
            })
            .collect();
        let end = 0x29 * P;
        let pl = place(&pre, &regions, &maps, end);
        let got: Vec<(u64, u64, u64, bool)> = pl
            .pieces
            .iter()
            .map(|p| (p.start / P, p.end / P, p.at / P, p.precopied))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x10, 0x20, 1, true),
                (0x20, 0x28, 0x29, false),
                (0x32, 0x36, 0x13, true),
                (0x70, 0x72, 0x31, false),
            ]
        );
        let unused: Vec<(u64, u64)> = pl.unused.iter().map(|&(o, l)| (o / P, l / P)).collect();
        assert_eq!(unused, vec![(0x11, 2), (0x17, 2), (0x19, 0x10)]);
        assert_eq!(pl.end, 0x33 * P);
    }

    #[test]
    fn a_different_mapping_at_the_same_address_is_copied_whole() {
        let old = anon(0x10 * P, 0x20 * P);
        let pre = [pre(0x10 * P, 0x20 * P, P, &old)];
        let mut file = anon(0x10 * P, 0x20 * P);
        file.name = "/lib/x.so".into();
        file.inode = 7;
        let regions = [Region {
            start: 0x10 * P,
            end: 0x20 * P,
            map: 0,
        }];
        let pl = place(&pre, &regions, &[file], 0x11 * P);
        assert_eq!(pl.pieces.len(), 1);
        assert!(!pl.pieces[0].precopied);
        assert_eq!(pl.pieces[0].at, 0x11 * P);
        assert_eq!(pl.unused, vec![(P, 0x10 * P)]);
    }
}
