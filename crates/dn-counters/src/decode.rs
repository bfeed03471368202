//! Turning EventPipe events into [`Sample`]s: EventCounters payloads (any EventSource) and the
//! value events of `System.Diagnostics.Metrics` (MetricsEventSource).

use std::time::SystemTime;

use dn_nettrace::{field, Event, Value};

use crate::sample::{parse_tags, Kind, Sample, Source};
use crate::spec::ProviderSpec;

pub const METRICS_PROVIDER: &str = "System.Diagnostics.Metrics";

/// Histogram percentiles shown by default (what MetricsEventSource computes).
pub const DEFAULT_PERCENTILES: [f64; 3] = [50.0, 95.0, 99.0];

/// EventCounters payloads covering less than this are the spurious bursts of .NET Core 3.1.
const SPURIOUS_INTERVAL_SECS: f64 = 0.2;

/// What one event means to us.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Samples(Vec<Sample>),
    /// Samples, and something to tell once about them.
    SamplesAndWarning(Vec<Sample>, String),
    /// A Metrics collection interval ended (CollectionStop of our session).
    IntervalEnd,
    /// Something the user should know (limits reached, shared-session conflicts, errors).
    Warning(String),
    /// A counter of a watched provider that was not asked for: the target publishes this name
    /// (used to suggest names for ones that never arrive).
    Unwanted {
        provider: String,
        name: String,
    },
    Nothing,
}

/// Decodes events for one session.
pub struct Decoder {
    specs: Vec<ProviderSpec>,
    /// The `SessionId` we sent to MetricsEventSource; its events for other sessions are ignored.
    metrics_session: String,
    client_id: String,
    refresh_secs: u32,
    /// Histogram percentiles to show, as fractions (`--percentiles`).
    percentiles: Vec<f64>,
    /// Percentiles asked for that the runtime does not compute were reported.
    percentiles_warned: std::sync::atomic::AtomicBool,
    /// `DN_COUNTERS_TRACE_EVENTS=1`: print every event to stderr (for diagnosing targets).
    trace_events: bool,
}

impl Decoder {
    pub fn new(
        specs: Vec<ProviderSpec>,
        metrics_session: String,
        client_id: String,
        refresh_secs: u32,
    ) -> Self {
        Decoder {
            specs,
            metrics_session,
            client_id,
            refresh_secs,
            percentiles: DEFAULT_PERCENTILES.iter().map(|p| p / 100.0).collect(),
            percentiles_warned: Default::default(),
            trace_events: std::env::var_os("DN_COUNTERS_TRACE_EVENTS").is_some(),
        }
    }

    /// What was asked of `provider`: its own spec, else `*` if given.
    /// Shows these histogram percentiles (in percent) instead of the default 50, 95, 99.
    pub fn with_percentiles(mut self, percentiles: &[f64]) -> Self {
        self.percentiles = percentiles.iter().map(|p| p / 100.0).collect();
        self
    }

    fn spec(&self, provider: &str) -> Option<&ProviderSpec> {
        self.specs
            .iter()
            .find(|s| s.name == provider)
            .or_else(|| self.specs.iter().find(|s| s.is_everything()))
    }

    pub fn decode(&self, ev: &Event) -> Decoded {
        let time = ev.wall_clock().unwrap_or_else(SystemTime::now);
        if self.trace_events {
            eprintln!(
                "event {} #{} {:?} v{}: {:?}",
                ev.provider_name(),
                ev.event_id(),
                ev.event_name(),
                ev.metadata.version,
                ev.decode()
            );
        }
        if ev.provider_name() == METRICS_PROVIDER {
            return match ev.decode() {
                Ok(fields) => self.metrics_event(ev.event_id(), &fields, time),
                Err(_) => Decoded::Nothing,
            };
        }
        match ev.counter_payload() {
            Ok(Some(fields)) => self.event_counter(ev.provider_name(), &fields, time),
            _ => Decoded::Nothing,
        }
    }

