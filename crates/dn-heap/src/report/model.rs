//! The report's numbers, computed by the same commands as `--json` (`suspects`, `dominators`,
//! `dumpheap -stat -retained`, `dumpheap -stat -dead`, `eeheap -gc`, `diff`): nothing here
//! counts objects on its own, it only selects, groups and orders those results.

use std::path::Path;
use std::time::SystemTime;

use crate::commands::{
    dominators, dumpheap_stat, eeheap, suspects, DominatorTree, DominatorsOptions, DumpHeapOptions,
    DumpHeapStat, Session, Suspect, Suspects, TypeStat,
};
use crate::diff::{core_pid, diff_stats, identity_warnings, DumpIdentity, HeapDiff, TypeGrowth};

use super::counters::CountersFile;

/// `suspects`' default threshold, in percent of the live heap.
pub const SUSPECT_THRESHOLD: f64 = 10.0;
/// Types below this share of the live heap (per mille) fold into one "smaller types" cell.
pub const TREEMAP_CUTOFF_PER_MILLE: u64 = 1;
/// At most this many type cells in the treemap (the page stays small on any heap).
pub const TREEMAP_MAX_CELLS: usize = 300;
/// Rows of the growth chart.
pub const GROWTH_TOP: usize = 30;
/// Levels and children per level of the dominator tree shown (at most 10 + 100 + 1,000 rows).
pub const DOMINATOR_DEPTH: u32 = 3;
pub const DOMINATOR_TOP: usize = 10;

/// Everything the page shows.
#[derive(Debug)]
pub struct Report {
    pub input: DumpInfo,
    pub summary: Summary,
    pub stat: DumpHeapStat,
    pub treemap: TreemapModel,
    pub suspects: Suspects,
    pub chains: Vec<Vec<ChainBox>>,
    pub dominators: DominatorTree,
    pub growth: Option<Growth>,
    pub counters: Vec<(String, CountersFile)>,
}

/// A dump file as the page names it.
#[derive(Debug, Clone)]
pub struct DumpInfo {
    /// The file name (no directory: the page may travel).
    pub name: String,
    /// The file's modification time: when the dump was written, unless it was copied since.
    pub time: Option<SystemTime>,
    pub pid: Option<u32>,
}

impl DumpInfo {
    pub fn of(path: &Path) -> DumpInfo {
        DumpInfo {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            time: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
            pid: core_pid(path),
        }
    }

    /// Milliseconds since the Unix epoch, for the charts.
    pub fn time_ms(&self) -> Option<i64> {
        let d = self.time?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        i64::try_from(d.as_millis()).ok()
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub runtime_version: Option<String>,
    pub runtime_path: String,
    pub server_gc: bool,
    pub regions: bool,
    pub heap_count: usize,
    /// `suspects`' `live_bytes`: reachable from a GC root.
    pub live_bytes: u64,
    /// `dumpheap -stat -dead`'s total.
    pub dead_bytes: u64,
    pub dead_objects: u64,
    /// `dumpheap -stat`'s totals.
    pub total_bytes: u64,
    pub total_objects: u64,
    /// `eeheap -gc`'s segment sizes summed by kind, in the order first met.
    pub generations: Vec<(String, u64)>,
    pub warnings: Vec<String>,
}

/// One type cell of the treemap.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCell {
    pub name: String,
    pub count: u64,
    pub shallow: u64,
    pub retained: u64,
}

/// A namespace and its type cells, biggest first.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceCells {
    pub name: String,
    pub retained: u64,
    pub types: Vec<TypeCell>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreemapModel {
    pub namespaces: Vec<NamespaceCells>,
    /// Types at or above this retained size have a cell.
    pub cutoff: u64,
    /// Types below the cut-off: how many, and their retained bytes together.
    pub small_types: u64,
    pub small_retained: u64,
}

