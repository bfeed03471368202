//! Reads a `.gcdump` (ours, dotnet-gcdump's, PerfView's) into a [`Snapshot`]. The whole file is
//! in memory; every count is checked against the bytes left before anything is allocated, and
//! every error names the offset.

use std::path::Path;

use crate::error::FormatError;
use crate::fastser::{tag, Reader, HEADER};
use crate::snapshot::{cint, Meta, Snapshot, TypeEntry};

/// Reads the file at `path`.
pub fn read_file(path: &Path) -> anyhow::Result<Snapshot> {
    use anyhow::Context;
    let bytes =
        crate::map::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_gcdump(&bytes).with_context(|| format!("cannot read {}", path.display()))
}

/// An object's type as the stream names it.
struct ObjType {
    name: String,
    version: i32,
    min_reader: i32,
}

/// Per type index: node count and summed size; what a report needs, without the graph.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub bytes: Vec<u64>,
    pub references: u64,
}

struct Parser<'a> {
    r: Reader<'a>,
    /// Count per type instead of keeping nodes and references.
    histogram: Option<Histogram>,
    /// Types written in full, by the offset of their `04`, for `02 label` references.
    types: Vec<(usize, String, i32, i32)>,
}

/// Parses a whole `.gcdump` file.
pub fn read_gcdump(bytes: &[u8]) -> Result<Snapshot, FormatError> {
    parse(bytes, None).map(|(s, _)| s)
}

/// Parses a whole `.gcdump` file but keeps only the type table, the facts and per-type
/// counts: the snapshot returned has no nodes.
pub fn read_histogram(bytes: &[u8]) -> Result<(Snapshot, Histogram), FormatError> {
    parse(bytes, Some(Histogram::default())).map(|(s, h)| (s, h.unwrap_or_default()))
}

fn parse(
    bytes: &[u8],
    histogram: Option<Histogram>,
) -> Result<(Snapshot, Option<Histogram>), FormatError> {
    let mut p = Parser {
        r: Reader::new(bytes),
        histogram,
        types: Vec::new(),
    };
    p.header()?;
    p.trailer()?;
    let t = p.object_start("the GCHeapDump object")?;
    let Some(t) = t else {
        return Err(p.r.corrupt("the GCHeapDump object is null"));
    };
    if t.name != "GCHeapDump" {
        return Err(FormatError::Foreign {
            offset: 0,
            what: format!("the entry object is a {}, not a GCHeapDump", t.name),
        });
    }
    if t.version == 8 || t.version < 4 {
        return Err(FormatError::Unsupported {
            offset: p.r.pos() as u64,
            what: format!("GCHeapDump version {}", t.version),
        });
    }
    let mut snap = p.memory_graph()?;
    snap.meta = p.heap_dump_fields(t.version, &mut snap.is_64bit)?;
    Ok((snap, p.histogram))
}

