//! `dumpheap`: objects on the GC heap, their statistics, and string statistics.

use anyhow::bail;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::heapstat::{column_width, render_stats, sort_by_retained, stats_from, TypeStat};
use super::{n0, parse_addr, parse_num, ser_hex, Render, Session};
use crate::heap::{Generation, HeapObject};
use crate::memory::MemorySource;

mod walk;

use walk::filtered_walk;

/// Parsed `dumpheap` options.
#[derive(Debug, Clone, Default)]
pub struct DumpHeapOptions {
    pub stat: bool,
    pub strings: bool,
    pub short: bool,
    pub type_substr: Option<String>,
    pub mt: Option<u64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub gen: Option<Generation>,
    /// Only objects reachable from a root.
    pub live: bool,
    /// Only objects no root reaches (garbage the next full GC collects).
    pub dead: bool,
    /// Add each type's retained size (`-stat -retained`).
    pub retained: bool,
    /// Sort the statistics by retained size instead of shallow size (`-sort retained`).
    pub sort_retained: bool,
}

impl DumpHeapOptions {
    pub fn parse(args: &[&str]) -> anyhow::Result<DumpHeapOptions> {
        let mut o = DumpHeapOptions::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.to_ascii_lowercase().as_str() {
                "-stat" => o.stat = true,
                "-strings" => o.strings = true,
                "-short" => o.short = true,
                "-noprogress" => {}
                "-live" => o.live = true,
                "-dead" => o.dead = true,
                "-retained" => o.retained = true,
                "-sort" => match it.next().map(|k| k.to_ascii_lowercase()).as_deref() {
                    Some("retained") => o.sort_retained = true,
                    Some("size") => o.sort_retained = false,
                    other => bail!(
                        "-sort takes 'size' or 'retained', not '{}'",
                        other.unwrap_or("")
                    ),
                },
                "-type" => match it.next() {
                    Some(t) => o.type_substr = Some(t.to_string()),
                    None => bail!("-type needs a type name (substring)"),
                },
                "-mt" => o.mt = Some(parse_addr(it.next().copied(), "dumpheap -mt MT")?),
                "-min" => o.min = Some(parse_num(it.next().copied(), "-min")?),
                "-max" => o.max = Some(parse_num(it.next().copied(), "-max")?),
                "-gen" => {
                    let g = it.next().copied().unwrap_or("");
                    o.gen = Some(Generation::parse(g).ok_or_else(|| {
                        anyhow::anyhow!(
                            "Unknown generation: {g}. Only gen0, gen1, gen2, loh (large), poh (pinned) and foh (frozen) are supported"
                        )
                    })?);
                }
                other => bail!("unknown dumpheap option '{other}'"),
            }
        }
        // Both given: neither filter applies (as SOS).
        if o.live && o.dead {
            o.live = false;
            o.dead = false;
        }
        if o.sort_retained {
            o.retained = true;
        }
        if o.retained && !o.stat {
            bail!("-retained and -sort retained go with -stat");
        }
        Ok(o)
    }
}

/// `dumpheap -stat`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpHeapStat {
    pub types: Vec<TypeStat>,
    pub total_objects: u64,
    pub total_bytes: u64,
    /// With `-dead`: objects on frozen (NonGC) segments that nothing references. No GC ever
    /// frees them, so they are not counted as dead; shown apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_unreferenced: Option<FrozenCount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Objects left out of `-dead` because they live on frozen segments.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FrozenCount {
    pub count: u64,
    pub size: u64,
}

/// One object of the list.
#[derive(Debug, Clone, Serialize)]
pub struct HeapObjectRow {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    pub size: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub free: bool,
}

/// `dumpheap` (object list followed by statistics).
#[derive(Debug, Clone, Serialize)]
pub struct DumpHeap {
    pub objects: Vec<HeapObjectRow>,
    pub types: Vec<TypeStat>,
    pub total_objects: u64,
    pub total_bytes: u64,
    #[serde(skip)]
    pub short: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_unreferenced: Option<FrozenCount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One row of `dumpheap -strings`.
#[derive(Debug, Clone, Serialize)]
pub struct StringStat {
    pub value: String,
    pub count: u64,
    pub size: u64,
}

/// `dumpheap -strings`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpHeapStrings {
    pub strings: Vec<StringStat>,
    pub total_objects: u64,
    pub total_bytes: u64,
}

