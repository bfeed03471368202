//! Which memory each dump type holds. The rules are documented for users in
//! docs/dump-types.md; keep both in step.

use serde::Serialize;

use crate::linkmap::link_map_parts;
use crate::maps::{Mapping, PAGE};
use crate::modules::{module_parts, ReadFn};

/// What a dump holds; see docs/dump-types.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DumpType {
    /// Every readable mapping, file-backed ones included.
    #[default]
    Full,
    /// Private and writable memory plus what heap analysis needs from modules.
    Heap,
    /// Stacks, module headers, the data segments of modules and the runtime.
    Mini,
    /// Like mini, but only the top 64 KiB of each stack and only the runtime's data.
    Triage,
}

impl DumpType {
    pub fn describe(self) -> &'static str {
        match self {
            DumpType::Full => "full dump",
            DumpType::Heap => "dump with heap",
            DumpType::Mini => "mini dump",
            DumpType::Triage => "triage dump",
        }
    }
}

/// A page-aligned range of one mapping that goes into the core as one PT_LOAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    /// Index into the mapping list.
    pub map: usize,
}

/// Bytes below the stack pointer leaf functions may use (x86-64 red zone).
const RED_ZONE: u64 = 128;
/// Stack bytes a triage dump keeps per thread, from the stack pointer up.
const TRIAGE_STACK: u64 = 64 * 1024;

const RUNTIME_LIB: &str = "libcoreclr.so";

pub fn is_runtime(m: &Mapping) -> bool {
    m.file_name() == RUNTIME_LIB
}

fn is_assembly(m: &Mapping) -> bool {
    m.file_name().to_ascii_lowercase().ends_with(".dll")
}

/// Memory that may be read at all: readable, not device memory, not marked
/// MADV_DONTDUMP by the process.
pub(crate) fn dumpable(m: &Mapping) -> bool {
    m.read && !m.is_unreadable_special() && !m.dont_dump
}

/// The regions of a dump, and what could not be found for it.
#[derive(Debug)]
pub struct Selection {
    pub regions: Vec<Region>,
    pub warnings: Vec<String>,
}

/// Where a thread's state lives besides its registers.
#[derive(Debug, Clone, Copy)]
pub struct ThreadPointers {
    /// Stack pointer.
    pub sp: u64,
    /// `fs_base`: the thread's control block (glibc's `struct pthread`), its static TLS below.
    pub fs_base: u64,
}

/// Thread-local storage kept below a thread's `fs_base` (static TLS of the modules: errno, the
/// runtime's current-thread pointer), and the control block above it.
const TLS_BELOW: u64 = 16 * 1024;
const TCB_ABOVE: u64 = 4096;

