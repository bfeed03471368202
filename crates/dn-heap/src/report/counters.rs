//! Reads the files `dn-counters collect` writes, in any of its formats: CSV, JSON Lines, the
//! older JSON document (`{pid, start_time, samples}`) and dotnet-counters' JSON document
//! (`{TargetProcess, StartTime, Events}`). The format is told by the content, not the name.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

/// Which of the formats a file was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountersFormat {
    Csv,
    JsonLines,
    /// `{"pid", "start_time", "samples": [...]}`.
    JsonSamples,
    /// dotnet-counters' `{"TargetProcess", "StartTime", "Events": [...]}`.
    JsonEvents,
}

/// One counter over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub provider: String,
    /// The name as the file shows it (the display name, with its unit when the file has one).
    pub name: String,
    /// `key=value` pairs, comma-separated; empty for untagged counters.
    pub tags: String,
    /// The unit when the file records it (`By`, `MB`, `%`...).
    pub unit: Option<String>,
    /// (milliseconds since the Unix epoch, value), in time order.
    pub points: Vec<(i64, f64)>,
}

/// Every series of one file.
#[derive(Debug, Clone)]
pub struct CountersFile {
    pub format: CountersFormat,
    pub series: Vec<Series>,
}

/// One sample as read, before grouping.
struct Row {
    provider: String,
    name: String,
    tags: String,
    unit: Option<String>,
    time: i64,
    value: f64,
}

pub fn read(path: &Path) -> anyhow::Result<CountersFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "{}: not a dn-counters collect file (csv, json or jsonl): it is not text",
            path.display()
        )
    })?;
    parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a dn-counters collect file (csv, json or jsonl): {e}",
            path.display()
        )
    })
}

/// Parses a file's text, whatever its format.
pub fn parse(text: &str) -> anyhow::Result<CountersFile> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let (format, rows) = if trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(doc) if doc.get("Events").is_some() => {
                (CountersFormat::JsonEvents, events(&doc["Events"])?)
            }
            Ok(doc) if doc.get("samples").is_some() => {
                (CountersFormat::JsonSamples, records(&doc["samples"])?)
            }
            // One line of JSON Lines, or several.
            _ => (CountersFormat::JsonLines, json_lines(trimmed)?),
        }
    } else if trimmed.starts_with("timestamp,") {
        (CountersFormat::Csv, csv_rows(trimmed)?)
    } else {
        bail!("it starts with neither a JSON object nor the CSV header");
    };
    Ok(CountersFile {
        format,
        series: group(rows),
    })
}

fn json_lines(text: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("line {} is not JSON ({e})", i + 1))?;
        rows.push(record(&v).with_context(|| format!("line {}", i + 1))?);
    }
    Ok(rows)
}

fn records(samples: &Value) -> anyhow::Result<Vec<Row>> {
    let Some(list) = samples.as_array() else {
        bail!("\"samples\" is not a list");
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| record(v).with_context(|| format!("sample {}", i + 1)))
        .collect()
}

/// A dn-counters record: timestamp, provider, name, display_name, unit, value, tags (map).
fn record(v: &Value) -> anyhow::Result<Row> {
    let tags = match v.get("tags") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let name = str_field(v, "display_name").or_else(|_| str_field(v, "name"))?;
    Ok(Row {
        provider: str_field(v, "provider")?,
        name,
        tags,
        unit: str_field(v, "unit").ok().filter(|u| !u.is_empty()),
        time: time_field(v)?,
        value: num_field(v)?,
    })
}

fn events(list: &Value) -> anyhow::Result<Vec<Row>> {
    let Some(list) = list.as_array() else {
        bail!("\"Events\" is not a list");
    };
    let mut rows = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let row = (|| -> anyhow::Result<Row> {
            let name = str_field(v, "name")?;
            Ok(Row {
                provider: str_field(v, "provider")?,
                unit: unit_in_name(&name),
                name,
                tags: v
                    .get("tags")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                time: time_field(v)?,
                value: num_field(v)?,
            })
        })()
        .with_context(|| format!("event {}", i + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

/// dotnet-counters writes the unit in the name: `GC Heap Size (MB)`, `Working Set (By)`.
fn unit_in_name(name: &str) -> Option<String> {
    let open = name.rfind('(')?;
    let inner = name[open + 1..].strip_suffix(')')?;
    (!inner.is_empty() && !inner.contains(' ')).then(|| inner.to_string())
}

fn csv_rows(text: &str) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().context("the CSV header")?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(t), Some(p), Some(v)) = (col("timestamp"), col("provider"), col("value")) else {
        bail!("the CSV header lacks timestamp, provider or value");
    };
    let name_col = col("display_name")
        .or(col("name"))
        .context("the CSV header lacks a name")?;
    let (unit_col, tags_col) = (col("unit"), col("tags"));
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| anyhow::anyhow!("CSV row {} ({e})", i + 1))?;
        let get = |c: usize| rec.get(c).unwrap_or("").to_string();
        let value: f64 = get(v).parse().map_err(|_| {
            anyhow::anyhow!("CSV row {}: value '{}' is not a number", i + 1, get(v))
        })?;
        rows.push(Row {
            provider: get(p),
            name: get(name_col),
            tags: tags_col.map(get).unwrap_or_default(),
            unit: unit_col.map(get).filter(|u| !u.is_empty()),
            time: parse_time(&get(t))
                .with_context(|| format!("CSV row {}: timestamp '{}'", i + 1, get(t)))?,
            value,
        });
    }
    Ok(rows)
}

