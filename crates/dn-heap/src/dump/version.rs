//! The runtime's version string (`@(#)Version <file version> @Commit: <sha>`, the sccsid every
//! CoreCLR binary carries), read from an ELF image's writable segments in a target's memory.
//! It needs no DAC and no file on disk: a dump that moved to another machine still says which
//! runtime it was.

use goblin::elf::program_header::{PF_W, PT_LOAD};

use crate::memory::MemorySource;

const MARKER: &[u8] = b"@(#)Version ";
const PHDR_SIZE: usize = 56;
/// Program headers read at most (an image has a dozen).
const MAX_PHDRS: usize = 256;
/// Bytes of one writable segment scanned at most (libcoreclr's are a few hundred KiB).
const MAX_SCAN: u64 = 32 << 20;
/// Scan step; the marker may straddle two steps, so steps overlap by the longest string kept.
const STEP: usize = 64 << 10;
const MAX_TEXT: usize = 200;

/// The version string parsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionString {
    /// The text after `@(#)Version `, e.g. `10.0.1226.42308 @Commit: 95017c71...`.
    pub text: String,
    /// The file version (up to the first space): `10.0.1226.42308`.
    pub file_version: String,
    /// The commit, when the text names one.
    pub commit: Option<String>,
}

impl VersionString {
    pub fn parse(text: &str) -> Option<VersionString> {
        let text = text.trim();
        let file_version = text.split_whitespace().next()?.to_string();
        if !file_version.chars().next()?.is_ascii_digit() {
            return None;
        }
        let commit = text
            .split_once("@Commit:")
            .map(|(_, c)| c.trim().to_string())
            .filter(|c| !c.is_empty());
        Some(VersionString {
            text: text.to_string(),
            file_version,
            commit,
        })
    }

    /// The four parts of the file version.
    pub fn parts(&self) -> Option<[u32; 4]> {
        let mut out = [0u32; 4];
        let mut it = self.file_version.split('.');
        for p in &mut out {
            *p = it.next()?.parse().ok()?;
        }
        Some(out)
    }

    /// The product version (`10.0.12`) the runtime folder is named by. CoreCLR's file version
    /// is `major.minor.(patch*100 + n).revision` from .NET 5 on (seen on 8, 9, 10 and 11);
    /// .NET Core 3.x used `4.700.*`, which carries no product patch number.
    pub fn product_version(&self) -> Option<String> {
        let [major, minor, build, _] = self.parts()?;
        (major >= 5).then(|| format!("{major}.{minor}.{}", build / 100))
    }
}

/// The first version string in the writable loaded segments of the ELF image at `base`.
pub fn version_in_memory(mem: &dyn MemorySource, base: u64) -> Option<VersionString> {
    let hdr = mem.read_vec(base, 64).ok()?;
    if !hdr.starts_with(b"\x7fELF") {
        return None;
    }
    let phoff = u64::from_le_bytes(hdr.get(0x20..0x28)?.try_into().ok()?);
    let phnum = usize::from(u16::from_le_bytes([hdr[0x38], hdr[0x39]])).min(MAX_PHDRS);
    let ph = mem
        .read_vec(base.checked_add(phoff)?, phnum * PHDR_SIZE)
        .ok()?;
    // The first PT_LOAD's vaddr is the image's link base (0 for a shared library).
    let mut link_base = None;
    for p in ph.chunks_exact(PHDR_SIZE) {
        let word = |o: usize| u64::from_le_bytes(p[o..o + 8].try_into().unwrap_or_default());
        if u32::from_le_bytes([p[0], p[1], p[2], p[3]]) != PT_LOAD {
            continue;
        }
        let vaddr = word(16);
        let link = *link_base.get_or_insert(vaddr & !0xfff);
        let flags = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        if flags & PF_W == 0 {
            continue;
        }
        let Some(start) = vaddr
            .checked_sub(link)
            .and_then(|off| base.checked_add(off))
        else {
            continue;
        };
        if let Some(v) = scan(mem, start, word(40).min(MAX_SCAN)) {
            return Some(v);
        }
    }
    None
}

/// Scans `[start, start + len)` step by step; parts not in the target are skipped.
fn scan(mem: &dyn MemorySource, start: u64, len: u64) -> Option<VersionString> {
    let mut off = 0u64;
    let mut buf = vec![0u8; STEP + MAX_TEXT];
    while off < len {
        let at = start.checked_add(off)?;
        let want = usize::try_from((len - off).min((STEP + MAX_TEXT) as u64)).ok()?;
        if let Ok(n) = mem.read(at, &mut buf[..want]) {
            let got = &buf[..n];
            if let Some(i) = find(got, MARKER) {
                let rest = &got[i + MARKER.len()..];
                let end = rest
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(rest.len())
                    .min(MAX_TEXT);
                if let Some(v) = std::str::from_utf8(&rest[..end])
                    .ok()
                    .and_then(VersionString::parse)
                {
                    return Some(v);
                }
            }
            // Step less than what was read so a marker cut at the end is seen next time.
            off += (n.saturating_sub(MAX_TEXT)).max(1) as u64;
        } else {
            // Not in the dump: go on at the next page.
            off = (off | 0xfff) + 1;
        }
    }
    None
}

/// The first version string in an ELF file on disk (a DAC or a libcoreclr.so).
pub fn version_of_file(path: &std::path::Path) -> Option<VersionString> {
    let data = std::fs::read(path).ok()?;
    let i = find(&data, MARKER)?;
    let rest = &data[i + MARKER.len()..];
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(rest.len())
        .min(MAX_TEXT);
    VersionString::parse(std::str::from_utf8(&rest[..end]).ok()?)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_version_and_commit() {
        let v = VersionString::parse("10.0.1226.42308 @Commit: 95017c711e6afc10").unwrap();
        assert_eq!(v.file_version, "10.0.1226.42308");
        assert_eq!(v.commit.as_deref(), Some("95017c711e6afc10"));
        assert_eq!(v.product_version().as_deref(), Some("10.0.12"));
        assert_eq!(v.parts(), Some([10, 0, 1226, 42308]));
    }

    #[test]
    fn core31_has_no_product_version() {
        let v = VersionString::parse("4.700.22.55902 @Commit: abc").unwrap();
        assert_eq!(v.product_version(), None);
    }

    #[test]
    fn rejects_text_that_is_not_a_version() {
        assert_eq!(VersionString::parse("  "), None);
        assert_eq!(VersionString::parse("abc 1.2"), None);
    }
}
