//! Payloads of the runtime events a heap snapshot is made of (provider
//! Microsoft-Windows-DotNETRuntime and its rundown twin). Runtime events carry no field metadata,
//! so the layouts are fixed here; every read is bounds-checked and a short payload is `None`.

/// The runtime provider.
pub const RUNTIME_PROVIDER: &str = "Microsoft-Windows-DotNETRuntime";
/// The rundown provider (module names arrive from it at the end of the session).
pub const RUNDOWN_PROVIDER: &str = "Microsoft-Windows-DotNETRuntimeRundown";

/// GC (0x1) | Type (0x80000) | GCHeapDump (0x100000) | GCHeapCollect (0x800000) |
/// GCHeapAndTypeNames (0x1000000): what makes the runtime run one blocking gen2 GC and log the
/// heap with type names.
pub const HEAP_SNAPSHOT_KEYWORDS: u64 = 0x1 | 0x8_0000 | 0x10_0000 | 0x80_0000 | 0x100_0000;

/// Event ids of the runtime provider this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    GcStart,
    GcStop,
    BulkType,
    BulkRootEdge,
    BulkRootCwtEdge,
    BulkNode,
    BulkEdge,
    BulkRootStaticVar,
    /// ModuleLoad (runtime) or ModuleDCStop (rundown): the module's path.
    Module,
}

impl Kind {
    /// The kind of a runtime or rundown event id, if this crate reads it.
    pub fn of(rundown: bool, id: u32) -> Option<Kind> {
        if rundown {
            // ModuleDCStop; the rundown provider's 152 is a different event.
            return (id == 154).then_some(Kind::Module);
        }
        Some(match id {
            1 => Kind::GcStart,
            2 => Kind::GcStop,
            15 => Kind::BulkType,
            16 => Kind::BulkRootEdge,
            17 => Kind::BulkRootCwtEdge,
            18 => Kind::BulkNode,
            19 => Kind::BulkEdge,
            38 => Kind::BulkRootStaticVar,
            152 => Kind::Module,
            _ => return None,
        })
    }
}

/// A bounds-checked little-endian reader over one payload.
#[derive(Clone, Copy)]
pub struct Bytes<'a> {
    buf: &'a [u8],
    at: usize,
    ptr: usize,
}

impl<'a> Bytes<'a> {
    /// `pointer_size` is 4 or 8 (the trace's PointerSize).
    pub fn new(buf: &'a [u8], pointer_size: u32) -> Self {
        Bytes {
            buf,
            at: 0,
            ptr: if pointer_size == 4 { 4 } else { 8 },
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Some(u64::from_le_bytes(b))
    }

    /// A target pointer (4 or 8 bytes).
    pub fn ptr(&mut self) -> Option<u64> {
        if self.ptr == 4 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }

    /// A NUL-terminated UTF-16LE string.
    pub fn utf16z(&mut self) -> Option<String> {
        let rest = self.buf.get(self.at..)?;
        let mut units = Vec::new();
        for pair in rest.chunks_exact(2) {
            let u = u16::from_le_bytes([pair[0], pair[1]]);
            self.at += 2;
            if u == 0 {
                return Some(String::from_utf16_lossy(&units));
            }
            units.push(u);
        }
        None
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    pub fn pointer_size(&self) -> usize {
        self.ptr
    }
}

/// GCStart v1+: which GC and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcStart {
    pub count: u32,
    pub depth: u32,
    pub reason: u32,
    pub gc_type: u32,
}

/// Reason 1: induced (the snapshot's GC is induced by the session).
pub const REASON_INDUCED: u32 = 1;
/// Type 0: a blocking (non-concurrent) GC.
pub const TYPE_NON_CONCURRENT: u32 = 0;

impl GcStart {
    pub fn parse(p: &[u8]) -> Option<GcStart> {
        let mut b = Bytes::new(p, 8);
        Some(GcStart {
            count: b.u32()?,
            depth: b.u32()?,
            reason: b.u32()?,
            gc_type: b.u32()?,
        })
    }

    /// The GC a heap-dump session induces: full, induced, blocking.
    pub fn is_snapshot_gc(&self) -> bool {
        self.depth >= 2 && self.reason == REASON_INDUCED && self.gc_type == TYPE_NON_CONCURRENT
    }
}

/// GCEnd: the count of the GC that ended.
pub fn gc_stop_count(p: &[u8]) -> Option<u32> {
    Bytes::new(p, 8).u32()
}

/// The header of the indexed bulk events (node, edge, root edge, CWT edge): batch index and
/// element count, and a reader positioned at the first element.
pub fn bulk_header(p: &[u8], pointer_size: u32) -> Option<(u32, u32, Bytes<'_>)> {
    let mut b = Bytes::new(p, pointer_size);
    let index = b.u32()?;
    let count = b.u32()?;
    b.skip(2)?;
    Some((index, count, b))
}

/// One GCBulkNode element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRec {
    pub address: u64,
    pub size: u64,
    pub type_id: u64,
    pub edge_count: u64,
}

impl NodeRec {
    pub fn read(b: &mut Bytes<'_>) -> Option<NodeRec> {
        Some(NodeRec {
            address: b.ptr()?,
            size: b.u64()?,
            type_id: b.u64()?,
            edge_count: b.u64()?,
        })
    }
}

