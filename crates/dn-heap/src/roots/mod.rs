//! GC roots as users think of them: the runtime's strong handles, the finalizer queue and the
//! thread stacks, in SOS's order (what `gcroot` lists), then each static field of reference type
//! as a root of its own (what MAT does with class statics), then each thread-static field per
//! thread. Dependent handles are not roots: they add conditional edges primary -> secondary.

mod static_skips;
mod statics;
mod thread_statics;

use dn_graph::RootKind;
use serde::Serialize;

use crate::dac::{HandleData, HandleKind, StackRefsOutcome};
use crate::heap::Runtime;

pub(crate) use statics::static_slots;

/// Most finalizer-queue slots read per heap (a garbage fill pointer must not make us read
/// gigabytes).
const MAX_FINALIZER_SLOTS: u64 = 8 << 20;

/// One root: what holds the reference, and the object it holds.
#[derive(Debug, Clone)]
pub struct RootRecord {
    pub kind: RootKind,
    /// The handle, stack slot, finalizer-queue slot or (thread-)static field holding the reference
    /// (0 for a reference held in a register).
    pub slot: u64,
    /// The address held; for an interior pointer (`interior`), an address inside the object.
    pub object: u64,
    pub interior: bool,
    pub detail: RootDetail,
}

/// What a root kind says about itself beyond its slot.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RootDetail {
    None,
    RefCount {
        ref_count: u32,
    },
    Stack {
        thread: u32,
        /// SOS's frame line: "<ip> Method(sig)" or "[Frame: addr]".
        frame: Option<String>,
        stack_pointer: u64,
        register: Option<String>,
    },
    Static {
        /// "Namespace.Type.Field", as `gcroot` prints it.
        field: String,
    },
    ThreadStatic {
        /// "Namespace.Type.Field".
        field: String,
        /// The OS id of the thread whose value of the field this is.
        thread: u32,
    },
    /// The runtime's array that stores static fields (held by the runtime itself, whether or
    /// not a GC handle reaches it).
    StaticsArray,
    /// The runtime's object that stores a thread's thread-static fields (held by the runtime
    /// while the thread lives).
    ThreadStaticsStorage,
}

impl RootRecord {
    /// SOS's words for the root's kind ("strong handle", "ref counted handle RefCount: 2",
    /// "finalizer root", "stack", "static").
    pub fn kind_text(&self) -> String {
        match &self.detail {
            RootDetail::RefCount { ref_count } => {
                format!("{} RefCount: {ref_count}", self.kind.name())
            }
            RootDetail::StaticsArray => "statics array".to_string(),
            RootDetail::ThreadStaticsStorage => "thread statics storage".to_string(),
            _ => self.kind.name().to_string(),
        }
    }
}