/// What a box of a suspect's chain stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxKind {
    /// The GC root (static field, handle, stack slot).
    Root,
    /// An object on the path from the root.
    Object,
    /// The suspect itself (the end of the path).
    Suspect,
    /// Between the suspect and its accumulation point: each held (dominated) by the one before.
    Dominated,
    /// Where the memory piles up below the suspect (marked).
    AccumulationPoint,
}

#[derive(Debug, Clone)]
pub struct ChainBox {
    pub kind: BoxKind,
    /// The type, or the root's kind for the root box.
    pub label: String,
    /// A static field's name, or the stack frame of a stack root.
    pub field: Option<String>,
    pub address: Option<u64>,
    pub shallow: Option<u64>,
    pub retained: Option<u64>,
}

/// `--baseline`: the `diff` of the baseline against INPUT.
#[derive(Debug)]
pub struct Growth {
    pub baseline: DumpInfo,
    pub diff: HeapDiff,
}

impl Growth {
    /// The types that changed most, either way: by bytes, then by count.
    pub fn top(&self) -> Vec<&TypeGrowth> {
        let mut rows: Vec<&TypeGrowth> = self
            .diff
            .types
            .iter()
            .filter(|t| t.size_growth() != 0 || t.count_growth() != 0)
            .collect();
        rows.sort_by(|a, b| {
            b.size_growth()
                .abs()
                .cmp(&a.size_growth().abs())
                .then(b.count_growth().abs().cmp(&a.count_growth().abs()))
                .then(a.name.cmp(&b.name))
        });
        rows.truncate(GROWTH_TOP);
        rows
    }
}

/// Runs the commands on INPUT (and the baseline) and gathers their results.
pub fn build(
    s: &Session,
    input: &Path,
    baseline: Option<(&Session, &Path)>,
    counters: Vec<(String, CountersFile)>,
) -> anyhow::Result<Report> {
    let sus = suspects(s, SUSPECT_THRESHOLD)?;
    // `dumpheap -stat -retained`, then `dumpheap -stat -dead`.
    let stat = heap_stat(s, true, false)?;
    let dead = heap_stat(s, false, true)?;
    let dominators = dominators(
        s,
        &DominatorsOptions {
            address: None,
            depth: DOMINATOR_DEPTH,
            top: DOMINATOR_TOP,
            type_substr: None,
        },
    )?;
    let ee = eeheap(s);
    let mut generations: Vec<(String, u64)> = Vec::new();
    for seg in &ee.segments {
        match generations.iter_mut().find(|(k, _)| *k == seg.kind) {
            Some((_, v)) => *v += seg.size,
            None => generations.push((seg.kind.clone(), seg.size)),
        }
    }
    let mut warnings = stat.warnings.clone();
    for w in sus.warnings.iter().chain(&dead.warnings) {
        if !warnings.contains(w) {
            warnings.push(w.clone());
        }
    }
    let growth = match baseline {
        None => None,
        Some((b, path)) => {
            let base = heap_stat(b, false, false)?;
            let mut diff = diff_stats(&base, &without_retained(&stat));
            diff.warnings = identity_warnings(
                &DumpIdentity::of(path, &b.runtime),
                &DumpIdentity::of(input, &s.runtime),
            );
            Some(Growth {
                baseline: DumpInfo::of(path),
                diff,
            })
        }
    };
    let chains = sus.suspects.iter().map(|x| chain(s, x)).collect();
    let summary = Summary {
        runtime_version: s.runtime.module.version.clone(),
        runtime_path: s.runtime.module.path.clone(),
        server_gc: ee.server,
        regions: ee.regions,
        heap_count: ee.heap_count,
        live_bytes: sus.live_bytes,
        dead_bytes: dead.total_bytes,
        dead_objects: dead.total_objects,
        total_bytes: stat.total_bytes,
        total_objects: stat.total_objects,
        generations,
        warnings,
    };
    Ok(Report {
        input: DumpInfo::of(input),
        treemap: treemap_model(&stat.types, sus.live_bytes),
        summary,
        stat,
        suspects: sus,
        chains,
        dominators,
        growth,
        counters,
    })
}

