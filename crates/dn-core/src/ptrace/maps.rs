//! The target's mappings, parsed from /proc/PID/smaps (smaps rather than maps
//! for the `VmFlags` (dd = MADV_DONTDUMP, io = device memory) and the
//! `Anonymous` count, which tells a written private file mapping).

use std::fs;
use std::io;

pub const PAGE: u64 = 4096;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// Path or pseudo name ("[heap]", "/memfd:x (deleted)"); empty for anonymous.
    pub name: String,
    /// VmFlags `dd`: the process asked not to be dumped (MADV_DONTDUMP).
    pub dont_dump: bool,
    /// VmFlags `io`: device/PFN memory, reading it is unsafe or meaningless.
    pub io: bool,
    /// smaps `Anonymous` in bytes: copy-on-write pages of a private mapping.
    pub anonymous_bytes: u64,
}

impl Mapping {
    /// Backed by a file (path names start with '/'), including deleted files and memfds.
    pub fn is_file_backed(&self) -> bool {
        self.name.starts_with('/') && self.inode != 0
    }

    pub fn is_deleted(&self) -> bool {
        self.name.ends_with(" (deleted)")
    }

    /// A path that can still be opened (a file not deleted).
    pub fn live_path(&self) -> Option<&str> {
        (self.is_file_backed() && !self.is_deleted()).then_some(self.name.as_str())
    }

    /// Private memory not backed by any file: malloc heaps, thread stacks, GC heap.
    /// Pages pagemap reports absent here were never touched and read as zero.
    pub fn is_private_anonymous(&self) -> bool {
        !self.shared && !self.is_file_backed() && !self.is_vdso()
    }

    /// The kernel's vDSO image: its pages hold code and ELF tables whether or not the
    /// process has touched them (pagemap shows only the touched ones).
    pub fn is_vdso(&self) -> bool {
        self.name == "[vdso]"
    }

    /// Kernel pseudo mappings that must not be read (`[vvar]` is device memory,
    /// `[vsyscall]` is not readable through /proc/PID/mem).
    pub fn is_unreadable_special(&self) -> bool {
        self.io || self.name == "[vsyscall]" || self.name.starts_with("[vvar")
    }

    pub fn file_name(&self) -> &str {
        let n = self.name.strip_suffix(" (deleted)").unwrap_or(&self.name);
        n.rsplit('/').next().unwrap_or(n)
    }
}

/// Parses one header line: `start-end perms offset major:minor inode   name`.
fn parse_header(line: &str) -> Option<Mapping> {
    let mut it = line.splitn(6, ' ');
    let (range, perms, offset, dev, inode) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    let name = it.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    let p = perms.as_bytes();
    if p.len() < 4 {
        return None;
    }
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: p[0] == b'r',
        write: p[1] == b'w',
        exec: p[2] == b'x',
        shared: p[3] == b's',
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        inode: inode.parse().ok()?,
        name,
        ..Default::default()
    })
}

/// Parses the text of /proc/PID/smaps (or maps, which then lacks the extras).
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(m) = maps.last_mut() {
                for f in flags.split_whitespace() {
                    match f {
                        "dd" => m.dont_dump = true,
                        "io" => m.io = true,
                        _ => {}
                    }
                }
            }
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some(m) = maps.last_mut() {
                let v = kb.trim().trim_end_matches("kB").trim();
                m.anonymous_bytes = v.parse::<u64>().unwrap_or(0) * 1024;
            }
        } else if line
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_hexdigit())
            && line.split(' ').next().is_some_and(|f| f.contains('-'))
        {
            if let Some(m) = parse_header(line) {
                maps.push(m);
            }
        }
    }
    maps
}

pub fn read_mappings(pid: i32) -> io::Result<Vec<Mapping>> {
    Ok(parse_smaps(&fs::read_to_string(format!(
        "/proc/{pid}/smaps"
    ))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 fd:01 1234                       /usr/bin/cat
Size:                  4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw sd
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
Anonymous:           132 kB
VmFlags: rd wr mr mw me ac sd
7f1000000000-7f1000002000 rw-s 00000000 00:01 99                         /memfd:doublemapper (deleted)
VmFlags: rd wr sh mr mw me ms sd
7ffd00000000-7ffd00002000 r--p 00000000 00:00 0                          [vvar]
VmFlags: rd mr pf io de dd sd
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
VmFlags: ex
";

    #[test]
    fn parses_smaps_sample() {
        let m = parse_smaps(SAMPLE);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].name, "/usr/bin/cat");
        assert_eq!(
            (m[0].dev_major, m[0].dev_minor, m[0].inode),
            (0xfd, 1, 1234)
        );
        assert!(m[0].read && !m[0].write && !m[0].shared);
        assert_eq!(m[0].live_path(), Some("/usr/bin/cat"));
        assert_eq!(m[1].name, "");
        assert!(m[1].is_private_anonymous());
        assert_eq!(m[1].anonymous_bytes, 132 * 1024);
        assert!(m[2].shared && m[2].is_deleted() && m[2].is_file_backed());
        assert_eq!(m[2].live_path(), None);
        assert_eq!(m[2].file_name(), "memfd:doublemapper");
        assert!(m[3].io && m[3].dont_dump && m[3].is_unreadable_special());
        assert!(m[4].is_unreadable_special());
        assert_eq!(m[4].start, 0xffffffffff600000);
    }

    #[test]
    fn own_mappings_include_stack() {
        let m = read_mappings(std::process::id() as i32).unwrap();
        assert!(m.iter().any(|m| m.name == "[stack]"));
        assert!(m.windows(2).all(|w| w[0].end <= w[1].start));
    }
}