/// Chooses the regions of a dump. `threads` are the threads' SPs and thread pointers;
/// `read` (pagemap-aware, never faults pages in) gives access to module headers, to find the
/// parts of every module each dump keeps ([`crate::modules`]).
pub fn select_regions(
    maps: &[Mapping],
    kind: DumpType,
    threads: &[ThreadPointers],
    auxv: &[u8],
    read: &mut ReadFn,
) -> Selection {
    let mut want = Wanted::new(maps);
    if kind == DumpType::Full {
        // Every module part is inside the readable mappings taken whole.
        for i in 0..maps.len() {
            want.whole(i);
        }
        return Selection {
            regions: want.finish(),
            warnings: Vec::new(),
        };
    }
    for (i, m) in maps.iter().enumerate() {
        let runtime = is_runtime(m);
        let runtime_bss = !m.is_file_backed()
            && m.write
            && i > 0
            && is_runtime(&maps[i - 1])
            && maps[i - 1].end == m.start;
        let written_module_data = m.is_file_backed() && !m.shared && m.anonymous_bytes > 0;
        let take = match kind {
            DumpType::Heap => {
                (m.write && !m.is_file_backed())
                    || (m.is_file_backed() && m.is_deleted())
                    || written_module_data
                    || (runtime && !m.exec)
                    || is_assembly(m)
                    || m.is_vdso()
            }
            DumpType::Mini => {
                written_module_data || (runtime && !m.exec) || runtime_bss || m.is_vdso()
            }
            DumpType::Triage => (runtime && !m.exec) || runtime_bss || m.is_vdso(),
            DumpType::Full => unreachable!(),
        };
        if take {
            want.whole(i);
        }
    }
    let mut parts = module_parts(maps, read);
    for &(lo, hi) in &parts.ranges {
        want.range(lo, hi);
    }
    match link_map_parts(maps, auxv, read) {
        Ok(ranges) => ranges.iter().for_each(|&(lo, hi)| want.range(lo, hi)),
        Err(e) => parts.warnings.push(format!(
            "the dynamic linker's module list was not found ({e}); debuggers may not see the shared libraries"
        )),
    }
    if kind != DumpType::Heap {
        // Heap already holds every writable anonymous mapping, stacks and TLS included.
        for t in threads.iter().filter(|t| t.fs_base != 0) {
            // Thread debuggers (libthread_db) read the control blocks, which link the threads.
            want.range(
                t.fs_base.saturating_sub(TLS_BELOW),
                t.fs_base.saturating_add(TCB_ABOVE),
            );
        }
        for &sp in threads.iter().map(|t| &t.sp) {
            let lo = sp.saturating_sub(RED_ZONE) & !(PAGE - 1);
            // The stack is the used part of the mapping holding SP, up to its end.
            let Some(m) = maps.iter().find(|m| m.start <= sp && sp < m.end) else {
                continue;
            };
            let hi = match kind {
                DumpType::Triage => m.end.min(lo + TRIAGE_STACK),
                _ => m.end,
            };
            want.range(lo.max(m.start), hi);
        }
    }
    Selection {
        regions: want.finish(),
        warnings: parts.warnings,
    }
}

/// Requested byte ranges, clipped to dumpable mappings and page-aligned.
struct Wanted<'a> {
    maps: &'a [Mapping],
    ranges: Vec<Region>,
}

impl<'a> Wanted<'a> {
    fn new(maps: &'a [Mapping]) -> Self {
        Wanted {
            maps,
            ranges: Vec::new(),
        }
    }

    fn whole(&mut self, i: usize) {
        let m = &self.maps[i];
        if dumpable(m) {
            self.ranges.push(Region {
                start: m.start,
                end: m.end,
                map: i,
            });
        }
    }

    /// Adds [lo, hi) widened to pages, split at mapping boundaries.
    fn range(&mut self, lo: u64, hi: u64) {
        let lo = lo & !(PAGE - 1);
        let hi = hi.saturating_add(PAGE - 1) & !(PAGE - 1);
        if lo >= hi {
            return;
        }
        let first = self.maps.partition_point(|m| m.end <= lo);
        for (i, m) in self.maps.iter().enumerate().skip(first) {
            if m.start >= hi {
                break;
            }
            if dumpable(m) {
                self.ranges.push(Region {
                    start: lo.max(m.start),
                    end: hi.min(m.end),
                    map: i,
                });
            }
        }
    }