/// `dumpheap -stat`, with `-retained` or `-dead`.
fn heap_stat(s: &Session, retained: bool, dead: bool) -> anyhow::Result<DumpHeapStat> {
    let o = DumpHeapOptions {
        stat: true,
        retained,
        dead,
        ..DumpHeapOptions::default()
    };
    dumpheap_stat(s, &o)
}

/// `diff` compares plain `dumpheap -stat` tables.
fn without_retained(stat: &DumpHeapStat) -> DumpHeapStat {
    let mut s = stat.clone();
    for t in &mut s.types {
        t.retained = None;
    }
    s
}

/// A suspect's path from its root as boxes: the root, each object down to the suspect, then
/// the accumulation point when it lies below the suspect.
fn chain(s: &Session, sus: &Suspect) -> Vec<ChainBox> {
    let g = s.graph().ok();
    let dom = g.as_ref().and_then(|g| g.dominators(&s.cancel).ok());
    let sizes = |addr: u64| -> (Option<u64>, Option<u64>) {
        match (&g, &dom) {
            (Some(g), Some(dom)) => match g.node(addr) {
                Some(id) => (Some(g.size(id)), Some(dom.retained(id))),
                None => (None, None),
            },
            _ => (None, None),
        }
    };
    let mut out = Vec::new();
    if let Some(r) = &sus.root {
        out.push(ChainBox {
            kind: BoxKind::Root,
            label: r.kind.clone(),
            field: r.field.clone().or_else(|| r.frame.clone()),
            address: Some(r.root),
            shallow: None,
            retained: None,
        });
    }
    let last = sus.path.len().saturating_sub(1);
    let point = sus.accumulation_point.as_ref();
    for (i, n) in sus.path.iter().enumerate() {
        let (shallow, retained) = sizes(n.address);
        let kind = if point.is_some_and(|p| p.address == n.address) {
            BoxKind::AccumulationPoint
        } else if i == last {
            BoxKind::Suspect
        } else {
            BoxKind::Object
        };
        out.push(ChainBox {
            kind,
            label: n.type_name.clone(),
            field: n.static_field.clone(),
            address: Some(n.address),
            shallow,
            retained,
        });
    }
    if let Some(p) = point {
        if !sus.path.iter().any(|n| n.address == p.address) {
            let from = sus.path.last().map(|n| n.address);
            for (address, type_name) in dominator_path(s, from, p.address) {
                let (shallow, retained) = sizes(address);
                out.push(ChainBox {
                    kind: BoxKind::Dominated,
                    label: type_name,
                    field: None,
                    address: Some(address),
                    shallow,
                    retained,
                });
            }
            let (shallow, _) = sizes(p.address);
            out.push(ChainBox {
                kind: BoxKind::AccumulationPoint,
                label: p.type_name.clone(),
                field: None,
                address: Some(p.address),
                shallow,
                retained: Some(p.retained),
            });
        }
    }
    out
}

/// The objects strictly between `from` and `to` on the dominator tree (each dominated by the
/// one before), when `from` dominates `to`; empty otherwise. Bounded by the tree's depth.
fn dominator_path(s: &Session, from: Option<u64>, to: u64) -> Vec<(u64, String)> {
    let (Ok(g), Some(from)) = (s.graph(), from) else {
        return Vec::new();
    };
    let Ok(dom) = g.dominators(&s.cancel) else {
        return Vec::new();
    };
    let (Some(from), Some(to)) = (g.node(from), g.node(to)) else {
        return Vec::new();
    };
    let mut between = Vec::new();
    let mut at = to;
    loop {
        match dom.idom(at) {
            dn_graph::Idom::Node(up) if up == from => break,
            dn_graph::Idom::Node(up) => {
                between.push(up);
                at = up;
            }
            _ => return Vec::new(),
        }
    }
    between
        .into_iter()
        .rev()
        .map(|id| {
            let mt = g.mt(id);
            (g.address(id), s.runtime.heap.type_name(&s.runtime.dac, mt))
        })
        .collect()
}

