//! The monitor's text: a fixed header and the counter rows, laid out for a terminal width.
//! Pure text, so the same lines serve the live screen and plain snapshots.

use crate::format::{format_value, grouped};
use crate::sample::Sample;
use crate::store::Store;

/// How values are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Exact values (no byte units, no digit grouping).
    pub raw: bool,
    /// A `Last Delta` column: the change since the previous value.
    pub deltas: bool,
}

pub const KEYS_LINE: &str = "Press p to pause, r to resume, q to quit.";
/// Width of the value column.
const VALUE_WIDTH: usize = 15;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub header: Vec<String>,
    pub body: Vec<String>,
}

/// Cuts to `width` characters.
pub fn cut(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}

fn row(name: &str, value: &str, delta: Option<&str>, width: usize) -> String {
    let vw = VALUE_WIDTH.max(value.chars().count());
    let dw = delta.map_or(0, |d| VALUE_WIDTH.max(d.chars().count()) + 1);
    let nw = width.saturating_sub(vw + 1 + dw).max(1);
    let mut line = format!("{:<nw$} {:>vw$}", cut(name, nw), value);
    if let Some(d) = delta {
        line.push_str(&format!(" {:>w$}", d, w = dw - 1));
    }
    line
}

/// The header lines: keys, status, a warning (or blank), column titles.
pub fn header(status: &str, warning: Option<&str>, view: View, width: usize) -> Vec<String> {
    vec![
        KEYS_LINE.to_string(),
        format!("    Status: {status}"),
        warning.unwrap_or("").to_string(),
        column_titles(view, width),
    ]
}

pub fn column_titles(view: View, width: usize) -> String {
    row(
        "Name",
        "Current Value",
        view.deltas.then_some("Last Delta"),
        width,
    )
}

/// The delta cell: blank until a series has two values.
fn delta_text(delta: Option<f64>, view: View) -> Option<String> {
    view.deltas.then(|| match delta {
        None => String::new(),
        Some(d) if view.raw => crate::format::exact(d),
        Some(d) => grouped(d),
    })
}

/// The counter rows: `[Provider]`, then `    name (unit)   value`; tagged counters get a row of
/// tag keys, dashes, and one row of tag values per series.
pub fn body(store: &Store, view: View, width: usize) -> Vec<String> {
    let raw = view.raw;
    let mut lines = Vec::new();
    let labels: Vec<(String, &Sample, Option<String>)> = store
        .iter()
        .map(|(k, s)| (label(s, raw), s, delta_text(store.delta(k), view)))
        .collect();
    let mut rows: Vec<(&str, &str, Row)> = labels
        .iter()
        .map(|(l, s, d)| (s.provider.as_str(), l.as_str(), (*s, d.as_deref())))
        .collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut i = 0;
    while i < rows.len() {
        let (provider, name, _) = rows[i];
        if i == 0 || rows[i - 1].0 != provider {
            lines.push(format!("[{provider}]"));
        }
        let mut j = i;
        while j < rows.len() && rows[j].0 == provider && rows[j].1 == name {
            j += 1;
        }
        let group: Vec<Row> = rows[i..j].iter().map(|r| r.2).collect();
        if group.len() == 1 && group[0].0.tags.is_empty() {
            lines.push(row(
                &format!("    {name}"),
                &format_value(group[0].0, raw),
                group[0].1,
                width,
            ));
        } else {
            lines.push(format!("    {name}"));
            tag_table(&group, raw, width, &mut lines);
        }
        i = j;
    }
    lines
}

/// The row name. Human-readable byte values carry their own unit, so the unit the counter
/// declares (`MB`, `B`, `By`) is left out of the name then.
pub fn label(s: &Sample, raw: bool) -> String {
    if raw || crate::format::bytes_per_unit(&s.unit).is_none() {
        return s.display_name.clone();
    }
    let name = &s.display_name;
    if let Some(base) = name.strip_suffix(&format!(" ({})", s.unit)) {
        return base.to_string();
    }
    name.replace(&format!("({} / ", s.unit), "(/ ")
}

/// A sample and its delta cell.
type Row<'a> = (&'a Sample, Option<&'a str>);

fn tag_table(group: &[Row], raw: bool, width: usize, lines: &mut Vec<String>) {
    let mut keys: Vec<&str> = Vec::new();
    for (s, _) in group {
        for (k, _) in &s.tags {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    let value_of = |s: &Sample, k: &str| -> String {
        s.tags
            .iter()
            .find(|(tk, _)| tk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let widths: Vec<usize> = keys
        .iter()
        .map(|k| {
            group
                .iter()
                .map(|(s, _)| value_of(s, k).chars().count())
                .chain([k.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let join = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("        {}", parts.join("  ").trim_end())
    };
    lines.push(cut(
        &join(keys.iter().map(|k| k.to_string()).collect()),
        width,
    ));
    lines.push(cut(
        &join(widths.iter().map(|w| "-".repeat(*w)).collect()),
        width,
    ));
    let mut sorted: Vec<Row> = group.to_vec();
    sorted.sort_by_key(|(s, _)| percentile_key(s));
    for (s, d) in sorted {
        let label = join(keys.iter().map(|k| value_of(s, k)).collect());
        lines.push(row(&label, &format_value(s, raw), d, width));
    }
}

/// Sorts tag sets by their text, with percentiles in numeric order.
fn percentile_key(s: &Sample) -> (String, u64) {
    let mut text = String::new();
    let mut pct = 0;
    for (k, v) in &s.tags {
        if k == "Percentile" {
            pct = (v.parse::<f64>().unwrap_or(0.0) * 1000.0) as u64;
        } else {
            text.push_str(k);
            text.push('=');
            text.push_str(v);
            text.push(',');
        }
    }
    (text, pct)
}
