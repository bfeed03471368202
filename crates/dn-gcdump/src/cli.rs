//! `dn-dump gcdump collect|report`: arguments and output.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::collect::{collect, CollectOptions, Target};
use crate::report::{render, report_of};
use dn_core::eventpipe::BufferingMode;

#[derive(Subcommand, Debug)]
pub enum GcdumpCmd {
    /// Take a heap snapshot of a live process over its diagnostics socket (no ptrace): its
    /// runtime runs one blocking gen2 GC and streams the object graph.
    Collect(CollectArgs),
    /// Per-type count and size of a .gcdump file (ours or dotnet-gcdump's), largest first.
    Report(ReportArgs),
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    /// The process id.
    #[arg(short = 'p', long = "process-id", conflicts_with_all = ["name", "diagnostic_port"])]
    pub process_id: Option<i32>,
    /// The process name (as dn-dump ps shows it).
    #[arg(short = 'n', long, conflicts_with = "diagnostic_port")]
    pub name: Option<String>,
    /// The runtime's diagnostics socket (PATH or PATH,connect).
    #[arg(long)]
    pub diagnostic_port: Option<PathBuf>,
    /// Output file (default NAME_PID_YYYYMMDD_HHMMSS.gcdump; .gcdump appended when missing).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Give up after this many seconds (the session is stopped, no file is written).
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Keep a snapshot even when events were lost (it is then incomplete, and says so).
    #[arg(long)]
    pub allow_loss: bool,
    /// The session buffer of the first attempt in MB; after a loss the snapshot is retried with
    /// 4x the buffer, twice at most (up to 8192 MB). .NET 11 and later are asked for a lossless
    /// (blocking) session instead.
    #[arg(long, default_value_t = crate::collect::DEFAULT_BUFFER_MB, value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub buffer_mb: u32,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The .gcdump file.
    pub file: PathBuf,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `gcdump` subcommand.
pub fn run(cmd: GcdumpCmd) -> Result<()> {
    match cmd {
        GcdumpCmd::Collect(a) => run_collect(a),
        GcdumpCmd::Report(a) => run_report(a),
    }
}

fn run_collect(a: CollectArgs) -> Result<()> {
    let target = match (a.process_id, a.name, a.diagnostic_port) {
        (Some(p), None, None) => Target::Pid(p),
        (None, Some(n), None) => Target::Name(n),
        (None, None, Some(d)) => Target::Port(d),
        _ => bail!("say which process to snapshot: -p PID, -n NAME or --diagnostic-port PATH"),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while we are stopping exits at once (status 130).
        signal_hook::flag::register_conditional_shutdown(sig, 130, interrupted.clone())?;
        signal_hook::flag::register(sig, interrupted.clone())?;
    }
    let opts = CollectOptions {
        target,
        output: a.output,
        timeout: Duration::from_secs(a.timeout.max(1)),
        allow_loss: a.allow_loss,
        buffer_mb: a.buffer_mb,
        buffering: BufferingMode::Block,
        verbose: true,
    };
    let s = collect(&opts, &interrupted)?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    }
    eprintln!(
        "Wrote {}: {} objects, {} edges, {} types, {} heap bytes, {} file bytes, {} events lost ({} session, {} MB buffer, {} attempt(s)), in {:.2} s",
        s.path.display(),
        s.objects,
        s.edges,
        s.types,
        s.heap_bytes,
        s.file_bytes,
        s.losses.events,
        match s.buffering {
            BufferingMode::Block => "lossless",
            BufferingMode::Drop => "lossy",
        },
        s.buffer_mb,
        s.attempts,
        s.seconds
    );
    Ok(())
}

fn run_report(a: ReportArgs) -> Result<()> {
    let bytes = crate::map::open(&a.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.file.display()))?;
    let (snap, hist) = crate::read::read_histogram(&bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.file.display()))?;
    let r = report_of(&snap, &hist);
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print!("{}", render(&r));
    }
    Ok(())
}
