//! One observed counter value, whichever mechanism delivered it.

use std::time::SystemTime;

use serde::Serialize;

/// How the value is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A level: EventCounter mean, Meter gauge.
    Gauge,
    /// The increment over the last interval (EventCounter Sum, pre-.NET 8 Meter counters).
    Rate,
    /// A running total (Meter Counter / ObservableCounter).
    Counter,
    /// A level that goes up and down (Meter UpDownCounter).
    UpDownCounter,
    /// One percentile of a histogram (the `Percentile` tag says which).
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Rate => "rate",
            Kind::Counter => "counter",
            Kind::UpDownCounter => "updowncounter",
            Kind::Histogram => "histogram",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::EventCounters => "EventCounters",
            Source::Meter => "Meter",
        }
    }
}

/// Which mechanism produced a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Source {
    EventCounters,
    Meter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub timestamp: SystemTime,
    /// EventSource or Meter name.
    pub provider: String,
    /// Counter or instrument name (`cpu-usage`, `dotnet.gc.collections`).
    pub name: String,
    /// What dotnet-counters shows: `CPU Usage (%)`, `dotnet.gc.collections ({collection})`.
    pub display_name: String,
    pub unit: String,
    pub kind: Kind,
    pub value: f64,
    /// Sorted by key as the runtime sends them; histograms add `Percentile`.
    pub tags: Vec<(String, String)>,
    pub source: Source,
}

impl Sample {
    /// `k=v,k2=v2`.
    pub fn tags_text(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Parses the runtime's tag text, `k=v,k2=v2` (Meters) or `k:v,k2:v2` (EventCounter metadata):
/// `sep` is what joins key and value. No escaping exists on the wire.
pub fn parse_tags(text: &str, sep: char) -> Vec<(String, String)> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(sep) {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}