impl Parser<'_> {
    fn header(&mut self) -> Result<(), FormatError> {
        let foreign = |what: &str| FormatError::Foreign {
            offset: 0,
            what: what.to_string(),
        };
        let ok = self.r.len() >= 4 + HEADER.len()
            && self.r.i32("the header length")? == HEADER.len() as i32
            && self.r.take(HEADER.len(), "the header")? == HEADER;
        if !ok {
            return Err(foreign("no \"!FastSerialization.1\" header"));
        }
        Ok(())
    }

    /// The last 4 bytes point at the trailer, which points at the forward-reference table; a
    /// file cut short anywhere fails here.
    fn trailer(&mut self) -> Result<(), FormatError> {
        let len = self.r.len();
        let start = self.r.pos();
        let bad = |offset: usize, what: &str| FormatError::Truncated {
            offset: offset as u64,
            what: what.to_string(),
            len: len as u64,
        };
        if len < start + 12 {
            return Err(bad(start, "the object stream"));
        }
        self.r.seek(len - 4, "the trailer")?;
        let trailer = self.r.u32("the trailer label")? as usize;
        if trailer < start || trailer + 4 > len - 4 {
            return Err(bad(len - 4, "the trailer label"));
        }
        self.r.seek(trailer, "the trailer")?;
        let table = self.r.u32("the forward reference table label")? as usize;
        if table < start || table + 4 > trailer {
            return Err(bad(trailer, "the forward reference table label"));
        }
        self.r.seek(table, "the forward reference table")?;
        let n = self.r.count("forward reference count", 4)?;
        if table + 4 + 4 * n != trailer {
            return Err(bad(table, "the forward reference table"));
        }
        self.r.seek(start, "the entry object")
    }

    /// `04 <type>`, `07 <idx> 04 <type>`, or `01` (null, `None`).
    fn object_start(&mut self, what: &str) -> Result<Option<ObjType>, FormatError> {
        let mut t = self.r.u8(what)?;
        if t == tag::NULL {
            return Ok(None);
        }
        if t == tag::FORWARD_DEF {
            self.r.i32("a forward reference index")?;
            t = self.r.u8(what)?;
        }
        if t != tag::BEGIN_OBJECT && t != tag::BEGIN_PRIVATE {
            return Err(self
                .r
                .corrupt(format!("expected {what}, found byte {t:#04x}")));
        }
        self.object_type().map(Some)
    }

    fn object_type(&mut self) -> Result<ObjType, FormatError> {
        let at = self.r.pos();
        match self.r.u8("an object type")? {
            tag::BEGIN_OBJECT => {
                self.r.expect(tag::NULL, "the type's null type")?;
                let version = self.r.i32("the type version")?;
                let min_reader = self.r.i32("the type's minimum reader version")?;
                let name = self.r.string("the type name")?.unwrap_or_default();
                self.r.expect(tag::END_OBJECT, "the end of the type")?;
                self.types.push((at, name.clone(), version, min_reader));
                Ok(ObjType {
                    name,
                    version,
                    min_reader,
                })
            }
            tag::OBJECT_REF => {
                let label = self.r.u32("a type reference")? as usize;
                match self.types.iter().find(|t| t.0 == label) {
                    Some((_, name, version, min_reader)) => Ok(ObjType {
                        name: name.clone(),
                        version: *version,
                        min_reader: *min_reader,
                    }),
                    None => Err(self
                        .r
                        .corrupt(format!("type reference to unknown offset {label}"))),
                }
            }
            b => Err(FormatError::Corrupt {
                offset: at as u64,
                what: format!("expected an object type, found byte {b:#04x}"),
            }),
        }
    }

    fn memory_graph(&mut self) -> Result<Snapshot, FormatError> {
        let t = self
            .object_start("the MemoryGraph object")?
            .ok_or_else(|| self.r.corrupt("the MemoryGraph is null"))?;
        if t.name != "Graphs.MemoryGraph" {
            return Err(self
                .r
                .corrupt(format!("expected Graphs.MemoryGraph, found {}", t.name)));
        }
        if t.min_reader >= 1 {
            return Err(FormatError::Unsupported {
                offset: self.r.pos() as u64,
                what: "a MemoryGraph with deferred (Project N) type names".into(),
            });
        }
        let mut s = Snapshot {
            total_size: self.r.i64("the total size")?,
            ..Snapshot::default()
        };
        let root_at = self.r.pos();
        s.root = self.r.u32("the root index")?;
        let type_count = self.r.count("type count", 9)?;
        s.types.reserve(type_count);
        for _ in 0..type_count {
            let name = self.r.string("a type name")?.unwrap_or_default();
            let size = self.r.i32("a type size")?;
            let module = self.r.string("a module name")?;
            s.types.push(TypeEntry { name, size, module });
        }
        let n = self.r.count("node count", 4 + 8)?;
        let labels = self.r.take(4 * n, "the node labels")?;
        let blob_len = self.r.count("the node blob length", 1)?;
        let blob_at = self.r.pos();
        let blob = self.r.take(blob_len, "the node blob")?;
        self.nodes(&mut s, labels, blob, blob_at)?;
        let addr_at = self.r.pos();
        let addr_count = self.r.count("address count", 8)?;
        if addr_count != n {
            return Err(FormatError::Corrupt {
                offset: addr_at as u64,
                what: format!("{addr_count} addresses for {n} nodes"),
            });
        }
        let addrs = self.r.take(8 * n, "the node addresses")?;
        if self.histogram.is_none() {
            s.addresses = addrs
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
        }
        if s.root as usize >= n {
            return Err(FormatError::Corrupt {
                offset: root_at as u64,
                what: format!("root node {} of {n} nodes", s.root),
            });
        }
        s.is_64bit = true;
        if self.r.peek() == Some(tag::BYTE) {
            self.r.u8("a tag")?;
            s.is_64bit = self.r.u8("Is64Bit")? != 0;
        }
        self.skip_to_end()?;
        Ok(s)
    }

    fn nodes(
        &mut self,
        s: &mut Snapshot,
        labels: &[u8],
        blob: &[u8],
        blob_at: usize,
    ) -> Result<(), FormatError> {
        let n = labels.len() / 4;
        let types = s.types.len();
        let mut hist = self.histogram.take();
        if let Some(h) = hist.as_mut() {
            h.counts = vec![0; types];
            h.bytes = vec![0; types];
        } else {
            s.node_types = Vec::with_capacity(n);
            s.node_sizes = Vec::with_capacity(n);
            s.child_offsets = Vec::with_capacity(n + 1);
            s.child_offsets.push(0);
        }
        let mut total_children = 0usize;
        let bad = |at: usize, what: String| FormatError::Corrupt {
            offset: (blob_at + at) as u64,
            what,
        };
        for (i, l) in labels.chunks_exact(4).enumerate() {
            let mut at = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
            if at >= blob.len() {
                return Err(bad(at, format!("node {i}'s record is outside the blob")));
            }
            let start = at;
            let short = || bad(start, format!("node {i}'s record runs past the blob"));
            let tv = cint::read(blob, &mut at).ok_or_else(short)?;
            let t = (tv >> 1) as u32;
            if t as usize >= types {
                return Err(bad(start, format!("node {i} has type {t} of {types}")));
            }
            let size = if tv & 1 != 0 {
                cint::read(blob, &mut at).ok_or_else(short)?
            } else {
                s.types[t as usize].size
            };
            let count = cint::read(blob, &mut at).ok_or_else(short)?;
            let count = usize::try_from(count)
                .ok()
                .filter(|&c| c <= blob.len() - at)
                .ok_or_else(|| bad(start, format!("node {i} has {count} children")))?;
            // Honest files give each node its own record: more references than blob bytes
            // means records are shared, and the file could make us allocate without bound.
            total_children += count;
            if total_children > blob.len() {
                return Err(bad(start, "node records are shared between nodes".into()));
            }
            for _ in 0..count {
                let d = cint::read(blob, &mut at).ok_or_else(short)?;
                let c = (i as i64) + i64::from(d);
                if c < 0 || c >= n as i64 {
                    return Err(bad(start, format!("node {i} has child {c} of {n}")));
                }
                if hist.is_none() {
                    s.children.push(c as u32);
                }
            }
            match hist.as_mut() {
                Some(h) => {
                    h.counts[t as usize] += 1;
                    h.bytes[t as usize] += u64::from(size as u32);
                }
                None => {
                    s.node_types.push(t);
                    s.node_sizes.push(size as u32);
                    s.child_offsets.push(s.children.len() as u32);
                }
            }
        }
        if let Some(h) = hist.as_mut() {
            h.references = total_children as u64;
        }
        self.histogram = hist;
        Ok(())
    }

    /// GCHeapDump's fields after the MemoryGraph; a reader that cannot follow them keeps the
    /// graph and leaves the facts empty.
    fn heap_dump_fields(&mut self, version: i32, is_64bit: &mut bool) -> Result<Meta, FormatError> {
        let mut m = Meta::default();
        if version < 8 {
            self.r.take(8 + 8 + 8 + 1, "the legacy heap dump totals")?;
            if version >= 5 {
                self.meta_fields(&mut m)?;
            }
            return Ok(m);
        }
        *is_64bit = self.r.u8("Is64Bit")? != 0;
        self.r.f32("the count multiplier")?;
        self.r.f32("the size multiplier")?;
        for what in ["JSHeapInfo", "DotNetHeapInfo"] {
            if !self.skip_known_object(what)? {
                return Ok(m);
            }
        }
        self.meta_fields(&mut m)?;
        let multipliers = self.r.count("type multiplier count", 4)?;
        self.r.take(4 * multipliers, "the type multipliers")?;
        // Tagged fields: InteropInfo (skip region), CreationTool (string), later additions.
        loop {
            match self.r.peek() {
                Some(tag::STRING) => {
                    self.r.u8("a tag")?;
                    m.creation_tool = self.r.string("CreationTool")?;
                }
                Some(tag::SKIP_REGION) => break,
                _ => break,
            }
        }
        Ok(m)
    }

    fn meta_fields(&mut self, m: &mut Meta) -> Result<(), FormatError> {
        m.collection_log = self.r.string("CollectionLog")?;
        m.time_ticks = self.r.i64("TimeCollected")?;
        self.r.string("MachineName")?;
        m.process_name = self.r.string("ProcessName")?;
        m.process_id = self.r.i32("ProcessID")?;
        self.r.i64("TotalProcessCommit")?;
        self.r.i64("TotalProcessWorkingSet")?;
        Ok(())
    }

    /// Skips a null or a JSHeapInfo / DotNetHeapInfo object. False if it is something else.
    fn skip_known_object(&mut self, what: &str) -> Result<bool, FormatError> {
        let Some(t) = self.object_start(what)? else {
            return Ok(true);
        };
        match t.name.as_str() {
            "JSHeapInfo" => {}
            "DotNetHeapInfo" => {
                self.r.i64("SizeOfAllSegments")?;
                let n = self.r.count("segment count", 8)?;
                for _ in 0..n {
                    let seg = self
                        .object_start("a GCHeapDumpSegment")?
                        .ok_or_else(|| self.r.corrupt("a null segment"))?;
                    let fields = if seg.version >= 1 { 7 } else { 6 };
                    self.r.take(8 * fields, "a segment")?;
                    self.skip_to_end()?;
                }
            }
            _ => return Ok(false),
        }
        self.skip_to_end()?;
        Ok(true)
    }

    /// FastSerialization's FindEndTag: skips tagged items up to the unmatched `06`.
    fn skip_to_end(&mut self) -> Result<(), FormatError> {
        let mut depth = 0usize;
        loop {
            let at = self.r.pos();
            let t = self.r.u8("the end of an object")?;
            match t {
                tag::END_OBJECT if depth == 0 => return Ok(()),
                tag::END_OBJECT => depth -= 1,
                tag::BEGIN_OBJECT | tag::BEGIN_PRIVATE => depth += 1,
                tag::NULL => {}
                tag::BYTE => self.r.take(1, "a tagged byte").map(drop)?,
                tag::INT16 => self.r.take(2, "a tagged int16").map(drop)?,
                tag::INT32 | tag::OBJECT_REF | tag::FORWARD_REF | tag::FORWARD_DEF => {
                    self.r.take(4, "a tagged value").map(drop)?
                }
                tag::INT64 => self.r.take(8, "a tagged int64").map(drop)?,
                tag::STRING => self.r.string("a tagged string").map(drop)?,
                tag::BLOB => {
                    let n = self.r.count("blob size", 1)?;
                    self.r.take(n, "a tagged blob").map(drop)?
                }
                _ => {
                    return Err(FormatError::Corrupt {
                        offset: at as u64,
                        what: format!("unexpected byte {t:#04x} before the end of an object"),
                    })
                }
            }
        }
    }
}