    /// Sorted, with overlapping or touching ranges of the same mapping merged.
    fn finish(mut self) -> Vec<Region> {
        self.ranges.sort_by_key(|r| (r.start, r.end));
        let mut out: Vec<Region> = Vec::with_capacity(self.ranges.len());
        for r in self.ranges {
            match out.last_mut() {
                Some(last) if last.map == r.map && r.start <= last.end => {
                    last.end = last.end.max(r.end)
                }
                _ => out.push(r),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::parse_smaps;

    const MAPS: &str = "\
00400000-00401000 r--p 00000000 fd:01 10 /app/app
00401000-00402000 r-xp 00001000 fd:01 10 /app/app
00402000-00403000 rw-p 00002000 fd:01 10 /app/app
Anonymous: 4 kB
01000000-01100000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000001000 r--p 00000000 fd:01 20 /rt/libcoreclr.so
7f0000001000-7f0000005000 r-xp 00001000 fd:01 20 /rt/libcoreclr.so
7f0000005000-7f0000006000 rw-p 00005000 fd:01 20 /rt/libcoreclr.so
7f0000006000-7f0000008000 rw-p 00000000 00:00 0 
7f0000010000-7f0000020000 r--s 00000000 fd:01 30 /app/app.dll
7f1000000000-7f1000100000 rw-s 00000000 00:01 40 /memfd:doublemapper (deleted)
7f2000000000-7f2000800000 rw-p 00000000 00:00 0 
7f3000000000-7f3000100000 ---p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7ffd10000000-7ffd10002000 r--p 00000000 00:00 0 [vvar]
VmFlags: rd io dd
7ffd10002000-7ffd10004000 r-xp 00000000 00:00 0 [vdso]
";

    fn names(maps: &[Mapping], r: &[Region]) -> Vec<String> {
        r.iter()
            .map(|r| format!("{:x}-{:x} {}", r.start, r.end, maps[r.map].name))
            .collect()
    }

    fn no_read(_: usize, _: u64, _: &mut [u8]) -> usize {
        0
    }

    #[test]
    fn full_takes_every_readable_mapping_but_special_ones() {
        let maps = parse_smaps(MAPS);
        let r = select_regions(&maps, DumpType::Full, &[], &[], &mut no_read).regions;
        let n = names(&maps, &r);
        assert_eq!(r.len(), maps.len() - 2, "{n:?}");
        assert!(!n
            .iter()
            .any(|s| s.contains("[vvar]") || s.contains("7f3000000000")));
    }

    #[test]
    fn heap_takes_writable_anonymous_runtime_and_assemblies() {
        let maps = parse_smaps(MAPS);
        let r = select_regions(
            &maps,
            DumpType::Heap,
            &[ThreadPointers {
                sp: 0x7ffd00020000,
                fs_base: 0,
            }],
            &[],
            &mut no_read,
        )
        .regions;
        let n = names(&maps, &r);
        let has = |s: &str| n.iter().any(|x| x.starts_with(s));
        assert!(has("402000-403000 /app/app"), "written module data: {n:?}");
        assert!(has("1000000-1100000 [heap]"));
        assert!(has("7f0000000000-7f0000001000 /rt/libcoreclr.so"));
        assert!(
            !has("7f0000001000-7f0000005000"),
            "runtime code is not needed"
        );
        assert!(has("7f0000006000-7f0000008000"), "runtime bss");
        assert!(has("7f0000010000-7f0000020000 /app/app.dll"));
        assert!(has("7f1000000000-7f1000100000 /memfd"));
        assert!(has("7f2000000000-7f2000800000"));
        assert!(has("7ffd00000000-7ffd00021000 [stack]"));
        assert!(has("7ffd10002000-7ffd10004000 [vdso]"));
        assert!(
            !has("400000-401000"),
            "no header found without readable memory"
        );
    }

    #[test]
    fn triage_takes_stack_top_runtime_data_and_headers() {
        let maps = parse_smaps(MAPS);
        // A fake ELF header for /app/app so the header page is selected.
        let mut read = |i: usize, _a: u64, buf: &mut [u8]| {
            if maps[i].name == "/app/app" {
                buf.fill(0);
                buf[..4].copy_from_slice(b"\x7fELF");
                buf[4] = 2;
                buf.len()
            } else {
                0
            }
        };
        let sp = 0x7ffd00000000 + 0x8010;
        let r = select_regions(
            &maps,
            DumpType::Triage,
            &[ThreadPointers { sp, fs_base: 0 }],
            &[],
            &mut read,
        )
        .regions;
        let n = names(&maps, &r);
        assert!(n.contains(&"400000-401000 /app/app".to_string()), "{n:?}");
        assert!(
            n.contains(&"7ffd00007000-7ffd00017000 [stack]".to_string()),
            "{n:?}"
        );
        assert!(!n
            .iter()
            .any(|s| s.contains("[heap]") || s.contains("/app/app.dll")));
        let mini = select_regions(
            &maps,
            DumpType::Mini,
            &[ThreadPointers { sp, fs_base: 0 }],
            &[],
            &mut read,
        )
        .regions;
        let n = names(&maps, &mini);
        assert!(
            n.contains(&"7ffd00007000-7ffd00021000 [stack]".to_string()),
            "{n:?}"
        );
        assert!(n.contains(&"402000-403000 /app/app".to_string()), "{n:?}");
    }
}
