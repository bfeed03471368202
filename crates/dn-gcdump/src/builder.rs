//! Streams the nettrace of a heap-snapshot session into a compact in-memory heap: nodes in
//! stream order as columns, references as two `u32` halves of the target address, roots,
//! statics and the type table. Nothing is kept per event beyond what the graph needs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dn_nettrace::{EventRef, NettraceParser, ParseError};
use rustc_hash::FxHashMap;

use crate::events::{self, Bytes, GcStart, Kind, NodeRec, RootRec, StaticRec, TypeRec};
use crate::loss::{BatchCounter, LossCounter};

/// What the collecting thread shows while the stream arrives.
#[derive(Debug, Default)]
pub struct Progress {
    pub nodes: AtomicU64,
    pub edges: AtomicU64,
    /// The induced GC's heap walk has ended (its GCStop arrived).
    pub complete: AtomicBool,
    /// The induced GC started.
    pub started: AtomicBool,
    /// Stream bytes received.
    pub bytes: AtomicU64,
    /// Events and batches known lost so far.
    pub lost: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GcState {
    Waiting,
    InGc { count: u32 },
    Done,
}

/// The heap as the events gave it.
#[derive(Debug, Default)]
pub struct RawHeap {
    pub pointer_size: u32,
    pub addr: Vec<u64>,
    /// Clamped to `i32::MAX` as the file stores sizes as `int`.
    pub size: Vec<u32>,
    /// Index into `type_ids`.
    pub slot: Vec<u32>,
    /// Per node, the sum of the EdgeCounts announced before it (saturating at `u32::MAX`): its
    /// first reference's index, and with the next node's its reference count. Kept in the final
    /// form of the file's child offsets, so the conversion adds no column.
    pub edge_starts: Vec<u32>,
    /// Low halves of the referenced addresses.
    pub edges_lo: Vec<u32>,
    /// High halves as runs: (first reference index, high half); they rarely change.
    pub edges_hi: Vec<(u64, u32)>,
    pub roots: Vec<RootRec>,
    pub cwt: Vec<(u64, u64)>,
    pub statics: Vec<StaticRec>,
    /// TypeID per slot.
    pub type_ids: Vec<u64>,
    slots: FxHashMap<u64, u32>,
    pub types: FxHashMap<u64, TypeRec>,
    pub modules: FxHashMap<u64, String>,
    /// Sum of the nodes' EdgeCount (compared with the edges received).
    pub edges_announced: u64,
    /// Events whose payload could not be read.
    pub malformed: u64,
    /// 1 when the walk's end (the induced GC's GCStop) never arrived: lost with other events.
    pub unfinished: u64,
}

impl RawHeap {
    pub fn slot_of(&mut self, type_id: u64) -> u32 {
        let next = self.type_ids.len() as u32;
        *self.slots.entry(type_id).or_insert_with(|| {
            self.type_ids.push(type_id);
            next
        })
    }

    fn push_edge(&mut self, target: u64) {
        let hi = (target >> 32) as u32;
        if self.edges_hi.last().map(|r| r.1) != Some(hi) {
            self.edges_hi.push((self.edges_lo.len() as u64, hi));
        }
        self.edges_lo.push(target as u32);
    }

    /// Records node references announced by a node's EdgeCount.
    pub fn announce_edges(&mut self, count: u64) {
        self.edge_starts
            .push(self.edges_announced.min(u64::from(u32::MAX)) as u32);
        self.edges_announced = self.edges_announced.saturating_add(count);
    }

    fn clear_walk(&mut self) {
        let types = std::mem::take(&mut self.types);
        let modules = std::mem::take(&mut self.modules);
        let pointer_size = self.pointer_size;
        *self = RawHeap {
            types,
            modules,
            pointer_size,
            ..RawHeap::default()
        };
    }
}

/// Loss and consistency figures of one collection.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Losses {
    /// Events missing by EventPipe's per-thread sequence numbers.
    pub events: u64,
    /// Missing batches of nodes, edges, root edges and CWT edges (by their Index).
    pub batches: u64,
    /// Events whose payload could not be read.
    pub malformed: u64,
    /// 1 when the walk's end (the induced GC's GCStop) never arrived: lost with other events.
    pub unfinished: u64,
}

