//! `dn-dump diff A B`: per-type growth between two dumps of the same process, the one-command
//! answer to "what is leaking". Types are matched by name, since MethodTable addresses can differ
//! between dumps (a restarted process, a type loaded in another order).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::commands::{n0, ser_hex_opt, DumpHeapOptions, DumpHeapStat, Render, Session};
use crate::heap::Runtime;
use crate::snapshot::{core_spelling, is_snapshot, SnapshotSession};

/// One type's count and size in each dump.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TypeGrowth {
    pub name: String,
    #[serde(serialize_with = "ser_hex_opt")]
    pub mt_a: Option<u64>,
    #[serde(serialize_with = "ser_hex_opt")]
    pub mt_b: Option<u64>,
    pub count_a: u64,
    pub count_b: u64,
    pub size_a: u64,
    pub size_b: u64,
    /// With `--retained`: the type's retained size in each dump (MAT's minimum retained size
    /// of its instances; absent from a side the type does not appear in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_a: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_b: Option<u64>,
}

impl TypeGrowth {
    pub fn size_growth(&self) -> i128 {
        self.size_b as i128 - self.size_a as i128
    }
    pub fn count_growth(&self) -> i128 {
        self.count_b as i128 - self.count_a as i128
    }
    pub fn retained_growth(&self) -> Option<i128> {
        if self.retained_a.is_none() && self.retained_b.is_none() {
            return None;
        }
        Some(self.retained_b.unwrap_or(0) as i128 - self.retained_a.unwrap_or(0) as i128)
    }
}

/// The result of `diff`: types sorted by size growth, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct HeapDiff {
    pub types: Vec<TypeGrowth>,
    pub total_objects_a: u64,
    pub total_objects_b: u64,
    pub total_bytes_a: u64,
    pub total_bytes_b: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Identity of the process and runtime a dump came from, to warn about apples and oranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpIdentity {
    pub pid: Option<u32>,
    pub runtime_build_id: Option<String>,
    pub runtime_path: String,
    /// A heap snapshot (which records neither the runtime's path nor its build id).
    pub snapshot: bool,
}

impl DumpIdentity {
    pub fn of(core: &Path, runtime: &Runtime) -> DumpIdentity {
        DumpIdentity {
            pid: core_pid(core),
            runtime_build_id: runtime.module.build_id.clone(),
            runtime_path: runtime.module.path.clone(),
            snapshot: false,
        }
    }
}

/// Warnings when two dumps do not come from the same process and runtime.
pub fn identity_warnings(a: &DumpIdentity, b: &DumpIdentity) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(pa), Some(pb)) = (a.pid, b.pid) {
        if pa != pb {
            out.push(format!(
                "the dumps come from different processes (pid {pa} and pid {pb}): growth compares unrelated heaps"
            ));
        }
    }
    if a.snapshot || b.snapshot {
        return out;
    }
    if a.runtime_build_id != b.runtime_build_id || a.runtime_path != b.runtime_path {
        out.push(format!(
            "the dumps come from different runtimes ({} and {})",
            a.runtime_path, b.runtime_path
        ));
    }
    out
}

/// The pid a core was taken of: the id of its main thread, which every core writer lists first.
pub fn core_pid(core: &Path) -> Option<u32> {
    let dump = crate::dump::CoreDump::open(core).ok()?;
    dump.threads().first().map(|t| t.tid)
}

