//! The subcommands: attach, run the event loop, hand samples to a consumer (screen, writer,
//! endpoint), and end cleanly on q, Ctrl-C, SIGTERM, --duration, target exit or error.
//!
//! One module per subcommand: [`monitor`], [`collect`], [`serve`] and [`serve_all`] (`serve
//! --all`), [`list`] (also `ps`).

mod collect;
mod list;
mod monitor;
mod serve;
mod serve_all;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::args::SessionArgs;
use crate::names::NameCheck;
use crate::plan::MetricsLimits;
use crate::prefer::Preference;
use crate::sample::Sample;
use crate::spec::{parse_counters, ProviderSpec, DEFAULT_PROVIDER};
use crate::watch::{describe_status, ChildOutput, Msg, TargetSpec, Watch, WatchOptions};

/// Why the event loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Quit,
    Signal,
    DurationElapsed,
    /// The target went away; the text describes how.
    TargetExited(String),
    /// The stream ended while the process lives on (someone stopped the session).
    SessionEnded(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Quit,
}

/// What the event loop feeds.
pub trait Consumer {
    fn samples(&mut self, samples: Vec<Sample>, switched_to_meter: &[String]) -> Result<Control>;
    fn warning(&mut self, text: String);
    /// Called about every 50 ms: keys, repaint.
    fn tick(&mut self) -> Result<Control> {
        Ok(Control::Continue)
    }
}

const TICK: Duration = Duration::from_millis(50);

pub(crate) fn target_of(a: &SessionArgs) -> Result<TargetSpec> {
    let given = [
        a.process_id.is_some(),
        a.name.is_some(),
        a.diagnostic_port.is_some(),
        !a.command.is_empty(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given > 1 {
        bail!("give only one of -p PID, -n NAME, --diagnostic-port PATH, or -- COMMAND");
    }
    Ok(if let Some(p) = a.process_id {
        TargetSpec::Pid(p)
    } else if let Some(n) = &a.name {
        TargetSpec::Name(n.clone())
    } else if let Some(d) = &a.diagnostic_port {
        TargetSpec::DiagnosticPort(d.clone())
    } else if !a.command.is_empty() {
        TargetSpec::Command(a.command.clone())
    } else {
        bail!("say which process to watch: -p PID, -n NAME, --diagnostic-port PATH, or -- COMMAND (dn-counters ps lists processes)")
    })
}

fn specs_of(a: &SessionArgs) -> Result<Vec<ProviderSpec>> {
    match &a.counters {
        Some(text) => Ok(parse_counters(text)?),
        None => Ok(vec![ProviderSpec::all(DEFAULT_PROVIDER)]),
    }
}

pub(crate) fn options(a: &SessionArgs, child_output: ChildOutput) -> Result<WatchOptions> {
    Ok(WatchOptions {
        specs: specs_of(a)?,
        refresh_secs: a.refresh_interval,
        limits: MetricsLimits {
            max_histograms: a.max_histograms,
            max_time_series: a.max_time_series,
        },
        child_output,
        resume_runtime: a.resume_runtime,
        percentiles: a.percentiles.clone(),
    })
}

/// SIGINT/SIGTERM/SIGHUP set the flag; a second SIGINT while we are still stopping exits at once.
pub(crate) fn stop_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// Runs the event loop until something ends it, then stops the session.
pub fn event_loop(
    watch: &mut Watch,
    refresh: Duration,
    duration: Option<Duration>,
    stop: &AtomicBool,
    consumer: &mut dyn Consumer,
) -> Result<Outcome> {
    let started = Instant::now();
    let mut prefer = Preference::new(&watch.plan.meter_providers, refresh);
    let mut names = NameCheck::new(&watch.specs, refresh);
    let outcome = loop {
        if stop.load(Ordering::Relaxed) {
            break Outcome::Signal;
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break Outcome::DurationElapsed;
        }
        if let Some(status) = watch.child_exit() {
            break child_exited(watch.pid, status);
        }
        match watch.rx.recv_timeout(TICK) {
            Ok(Msg::Samples(s)) => {
                for x in &s {
                    names.observe(&x.provider, &x.name);
                }
                let v = prefer.samples(s);
                if consumer.samples(v.emit, &v.switched_to_meter)? == Control::Quit {
                    break Outcome::Quit;
                }
            }
            Ok(Msg::IntervalEnd) => {
                let held = prefer.interval_end();
                if consumer.samples(held, &[])? == Control::Quit {
                    break Outcome::Quit;
                }
            }
            Ok(Msg::Warning(w)) => consumer.warning(w),
            Ok(Msg::Published(p)) => {
                for (provider, name) in p {
                    names.observe(&provider, &name);
                }
            }
            Ok(Msg::Ended(err)) => break ended(watch, err),
            Err(RecvTimeoutError::Timeout) => {
                let released = prefer.tick();
                if !released.is_empty() && consumer.samples(released, &[])? == Control::Quit {
                    break Outcome::Quit;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break ended(watch, None),
        }
        for w in names.due() {
            consumer.warning(w);
        }
        if consumer.tick()? == Control::Quit {
            break Outcome::Quit;
        }
    };
    watch.stop();
    Ok(outcome)
}

fn child_exited(pid: i32, status: std::process::ExitStatus) -> Outcome {
    Outcome::TargetExited(format!(
        "Process {pid} exited ({}).",
        describe_status(status)
    ))
}

/// The stream ended without us asking: the target exited, or its session was ended.
fn ended(watch: &mut Watch, err: Option<String>) -> Outcome {
    if watch.has_child() {
        // Give the child a moment to be reaped so its status can be reported.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(st) = watch.child_exit() {
                return child_exited(watch.pid, st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // A runtime shutting down ends its sessions first and exits a moment later.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !process_gone(watch.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if process_gone(watch.pid) {
        Outcome::TargetExited(format!("Process {} exited.", watch.pid))
    } else {
        Outcome::SessionEnded(match err {
            Some(e) => format!("The event stream of process {} broke: {e}", watch.pid),
            None => format!(
                "Process {} ended the counters session (it may be shutting down).",
                watch.pid
            ),
        })
    }
}

/// True when the pid no longer runs (gone, or a zombie waiting to be reaped).
pub fn process_gone(pid: i32) -> bool {
    dn_core::ipc::discovery::proc_facts(pid).is_none_or(|f| f.zombie)
}

pub(crate) fn report(outcome: &Outcome) {
    if let Outcome::TargetExited(t) | Outcome::SessionEnded(t) = outcome {
        // The terminal may be gone already: nothing to do about a failed write.
        let _ = writeln!(io::stdout(), "{t}");
    }
}

/// Runs the parsed command line.
pub fn run(cli: &crate::args::Cli) -> Result<()> {
    use crate::args::Cmd;
    match &cli.command {
        Cmd::Monitor(a) => monitor::monitor(a),
        Cmd::Collect(a) => collect::collect(a),
        Cmd::Serve(a) if a.all => serve_all::serve_all(a),
        Cmd::Serve(a) => serve::serve(a),
        Cmd::List(a) => list::list(a),
        Cmd::Ps(a) => list::ps(a),
    }
}