/// Count and total size per MethodTable, indexed by the walk's dense type index (no hashing
/// per object).
#[derive(Default)]
struct PerType {
    /// (mt, count, size) by [`HeapObject::type_index`].
    rows: Vec<(u64, u64, u64)>,
}

impl PerType {
    #[inline(always)]
    fn add(&mut self, obj: &HeapObject) {
        let i = obj.type_index as usize;
        if i >= self.rows.len() {
            self.rows.resize(i + 1, (0, 0, 0));
        }
        let r = &mut self.rows[i];
        r.0 = obj.mt;
        r.1 += 1;
        r.2 += obj.size;
    }

    fn into_map(self) -> FxHashMap<u64, (u64, u64)> {
        self.rows
            .into_iter()
            .filter(|r| r.1 != 0)
            .map(|(mt, count, size)| (mt, (count, size)))
            .collect()
    }
}

pub fn dumpheap_stat(s: &Session, o: &DumpHeapOptions) -> anyhow::Result<DumpHeapStat> {
    let mut per_type = PerType::default();
    let mut notes = filtered_walk(s, o, |obj| per_type.add(obj))?;
    let (mut types, total_objects, total_bytes) = stats_from(s, per_type.into_map());
    let mut warnings = notes.warnings();
    if o.retained {
        let g = s.graph()?;
        let dom = g.dominators(&s.cancel)?;
        let by_type = dom.retained_by_type(&g.graph, g.mts.len());
        let by_mt: FxHashMap<u64, u64> = g
            .mts
            .iter()
            .copied()
            .zip(by_type.iter().map(|t| t.min_retained))
            .collect();
        for t in &mut types {
            t.retained = Some(by_mt.get(&t.mt).copied().unwrap_or(0));
        }
        if !o.live && !o.dead {
            // Plain `-stat -retained` shows the graph's warnings too (the filtered walk only
            // built the graph for -live/-dead).
            warnings.extend(g.warnings.iter().cloned());
        }
        if o.sort_retained {
            sort_by_retained(&mut types);
        }
    }
    Ok(DumpHeapStat {
        types,
        total_objects,
        total_bytes,
        frozen_unreferenced: notes.frozen(o),
        warnings,
    })
}

pub fn dumpheap(s: &Session, o: &DumpHeapOptions) -> anyhow::Result<DumpHeap> {
    let free = s.runtime.heap.globals.free_mt;
    let mut objects = Vec::new();
    let mut per_type = PerType::default();
    let mut notes = filtered_walk(s, o, |obj| {
        objects.push(HeapObjectRow {
            address: obj.address,
            mt: obj.mt,
            size: obj.size,
            free: obj.mt == free,
        });
        per_type.add(obj);
    })?;
    let (types, total_objects, total_bytes) = stats_from(s, per_type.into_map());
    Ok(DumpHeap {
        objects,
        types,
        total_objects,
        total_bytes,
        short: o.short,
        frozen_unreferenced: notes.frozen(o),
        warnings: notes.warnings(),
    })
}

/// Reads a System.String's value (at most `max` UTF-16 units).
pub(crate) fn read_string(mem: &dyn MemorySource, addr: u64, max: usize) -> Option<(String, u32)> {
    let len = mem.read_u32(addr + 8).ok()?;
    let n = (len as usize).min(max);
    let bytes = mem.read_vec(addr + 12, n * 2).ok()?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some((String::from_utf16_lossy(&units), len))
}

