//! Trigger conditions: `[PROVIDER/]COUNTER OP VALUE[UNIT] [for DURATION]` over the counters of
//! the same EventPipe session as `dn-counters`, and `--on-gc-heap-growth PCT`. Pure: parsing,
//! unit conversion and evaluation, no I/O.

use std::fmt;
use std::time::{Duration, Instant};

use crate::units::{parse_duration, show_size, split_number};

/// The provider of a counter named without one.
pub const DEFAULT_PROVIDER: &str = "System.Runtime";
/// The counter `--on-gc-heap-growth` watches.
pub const GC_HEAP_SIZE: &str = "gc-heap-size";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

/// What a threshold's number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes (the threshold was given in B/KB/MB/GB/TB).
    Bytes,
    Percent,
    Seconds,
    /// As the counter reports it.
    Plain,
}

impl Unit {
    /// Shows `v` (in this unit's base) the way it was typed.
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Bytes => show_size(v),
            Unit::Percent => format!("{}%", trim(v)),
            Unit::Seconds => format!("{}s", trim(v)),
            Unit::Plain => trim(v),
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One `--when` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub provider: String,
    pub counter: String,
    pub op: Op,
    /// In the unit's base (bytes for sizes).
    pub threshold: f64,
    pub unit: Unit,
    /// `for 10s`: the condition must hold on every sample for this long.
    pub sustain: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    When(Condition),
    /// The GC heap grew by this many percent over its first value.
    GcHeapGrowth(f64),
    /// A first-chance exception of this type (full name or name without namespace); `None`: any.
    Exception(Option<String>),
}

impl Rule {
    /// (provider, counter) the rule watches; `None` for exception rules.
    pub fn counter(&self) -> Option<(&str, &str)> {
        match self {
            Rule::When(c) => Some((&c.provider, &c.counter)),
            Rule::GcHeapGrowth(_) => Some((DEFAULT_PROVIDER, GC_HEAP_SIZE)),
            Rule::Exception(_) => None,
        }
    }

    /// The unit a value of the watched counter is shown in.
    pub fn unit(&self) -> Unit {
        match self {
            Rule::When(c) => c.unit,
            Rule::GcHeapGrowth(_) => Unit::Bytes,
            Rule::Exception(_) => Unit::Plain,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::When(c) => {
                write!(
                    f,
                    "{}/{} {} {}",
                    c.provider,
                    c.counter,
                    c.op.as_str(),
                    c.unit.show(c.threshold)
                )?;
                if let Some(d) = c.sustain {
                    write!(f, " for {}s", trim(d.as_secs_f64()))?;
                }
                Ok(())
            }
            Rule::GcHeapGrowth(p) => {
                write!(f, "{DEFAULT_PROVIDER}/{GC_HEAP_SIZE} grew by {}%", trim(*p))
            }
            Rule::Exception(None) => f.write_str("any first-chance exception"),
            Rule::Exception(Some(t)) => write!(f, "first-chance exception {t}"),
        }
    }
}

/// Parses `[PROVIDER/]COUNTER OP VALUE[UNIT] [for DURATION]`.
pub fn parse_when(text: &str) -> Result<Rule, String> {
    let at = text
        .find(['>', '<'])
        .ok_or_else(|| format!("'{text}': no comparison (use >, >=, < or <=)"))?;
    let (left, rest) = text.split_at(at);
    let (op, rest) = match (rest.as_bytes()[0], rest.as_bytes().get(1)) {
        (b'>', Some(b'=')) => (Op::Ge, &rest[2..]),
        (b'<', Some(b'=')) => (Op::Le, &rest[2..]),
        (b'>', _) => (Op::Gt, &rest[1..]),
        _ => (Op::Lt, &rest[1..]),
    };
    let left = left.trim();
    let (provider, counter) = match left.split_once('/') {
        Some((p, c)) => (p.trim(), c.trim()),
        None => (DEFAULT_PROVIDER, left),
    };
    if provider.is_empty() || counter.is_empty() {
        return Err(format!("'{text}': no counter before the comparison"));
    }
    let (value, sustain) = match rest.split_once(" for ") {
        Some((v, d)) => (
            v,
            Some(parse_duration(d).map_err(|e| format!("'{text}': {e}"))?),
        ),
        None => (rest, None),
    };
    let (threshold, unit) = parse_threshold(value).map_err(|e| format!("'{text}': {e}"))?;
    Ok(Rule::When(Condition {
        provider: provider.to_string(),
        counter: counter.to_string(),
        op,
        threshold,
        unit,
        sustain,
    }))
}

fn parse_threshold(text: &str) -> Result<(f64, Unit), String> {
    let (num, unit) = split_number(text)?;
    let (mult, u) = match unit.to_ascii_lowercase().as_str() {
        "" => (1.0, Unit::Plain),
        "%" => (1.0, Unit::Percent),
        "b" => (1.0, Unit::Bytes),
        "kb" | "kib" => (1024.0, Unit::Bytes),
        "mb" | "mib" => (1048576.0, Unit::Bytes),
        "gb" | "gib" => (1073741824.0, Unit::Bytes),
        "tb" | "tib" => (1099511627776.0, Unit::Bytes),
        "ms" => (0.001, Unit::Seconds),
        "s" => (1.0, Unit::Seconds),
        _ => {
            return Err(format!(
                "unknown unit '{unit}' (use B, KB, MB, GB, TB, %, ms or s)"
            ))
        }
    };
    Ok((num * mult, u))
}

