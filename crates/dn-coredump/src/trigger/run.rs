//! Waiting for a condition, then dumping: the counters come from `dn-counters`' session
//! ([`dn_counters::watch::Watch`], the one `dn-counters monitor` runs), so the target only
//! publishes its counters once a second; nothing stops or slows it until a rule fires.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use dn_counters::plan::MetricsLimits;
use dn_counters::spec::ProviderSpec;
use dn_counters::watch::{ChildOutput, Msg, TargetSpec, Watch, WatchOptions};
use serde::Serialize;

use super::exceptions::{matches, ExceptionWatch};
use super::rule::{normalize, Armed, Rule};
use crate::{collect, CollectOptions, CollectSummary, DumpType};

/// How the waiting ends when nothing fired in time.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("no condition held within {0:?}; no dump taken")]
    MaxWaitExpired(Duration),
    #[error("the target's counters session ended before a dump was taken{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    SessionEnded(Option<String>),
}

impl TriggerError {
    /// 3 for an expired `--max-wait` (distinct from 1, a failure).
    pub fn exit_code(&self) -> u8 {
        match self {
            TriggerError::MaxWaitExpired(_) => 3,
            TriggerError::SessionEnded(_) => 1,
        }
    }
}

pub struct TriggerOptions {
    /// A running process, or a command to start (and end when done).
    pub target: TargetSpec,
    pub rules: Vec<Rule>,
    /// Dumps to take before returning.
    pub count: u32,
    pub cooldown: Duration,
    pub max_wait: Option<Duration>,
    pub dump_type: DumpType,
    pub copy: Option<crate::CopyMode>,
    pub max_buffer: Option<u64>,
    pub gc_check: bool,
    /// `-o`: the file name (numbered `.1`, `.2`… when several dumps are asked for).
    pub output: Option<PathBuf>,
}

/// One firing: what held, the value that made it hold, and the dump it took.
#[derive(Debug, Clone, Serialize)]
pub struct Firing {
    pub time: String,
    pub condition: String,
    pub value: f64,
    pub value_text: String,
    pub file: PathBuf,
    pub dump: CollectSummary,
}

impl Firing {
    pub fn line(&self) -> String {
        format!(
            "{}  {}  (value {})  -> {}  (target stopped {:.0} ms)",
            self.time,
            self.condition,
            self.value_text,
            self.file.display(),
            self.dump.target_stopped_ms
        )
    }
}

/// The providers and counters the rules need, as `dn-counters` specs.
fn specs_of(rules: &[Rule]) -> Vec<ProviderSpec> {
    let mut by_provider: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in rules {
        let Some((p, c)) = r.counter() else { continue };
        by_provider.entry(p).or_default().insert(c.to_string());
    }
    by_provider
        .into_iter()
        .map(|(p, counters)| ProviderSpec {
            name: p.to_string(),
            counters: Some(counters),
            event_counters_only: false,
        })
        .collect()
}

fn output_for(opts: &TriggerOptions, k: u32) -> PathBuf {
    match &opts.output {
        Some(p) if opts.count > 1 => PathBuf::from(format!("{}.{k}", p.display())),
        Some(p) => p.clone(),
        None => {
            let base = crate::cli::default_output_name();
            PathBuf::from(format!("{}_{k}", base.display()))
        }
    }
}

fn fire(
    opts: &TriggerOptions,
    pid: i32,
    rule: &Rule,
    value: f64,
    value_text: String,
    k: u32,
) -> anyhow::Result<Firing> {
    let mut c = CollectOptions::new(pid, output_for(opts, k));
    c.dump_type = opts.dump_type;
    c.copy = opts.copy;
    c.max_buffer = opts.max_buffer;
    c.gc_check = opts.gc_check;
    let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let dump = collect(c)?;
    Ok(Firing {
        time,
        condition: rule.to_string(),
        value,
        value_text,
        file: dump.path.clone(),
        dump,
    })
}

/// How long one turn of the loop waits for samples at most.
const TURN: Duration = Duration::from_millis(50);