/// One GCBulkEdge element: the referenced object (the field id is always 0).
pub fn read_edge(b: &mut Bytes<'_>) -> Option<u64> {
    let v = b.ptr()?;
    b.skip(4)?;
    Some(v)
}

/// GCRootKind of a root edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RootEdgeKind {
    Stack,
    Finalizer,
    Handle,
    Other,
}

/// GCRootFlag bits.
pub const ROOT_FLAG_PINNING: u32 = 1;
pub const ROOT_FLAG_WEAK: u32 = 2;
pub const ROOT_FLAG_REFCOUNTED: u32 = 8;

/// One GCBulkRootEdge element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootRec {
    pub address: u64,
    pub kind: RootEdgeKind,
    pub flags: u32,
}

impl RootRec {
    pub fn read(b: &mut Bytes<'_>) -> Option<RootRec> {
        let address = b.ptr()?;
        let kind = match b.u8()? {
            0 => RootEdgeKind::Stack,
            1 => RootEdgeKind::Finalizer,
            2 => RootEdgeKind::Handle,
            _ => RootEdgeKind::Other,
        };
        let flags = b.u32()?;
        b.ptr()?;
        Some(RootRec {
            address,
            kind,
            flags,
        })
    }
}

/// One GCBulkRootConditionalWeakTableElementEdge element: (key, value).
pub fn read_cwt(b: &mut Bytes<'_>) -> Option<(u64, u64)> {
    let key = b.ptr()?;
    let value = b.ptr()?;
    b.ptr()?;
    Some((key, value))
}

/// One GCBulkRootStaticVar element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRec {
    pub object: u64,
    /// The type of the referenced object (not the declaring class).
    pub type_id: u64,
    pub thread_local: bool,
    pub field: String,
}

/// The header of GCBulkRootStaticVar: element count, then a reader at the first element.
pub fn static_header(p: &[u8]) -> Option<(u32, Bytes<'_>)> {
    let mut b = Bytes::new(p, 8);
    let count = b.u32()?;
    b.skip(8 + 2)?;
    Some((count, b))
}

impl StaticRec {
    pub fn read(b: &mut Bytes<'_>) -> Option<StaticRec> {
        b.u64()?;
        let object = b.u64()?;
        let type_id = b.u64()?;
        let flags = b.u32()?;
        let field = b.utf16z()?;
        Some(StaticRec {
            object,
            type_id,
            thread_local: flags & 1 != 0,
            field,
        })
    }
}

/// One BulkType element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRec {
    pub type_id: u64,
    pub module_id: u64,
    pub name_token: u32,
    pub flags: u32,
    pub name: String,
}

/// BulkType flag: the type is an array.
pub const TYPE_FLAG_ARRAY: u32 = 0x8;

/// The header of BulkType: element count, then a reader at the first element.
pub fn type_header(p: &[u8]) -> Option<(u32, Bytes<'_>)> {
    let mut b = Bytes::new(p, 8);
    let count = b.u32()?;
    b.skip(2)?;
    Some((count, b))
}

impl TypeRec {
    pub fn read(b: &mut Bytes<'_>) -> Option<TypeRec> {
        let type_id = b.u64()?;
        let module_id = b.u64()?;
        let name_token = b.u32()?;
        let flags = b.u32()?;
        b.u8()?;
        let name = b.utf16z()?;
        let params = b.u32()?;
        b.skip((params as usize).checked_mul(8)?)?;
        Some(TypeRec {
            type_id,
            module_id,
            name_token,
            flags,
            name,
        })
    }
}

/// ModuleLoad / ModuleDCStop: (module id, IL path).
pub fn module_path(p: &[u8]) -> Option<(u64, String)> {
    let mut b = Bytes::new(p, 8);
    let id = b.u64()?;
    b.skip(8 + 4 + 4)?;
    let path = b.utf16z()?;
    Some((id, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_payloads_are_none() {
        assert_eq!(GcStart::parse(&[0; 15]), None);
        let mut b = Bytes::new(&[1, 0, 2], 8);
        assert_eq!(b.utf16z(), None);
        assert!(bulk_header(&[0; 9], 8).is_none());
    }

    #[test]
    fn type_record_reads_name_and_skips_parameters() {
        let mut p = Vec::new();
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&0x10u64.to_le_bytes());
        p.extend_from_slice(&0x20u64.to_le_bytes());
        p.extend_from_slice(&0x0200_0001u32.to_le_bytes());
        p.extend_from_slice(&8u32.to_le_bytes());
        p.push(0x1D);
        for u in "A[]".encode_utf16().chain([0]) {
            p.extend_from_slice(&u.to_le_bytes());
        }
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&0x30u64.to_le_bytes());
        let (n, mut b) = type_header(&p).unwrap();
        assert_eq!(n, 1);
        let t = TypeRec::read(&mut b).unwrap();
        assert_eq!(
            (t.type_id, t.module_id, t.name.as_str()),
            (0x10, 0x20, "A[]")
        );
        assert_eq!(b.remaining(), 0);
    }
}
