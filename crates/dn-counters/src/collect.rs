//! `collect` writers: JSON Lines (one object per sample, flushed per line), dotnet-counters' JSON
//! document (closed on every exit path that runs code), and CSV.

use std::io::{self, Write};
use std::time::SystemTime;

use chrono::{DateTime, Local, SecondsFormat};
use serde::Serialize;

use crate::sample::{Kind, Sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Jsonl,
}

/// RFC 3339 with the local offset, e.g. `2026-11-25T12:01:02.345+01:00`.
pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Local>::from(t).to_rfc3339_opts(SecondsFormat::Millis, false)
}

#[derive(Serialize)]
struct Record<'a> {
    timestamp: String,
    pid: i32,
    provider: &'a str,
    name: &'a str,
    display_name: &'a str,
    unit: &'a str,
    kind: &'a str,
    value: f64,
    tags: serde_json::Map<String, serde_json::Value>,
}

fn record(s: &Sample, pid: i32) -> Record<'_> {
    Record {
        timestamp: rfc3339(s.timestamp),
        pid,
        provider: &s.provider,
        name: &s.name,
        display_name: &s.display_name,
        unit: &s.unit,
        kind: s.kind.as_str(),
        value: s.value,
        tags: s
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    }
}

/// The process a file is about.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub pid: i32,
    /// The kernel's name for it (`comm`), what dotnet-counters calls `TargetProcess`.
    pub process_name: String,
}

impl Target {
    pub fn of(watch: &crate::watch::Watch) -> Target {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", watch.pid))
            .map(|c| c.trim_end().to_string())
            .ok();
        let from_info = || {
            let cmd = watch.info.as_ref()?.command_line.clone();
            let first = cmd.split_whitespace().next()?.to_string();
            Some(first.rsplit('/').next().unwrap_or(&first).to_string())
        };
        Target {
            pid: watch.pid,
            process_name: comm.or_else(from_info).unwrap_or_default(),
        }
    }
}

/// One event of dotnet-counters' JSON document, its fields in its order.
#[derive(Serialize)]
struct DotnetCountersEvent<'a> {
    timestamp: String,
    provider: &'a str,
    /// The display name with the unit, as dotnet-counters shows it.
    name: &'a str,
    tags: String,
    /// `Rate` for per-interval increments, `Metric` for everything else.
    #[serde(rename = "counterType")]
    counter_type: &'static str,
    #[serde(rename = "meterTags")]
    meter_tags: &'static str,
    #[serde(rename = "instrumentTags")]
    instrument_tags: &'static str,
    value: f64,
}

fn dotnet_counters_event(s: &Sample) -> DotnetCountersEvent<'_> {
    DotnetCountersEvent {
        timestamp: rfc3339(s.timestamp),
        provider: &s.provider,
        name: &s.display_name,
        tags: s.tags_text(),
        counter_type: match s.kind {
            Kind::Rate => "Rate",
            _ => "Metric",
        },
        meter_tags: "",
        instrument_tags: "",
        value: s.value,
    }
}

pub trait SampleWriter {
    fn write(&mut self, s: &Sample) -> io::Result<()>;
    /// Ends the document (closing brackets, flush). Called at most once; also on drop.
    fn finish(&mut self) -> io::Result<()>;
}

pub fn writer(
    format: Format,
    out: Box<dyn Write + Send>,
    target: &Target,
) -> io::Result<Box<dyn SampleWriter + Send>> {
    let pid = target.pid;
    Ok(match format {
        Format::Jsonl => Box::new(JsonLines { out, pid }),
        Format::Json => Box::new(JsonDocument::new(out, target)?),
        Format::Csv => Box::new(Csv::new(out, pid)?),
    })
}

struct JsonLines {
    out: Box<dyn Write + Send>,
    pid: i32,
}

impl SampleWriter for JsonLines {
    fn write(&mut self, s: &Sample) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &record(s, self.pid))?;
        self.out.write_all(b"\n")?;
        // Each line complete on disk: readable even if we are killed.
        self.out.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// dotnet-counters' document: `{"TargetProcess": "name", "StartTime": "...", "Events": [ ... ]}`.
struct JsonDocument {
    out: Box<dyn Write + Send>,
    first: bool,
    finished: bool,
}

impl JsonDocument {
    fn new(mut out: Box<dyn Write + Send>, target: &Target) -> io::Result<Self> {
        write!(
            out,
            "{{\"TargetProcess\":{},\"StartTime\":{},\"Events\":[",
            serde_json::to_string(&target.process_name)?,
            serde_json::to_string(&rfc3339(SystemTime::now()))?
        )?;
        out.flush()?;
        Ok(JsonDocument {
            out,
            first: true,
            finished: false,
        })
    }
}

impl SampleWriter for JsonDocument {
    fn write(&mut self, s: &Sample) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut self.out, &dotnet_counters_event(s))?;
        self.out.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()
    }
}

impl Drop for JsonDocument {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

struct Csv {
    out: csv::Writer<Box<dyn Write + Send>>,
    pid: i32,
}

impl Csv {
    fn new(out: Box<dyn Write + Send>, pid: i32) -> io::Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record([
            "timestamp",
            "pid",
            "provider",
            "name",
            "display_name",
            "unit",
            "kind",
            "value",
            "tags",
        ])?;
        out.flush()?;
        Ok(Csv { out, pid })
    }
}

impl SampleWriter for Csv {
    fn write(&mut self, s: &Sample) -> io::Result<()> {
        self.out.write_record([
            rfc3339(s.timestamp).as_str(),
            &self.pid.to_string(),
            &s.provider,
            &s.name,
            &s.display_name,
            &s.unit,
            s.kind.as_str(),
            &crate::format::exact(s.value),
            &s.tags_text(),
        ])?;
        self.out.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