impl Losses {
    pub fn any(&self) -> bool {
        self.events + self.batches + self.malformed + self.unfinished > 0
    }
}

/// The parser plus the heap under construction.
pub struct Collector {
    parser: NettraceParser,
    seen_sequence_points: u64,
    walk: Walk,
    /// The first parse error; the rest of the stream is ignored.
    pub error: Option<ParseError>,
}

impl Collector {
    pub fn new(progress: Arc<Progress>) -> Self {
        Collector {
            parser: NettraceParser::new(),
            seen_sequence_points: 0,
            walk: Walk {
                heap: RawHeap::default(),
                state: GcState::Waiting,
                blocks_in_gc: 0,
                batches: [BatchCounter::default(); 4],
                loss: LossCounter::default(),
                progress,
            },
            error: None,
        }
    }

    /// True once the induced GC's heap walk has been received in full.
    pub fn is_complete(&self) -> bool {
        self.walk.state == GcState::Done
    }

    pub fn losses(&self) -> Losses {
        Losses {
            events: self.walk.loss.events_lost,
            batches: self.walk.batches.iter().map(|b| b.missing).sum(),
            malformed: self.walk.heap.malformed,
            unfinished: u64::from(!self.is_complete()),
        }
    }

    /// The heap received.
    pub fn into_heap(self) -> RawHeap {
        self.walk.heap
    }

    /// Feeds stream bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let walk = &mut self.walk;
        if let Err(e) = self.parser.feed_each(bytes, |ev| walk.on_event(&ev)) {
            self.error = Some(e);
        }
        let (points, _) = self.parser.counts();
        if points != self.seen_sequence_points {
            self.seen_sequence_points = points;
            if let Some(sp) = self.parser.last_sequence_point() {
                self.walk.loss.sequence_point(&sp.threads);
            }
        }
        let p = &self.walk.progress;
        p.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let missing: u64 = self.walk.batches.iter().map(|b| b.missing).sum();
        p.lost.store(
            self.walk.loss.events_lost.saturating_add(missing),
            Ordering::Relaxed,
        );
    }
}

/// The heap walk's state as the events arrive.
struct Walk {
    heap: RawHeap,
    state: GcState,
    blocks_in_gc: u64,
    batches: [BatchCounter; 4],
    loss: LossCounter,
    progress: Arc<Progress>,
}

impl Walk {
    fn on_event(&mut self, ev: &EventRef<'_>) {
        self.loss.event(ev.capture_thread_id, ev.sequence);
        let provider = ev.provider_name();
        let rundown = if provider == events::RUNTIME_PROVIDER {
            false
        } else if provider == events::RUNDOWN_PROVIDER {
            true
        } else {
            return;
        };
        let Some(kind) = Kind::of(rundown, ev.event_id()) else {
            return;
        };
        let p = ev.payload;
        let ptr = ev.trace.pointer_size;
        let ok = match kind {
            Kind::BulkType => self.types(p),
            Kind::Module => events::module_path(p)
                .map(|(id, path)| {
                    self.heap.modules.insert(id, path);
                })
                .is_some(),
            Kind::GcStart => GcStart::parse(p).map(|g| self.gc_start(g, ptr)).is_some(),
            Kind::GcStop => events::gc_stop_count(p).map(|c| self.gc_stop(c)).is_some(),
            _ if !matches!(self.state, GcState::InGc { .. }) => true,
            Kind::BulkNode => self.nodes(p, ptr),
            Kind::BulkEdge => self.edges(p, ptr),
            Kind::BulkRootEdge => self.root_edges(p, ptr),
            Kind::BulkRootCwtEdge => self.cwt_edges(p, ptr),
            Kind::BulkRootStaticVar => self.statics(p),
        };
        if !ok {
            self.heap.malformed += 1;
        }
    }