/// Compares two `dumpheap -stat` results by type name.
pub fn diff_stats(a: &DumpHeapStat, b: &DumpHeapStat) -> HeapDiff {
    let mut by_name: HashMap<&str, TypeGrowth> = HashMap::new();
    for (side, in_b) in [(&a.types, false), (&b.types, true)] {
        for t in side {
            let g = by_name
                .entry(t.name.as_str())
                .or_insert_with(|| TypeGrowth {
                    name: t.name.clone(),
                    ..TypeGrowth::default()
                });
            let (mt, count, size, retained) = if in_b {
                (
                    &mut g.mt_b,
                    &mut g.count_b,
                    &mut g.size_b,
                    &mut g.retained_b,
                )
            } else {
                (
                    &mut g.mt_a,
                    &mut g.count_a,
                    &mut g.size_a,
                    &mut g.retained_a,
                )
            };
            mt.get_or_insert(t.mt);
            *count += t.count;
            *size += t.size;
            if let Some(r) = t.retained {
                *retained.get_or_insert(0) += r;
            }
        }
    }
    let mut types: Vec<TypeGrowth> = by_name.into_values().collect();
    types.sort_by(|x, y| {
        y.size_growth()
            .cmp(&x.size_growth())
            .then(y.count_growth().cmp(&x.count_growth()))
            .then(x.name.cmp(&y.name))
    });
    HeapDiff {
        types,
        total_objects_a: a.total_objects,
        total_objects_b: b.total_objects,
        total_bytes_a: a.total_bytes,
        total_bytes_b: b.total_bytes,
        warnings: Vec::new(),
    }
}

/// Opens both dumps, aggregates their heaps and compares them, with warnings when they do not
/// come from the same process and runtime.
pub fn diff_dumps(
    a: &Path,
    b: &Path,
    dac: Option<&Path>,
    retained: bool,
) -> anyhow::Result<HeapDiff> {
    let opts = DumpHeapOptions {
        stat: true,
        retained,
        ..DumpHeapOptions::default()
    };
    let (stat_a, ida) = side_stat(a, dac, &opts)?;
    let (stat_b, idb) = side_stat(b, dac, &opts)?;
    // A heap snapshot spells types its own way: compare by the core's spelling then.
    let (stat_a, stat_b) = if ida.snapshot != idb.snapshot {
        (core_spelled(stat_a), core_spelled(stat_b))
    } else {
        (stat_a, stat_b)
    };
    let mut d = diff_stats(&stat_a, &stat_b);
    d.warnings = identity_warnings(&ida, &idb);
    d.warnings
        .extend(stat_a.warnings.iter().map(|w| format!("A: {w}")));
    d.warnings
        .extend(stat_b.warnings.iter().map(|w| format!("B: {w}")));
    Ok(d)
}

/// One side of a diff: a core's or a snapshot's `dumpheap -stat`, and where it came from.
fn side_stat(
    p: &Path,
    dac: Option<&Path>,
    opts: &DumpHeapOptions,
) -> anyhow::Result<(DumpHeapStat, DumpIdentity)> {
    use anyhow::Context;
    if is_snapshot(p) {
        let s = SnapshotSession::open(p)?;
        let id = DumpIdentity {
            pid: s.pid,
            runtime_build_id: None,
            runtime_path: String::new(),
            snapshot: true,
        };
        return Ok((s.stat(opts)?, id));
    }
    let rt = Runtime::open_core_with_heap(p, dac).with_context(|| format!("{}", p.display()))?;
    let id = DumpIdentity::of(p, &rt);
    let s = Session::new(rt);
    Ok((crate::commands::dumpheap_stat(&s, opts)?, id))
}

/// The rows renamed to the core's spelling (and bucket rows of one type merged by the diff).
fn core_spelled(mut stat: DumpHeapStat) -> DumpHeapStat {
    for t in &mut stat.types {
        t.name = core_spelling(&t.name);
    }
    stat
}

impl Render for HeapDiff {
    fn render(&self) -> String {
        let mut out = String::new();
        crate::commands::push_warnings(&mut out, &self.warnings);
        let with_retained = self.types.iter().any(|t| t.retained_growth().is_some());
        let retained_head = if with_retained {
            format!(" {:>15}", "Retained B-A")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:>12} {:>12} {:>15} {:>15}{retained_head}  {}\n",
            "Count A", "Count B", "Size B-A", "Size B", "Type"
        ));
        for t in self.types.iter().filter(|t| {
            t.count_growth() != 0 || t.size_growth() != 0 || t.retained_growth().unwrap_or(0) != 0
        }) {
            let retained = if with_retained {
                format!(" {:>15}", signed(t.retained_growth().unwrap_or(0)))
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{:>12} {:>12} {:>15} {:>15}{retained}  {}\n",
                grouped(t.count_a as i128),
                grouped(t.count_b as i128),
                signed(t.size_growth()),
                grouped(t.size_b as i128),
                t.name
            ));
        }
        out.push_str(&format!(
            "Total: {} -> {} objects, {} -> {} bytes ({})\n",
            grouped(self.total_objects_a as i128),
            grouped(self.total_objects_b as i128),
            grouped(self.total_bytes_a as i128),
            grouped(self.total_bytes_b as i128),
            signed(self.total_bytes_b as i128 - self.total_bytes_a as i128)
        ));
        out
    }
}

