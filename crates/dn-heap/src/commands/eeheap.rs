//! `eeheap`: the GC heap (`-gc`), the loader heaps (`-loader`, in [`super::loaderheap`]), or
//! both with the total SOS prints ("Total bytes consumed by CLR").

use serde::Serialize;

use super::loaderheap::{loader_heaps, memory_size, LoaderHeaps};
use super::{n0, ser_hex, Render, Session};
use crate::heap::{Segment, SegmentKind};

/// Which parts `eeheap` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EeHeapParts {
    Gc,
    Loader,
    Both,
}

impl EeHeapParts {
    /// `eeheap [-gc] [-loader]`: both when neither or both are given, as SOS.
    pub fn parse(args: &[&str]) -> anyhow::Result<EeHeapParts> {
        let (mut gc, mut loader) = (false, false);
        for a in args {
            match a.to_ascii_lowercase().as_str() {
                "-gc" => gc = true,
                "-loader" => loader = true,
                _ => anyhow::bail!("eeheap: unknown option '{a}' (eeheap [-gc] [-loader])"),
            }
        }
        Ok(match (gc, loader) {
            (true, false) => EeHeapParts::Gc,
            (false, true) => EeHeapParts::Loader,
            _ => EeHeapParts::Both,
        })
    }
}

/// `eeheap` with no option: the loader heaps, the GC heap, and their sum.
#[derive(Debug, Clone, Serialize)]
pub struct EeHeapAll {
    pub loader: LoaderHeaps,
    pub gc: EeHeap,
    /// The loader heaps' size plus the GC heap's committed bytes.
    pub total_bytes: u64,
}

pub fn eeheap_all(s: &Session) -> anyhow::Result<EeHeapAll> {
    let loader = loader_heaps(s)?;
    let gc = eeheap(s);
    let total_bytes = loader.total_size.saturating_add(gc.committed_bytes);
    Ok(EeHeapAll {
        loader,
        gc,
        total_bytes,
    })
}

impl Render for EeHeapAll {
    fn render(&self) -> String {
        format!(
            "{}\n{}\nTotal bytes consumed by CLR: {}\n",
            self.loader.render(),
            self.gc.render(),
            if self.total_bytes > 0 {
                memory_size(self.total_bytes)
            } else {
                "0".to_string()
            }
        )
    }
}

/// One segment/region of `eeheap -gc`.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentRow {
    #[serde(serialize_with = "ser_hex")]
    pub segment: u64,
    #[serde(serialize_with = "ser_hex")]
    pub begin: u64,
    #[serde(serialize_with = "ser_hex")]
    pub allocated: u64,
    #[serde(serialize_with = "ser_hex")]
    pub committed: u64,
    pub kind: String,
    pub heap: usize,
    pub size: u64,
    /// Committed bytes from the segment's first page (ClrMD's reckoning of where a segment's
    /// committed memory starts), what SOS sums as "GC Committed Heap Size".
    pub committed_size: u64,
}

/// `eeheap -gc`.
#[derive(Debug, Clone, Serialize)]
pub struct EeHeap {
    pub server: bool,
    pub regions: bool,
    pub heap_count: usize,
    pub segments: Vec<SegmentRow>,
    pub total_bytes: u64,
    pub committed_bytes: u64,
}

pub fn eeheap(s: &Session) -> EeHeap {
    let h = &s.runtime.heap;
    let segments: Vec<SegmentRow> = h
        .segments
        .iter()
        .map(|g| SegmentRow {
            segment: g.address,
            begin: g.start,
            allocated: g.end,
            committed: g.committed,
            kind: g.kind.name().to_string(),
            heap: g.heap,
            size: g.end.saturating_sub(g.start),
            committed_size: g.committed.saturating_sub(committed_start(g)),
        })
        .collect();
    let total_bytes = segments.iter().map(|r| r.size).fold(0, u64::saturating_add);
    let committed_bytes = segments
        .iter()
        .map(|r| r.committed_size)
        .fold(0, u64::saturating_add);
    EeHeap {
        server: h.server,
        regions: h.regions,
        heap_count: h.heaps.len(),
        segments,
        total_bytes,
        committed_bytes,
    }
}

/// Where a segment's committed memory starts: the frozen segments' first object less a
/// pointer; a segment whose first object is 0x1000 into an 8 KiB unit, that unit; otherwise the
/// page of its first object (ClrMD's rule, which SOS's committed sizes follow).
fn committed_start(g: &Segment) -> u64 {
    if g.kind == SegmentKind::Frozen {
        g.start.saturating_sub(8)
    } else if g.start & 0x1fff == 0x1000 {
        g.start - 0x1000
    } else {
        g.start & !0xfff
    }
}

impl Render for EeHeap {
    fn render(&self) -> String {
        let mut out = format!(
            "Number of GC Heaps: {}\nGC mode: {}, {}\n",
            self.heap_count,
            if self.server { "server" } else { "workstation" },
            if self.regions { "regions" } else { "segments" }
        );
        let mut last_heap = usize::MAX;
        for r in &self.segments {
            if r.heap != last_heap && self.heap_count > 1 {
                out.push_str(&format!(
                    "------------------------------\nHeap {}\n",
                    r.heap
                ));
            }
            if r.heap != last_heap {
                out.push_str(&format!(
                    "{:>9} {:>16} {:>16} {:>16} {:>16} {:>12}\n",
                    "kind", "segment", "begin", "allocated", "committed", "size"
                ));
                last_heap = r.heap;
            }
            out.push_str(&format!(
                "{:>9} {:016x} {:016x} {:016x} {:016x} {:>12}\n",
                r.kind,
                r.segment,
                r.begin,
                r.allocated,
                r.committed,
                n0(r.size)
            ));
        }
        out.push_str(&format!(
            "------------------------------\nGC Allocated Heap Size:    Size: {} bytes.\nGC Committed Heap Size:    Size: {} bytes.\n",
            memory_size(self.total_bytes), memory_size(self.committed_bytes)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_parse_like_sos() {
        assert_eq!(EeHeapParts::parse(&[]).unwrap(), EeHeapParts::Both);
        assert_eq!(EeHeapParts::parse(&["-GC"]).unwrap(), EeHeapParts::Gc);
        assert_eq!(
            EeHeapParts::parse(&["-loader"]).unwrap(),
            EeHeapParts::Loader
        );
        assert_eq!(
            EeHeapParts::parse(&["-gc", "-loader"]).unwrap(),
            EeHeapParts::Both
        );
        let e = EeHeapParts::parse(&["-heap"]).unwrap_err().to_string();
        assert!(
            e.contains("unknown option '-heap'") && !e.contains('\n'),
            "{e}"
        );
    }
}
