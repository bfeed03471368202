//! Command-line arguments (clap), shared by the `dn-counters` binary and the tests.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::collect::Format;

/// Watch a live .NET process's counters (EventCounters and System.Diagnostics.Metrics) over
/// EventPipe: on screen, into a file, or as a Prometheus endpoint.
#[derive(Parser, Debug)]
#[command(name = "dn-counters", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Show the counters live, refreshed in place (plain snapshots when stdout is not a terminal).
    Monitor(MonitorArgs),
    /// Write every sample to a file or stdout as CSV, JSON or JSON Lines.
    Collect(CollectArgs),
    /// Serve the latest values as Prometheus/OpenMetrics text at /metrics.
    Serve(ServeArgs),
    /// List the counters the runtime itself publishes.
    List(ListArgs),
    /// List the .NET processes that can be watched.
    Ps(PsArgs),
}

/// Which process, and what to watch in it.
#[derive(Args, Debug, Clone)]
pub struct SessionArgs {
    /// The process to watch.
    #[arg(short = 'p', long = "process-id", conflicts_with_all = ["name", "diagnostic_port"])]
    pub process_id: Option<i32>,
    /// The process to watch, by name (must match exactly one process).
    #[arg(short = 'n', long, conflicts_with = "diagnostic_port")]
    pub name: Option<String>,
    /// Listen on this socket path for a runtime started with DOTNET_DiagnosticPorts=PATH
    /// (or `PATH,connect` to connect to a runtime's own listening socket).
    #[arg(long = "diagnostic-port", visible_alias = "dport")]
    pub diagnostic_port: Option<String>,
    /// Whole seconds between updates (at least 1).
    #[arg(long = "refresh-interval", default_value_t = 1, value_parser = parse_interval)]
    pub refresh_interval: u32,
    /// Providers and counters: `System.Runtime`, `Provider[a,b]`, `EventCounters\Provider`, `*`
    /// (every counter), comma-separated. Default: System.Runtime. Names not published within
    /// three intervals are warned about, with the closest known name.
    #[arg(long)]
    pub counters: Option<String>,
    /// Stop after this long: seconds (`30`), `90s`, `5m`, `1h`, or `dd:hh:mm:ss`.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Histogram series the target tracks at most.
    #[arg(long = "max-histograms", default_value_t = 10)]
    pub max_histograms: u32,
    /// Time series the target tracks at most.
    #[arg(long = "max-time-series", default_value_t = 1000)]
    pub max_time_series: u32,
    /// With `-- COMMAND` or `--diagnostic-port`: `false` leaves the runtime suspended at startup
    /// (for another tool to resume) instead of resuming it once the session runs.
    #[arg(long = "resume-runtime", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub resume_runtime: bool,
    /// Histogram percentiles to show, comma-separated (the runtime computes 50, 95 and 99).
    #[arg(long, value_delimiter = ',', default_value = "50,95,99", value_parser = parse_percentile)]
    pub percentiles: Vec<f64>,
    /// Start this command and watch it from startup: `-- COMMAND ARGS...`.
    #[arg(last = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Show exact values (no byte units, no digit grouping).
    #[arg(long)]
    pub raw: bool,
    /// Add a `Last Delta` column: the change of each value since the previous refresh.
    #[arg(long = "showDeltas", visible_alias = "show-deltas")]
    pub show_deltas: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CollectArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Output file, `-` for stdout. Default: counter.<format>. An existing file is replaced
    /// (as dotnet-counters does) only once the session runs and the first sample is written, in
    /// one atomic rename; a run that fails or gets no sample leaves it exactly as it was.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Every .NET process this user can reach (containers included), one /metrics for all:
    /// series labelled pid, process, runtime_version (and container_id inside a container).
    #[arg(long, conflicts_with_all = ["process_id", "name", "diagnostic_port", "command"])]
    pub all: bool,
    /// With --all: seconds between looks for processes that started or exited.
    #[arg(long = "discover-interval", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub discover_interval: u32,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Only the counters of this runtime: 3.1, 8, 9, 10 or 11.
    #[arg(short = 'r', long = "runtime-version")]
    pub runtime_version: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    #[arg(long)]
    pub json: bool,
}

/// A command-line error as one line on stderr (`dn-counters: ...`), exit code 2; `--help` and
/// `--version` print as usual.
pub fn usage_error(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("dn-counters: {first} (see --help)");
    std::process::ExitCode::from(2)
}

/// A percentile in (0, 100].
fn parse_percentile(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("a percentile is a number in (0, 100], not '{s}'")),
    }
}

/// Whole seconds between updates, at least 1 (as dotnet-counters).
fn parse_interval(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=86400).contains(&n) => Ok(n),
        _ => Err(format!(
            "the refresh interval is whole seconds from 1 to 86400, not '{s}'"
        )),
    }
}

/// `30`, `1.5`, `90s`, `5m`, `2h`, `hh:mm:ss`, `dd:hh:mm:ss`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration (use seconds, 90s, 5m, 1h or dd:hh:mm:ss)");
    let s = s.trim();
    if s.contains(':') {
        let parts: Vec<f64> = s
            .split(':')
            .map(|p| p.parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if parts.len() > 4 || parts.iter().any(|p| *p < 0.0) {
            return Err(bad());
        }
        let weights = [86400.0, 3600.0, 60.0, 1.0];
        let secs: f64 = parts
            .iter()
            .rev()
            .zip(weights.iter().rev())
            .map(|(p, w)| p * w)
            .sum();
        return Ok(Duration::from_secs_f64(secs));
    }
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1.0),
        Some((i, 'm')) => (&s[..i], 60.0),
        Some((i, 'h')) => (&s[..i], 3600.0),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("00:00:01:05").unwrap(),
            Duration::from_secs(65)
        );
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn cli_parses_a_command_after_dashes() {
        let c = Cli::try_parse_from([
            "dn-counters",
            "monitor",
            "--refresh-interval",
            "2",
            "--",
            "app",
            "--flag",
        ])
        .unwrap();
        let Cmd::Monitor(m) = c.command else {
            panic!("monitor expected")
        };
        assert_eq!(m.session.command, ["app", "--flag"]);
        assert_eq!(m.session.refresh_interval, 2);
        assert!(Cli::try_parse_from(["dn-counters", "monitor", "-p", "1", "-n", "x"]).is_err());
    }
}
