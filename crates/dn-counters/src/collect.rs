//! `collect` writers: JSON Lines (one object per sample, flushed per line), one JSON document
//! (closed on every exit path that runs code), and CSV.

use std::io::{self, Write};
use std::time::SystemTime;

use chrono::{DateTime, Local, SecondsFormat};
use serde::Serialize;

use crate::sample::Sample;

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

pub trait SampleWriter {
    fn write(&mut self, s: &Sample) -> io::Result<()>;
    /// Ends the document (closing brackets, flush). Called at most once; also on drop.
    fn finish(&mut self) -> io::Result<()>;
}

pub fn writer(
    format: Format,
    out: Box<dyn Write + Send>,
    pid: i32,
) -> io::Result<Box<dyn SampleWriter + Send>> {
    Ok(match format {
        Format::Jsonl => Box::new(JsonLines { out, pid }),
        Format::Json => Box::new(JsonDocument::new(out, pid)?),
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

/// `{"pid": N, "start_time": "...", "samples": [ ... ]}`.
struct JsonDocument {
    out: Box<dyn Write + Send>,
    pid: i32,
    first: bool,
    finished: bool,
}

impl JsonDocument {
    fn new(mut out: Box<dyn Write + Send>, pid: i32) -> io::Result<Self> {
        write!(
            out,
            "{{\"pid\":{pid},\"start_time\":{},\"samples\":[",
            serde_json::to_string(&rfc3339(SystemTime::now()))?
        )?;
        out.flush()?;
        Ok(JsonDocument {
            out,
            pid,
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
        serde_json::to_writer(&mut self.out, &record(s, self.pid))?;
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
