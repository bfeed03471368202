//! The per-type statistics table shared by `dumpheap -stat`, `objsize`, `gchandles`,
//! `finalizequeue` and `diff`: rows, their order, and SOS's text shape.

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{n0, ser_hex, GraphSession};

/// One row of the statistics table.
#[derive(Debug, Clone, Serialize)]
pub struct TypeStat {
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    pub name: String,
    pub count: u64,
    pub size: u64,
    /// With `-retained`: MAT's minimum retained size of the type's instances (the sum of the
    /// retained sizes of the instances no other instance of the type dominates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained: Option<u64>,
}

pub(crate) fn stats_from(
    s: &dyn GraphSession,
    per_mt: FxHashMap<u64, (u64, u64)>,
) -> (Vec<TypeStat>, u64, u64) {
    let mut types: Vec<TypeStat> = per_mt
        .into_iter()
        .map(|(mt, (count, size))| TypeStat {
            mt,
            name: s.type_name(mt),
            count,
            size,
            retained: None,
        })
        .collect();
    types.sort_by(|a, b| {
        a.size
            .cmp(&b.size)
            .then(a.count.cmp(&b.count))
            .then(a.name.cmp(&b.name))
    });
    let total_objects = types.iter().map(|t| t.count).sum();
    let total_bytes = types.iter().map(|t| t.size).sum();
    (types, total_objects, total_bytes)
}

/// `-sort retained`: smallest retained first, as SOS puts the biggest rows last.
pub(crate) fn sort_by_retained(types: &mut [TypeStat]) {
    types.sort_by(|a, b| {
        a.retained
            .cmp(&b.retained)
            .then(a.size.cmp(&b.size))
            .then(a.name.cmp(&b.name))
    });
}

pub(crate) fn render_stats(
    out: &mut String,
    types: &[TypeStat],
    total_objects: u64,
    total_bytes: u64,
) {
    let counts: Vec<String> = types.iter().map(|t| n0(t.count)).collect();
    let sizes: Vec<String> = types.iter().map(|t| n0(t.size)).collect();
    let wc = column_width(&counts, "Count");
    let ws = column_width(&sizes, "TotalSize");
    // The RetainedSize column only when the rows have one (`dumpheap -stat -retained`).
    let retained: Option<Vec<String>> = types
        .first()
        .and_then(|t| t.retained)
        .map(|_| types.iter().map(|t| n0(t.retained.unwrap_or(0))).collect());
    let wr = retained
        .as_ref()
        .map_or(0, |r| column_width(r, "RetainedSize"));
    out.push_str("Statistics:\n");
    match &retained {
        Some(_) => out.push_str(&format!(
            "{:>12} {:>wc$} {:>ws$} {:>wr$} Class Name\n",
            "MT", "Count", "TotalSize", "RetainedSize"
        )),
        None => out.push_str(&format!(
            "{:>12} {:>wc$} {:>ws$} Class Name\n",
            "MT", "Count", "TotalSize"
        )),
    }
    for (i, t) in types.iter().enumerate() {
        match &retained {
            Some(r) => out.push_str(&format!(
                "{:012x} {:>wc$} {:>ws$} {:>wr$} {}\n",
                t.mt, counts[i], sizes[i], r[i], t.name
            )),
            None => out.push_str(&format!(
                "{:012x} {:>wc$} {:>ws$} {}\n",
                t.mt, counts[i], sizes[i], t.name
            )),
        }
    }
    out.push_str(&format!(
        "Total {} objects, {} bytes\n",
        n0(total_objects),
        n0(total_bytes)
    ));
}

/// Width of a right-aligned column: its widest cell or its title.
pub(crate) fn column_width(cells: &[String], title: &str) -> usize {
    cells
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(0)
        .max(title.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_table_has_sos_shape() {
        let types = vec![
            TypeStat {
                mt: 0x7f6c1dc021c8,
                name: "System.SByte[]".into(),
                count: 1749,
                size: 95696,
                retained: None,
            },
            TypeStat {
                mt: 0x7f6c1dc00f90,
                name: "System.String".into(),
                count: 206770,
                size: 19494060,
                retained: None,
            },
        ];
        let mut out = String::new();
        render_stats(&mut out, &types, 208519, 19589756);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Statistics:");
        assert_eq!(lines[1], "          MT   Count  TotalSize Class Name");
        assert_eq!(lines[2], "7f6c1dc021c8   1,749     95,696 System.SByte[]");
        assert_eq!(lines[3], "7f6c1dc00f90 206,770 19,494,060 System.String");
        assert_eq!(lines[4], "Total 208,519 objects, 19,589,756 bytes");
    }
}
