//! The object walk behind every `dumpheap` form: the heap (or the live set's nodes) filtered by
//! type, MethodTable, size, generation and liveness.

use std::ops::ControlFlow;

use anyhow::bail;
use dn_graph::NodeId;
use rustc_hash::FxHashMap;

use super::{DumpHeapOptions, FrozenCount};
use crate::commands::Session;
use crate::graph::LiveSet;
use crate::heap::{HeapObject, SegmentKind, WalkError, WalkIssue};

/// What a filtered walk met besides the objects it passed on.
#[derive(Default)]
pub(super) struct WalkNotes {
    issues: Vec<WalkIssue>,
    /// Unreachable objects on frozen segments (never collected), with `-dead`.
    frozen: FrozenCount,
    /// Warnings of the heap graph, when `-live`/`-dead` needed it.
    graph_warnings: Vec<String>,
}

/// Walks the heap, calling `f` for each object passing the filters.
pub(super) fn filtered_walk(
    s: &Session,
    o: &DumpHeapOptions,
    mut f: impl FnMut(&HeapObject),
) -> anyhow::Result<WalkNotes> {
    let rt = &s.runtime;
    let heap = &rt.heap;
    let mut notes = WalkNotes::default();
    let mut type_ok: FxHashMap<u64, bool> = FxHashMap::default();
    let live = if o.live || o.dead {
        // `-retained` builds the graph anyway: its live set then costs nothing more.
        let live = if o.retained {
            LiveSet::from_graph(s.graph()?)
        } else {
            s.live_set()?
        };
        notes.graph_warnings = live.warnings().to_vec();
        Some(live)
    } else {
        None
    };
    if let (Some(live), None) = (&live, o.gen) {
        // The live set holds every object of the walk (free space left out) in address
        // order: its nodes are filtered instead of walking the heap again.
        let nodes = live.nodes();
        let mut segment = SegmentCursor::default();
        for id in 0..nodes.len() as NodeId {
            if id % 65_536 == 0 && s.cancelled() {
                bail!("cancelled");
            }
            if live.is_live(id) != o.live {
                continue;
            }
            let (address, mt, size) = (nodes.address(id), live.mt(id), nodes.size(id));
            if o.dead && live.is_frozen(id) {
                notes.frozen.count += 1;
                notes.frozen.size += size;
                continue;
            }
            if o.mt.is_some_and(|m| m != mt)
                || o.min.is_some_and(|m| size < m)
                || o.max.is_some_and(|m| size > m)
            {
                continue;
            }
            if let Some(sub) = &o.type_substr {
                let ok = *type_ok
                    .entry(mt)
                    .or_insert_with(|| heap.type_name(&rt.dac, mt).contains(sub.as_str()));
                if !ok {
                    continue;
                }
            }
            f(&HeapObject {
                address,
                mt,
                size,
                segment: segment.find(&heap.segments, address),
                type_index: nodes.type_index(id),
            });
        }
        // The walk's own problems are among the graph's warnings.
        return Ok(notes);
    }
    let free_mt = heap.globals.free_mt;
    // Inlined into the walk's loop: this runs once per object.
    let res = heap.walk(
        &rt.dac,
        Some(&s.cancel),
        #[inline(always)]
        |obj| {
            if let Some(live) = &live {
                // Free space is neither live nor dead.
                if obj.mt == free_mt {
                    return ControlFlow::Continue(());
                }
                let is_live = live
                    .nodes()
                    .id_of(obj.address)
                    .is_some_and(|id| live.is_live(id));
                if is_live != o.live {
                    return ControlFlow::Continue(());
                }
                if o.dead && heap.segments[obj.segment].kind == SegmentKind::Frozen {
                    notes.frozen.count += 1;
                    notes.frozen.size += obj.size;
                    return ControlFlow::Continue(());
                }
            }
            if o.mt.is_some_and(|m| m != obj.mt)
                || o.min.is_some_and(|m| obj.size < m)
                || o.max.is_some_and(|m| obj.size > m)
            {
                return ControlFlow::Continue(());
            }
            if let Some(g) = o.gen {
                if heap.segments[obj.segment].generation_of(obj.address) != g {
                    return ControlFlow::Continue(());
                }
            }
            if let Some(sub) = &o.type_substr {
                let ok = *type_ok
                    .entry(obj.mt)
                    .or_insert_with(|| heap.type_name(&rt.dac, obj.mt).contains(sub.as_str()));
                if !ok {
                    return ControlFlow::Continue(());
                }
            }
            f(obj);
            ControlFlow::Continue(())
        },
    );
    match res {
        Ok(issues) => {
            notes.issues = issues;
            Ok(notes)
        }
        Err(WalkError::Cancelled) => bail!("cancelled"),
    }
}

/// The segment of each address of an increasing sequence, found again only when the address
/// leaves the last one.
#[derive(Default)]
struct SegmentCursor {
    last: Option<(usize, u64, u64)>,
}

impl SegmentCursor {
    fn find(&mut self, segments: &[crate::heap::Segment], address: u64) -> usize {
        if let Some((i, start, end)) = self.last {
            if (start..end).contains(&address) {
                return i;
            }
        }
        match segments
            .iter()
            .position(|sg| (sg.start..sg.end).contains(&address))
        {
            Some(i) => {
                self.last = Some((i, segments[i].start, segments[i].end));
                i
            }
            None => 0,
        }
    }
}

impl WalkNotes {
    pub(super) fn warnings(&mut self) -> Vec<String> {
        let mut w = issues_text(std::mem::take(&mut self.issues));
        w.append(&mut self.graph_warnings);
        w
    }

    pub(super) fn frozen(&self, o: &DumpHeapOptions) -> Option<FrozenCount> {
        (o.dead && self.frozen.count > 0).then_some(self.frozen)
    }
}

fn issues_text(issues: Vec<WalkIssue>) -> Vec<String> {
    issues
        .into_iter()
        .map(|i| {
            format!(
                "segment 0x{:x} at 0x{:x}: {}",
                i.segment, i.address, i.message
            )
        })
        .collect()
}