    fn gc_start(&mut self, g: GcStart, pointer_size: u32) {
        if self.state == GcState::Waiting && g.is_snapshot_gc() {
            self.state = GcState::InGc { count: g.count };
            self.blocks_in_gc = 0;
            self.heap.pointer_size = pointer_size;
            self.progress.started.store(true, Ordering::Release);
        }
    }

    fn gc_stop(&mut self, count: u32) {
        if self.state != (GcState::InGc { count }) {
            return;
        }
        if self.blocks_in_gc == 0 {
            // A GC.Collect() of the application's own: no heap walk; wait for ours.
            self.state = GcState::Waiting;
            self.heap.clear_walk();
            self.batches = Default::default();
            return;
        }
        self.state = GcState::Done;
        self.progress.complete.store(true, Ordering::Release);
    }

    fn types(&mut self, p: &[u8]) -> bool {
        let Some((count, mut b)) = events::type_header(p) else {
            return false;
        };
        for _ in 0..count {
            let Some(t) = TypeRec::read(&mut b) else {
                return false;
            };
            self.heap.types.insert(t.type_id, t);
        }
        if matches!(self.state, GcState::InGc { .. }) {
            self.blocks_in_gc += 1;
        }
        true
    }

    fn nodes(&mut self, p: &[u8], ptr: u32) -> bool {
        let Some((index, count, mut b)) = events::bulk_header(p, ptr) else {
            return false;
        };
        self.batches[0].batch(index);
        self.blocks_in_gc += 1;
        let h = &mut self.heap;
        for _ in 0..count {
            let Some(n) = NodeRec::read(&mut b) else {
                return false;
            };
            let slot = h.slot_of(n.type_id);
            h.addr.push(n.address);
            h.size.push(n.size.min(i32::MAX as u64) as u32);
            h.slot.push(slot);
            h.announce_edges(n.edge_count);
        }
        self.progress
            .nodes
            .fetch_add(u64::from(count), Ordering::Relaxed);
        true
    }

    fn edges(&mut self, p: &[u8], ptr: u32) -> bool {
        let Some((index, count, mut b)) = events::bulk_header(p, ptr) else {
            return false;
        };
        self.batches[1].batch(index);
        self.blocks_in_gc += 1;
        for _ in 0..count {
            let Some(v) = events::read_edge(&mut b) else {
                return false;
            };
            self.heap.push_edge(v);
        }
        self.progress
            .edges
            .fetch_add(u64::from(count), Ordering::Relaxed);
        true
    }

    fn root_edges(&mut self, p: &[u8], ptr: u32) -> bool {
        let Some((index, count, b)) = events::bulk_header(p, ptr) else {
            return false;
        };
        self.batches[2].batch(index);
        each(count, b, RootRec::read, |r| self.heap.roots.push(r))
    }

    fn cwt_edges(&mut self, p: &[u8], ptr: u32) -> bool {
        let Some((index, count, b)) = events::bulk_header(p, ptr) else {
            return false;
        };
        self.batches[3].batch(index);
        each(count, b, events::read_cwt, |kv| self.heap.cwt.push(kv))
    }

    fn statics(&mut self, p: &[u8]) -> bool {
        let Some((count, b)) = events::static_header(p) else {
            return false;
        };
        each(count, b, StaticRec::read, |s| self.heap.statics.push(s))
    }
}

/// Reads `count` elements with `read`, handing each to `f`; false if the payload is short.
fn each<T>(
    count: u32,
    mut b: Bytes<'_>,
    read: impl Fn(&mut Bytes<'_>) -> Option<T>,
    mut f: impl FnMut(T),
) -> bool {
    for _ in 0..count {
        match read(&mut b) {
            Some(x) => f(x),
            None => return false,
        }
    }
    true
}
