//! `dn-dump collect` front end: arguments, progress bar, summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::trigger::{self, Rule, TriggerOptions};
use crate::{collect, CollectOptions, CollectSummary, CopyMode, DumpType, GcCheck, Tracking};
use dn_counters::watch::TargetSpec;

#[derive(clap::Args, Debug, Clone)]
pub struct CollectArgs {
    /// Process id of the target.
    #[arg(short = 'p', long, visible_alias = "process-id",
          required_unless_present_any = ["command", "name"])]
    pub pid: Option<i32>,

    /// The target by name (as `dn-ps` lists it: the entry assembly or the process name); it
    /// must match exactly one .NET process.
    #[arg(short = 'n', long, value_name = "NAME", conflicts_with_all = ["pid", "command"])]
    pub name: Option<String>,

    /// With conditions: start this command (a .NET app, suspended until the counters session
    /// runs) and dump it when a condition holds; it is ended when the command exits.
    #[arg(last = true, value_name = "COMMAND", conflicts_with = "pid")]
    pub command: Vec<String>,

    /// Output file [default: ./core_YYYYMMDD_HHMMSS, local time]; never overwritten.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,

    /// What the dump holds (see docs/dump-types.md); any letter case (`Full`, `heap`).
    #[arg(long = "type", value_enum, ignore_case = true, default_value_t = DumpType::Full)]
    pub dump_type: DumpType,

    /// How the memory gets into the file: `precopy` writes it while the target runs and copies
    /// again during a short stop only what it wrote meanwhile; `staged` copies it into memory
    /// while the target is stopped and writes it after; `streamed` writes it while the target
    /// is stopped [default: precopy; staged when --max-buffer is given, streamed for 0].
    #[arg(long, value_enum, value_name = "MODE")]
    pub copy: Option<CopyMode>,

    /// Staged: most memory to copy the target into while it is stopped (e.g. 512MB; 0 streams
    /// everything to the file while it waits) [default: half of MemAvailable].
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub max_buffer: Option<u64>,

    /// Do not ask the runtime whether a GC is under way (by default a dump that overlapped a GC
    /// is taken again, up to 5 times).
    #[arg(long)]
    pub no_gc_check: bool,

    /// Wait until this condition over the target's counters holds, then dump:
    /// `[PROVIDER/]COUNTER OP VALUE[UNIT] [for DURATION]`, e.g. `gc-heap-size > 500MB`,
    /// `cpu-usage > 80 for 10s`, `exception-count > 100` (per 1 s interval). Repeatable.
    #[arg(long = "when", value_name = "EXPR", value_parser = crate::trigger::parse_when)]
    pub when: Vec<Rule>,

    /// Dump when the GC heap (System.Runtime/gc-heap-size) grew by PCT percent over its first value.
    #[arg(long, value_name = "PCT")]
    pub on_gc_heap_growth: Option<f64>,

    /// Dump at a first-chance exception of TYPE (full name, or without its namespace), or of any
    /// type when none is given, as the runtime's exception events report them.
    #[arg(long, value_name = "TYPE", num_args = 0..=1, default_missing_value = "")]
    pub on_exception: Option<String>,

    /// With conditions: how many dumps to take before exiting.
    #[arg(long = "count", value_name = "COUNT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,

    /// With conditions: the least time between two dumps of the same condition.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::units::parse_duration)]
    pub cooldown: Duration,

    /// With conditions: give up after this long without a dump (exit status 3).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub max_wait: Option<Duration>,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl CollectArgs {
    /// `--max-buffer` sizes the staging buffer: with another mode it would mean nothing.
    fn check_copy(&self) -> anyhow::Result<()> {
        match (self.copy, self.max_buffer) {
            (Some(CopyMode::Precopy), Some(_)) => anyhow::bail!(
                "--max-buffer sizes the staging buffer of --copy staged; --copy precopy uses none"
            ),
            (Some(CopyMode::Streamed), Some(b)) if b > 0 => anyhow::bail!(
                "--max-buffer sizes the staging buffer of --copy staged; --copy streamed uses none"
            ),
            _ => Ok(()),
        }
    }

    /// The pid of a plain collection (a command is only started for conditions).
    pub fn pid_or_error(&self) -> anyhow::Result<i32> {
        match self.pid {
            Some(pid) => Ok(pid),
            None => anyhow::bail!(
                "a command is started only to wait for a condition (--when, --on-exception, --on-gc-heap-growth); give -p PID to dump a running process"
            ),
        }
    }
}