/// A counter value in the base of the rule's unit: a size counter reported in MB (EventCounters)
/// or bytes (Meters) is compared in bytes.
pub fn normalize(value: f64, counter_unit: &str, unit: Unit) -> f64 {
    if unit != Unit::Bytes {
        return value;
    }
    match counter_unit.trim().to_ascii_lowercase().as_str() {
        "kb" | "kib" => value * 1024.0,
        "mb" | "mib" => value * 1048576.0,
        "gb" | "gib" => value * 1073741824.0,
        _ => value,
    }
}

/// One rule's progress over the samples.
#[derive(Debug, Clone)]
pub struct Armed {
    pub rule: Rule,
    /// When the condition started to hold (for `for DURATION`).
    since: Option<Instant>,
    /// The first value (for growth rules).
    baseline: Option<f64>,
    last_fired: Option<Instant>,
}

impl Armed {
    pub fn new(rule: Rule) -> Self {
        Armed {
            rule,
            since: None,
            baseline: None,
            last_fired: None,
        }
    }

    /// Feeds one value (already normalized); true if the rule fires now. A rule that fired
    /// waits `cooldown` and, for `for` conditions, a new full stretch before it fires again.
    pub fn observe(&mut self, value: f64, now: Instant, cooldown: Duration) -> bool {
        let holds = match &self.rule {
            Rule::When(c) => c.op.holds(value, c.threshold),
            Rule::GcHeapGrowth(pct) => match self.baseline {
                None => {
                    self.baseline = Some(value);
                    false
                }
                Some(b) => b > 0.0 && value >= b * (1.0 + pct / 100.0),
            },
            // Fed only with the exceptions that match.
            Rule::Exception(_) => true,
        };
        if !holds {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        let sustain = match &self.rule {
            Rule::When(c) => c.sustain.unwrap_or_default(),
            Rule::GcHeapGrowth(_) | Rule::Exception(_) => Duration::ZERO,
        };
        let cooled = self
            .last_fired
            .is_none_or(|t| now.duration_since(t) >= cooldown);
        if now.duration_since(since) >= sustain && cooled {
            self.last_fired = Some(now);
            self.since = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn when(t: &str) -> Condition {
        match parse_when(t).unwrap() {
            Rule::When(c) => c,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn parses_and_shows_conditions() {
        let c = when("System.Runtime/gc-heap-size > 500MB");
        assert_eq!(
            (c.provider.as_str(), c.counter.as_str()),
            ("System.Runtime", "gc-heap-size")
        );
        assert_eq!(
            (c.op, c.threshold, c.unit),
            (Op::Gt, 500.0 * 1048576.0, Unit::Bytes)
        );
        assert_eq!(
            Rule::When(c).to_string(),
            "System.Runtime/gc-heap-size > 500.00 MB"
        );
        let c = when("cpu-usage >= 80% for 10s");
        assert_eq!(c.provider, DEFAULT_PROVIDER);
        assert_eq!((c.op, c.threshold, c.unit), (Op::Ge, 80.0, Unit::Percent));
        assert_eq!(c.sustain, Some(Duration::from_secs(10)));
        assert_eq!(
            Rule::When(c).to_string(),
            "System.Runtime/cpu-usage >= 80% for 10s"
        );
        let c = when("Microsoft.AspNetCore.Hosting/current-requests>200");
        assert_eq!(c.provider, "Microsoft.AspNetCore.Hosting");
        assert_eq!((c.threshold, c.unit), (200.0, Unit::Plain));
        for bad in [
            "cpu-usage",
            "> 5",
            "x > y",
            "x > 5 parsecs",
            "x > 5 for ever",
            "/x > 1",
        ] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_compare_in_bytes() {
        assert_eq!(normalize(2.0, "MB", Unit::Bytes), 2.0 * 1048576.0);
        assert_eq!(normalize(2.0, "By", Unit::Bytes), 2.0);
        assert_eq!(normalize(2.0, "MB", Unit::Plain), 2.0);
    }

    #[test]
    fn fires_once_when_held_long_enough_then_cools_down() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let cool = Duration::from_secs(5);
        let mut a = Armed::new(parse_when("x > 10 for 2s").unwrap());
        assert!(!a.observe(11.0, s(0), cool));
        assert!(!a.observe(11.0, s(1), cool));
        assert!(!a.observe(9.0, s(2), cool), "a dip restarts the stretch");
        assert!(!a.observe(11.0, s(3), cool));
        assert!(a.observe(11.0, s(5), cool));
        assert!(!a.observe(11.0, s(6), cool));
        assert!(!a.observe(11.0, s(8), cool), "cooling down");
        assert!(a.observe(11.0, s(11), cool));

        let mut g = Armed::new(Rule::GcHeapGrowth(50.0));
        assert!(!g.observe(100.0, s(0), cool));
        assert!(!g.observe(149.0, s(1), cool));
        assert!(g.observe(150.0, s(2), cool));
    }
}
