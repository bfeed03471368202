//! Reading and writing ELF note segments (`Elf64_Nhdr` + name + descriptor, each padded to 4
//! bytes), and the Linux core notes dn uses: NT_PRSTATUS (thread id and registers), NT_FILE
//! (file mappings) and NT_GNU_BUILD_ID.
//!
//! The reader never trusts a size: a note whose name or descriptor runs past its segment, an
//! NT_FILE count larger than its descriptor can hold, or an offset that overflows is a
//! [`NoteError`] naming the file offset where it was found.

use thiserror::Error;

pub const NT_PRSTATUS: u32 = 1;
pub const NT_PRFPREG: u32 = 2;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_X86_XSTATE: u32 = 0x202;
/// NT_SIGINFO ("SIGI"): a thread's `siginfo_t`.
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4C45;
/// NT_GNU_BUILD_ID, in notes named "GNU".
pub const NT_GNU_BUILD_ID: u32 = 3;

/// x86-64 `user_regs_struct`: 27 registers.
pub const GP_REGS: usize = 27;
/// Offset of `pr_pid` in x86-64 `struct elf_prstatus`.
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_reg` in x86-64 `struct elf_prstatus`.
const PRSTATUS_REG: usize = 112;
const NHDR_LEN: usize = 12;

/// A note segment that cannot be read. `offset` is where in the file (or memory image) the
/// problem is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason} at offset {offset:#x}")]
pub struct NoteError {
    pub offset: u64,
    pub reason: &'static str,
}

/// One note of a segment.
#[derive(Debug, Clone, Copy)]
pub struct Note<'a> {
    /// Offset of the note header (segment base + position in the segment).
    pub offset: u64,
    /// The name without its NUL terminator and padding.
    pub name: &'a [u8],
    pub n_type: u32,
    pub desc: &'a [u8],
    /// Offset of the descriptor.
    pub desc_offset: u64,
}

impl Note<'_> {
    /// Whether the note's name is `name` ("CORE", "LINUX", "GNU").
    pub fn is(&self, name: &str, n_type: u32) -> bool {
        self.n_type == n_type && self.name == name.as_bytes()
    }
}

/// The notes of a segment whose first byte is at `base`. Stops at the first malformed note
/// (yielding its error); trailing bytes too short for a header are ignored, as readelf does.
pub fn notes(segment: &[u8], base: u64) -> Notes<'_> {
    Notes {
        data: segment,
        pos: 0,
        base,
        failed: false,
    }
}

/// Iterator returned by [`notes`].
pub struct Notes<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    failed: bool,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

impl<'a> Notes<'a> {
    fn at(&self, pos: usize) -> u64 {
        self.base.saturating_add(pos as u64)
    }

    fn next_note(&mut self) -> Result<Note<'a>, NoteError> {
        let start = self.pos;
        let err = |reason| NoteError {
            offset: self.at(start),
            reason,
        };
        let rest = &self.data[start..];
        let namesz = u32_at(rest, 0).ok_or_else(|| err("note header cut short"))? as usize;
        let descsz = u32_at(rest, 4).ok_or_else(|| err("note header cut short"))? as usize;
        let n_type = u32_at(rest, 8).ok_or_else(|| err("note header cut short"))?;
        let name_end = align4(namesz)
            .and_then(|n| n.checked_add(NHDR_LEN))
            .ok_or_else(|| err("note name size overflows"))?;
        let desc_end = name_end
            .checked_add(descsz)
            .filter(|&e| e <= rest.len())
            .ok_or_else(|| err("note runs past the end of its segment"))?;
        // desc_end <= rest.len() bounds the name too: 12 + namesz <= name_end <= desc_end.
        let name = trim_nul(&rest[NHDR_LEN..NHDR_LEN + namesz]);
        let desc = &rest[name_end..desc_end];
        // The last note may omit its final padding.
        let next = align4(desc_end).map_or(rest.len(), |e| e.min(rest.len()));
        self.pos = start + next;
        Ok(Note {
            offset: self.at(start),
            name,
            n_type,
            desc,
            desc_offset: self.at(start + name_end),
        })
    }
}

fn trim_nul(name: &[u8]) -> &[u8] {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    &name[..end]
}

impl<'a> Iterator for Notes<'a> {
    type Item = Result<Note<'a>, NoteError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.len().saturating_sub(self.pos) < NHDR_LEN {
            return None;
        }
        let r = self.next_note();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Thread id and `user_regs_struct` of an x86-64 NT_PRSTATUS note; `None` if it is too short.
pub fn prstatus(note: &Note) -> Option<(u32, [u64; GP_REGS])> {
    let tid = u32_at(note.desc, PRSTATUS_PID)?;
    let mut regs = [0u64; GP_REGS];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = u64_at(note.desc, PRSTATUS_REG + i * 8)?;
    }
    Some((tid, regs))
}

/// One NT_FILE entry: `[start, end)` maps `path` from byte `file_offset`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileEntry {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub path: String,
}

/// The entries of an NT_FILE note: count, page size, (start, end, offset in pages) per
/// entry, then the NUL-terminated names.
pub fn nt_file(note: &Note) -> Result<Vec<FileEntry>, NoteError> {
    let d = note.desc;
    let err = |at: usize, reason| NoteError {
        offset: note.desc_offset.saturating_add(at as u64),
        reason,
    };
    let count = u64_at(d, 0).ok_or_else(|| err(0, "NT_FILE note too short"))?;
    let page = u64_at(d, 8).ok_or_else(|| err(8, "NT_FILE note too short"))?;
    // The count is bounded by what the descriptor can hold before anything is allocated.
    let names_at = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(24))
        .and_then(|n| n.checked_add(16))
        .filter(|&n| n <= d.len())
        .ok_or_else(|| err(0, "NT_FILE entry count exceeds the note"))?;
    let count = (names_at - 16) / 24;
    let mut names = d[names_at..].split(|&b| b == 0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = 16 + i * 24;
        let (start, end, pgoff) = match (u64_at(d, e), u64_at(d, e + 8), u64_at(d, e + 16)) {
            (Some(s), Some(x), Some(o)) => (s, x, o),
            _ => return Err(err(e, "NT_FILE entry cut short")),
        };
        if end < start {
            return Err(err(e, "NT_FILE entry ends before it starts"));
        }
        let file_offset = pgoff
            .checked_mul(page)
            .ok_or_else(|| err(e + 16, "NT_FILE file offset overflows"))?;
        let name = names
            .next()
            .ok_or_else(|| err(names_at, "NT_FILE names missing"))?;
        out.push(FileEntry {
            start,
            end,
            file_offset,
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(out)
}

/// The GNU build id in a note segment, if one is there (malformed notes end the search).
pub fn gnu_build_id(segment: &[u8]) -> Option<&[u8]> {
    notes(segment, 0)
        .map_while(Result::ok)
        .find(|n| n.is("GNU", NT_GNU_BUILD_ID))
        .map(|n| n.desc)
}

/// Builds a note segment in the layout [`notes`] reads.
#[derive(Debug, Default)]
pub struct NoteWriter {
    buf: Vec<u8>,
}

impl NoteWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn pad4(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Appends one note. Names and descriptors are far below 4 GiB (registers, file lists);
    /// a larger one would be cut, so it is refused.
    pub fn add(&mut self, name: &str, n_type: u32, desc: &[u8]) -> Result<(), NoteError> {
        let too_big = NoteError {
            offset: self.buf.len() as u64,
            reason: "note larger than 4 GiB",
        };
        let namesz = u32::try_from(name.len() + 1).map_err(|_| too_big.clone())?;
        let descsz = u32::try_from(desc.len()).map_err(|_| too_big)?;
        self.buf.extend_from_slice(&namesz.to_le_bytes());
        self.buf.extend_from_slice(&descsz.to_le_bytes());
        self.buf.extend_from_slice(&n_type.to_le_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad4();
        self.buf.extend_from_slice(desc);
        self.pad4();
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nt_file_desc(entries: &[(u64, u64, u64, &str)], page: u64) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        d.extend_from_slice(&page.to_le_bytes());
        for (s, e, o, _) in entries {
            for v in [s, e, o] {
                d.extend_from_slice(&v.to_le_bytes());
            }
        }
        for (.., n) in entries {
            d.extend_from_slice(n.as_bytes());
            d.push(0);
        }
        d
    }

    #[test]
    fn written_notes_read_back() {
        let mut w = NoteWriter::new();
        let mut pr = vec![0u8; 336];
        pr[32..36].copy_from_slice(&77u32.to_le_bytes());
        pr[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xabcdu64.to_le_bytes());
        w.add("CORE", NT_PRSTATUS, &pr).unwrap();
        w.add(
            "CORE",
            NT_FILE,
            &nt_file_desc(&[(0x1000, 0x3000, 2, "/a/b")], 4096),
        )
        .unwrap();
        w.add("GNU", NT_GNU_BUILD_ID, &[1, 2, 3]).unwrap();
        let seg = w.into_bytes();
        let all: Vec<Note> = notes(&seg, 0x100).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].offset, 0x100);
        let (tid, regs) = prstatus(&all[0]).unwrap();
        assert_eq!((tid, regs[16]), (77, 0xabcd));
        let files = nt_file(&all[1]).unwrap();
        assert_eq!(files[0].file_offset, 2 * 4096);
        assert_eq!(files[0].path, "/a/b");
        assert_eq!(gnu_build_id(&seg), Some(&[1u8, 2, 3][..]));
    }

    #[test]
    fn sizes_from_the_input_are_checked() {
        let mut seg = Vec::new();
        seg.extend_from_slice(&u32::MAX.to_le_bytes());
        seg.extend_from_slice(&u32::MAX.to_le_bytes());
        seg.extend_from_slice(&1u32.to_le_bytes());
        seg.extend_from_slice(b"CORE");
        let e = notes(&seg, 0x40).next().unwrap().unwrap_err();
        assert_eq!(e.offset, 0x40);
        let mut w = NoteWriter::new();
        let mut d = nt_file_desc(&[(0x1000, 0x2000, 1, "/x")], 4096);
        d[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        w.add("CORE", NT_FILE, &d).unwrap();
        let seg = w.into_bytes();
        let n = notes(&seg, 0).next().unwrap().unwrap();
        assert_eq!(
            nt_file(&n).unwrap_err().reason,
            "NT_FILE entry count exceeds the note"
        );
        let mut d = nt_file_desc(&[(0x1000, 0x2000, u64::MAX, "/x")], 4096);
        let mut w = NoteWriter::new();
        w.add("CORE", NT_FILE, &d).unwrap();
        let seg = w.into_bytes();
        let n = notes(&seg, 0).next().unwrap().unwrap();
        assert_eq!(
            nt_file(&n).unwrap_err().reason,
            "NT_FILE file offset overflows"
        );
        d[16..24].copy_from_slice(&0x3000u64.to_le_bytes());
        let mut w = NoteWriter::new();
        w.add("CORE", NT_FILE, &d).unwrap();
        let seg = w.into_bytes();
        let n = notes(&seg, 0).next().unwrap().unwrap();
        assert!(nt_file(&n).is_err());
    }
}