/// Waits for the rules and dumps each time one fires; `on_fire` sees every firing as it
/// happens. Returns after `count` dumps.
pub fn run(opts: &TriggerOptions, on_fire: &mut dyn FnMut(&Firing)) -> anyhow::Result<Vec<Firing>> {
    let mut specs = specs_of(&opts.rules);
    let launch = matches!(opts.target, TargetSpec::Command(_));
    if launch && specs.is_empty() {
        // The session is what starts the command; it needs something to ask for.
        specs.push(ProviderSpec::all(super::rule::DEFAULT_PROVIDER));
    }
    let watch = match specs.is_empty() {
        true => None,
        false => {
            let watch_opts = WatchOptions {
                specs,
                refresh_secs: 1,
                limits: MetricsLimits::default(),
                child_output: ChildOutput::Stderr,
                resume_runtime: true,
                percentiles: Vec::new(),
            };
            Some(Watch::start(&opts.target, &watch_opts)?)
        }
    };
    let pid = match (&watch, &opts.target) {
        (Some(w), _) => w.pid,
        (None, TargetSpec::Pid(p)) => *p,
        (None, _) => anyhow::bail!("no process to watch"),
    };
    let wants_exceptions = opts.rules.iter().any(|r| matches!(r, Rule::Exception(_)));
    let thrown = match wants_exceptions {
        true => Some(ExceptionWatch::start(pid)?),
        false => None,
    };
    let mut armed: Vec<Armed> = opts.rules.iter().cloned().map(Armed::new).collect();
    let deadline = opts.max_wait.map(|d| Instant::now() + d);
    let mut fired: Vec<Firing> = Vec::new();
    let want = opts.count as usize;
    while fired.len() < want {
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => left.min(TURN),
                None => {
                    return Err(
                        TriggerError::MaxWaitExpired(opts.max_wait.unwrap_or_default()).into(),
                    )
                }
            },
            None => TURN,
        };
        if let Some(x) = &thrown {
            while let Ok(t) = x.rx.try_recv() {
                let now = Instant::now();
                for a in armed.iter_mut() {
                    let Rule::Exception(w) = &a.rule else {
                        continue;
                    };
                    if fired.len() >= want || !matches(w.as_deref(), &t.type_name) {
                        continue;
                    }
                    if a.observe(1.0, now, opts.cooldown) {
                        let text = format!("{}: {}", t.type_name, t.message);
                        let f = fire(opts, pid, &a.rule, 1.0, text, fired.len() as u32 + 1)?;
                        on_fire(&f);
                        fired.push(f);
                    }
                }
            }
        }
        let Some(w) = &watch else {
            std::thread::sleep(wait);
            continue;
        };
        let samples = match w.rx.recv_timeout(wait) {
            Ok(Msg::Samples(s)) => s,
            Ok(Msg::Ended(reason)) => return Err(TriggerError::SessionEnded(reason).into()),
            Ok(_) | Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TriggerError::SessionEnded(None).into())
            }
        };
        let now = Instant::now();
        for s in &samples {
            for a in armed.iter_mut() {
                if a.rule.counter() != Some((s.provider.as_str(), s.name.as_str())) {
                    continue;
                }
                let value = normalize(s.value, &s.unit, a.rule.unit());
                if fired.len() >= want || !a.observe(value, now, opts.cooldown) {
                    continue;
                }
                let text = a.rule.unit().show(value);
                let f = fire(opts, pid, &a.rule, value, text, fired.len() as u32 + 1)?;
                on_fire(&f);
                fired.push(f);
            }
        }
    }
    drop(watch);
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::rule::parse_when;

    #[test]
    fn rules_become_one_spec_per_provider() {
        let rules = vec![
            parse_when("gc-heap-size > 1MB").unwrap(),
            parse_when("System.Runtime/cpu-usage > 5").unwrap(),
            parse_when("A.B/c > 1").unwrap(),
            Rule::GcHeapGrowth(10.0),
            Rule::Exception(None),
        ];
        let specs = specs_of(&rules);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "A.B");
        let rt = specs[1].counters.as_ref().unwrap();
        assert_eq!(rt.len(), 2);
        assert!(rt.contains("gc-heap-size") && rt.contains("cpu-usage"));
    }
}