    fn event_counter(&self, provider: &str, f: &[(String, Value)], time: SystemTime) -> Decoded {
        let text = |n: &str| {
            field(f, n)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let num = |n: &str| field(f, n).and_then(Value::as_f64);
        let name = text("Name");
        let Some(spec) = self.spec(provider) else {
            return Decoded::Nothing;
        };
        if name.is_empty() {
            return Decoded::Nothing;
        }
        if !spec.wants(&name) {
            return Decoded::Unwanted {
                provider: provider.to_string(),
                name,
            };
        }
        // .NET Core 3.1 may follow a real burst within milliseconds by a spurious one with a tiny
        // interval and nonsense values. (Not a filter on the requested interval: when another
        // session asked for a shorter one, that is the only interval that arrives.)
        if num("IntervalSec").is_some_and(|i| i < SPURIOUS_INTERVAL_SECS) {
            return Decoded::Nothing;
        }
        let unit = text("DisplayUnits");
        let display = Some(text("DisplayName"))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| name.clone());
        let (kind, value, display_name) = if text("CounterType") == "Sum" {
            let unit_text = if unit.is_empty() { "Count" } else { &unit };
            (
                Kind::Rate,
                num("Increment"),
                format!("{display} ({unit_text} / {} sec)", self.refresh_secs),
            )
        } else {
            let shown = if unit.is_empty() {
                display.clone()
            } else {
                format!("{display} ({unit})")
            };
            (Kind::Gauge, num("Mean"), shown)
        };
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return Decoded::Nothing;
        };
        let tags = parse_tags(&text("Metadata"), ':');
        Decoded::Samples(vec![Sample {
            timestamp: time,
            provider: provider.to_string(),
            name,
            display_name,
            unit,
            kind,
            value,
            tags,
            source: Source::EventCounters,
        }])
    }

    fn metrics_event(&self, id: u32, f: &[(String, Value)], time: SystemTime) -> Decoded {
        let text = |n: &str| field(f, n).and_then(Value::as_str).unwrap_or("");
        let ours = text("sessionId") == self.metrics_session;
        match id {
            // CollectionStop
            3 if ours => Decoded::IntervalEnd,
            // Counter, gauge, histogram, up-down counter values.
            4 | 5 | 6 | 16 if ours => self.metric_value(id, f, time),
            9 | 14 if ours => Decoded::Warning(format!(
                "the target reported a metrics error: {}",
                text("errorMessage")
            )),
            12 if ours => Decoded::Warning(
                "Time series tracking limit reached in the target: not all data is shown.".into(),
            ),
            13 if ours => Decoded::Warning(
                "Histogram tracking limit reached in the target: not all data is shown.".into(),
            ),
            17 if text("clientId") == self.client_id => Decoded::Warning(format!(
                "the target's shared metrics session already runs with refresh interval {}s (asked for {}s); its values are shown",
                // "expected" is what the running session uses, "actual" what we asked for.
                text("expectedRefreshInterval"),
                text("actualRefreshInterval")
            )),
            _ => Decoded::Nothing,
        }
    }

    /// A histogram's interval: the requested percentiles among those the runtime computed, and
    /// the number of observations (a rate: observations in the interval).
    fn histogram(
        &self,
        f: &[(String, Value)],
        sample: impl Fn(Kind, f64, Vec<(String, String)>) -> Sample,
        tags: Vec<(String, String)>,
    ) -> Decoded {
        let text = |n: &str| field(f, n).and_then(Value::as_str).unwrap_or("");
        let computed: Vec<(f64, f64)> = text("quantiles")
            .split(';')
            .filter_map(|q| {
                let (p, v) = q.split_once('=')?;
                Some((p.trim().parse().ok()?, v.trim().parse().ok()?))
            })
            .collect();
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for want in &self.percentiles {
            match computed.iter().find(|(p, _)| (p - want).abs() < 1e-9) {
                Some((p, v)) if v.is_finite() => {
                    let mut t = tags.clone();
                    t.push((
                        "Percentile".to_string(),
                        format!("{}", (p * 1000.0).round() / 10.0),
                    ));
                    out.push(sample(Kind::Histogram, *v, t));
                }
                Some(_) => {}
                None if !computed.is_empty() => missing.push(format!("{}", want * 100.0)),
                None => {}
            }
        }
        if let Some(n) = field(f, "count").and_then(Value::as_f64) {
            let mut s = sample(Kind::Rate, n, tags);
            s.name = format!("{}.count", s.name);
            s.display_name = format!("{} (count / {} sec)", s.name, self.refresh_secs);
            s.unit = String::new();
            out.push(s);
        }
        use std::sync::atomic::Ordering;
        if !missing.is_empty() && !self.percentiles_warned.swap(true, Ordering::Relaxed) {
            let have: Vec<String> = computed
                .iter()
                .map(|(p, _)| format!("{}", p * 100.0))
                .collect();
            let warning = format!(
                "the runtime computes the {} percentiles of histograms only; {} cannot be shown",
                have.join(", "),
                missing.join(", ")
            );
            return Decoded::SamplesAndWarning(out, warning);
        }
        if out.is_empty() {
            Decoded::Nothing
        } else {
            Decoded::Samples(out)
        }
    }

    fn metric_value(&self, id: u32, f: &[(String, Value)], time: SystemTime) -> Decoded {
        let text = |n: &str| field(f, n).and_then(Value::as_str).unwrap_or("");
        let provider = text("meterName");
        let name = text("instrumentName");
        match self.spec(provider) {
            Some(spec) if !spec.event_counters_only && spec.wants(name) => {}
            // The shared session also carries what other tools asked for: names for hints.
            Some(_) => {
                return Decoded::Unwanted {
                    provider: provider.to_string(),
                    name: name.to_string(),
                }
            }
            None => return Decoded::Nothing,
        }
        let unit = text("unit").to_string();
        let display_name = if unit.is_empty() {
            name.to_string()
        } else {
            format!("{name} ({unit})")
        };
        let tags = parse_tags(text("tags"), '=');
        let number = |n: &str| text(n).trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let sample = |kind: Kind, value: f64, tags: Vec<(String, String)>| Sample {
            timestamp: time,
            provider: provider.to_string(),
            name: name.to_string(),
            display_name: display_name.clone(),
            unit: unit.clone(),
            kind,
            value,
            tags,
            source: Source::Meter,
        };
        let samples = match id {
            // Monotonic counters: the running total (v1+, .NET 8), else the interval's delta.
            4 => match (number("value"), number("rate")) {
                (Some(v), _) => vec![sample(Kind::Counter, v, tags)],
                (None, Some(r)) => vec![sample(Kind::Rate, r, tags)],
                _ => vec![],
            },
            16 => match (number("value"), number("rate")) {
                (Some(v), _) => vec![sample(Kind::UpDownCounter, v, tags)],
                (None, Some(r)) => vec![sample(Kind::Rate, r, tags)],
                _ => vec![],
            },
            5 => number("lastValue")
                .map(|v| vec![sample(Kind::Gauge, v, tags)])
                .unwrap_or_default(),
            6 => return self.histogram(f, sample, tags),
            _ => vec![],
        };
        if samples.is_empty() {
            Decoded::Nothing
        } else {
            Decoded::Samples(samples)
        }
    }
}