pub fn dumpheap_strings(s: &Session, o: &DumpHeapOptions) -> anyhow::Result<DumpHeapStrings> {
    let string_mt = s.runtime.heap.globals.string_mt;
    let mem = s.runtime.heap.memory();
    let mut by_value: FxHashMap<String, (u64, u64)> = FxHashMap::default();
    filtered_walk(s, o, |obj| {
        if obj.mt != string_mt {
            return;
        }
        let value = read_string(mem, obj.address, 1024)
            .map(|v| v.0)
            .unwrap_or_default();
        let e = by_value.entry(value).or_default();
        e.0 += 1;
        e.1 += obj.size;
    })?;
    let mut strings: Vec<StringStat> = by_value
        .into_iter()
        .map(|(value, (count, size))| StringStat { value, count, size })
        .collect();
    strings.sort_by(|a, b| {
        a.size
            .cmp(&b.size)
            .then(a.count.cmp(&b.count))
            .then(a.value.cmp(&b.value))
    });
    let total_objects = strings.iter().map(|t| t.count).sum();
    let total_bytes = strings.iter().map(|t| t.size).sum();
    Ok(DumpHeapStrings {
        strings,
        total_objects,
        total_bytes,
    })
}

fn render_frozen(out: &mut String, frozen: Option<FrozenCount>) {
    if let Some(f) = frozen {
        out.push_str(&format!(
            "Not counted: {} unreferenced objects ({} bytes) on frozen segments, which no GC frees\n",
            n0(f.count),
            n0(f.size)
        ));
    }
}

fn render_warnings(out: &mut String, warnings: &[String]) {
    crate::commands::push_warnings(out, warnings);
}

impl Render for DumpHeapStat {
    fn render(&self) -> String {
        let mut out = String::new();
        render_warnings(&mut out, &self.warnings);
        render_stats(&mut out, &self.types, self.total_objects, self.total_bytes);
        render_frozen(&mut out, self.frozen_unreferenced);
        out
    }
}

impl Render for DumpHeap {
    fn render(&self) -> String {
        let mut out = String::new();
        render_warnings(&mut out, &self.warnings);
        if self.short {
            for o in &self.objects {
                out.push_str(&format!("{:012x}\n", o.address));
            }
            return out;
        }
        let sizes: Vec<String> = self.objects.iter().map(|o| n0(o.size)).collect();
        let w = column_width(&sizes, "Size");
        out.push_str(&format!("{:>12} {:>12} {:>w$}\n", "Address", "MT", "Size"));
        for (i, o) in self.objects.iter().enumerate() {
            let free = if o.free { " Free" } else { "" };
            out.push_str(&format!(
                "{:012x} {:012x} {:>w$}{free}\n",
                o.address, o.mt, sizes[i]
            ));
        }
        out.push('\n');
        render_stats(&mut out, &self.types, self.total_objects, self.total_bytes);
        render_frozen(&mut out, self.frozen_unreferenced);
        out
    }
}

impl Render for DumpHeapStrings {
    fn render(&self) -> String {
        let counts: Vec<String> = self.strings.iter().map(|t| n0(t.count)).collect();
        let sizes: Vec<String> = self.strings.iter().map(|t| n0(t.size)).collect();
        let wc = column_width(&counts, "Count");
        let ws = column_width(&sizes, "TotalSize");
        let mut out = format!("{:>wc$} {:>ws$} String\n", "Count", "TotalSize");
        for (i, t) in self.strings.iter().enumerate() {
            let shown: String = t
                .value
                .chars()
                .take(128)
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            out.push_str(&format!("{:>wc$} {:>ws$} {shown}\n", counts[i], sizes[i]));
        }
        out.push_str(&format!(
            "Total {} strings, {} bytes\n",
            n0(self.total_objects),
            n0(self.total_bytes)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let o = DumpHeapOptions::parse(&["-stat", "-type", "Leaked", "-min", "100", "-gen", "loh"])
            .unwrap();
        assert!(o.stat);
        assert_eq!(o.type_substr.as_deref(), Some("Leaked"));
        assert_eq!(o.min, Some(100));
        assert_eq!(o.gen, Some(Generation::Loh));
        let e = DumpHeapOptions::parse(&["-gen", "gen7"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Unknown generation: gen7."), "{e}");
        assert!(DumpHeapOptions::parse(&["-bogus"]).is_err());
    }
}