/// The namespace of a type name: what comes before the last dot, generic arguments and array
/// brackets left out; `(global)` when there is none.
pub fn namespace_of(type_name: &str) -> &str {
    let head = type_name
        .find(['<', '[', '`', '+'])
        .map_or(type_name, |i| &type_name[..i]);
    match head.rfind('.') {
        Some(i) if i > 0 => &head[..i],
        _ => "(global)",
    }
}

/// The treemap's cells: types at or above the cut-off (by retained size) grouped by
/// namespace, both levels biggest first.
pub fn treemap_model(types: &[TypeStat], live_bytes: u64) -> TreemapModel {
    let mut rows: Vec<&TypeStat> = types.iter().filter(|t| !is_free(&t.name)).collect();
    rows.sort_by(|a, b| {
        b.retained
            .cmp(&a.retained)
            .then(b.size.cmp(&a.size))
            .then(a.name.cmp(&b.name))
    });
    let cutoff = (live_bytes * TREEMAP_CUTOFF_PER_MILLE / 1000).max(1);
    let mut model = TreemapModel {
        cutoff,
        ..TreemapModel::default()
    };
    for (i, t) in rows.iter().enumerate() {
        let retained = t.retained.unwrap_or(0);
        if retained < cutoff || i >= TREEMAP_MAX_CELLS {
            model.small_types += 1;
            model.small_retained += retained;
            continue;
        }
        let ns = namespace_of(&t.name);
        let cell = TypeCell {
            name: t.name.clone(),
            count: t.count,
            shallow: t.size,
            retained,
        };
        match model.namespaces.iter_mut().find(|n| n.name == ns) {
            Some(n) => {
                n.retained += retained;
                n.types.push(cell);
            }
            None => model.namespaces.push(NamespaceCells {
                name: ns.to_string(),
                retained,
                types: vec![cell],
            }),
        }
    }
    model
        .namespaces
        .sort_by(|a, b| b.retained.cmp(&a.retained).then(a.name.cmp(&b.name)));
    model
}

/// The GC's free-space filler is not a type anyone allocated.
fn is_free(name: &str) -> bool {
    name == "Free"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, size: u64, retained: u64) -> TypeStat {
        TypeStat {
            mt: 0,
            name: name.into(),
            count: 1,
            size,
            retained: Some(retained),
        }
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace_of("System.String"), "System");
        assert_eq!(namespace_of("System.Byte[]"), "System");
        assert_eq!(
            namespace_of("System.Collections.Generic.List<System.String>"),
            "System.Collections.Generic"
        );
        assert_eq!(
            namespace_of("System.Collections.Generic.Dictionary`2[[System.String, x]]"),
            "System.Collections.Generic"
        );
        assert_eq!(namespace_of("ConsoleTarget+Inner"), "(global)");
        assert_eq!(namespace_of("Free"), "(global)");
        assert_eq!(namespace_of(".Odd"), "(global)");
    }

    #[test]
    fn cells_above_the_cutoff_grouped_biggest_first() {
        let types = [
            t("System.String", 500, 500),
            t("App.Cache", 10, 4000),
            t("App.Item", 300, 900),
            t("System.Tiny", 1, 1),
            t("Free", 100, 0),
        ];
        let m = treemap_model(&types, 10_000);
        assert_eq!(m.cutoff, 10);
        let names: Vec<&str> = m.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["App", "System"]);
        assert_eq!(m.namespaces[0].retained, 4900);
        assert_eq!(m.namespaces[0].types[0].name, "App.Cache");
        assert_eq!((m.small_types, m.small_retained), (1, 1));
    }
}