fn str_field(v: &Value, key: &str) -> anyhow::Result<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no \"{key}\" text"))
}

fn num_field(v: &Value) -> anyhow::Result<f64> {
    v.get("value")
        .and_then(Value::as_f64)
        .context("no \"value\" number")
}

fn time_field(v: &Value) -> anyhow::Result<i64> {
    let t = str_field(v, "timestamp")?;
    parse_time(&t).with_context(|| format!("timestamp '{t}'"))
}

/// RFC 3339 (what dn-counters writes), or `YYYY-MM-DD HH:MM:SS[.fff]` read as local time.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.timestamp_millis());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .context("not a date and time")?;
    use chrono::TimeZone;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
        .context("not a local time")
}

/// Samples grouped by (provider, name, tags), in the file's order of first appearance.
fn group(rows: Vec<Row>) -> Vec<Series> {
    let mut index: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut out: Vec<Series> = Vec::new();
    for r in rows {
        let key = (r.provider.clone(), r.name.clone(), r.tags.clone());
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Series {
                provider: r.provider.clone(),
                name: r.name.clone(),
                tags: r.tags.clone(),
                unit: r.unit.clone(),
                points: Vec::new(),
            });
            out.len() - 1
        });
        out[i].points.push((r.time, r.value));
    }
    for s in &mut out {
        s.points.sort_by_key(|p| p.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-11-25T12:01:02.000+00:00";
    const T2: &str = "2026-11-25T12:01:03.000+00:00";

    fn check(f: &CountersFile, format: CountersFormat) {
        assert_eq!(f.format, format);
        let heap = f
            .series
            .iter()
            .find(|s| s.name.starts_with("GC Heap Size"))
            .unwrap();
        assert_eq!(heap.provider, "System.Runtime");
        assert_eq!(heap.points.len(), 2);
        assert_eq!(heap.points[1].0 - heap.points[0].0, 1000);
        assert_eq!(heap.points[1].1, 12.5);
    }

    #[test]
    fn csv_file() {
        let text = format!(
            "timestamp,pid,provider,name,display_name,unit,kind,value,tags\n\
             {T1},42,System.Runtime,gc-heap-size,GC Heap Size,MB,gauge,10,\n\
             {T2},42,System.Runtime,gc-heap-size,GC Heap Size,MB,gauge,12.5,\n"
        );
        let f = parse(&text).unwrap();
        check(&f, CountersFormat::Csv);
        assert_eq!(f.series[0].unit.as_deref(), Some("MB"));
    }

    fn record(t: &str, v: f64) -> String {
        format!(
            r#"{{"timestamp":"{t}","pid":42,"provider":"System.Runtime","name":"gc-heap-size","display_name":"GC Heap Size","unit":"MB","kind":"gauge","value":{v},"tags":{{}}}}"#
        )
    }

    #[test]
    fn json_lines_file() {
        let text = format!("{}\n{}\n", record(T1, 10.0), record(T2, 12.5));
        check(&parse(&text).unwrap(), CountersFormat::JsonLines);
    }

    #[test]
    fn json_samples_document() {
        let text = format!(
            r#"{{"pid":42,"start_time":"{T1}","samples":[
{},
{}
]}}"#,
            record(T1, 10.0),
            record(T2, 12.5)
        );
        check(&parse(&text).unwrap(), CountersFormat::JsonSamples);
    }

    #[test]
    fn dotnet_counters_document() {
        let ev = |t: &str, v: f64| {
            format!(
                r#"{{"timestamp":"{t}","provider":"System.Runtime","name":"GC Heap Size (MB)","tags":"","counterType":"Metric","meterTags":"","instrumentTags":"","value":{v}}}"#
            )
        };
        let text = format!(
            r#"{{"TargetProcess":"app","StartTime":"{T1}","Events":[{},{}]}}"#,
            ev(T1, 10.0),
            ev(T2, 12.5)
        );
        let f = parse(&text).unwrap();
        check(&f, CountersFormat::JsonEvents);
        assert_eq!(f.series[0].unit.as_deref(), Some("MB"));
    }

    #[test]
    fn other_formats_are_refused() {
        for text in [
            "",
            "hello",
            "a,b,c\n1,2,3\n",
            "{\"x\": 1}",
            "{\"Events\": 3}",
            "\u{0}\u{1}",
        ] {
            assert!(parse(text).is_err(), "{text:?} accepted");
        }
        let bad_value = format!(
            "timestamp,pid,provider,name,display_name,unit,kind,value,tags\n{T1},1,p,n,N,,gauge,abc,\n"
        );
        assert!(parse(&bad_value).is_err());
    }

    #[test]
    fn times_in_both_shapes() {
        assert_eq!(parse_time("1970-01-01T00:00:01.5+00:00").unwrap(), 1500);
        assert!(parse_time("2026-11-25 12:01:02").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}
