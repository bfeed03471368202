//! The per-type table of a snapshot (`dn-dump gcdump report`): count and total bytes per type,
//! largest first, plus the size `dotnet-gcdump report` prints (its first object's).

use serde::Serialize;

use dn_core::render::n0;

use crate::read::Histogram;
use crate::snapshot::Snapshot;

/// One type's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub type_name: String,
    /// The module's file name (after the last `/`), if known.
    pub module: Option<String>,
    pub count: u64,
    /// Sum of the sizes of the type's objects.
    pub total_bytes: u64,
    /// The size recorded in the file's type table: what `dotnet-gcdump report` shows as
    /// "Object Bytes" (the first object's size, not a total).
    pub type_size: i64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Sum of all node sizes as the file records it.
    pub total_bytes: i64,
    /// Objects of the listed types (pseudo and undefined nodes left out).
    pub objects: u64,
    pub references: u64,
    pub process_name: Option<String>,
    pub process_id: i32,
    /// What the collector wrote in the file's log (lost events, ...).
    pub collection_log: Option<String>,
    pub rows: Vec<Row>,
}

/// Counts per type; rows for types with a name, a non-zero size and objects, like
/// `dotnet-gcdump report`, sorted by total bytes then count, descending.
pub fn report(s: &Snapshot) -> Report {
    let mut h = Histogram {
        counts: vec![0u64; s.types.len()],
        bytes: vec![0u64; s.types.len()],
        references: s.children.len() as u64,
    };
    for i in 0..s.node_count() {
        let t = s.node_types[i] as usize;
        h.counts[t] += 1;
        h.bytes[t] += u64::from(s.node_sizes[i]);
    }
    report_of(s, &h)
}

/// The report of a file's type table and per-type counts (see [`crate::read::read_histogram`]).
pub fn report_of(s: &Snapshot, h: &Histogram) -> Report {
    let (count, bytes) = (&h.counts, &h.bytes);
    let mut rows: Vec<Row> = s
        .types
        .iter()
        .enumerate()
        .filter(|(t, ty)| count[*t] > 0 && ty.size != 0 && !ty.name.is_empty())
        .map(|(t, ty)| Row {
            type_name: ty.name.clone(),
            module: ty
                .module
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| m.rsplit('/').next().unwrap_or(m).to_string()),
            count: count[t],
            total_bytes: bytes[t],
            type_size: i64::from(ty.size),
        })
        .collect();
    let objects = rows.iter().map(|r| r.count).sum();
    rows.sort_by(|a, b| {
        b.total_bytes
            .cmp(&a.total_bytes)
            .then(b.count.cmp(&a.count))
    });
    Report {
        total_bytes: s.total_size,
        objects,
        references: h.references,
        process_name: s.meta.process_name.clone(),
        process_id: s.meta.process_id,
        collection_log: s.meta.collection_log.clone(),
        rows,
    }
}

/// The text table.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>15}  GC Heap bytes",
        n0(r.total_bytes.max(0) as u64)
    );
    let _ = writeln!(out, "{:>15}  GC Heap objects", n0(r.objects));
    let _ = writeln!(out, "{:>15}  References", n0(r.references));
    if let Some(log) = &r.collection_log {
        let _ = writeln!(out, "{log}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:>15}  {:>8}  Type", "Total Bytes", "Count");
    for row in &r.rows {
        let _ = write!(
            out,
            "{:>15}  {:>8}  {}",
            n0(row.total_bytes),
            n0(row.count),
            row.type_name
        );
        if let Some(m) = &row.module {
            let _ = write!(out, "  [{m}]");
        }
        out.push('\n');
    }
    out
}