pub fn default_output_name() -> PathBuf {
    PathBuf::from(format!(
        "core_{}",
        chrono::Local::now().format("%Y%m%d_%H%M%S")
    ))
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({binary_bytes_per_sec})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

pub fn human_summary(s: &CollectSummary) -> String {
    let copied = if s.copy == CopyMode::Precopy {
        format!(
            "{:.1} MiB pre-copied while it ran, {:.1} MiB read again and {:.1} MiB written while stopped",
            mib(s.precopied_bytes),
            mib(s.reread_bytes),
            mib(s.streamed_bytes)
        )
    } else {
        format!(
            "{:.1} MiB copied to memory, {:.1} MiB written while stopped",
            mib(s.staged_bytes),
            mib(s.streamed_bytes)
        )
    };
    format!(
        "Complete: {} ({:.1} MiB, {:.1} MiB on disk), {} threads, {} regions in {:.2} s; target stopped for {:.0} ms ({copied})",
        s.path.display(),
        mib(s.bytes_written),
        mib(s.bytes_on_disk),
        s.threads,
        s.regions,
        s.seconds,
        s.target_stopped_ms,
    )
}

/// Waits for the conditions, printing one line (or JSON document) per dump.
fn run_triggers(args: CollectArgs) -> anyhow::Result<()> {
    let mut rules = args.when.clone();
    if let Some(p) = args.on_gc_heap_growth {
        if !(p.is_finite() && p > 0.0) {
            anyhow::bail!("--on-gc-heap-growth takes a percentage above 0, not {p}");
        }
        rules.push(Rule::GcHeapGrowth(p));
    }
    if let Some(t) = &args.on_exception {
        rules.push(Rule::Exception((!t.is_empty()).then(|| t.clone())));
    }
    let target = match args.pid {
        Some(pid) => TargetSpec::Pid(pid),
        None => TargetSpec::Command(args.command.clone()),
    };
    let opts = TriggerOptions {
        target,
        rules,
        count: args.count,
        cooldown: args.cooldown,
        max_wait: args.max_wait,
        dump_type: args.dump_type,
        copy: args.copy,
        max_buffer: args.max_buffer,
        gc_check: !args.no_gc_check,
        output: args.output.clone(),
    };
    if !args.json {
        let list: Vec<String> = opts.rules.iter().map(|r| r.to_string()).collect();
        let who = match args.pid {
            Some(pid) => format!("process {pid}"),
            None => format!("'{}'", args.command.join(" ")),
        };
        eprintln!(
            "Waiting for {who}: {} ({} dump{})",
            list.join("; "),
            args.count,
            if args.count == 1 { "" } else { "s" }
        );
    }
    let json = args.json;
    trigger::run(&opts, &mut |f| {
        if json {
            if let Ok(text) = serde_json::to_string(f) {
                println!("{text}");
            }
        } else {
            println!("{}", f.line());
        }
    })?;
    Ok(())
}

/// Runs one collection as the command line asked.
pub fn run(mut args: CollectArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.name {
        args.pid = Some(dn_counters::watch::resolve_name(name)?);
    }
    args.check_copy()?;
    if !args.when.is_empty() || args.on_gc_heap_growth.is_some() || args.on_exception.is_some() {
        return run_triggers(args);
    }
    let pid = args.pid_or_error()?;
    let output = args.output.clone().unwrap_or_else(default_output_name);
    let output = std::path::absolute(&output).unwrap_or(output);
    let mut opts = CollectOptions::new(pid, &output);
    opts.dump_type = args.dump_type;
    opts.copy = args.copy;
    opts.max_buffer = args.max_buffer;
    opts.gc_check = !args.no_gc_check;

    let interactive = std::io::stderr().is_terminal();
    if !args.json {
        eprintln!(
            "Writing {} of process {} to {}",
            args.dump_type.describe(),
            pid,
            output.display()
        );
    }
    let bar = interactive.then(progress_bar);
    if let Some(bar) = bar.clone() {
        opts.progress = Some(Box::new(move |done, total| {
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.set_position(done);
        }));
    }
    let result = collect(opts);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result.with_context(|| format!("dump of process {} failed", pid))?;
    if !summary.runtime_found {
        eprintln!("note: no .NET runtime (libcoreclr.so) is mapped in process {}; the dump holds native state only", pid);
    }
    if summary.gc_retries > 0 && !args.json {
        eprintln!(
            "note: a GC was under way during {} tr{}; the target was resumed and the dump taken again",
            summary.gc_retries,
            if summary.gc_retries == 1 { "y" } else { "ies" }
        );
    }
    if summary.tracking == Some(Tracking::Compare) && !args.json {
        eprintln!("note: this kernel keeps no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY); every resident page was read again during the stop and compared with the pre-copy");
    }
    if !args.json {
        for w in &summary.warnings {
            eprintln!("warning: {w}");
        }
    }
    if summary.gc_check == GcCheck::InGc {
        eprintln!("warning: a GC was under way during every try; the heap in this dump may not be walkable");
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!("{}", human_summary(&summary));
    }
    Ok(())
}
