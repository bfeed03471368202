//! `serve`: the latest values as Prometheus text exposition (format 0.0.4) at `/metrics`.
//! Names are `dotnet_<provider>_<counter>_<base unit>`, values converted to base units (bytes,
//! seconds, ratios) so the exposition passes `promtool check metrics`. EventCounters that report
//! per-interval increments are exposed as running totals (Prometheus counters) summed since the
//! tool started, so `rate()` works on them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::sample::{Kind, Sample};
use crate::store::Store;

/// Lowercase snake case with only `[a-z0-9_]`.
pub fn sanitize(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push('_');
        }
    }
    let mut collapsed = String::new();
    for c in out.chars() {
        if !(c == '_' && collapsed.ends_with('_')) {
            collapsed.push(c);
        }
    }
    let t = collapsed.trim_matches('_').to_string();
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{t}")
    } else {
        t
    }
}

/// Running totals of per-interval increments (EventCounter `Sum`s, pre-.NET 8 Meter rates), per
/// series, so they are exposed as Prometheus counters.
#[derive(Debug, Default)]
pub struct Totals(std::collections::HashMap<(String, String, String), f64>);

impl Totals {
    pub fn convert(&mut self, samples: Vec<Sample>) -> Vec<Sample> {
        samples
            .into_iter()
            .map(|mut s| {
                if s.kind == Kind::Rate {
                    let key = (s.provider.clone(), s.name.clone(), s.tags_text());
                    let total = self.0.entry(key).or_default();
                    *total += s.value;
                    s.value = *total;
                    s.kind = Kind::Counter;
                }
                s
            })
            .collect()
    }
}

/// (suffix, multiplier to the base unit).
fn unit_conversion(unit: &str) -> (Option<&'static str>, f64) {
    if let Some(scale) = crate::format::bytes_per_unit(unit) {
        return (Some("bytes"), scale);
    }
    match unit {
        "s" => (Some("seconds"), 1.0),
        "ms" => (Some("seconds"), 1e-3),
        "us" => (Some("seconds"), 1e-6),
        "ns" => (Some("seconds"), 1e-9),
        "%" => (Some("ratio"), 0.01),
        _ => (None, 1.0),
    }
}

pub fn metric_name(s: &Sample) -> String {
    let counter = s.name.strip_prefix("dotnet.").unwrap_or(&s.name);
    let mut name = format!("dotnet_{}_{}", sanitize(&s.provider), sanitize(counter));
    if let (Some(suffix), _) = unit_conversion(&s.unit) {
        if !name.ends_with(suffix) {
            name.push('_');
            name.push_str(suffix);
        }
    }
    match s.kind {
        Kind::Counter => name.push_str("_total"),
        // `_count` is reserved for summaries and histograms.
        _ if name.ends_with("_count") => name.push_str("_current"),
        _ => {}
    }
    name
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One sample's metric name and exposition line; its tags may not override `own` labels.
fn series_line(s: &Sample, own_labels: &[String], own: &[(String, String)]) -> (String, String) {
    let name = metric_name(s);
    let (_, scale) = unit_conversion(&s.unit);
    let mut labels = own_labels.to_vec();
    for (k, v) in &s.tags {
        let (key, value) = if k == "Percentile" {
            let q = v.parse::<f64>().unwrap_or(0.0) / 100.0;
            ("quantile".to_string(), format_number(q))
        } else {
            (sanitize(k), escape_label(v))
        };
        if own.iter().any(|(o, _)| *o == key) || key == "quantile" && s.kind != Kind::Histogram {
            continue;
        }
        labels.push(format!("{key}=\"{value}\""));
    }
    let line = format!(
        "{name}{{{}}} {}",
        labels.join(","),
        format_number(s.value * scale)
    );
    (name, line)
}

fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The exposition text for every series in `store`.
pub fn render(store: &Store, pid: i32) -> String {
    let labels = [("pid".to_string(), pid.to_string())];
    render_all([(&labels[..], store)])
}

/// The exposition text for several processes: each store's series carry its labels (`pid`,
/// `process`...) first, then their own tags.
pub fn render_all<'a>(
    targets: impl IntoIterator<Item = (&'a [(String, String)], &'a Store)>,
) -> String {
    // Series of one metric must be consecutive: group by name first.
    let mut metrics: BTreeMap<String, (Kind, String, Vec<String>)> = BTreeMap::new();
    for (own, store) in targets {
        let own_labels: Vec<String> = own
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", sanitize(k), escape_label(v)))
            .collect();
        for (_, s) in store.iter() {
            let (name, line) = series_line(s, &own_labels, own);
            let help = if s.unit.is_empty() {
                format!("{} {}", s.provider, s.name)
            } else {
                format!("{} {} ({})", s.provider, s.name, s.unit)
            };
            metrics
                .entry(name)
                .or_insert_with(|| (s.kind, help, Vec::new()))
                .2
                .push(line);
        }
    }
    let mut out = String::new();
    for (name, (kind, help, lines)) in metrics {
        let ty = match kind {
            Kind::Counter => "counter",
            Kind::Histogram => "summary",
            _ => "gauge",
        };
        // Text format 0.0.4: HELP and TYPE carry the samples' own name (`_total` included).
        let family = &name;
        let _ = writeln!(
            out,
            "# HELP {family} {}",
            help.replace('\\', "\\\\").replace('\n', " ")
        );
        let _ = writeln!(out, "# TYPE {family} {ty}");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Source;

    fn sample(provider: &str, name: &str, unit: &str, kind: Kind, value: f64) -> Sample {
        Sample {
            timestamp: std::time::SystemTime::now(),
            provider: provider.into(),
            name: name.into(),
            display_name: name.into(),
            unit: unit.into(),
            kind,
            value,
            tags: vec![],
            source: Source::EventCounters,
        }
    }

    #[test]
    fn names_are_sanitized_with_base_units() {
        let s = sample("System.Runtime", "gc-heap-size", "MB", Kind::Gauge, 40.5);
        assert_eq!(metric_name(&s), "dotnet_system_runtime_gc_heap_size_bytes");
        let s = sample(
            "System.Runtime",
            "dotnet.gc.collections",
            "{collection}",
            Kind::Counter,
            1.0,
        );
        assert_eq!(
            metric_name(&s),
            "dotnet_system_runtime_gc_collections_total"
        );
        let s = sample("System.Runtime", "cpu-usage", "%", Kind::Gauge, 1.0);
        assert_eq!(metric_name(&s), "dotnet_system_runtime_cpu_usage_ratio");
        let s = sample("System.Runtime", "assembly-count", "", Kind::Gauge, 1.0);
        assert_eq!(
            metric_name(&s),
            "dotnet_system_runtime_assembly_count_current"
        );
        assert_eq!(
            sanitize("Microsoft.AspNetCore.Hosting"),
            "microsoft_asp_net_core_hosting"
        );
    }
}