impl RootDetail {
    /// Whether this is the runtime's storage of statics or thread statics (a root only so that
    /// it stays live; each field in it is a root of its own).
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            RootDetail::StaticsArray | RootDetail::ThreadStaticsStorage
        )
    }

    /// The (thread-)static field's "Namespace.Type.Field".
    pub fn field(&self) -> Option<&str> {
        match self {
            RootDetail::Static { field } | RootDetail::ThreadStatic { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Which roots to collect.
#[derive(Debug, Clone, Copy)]
pub struct RootOptions {
    pub stacks: bool,
    pub statics: bool,
}

/// The roots of a runtime, and what could not be read.
#[derive(Debug, Default)]
pub struct RootSet {
    pub roots: Vec<RootRecord>,
    pub warnings: Vec<String>,
}

/// A handle kind's root kind, for the handles that keep their object alive.
fn root_kind(h: &HandleData) -> Option<RootKind> {
    if !h.is_root() {
        return None;
    }
    Some(match h.kind {
        HandleKind::Strong => RootKind::StrongHandle,
        HandleKind::Pinned => RootKind::PinnedHandle,
        HandleKind::AsyncPinned => RootKind::AsyncPinnedHandle,
        HandleKind::RefCounted => RootKind::RefCountedHandle,
        HandleKind::SizedRef => RootKind::SizedRefHandle,
        _ => RootKind::Other,
    })
}

/// Collects the roots in SOS's order: handles, finalizer queue, stacks, then statics and
/// thread statics.
pub fn collect(rt: &Runtime, opts: RootOptions) -> RootSet {
    let mut set = RootSet::default();
    handle_roots(rt, &mut set);
    finalizer_roots(rt, &mut set);
    if opts.stacks {
        stack_roots(rt, &mut set);
    }
    if opts.statics {
        static_roots(rt, &mut set);
    }
    set
}

fn handle_roots(rt: &Runtime, set: &mut RootSet) {
    let mem = rt.heap.memory();
    let handles = match rt.dac.handles(&HandleKind::ALL) {
        Ok(h) => h,
        Err(e) => {
            set.warnings.push(format!(
                "the handle table could not be read ({e}): no handle roots"
            ));
            return;
        }
    };
    let mut unreadable = 0usize;
    for h in &handles {
        let Some(kind) = root_kind(h) else { continue };
        let obj = match mem.read_u64(h.handle) {
            Ok(o) => o,
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        if obj == 0 {
            continue;
        }
        let detail = if h.kind == HandleKind::RefCounted {
            RootDetail::RefCount {
                ref_count: h.ref_count,
            }
        } else {
            RootDetail::None
        };
        set.roots.push(RootRecord {
            kind,
            slot: h.handle,
            object: obj,
            interior: false,
            detail,
        });
    }
    if unreadable > 0 {
        set.warnings.push(format!(
            "{unreadable} handle(s) could not be read from the dump: their objects are not roots here"
        ));
    }
}

fn finalizer_roots(rt: &Runtime, set: &mut RootSet) {
    let mem = rt.heap.memory();
    let mut unreadable = 0u64;
    for heap in &rt.heap.heaps {
        let fp = &heap.fill_pointers;
        // With N generations the f-reachable queue is [FP[N-1], FP[N+1]).
        if fp.len() < 3 {
            continue;
        }
        let n = fp.len() - 2;
        let (start, end) = (fp[n - 1], fp[n + 1]);
        if end < start || (end - start) / 8 > MAX_FINALIZER_SLOTS {
            set.warnings.push(format!(
                "heap {}: implausible finalizer queue [{start:#x}, {end:#x}): not read",
                heap.index
            ));
            continue;
        }
        let mut a = start;
        while a < end {
            match mem.read_u64(a) {
                Ok(0) => {}
                Ok(obj) => set.roots.push(RootRecord {
                    kind: RootKind::Finalizer,
                    slot: a,
                    object: obj,
                    interior: false,
                    detail: RootDetail::None,
                }),
                Err(_) => unreadable += 1,
            }
            a += 8;
        }
    }
    if unreadable > 0 {
        set.warnings.push(format!(
            "{unreadable} finalizer-queue slot(s) could not be read from the dump"
        ));
    }
}

fn stack_roots(rt: &Runtime, set: &mut RootSet) {
    let threads = match rt.dac.threads() {
        Ok(t) => t,
        Err(e) => {
            set.warnings.push(format!(
                "the thread list could not be read ({e}): no stack roots"
            ));
            return;
        }
    };
    let live: Vec<_> = threads.iter().filter(|t| t.is_live()).collect();
    let tids: Vec<u32> = live.iter().map(|t| t.os_id).collect();
    let (mut failed, mut found) = (0usize, 0usize);
    let mut crashed: Vec<(u32, String)> = Vec::new();
    for (os_id, walk) in rt.dac.stack_refs_isolated(&tids) {
        let refs = match walk {
            StackRefsOutcome::Refs(r) => r,
            StackRefsOutcome::Failed(_) => {
                failed += 1;
                continue;
            }
            StackRefsOutcome::Crashed(how) => {
                crashed.push((os_id, how));
                continue;
            }
        };
        for r in refs.iter().filter(|r| r.object != 0) {
            found += 1;
            // SOS's frame line: "<ip> Method(sig)" for managed code, "[Frame: addr]" else.
            let frame = if r.source_type == 0 {
                rt.dac
                    .method_name_for_ip(r.source)
                    .ok()
                    .map(|m| format!("{:x} {m}", r.source))
            } else {
                rt.dac
                    .frame_name(r.source)
                    .ok()
                    .map(|n| format!("[{n}: {:x}]", r.source))
            };
            let register = r.has_register.then(|| {
                let name = rt
                    .dac
                    .register_name(r.register)
                    .unwrap_or_else(|_| format!("r{}", r.register));
                match r.offset {
                    0 => name,
                    o if o > 0 => format!("{name}+{o:x}"),
                    o => format!("{name}-{:x}", -(o as i64)),
                }
            });
            set.roots.push(RootRecord {
                kind: RootKind::Stack,
                slot: r.address,
                object: r.object,
                interior: r.flags & 1 != 0,
                detail: RootDetail::Stack {
                    thread: os_id,
                    frame,
                    stack_pointer: r.stack_pointer,
                    register,
                },
            });
        }
    }
    if failed > 0 {
        set.warnings.push(format!(
            "the stacks of {failed} of {} live thread(s) could not be walked: objects only they hold look dead",
            live.len()
        ));
    }
    if let Some((tid, how)) = crashed.first() {
        set.warnings.push(format!(
            "the runtime's DAC crashed walking the stacks of {} of {} live thread(s) (first: thread {tid:x}, {how}); the walk ran apart, so only their stack roots are missing: objects only they hold look dead",
            crashed.len(),
            live.len()
        ));
    }
    if found == 0 && !live.is_empty() && failed + crashed.len() < live.len() {
        set.warnings.push(format!(
            "{} live thread(s) but no stack roots (a core without thread contexts?): objects only stacks hold look dead",
            live.len()
        ));
    }
}

fn static_roots(rt: &Runtime, set: &mut RootSet) {
    let mem = rt.heap.memory();
    let found = static_slots(rt);
    set.warnings.extend(found.warnings);
    let mut slots: Vec<(u64, String)> = found.slots.into_iter().collect();
    // Slot order: deterministic output, and the statics arrays are read in address order.
    slots.sort_unstable_by_key(|s| s.0);
    let mut unreadable = 0usize;
    for (slot, field) in slots {
        match mem.read_u64(slot) {
            Ok(0) => {}
            Ok(obj) => set.roots.push(RootRecord {
                kind: RootKind::Static,
                slot,
                object: obj,
                interior: false,
                detail: RootDetail::Static { field },
            }),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        set.warnings.push(format!(
            "{unreadable} static field(s) could not be read from the dump"
        ));
    }
    thread_statics::thread_static_roots(rt, &found.thread_fields, set);
}

/// Dependent handles (ConditionalWeakTable entries): conditional edges primary -> secondary,
/// sorted by primary then secondary (ClrMD's order).
pub fn dependent_edges(rt: &Runtime) -> (Vec<(u64, u64)>, Vec<String>) {
    let mem = rt.heap.memory();
    let mut edges = Vec::new();
    let mut warnings = Vec::new();
    match rt.dac.handles(&[HandleKind::Dependent]) {
        Ok(hs) => {
            let mut unreadable = 0usize;
            for h in hs {
                match mem.read_u64(h.handle) {
                    Ok(p) if p != 0 && h.secondary != 0 => edges.push((p, h.secondary)),
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            }
            if unreadable > 0 {
                warnings.push(format!(
                    "{unreadable} dependent handle(s) could not be read from the dump"
                ));
            }
        }
        Err(e) => warnings.push(format!(
            "dependent handles could not be read ({e}): ConditionalWeakTable values may look dead"
        )),
    }
    edges.sort_unstable();
    (edges, warnings)
}