/// Thousands-grouped, with a minus sign when negative (every value here is a count, a size or
/// the difference of two, so its magnitude fits a u64).
fn grouped(v: i128) -> String {
    let digits = n0(v.unsigned_abs() as u64);
    if v < 0 {
        format!("-{digits}")
    } else {
        digits
    }
}

/// `+1,234`, `-1,234` or `0`.
pub(crate) fn signed(v: i128) -> String {
    if v > 0 {
        format!("+{}", grouped(v))
    } else {
        grouped(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::TypeStat;

    fn stat(rows: &[(u64, &str, u64, u64)]) -> DumpHeapStat {
        DumpHeapStat {
            types: rows
                .iter()
                .map(|&(mt, name, count, size)| TypeStat {
                    mt,
                    name: name.into(),
                    count,
                    size,
                    retained: None,
                })
                .collect(),
            total_objects: rows.iter().map(|r| r.2).sum(),
            total_bytes: rows.iter().map(|r| r.3).sum(),
            frozen_unreferenced: None,
            warnings: vec![],
        }
    }

    #[test]
    fn matches_by_name_and_sorts_by_size_growth() {
        let a = stat(&[
            (1, "System.String", 10, 400),
            (2, "Customer", 0, 0),
            (3, "Gone", 5, 50),
        ]);
        let b = stat(&[
            (9, "System.String", 110, 4400),
            (8, "Customer", 100, 2400),
            (7, "New", 1, 10),
        ]);
        let d = diff_stats(&a, &b);
        let names: Vec<&str> = d.types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["System.String", "Customer", "New", "Gone"]);
        let s = &d.types[0];
        assert_eq!(
            (s.mt_a, s.mt_b, s.count_a, s.count_b),
            (Some(1), Some(9), 10, 110)
        );
        assert_eq!(d.types[3].size_growth(), -50);
        let text = d.render();
        assert!(text.contains("+4,000"), "{text}");
        assert!(text.lines().nth(1).unwrap().ends_with("System.String"));
    }

    #[test]
    fn grouping_and_signs() {
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(signed(-1000), "-1,000");
        assert_eq!(signed(0), "0");
    }
}

/// `dn-dump diff` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct DiffArgs {
    /// The earlier dump.
    pub before: std::path::PathBuf,
    /// The later dump of the same process.
    pub after: std::path::PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show only the N types that grew most (0 = all that changed).
    #[arg(long, default_value_t = 0)]
    pub top: usize,
    /// Use this libmscordaccore.so instead of searching for the one matching the dumps.
    #[arg(long, value_name = "PATH")]
    pub dac: Option<std::path::PathBuf>,
    /// Add each type's retained size in both dumps (builds both heap graphs: slower).
    #[arg(long)]
    pub retained: bool,
}

/// Runs `dn-dump diff`: warnings go to stderr in text mode, inside the document in JSON mode.
pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    let mut d = diff_dumps(
        &args.before,
        &args.after,
        args.dac.as_deref(),
        args.retained,
    )?;
    if args.top > 0 {
        d.types.truncate(args.top);
    }
    if args.json {
        println!("{}", serde_json::to_string(&d)?);
    } else {
        for w in d.warnings.drain(..) {
            eprintln!("Warning: {w}");
        }
        print!("{}", d.render());
    }
    Ok(())
}
