//! `gcdump collect`: one EventPipe session that makes the runtime walk its heap inside an
//! induced blocking gen2 GC, streamed into the graph, then written as a `.gcdump`. The session
//! is stopped on every path: success, timeout, Ctrl-C, the target leaving, our own errors
//! (the [`Session`] guard stops it on drop).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dn_core::eventpipe::{BufferingMode, Chunk, Provider, Session, SessionConfig, SharedChannel};
use dn_core::ipc::client::{DiagnosticsClient, Timeouts};
use dn_core::ipc::process::process_info;

use crate::builder::{Collector, Losses, Progress};
use crate::convert::to_snapshot;
use crate::events::{HEAP_SNAPSHOT_KEYWORDS, RUNTIME_PROVIDER};
use crate::snapshot::{Meta, Snapshot};
use crate::write::write_file_atomic;

/// Which process to snapshot.
#[derive(Clone, Debug)]
pub enum Target {
    Pid(i32),
    Name(String),
    /// A runtime's diagnostics socket (`PATH` or `PATH,connect`).
    Port(PathBuf),
}

/// How to collect.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    pub target: Target,
    pub output: Option<PathBuf>,
    pub timeout: Duration,
    pub allow_loss: bool,
    /// The first attempt's session buffer; retries after a loss ask for more.
    pub buffer_mb: u32,
    /// Block (lossless, .NET 11's CollectTracing6) where the runtime has it; Drop otherwise.
    pub buffering: BufferingMode,
    /// Progress lines on stderr.
    pub verbose: bool,
}

/// What a collection produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CollectSummary {
    pub path: PathBuf,
    pub pid: i32,
    pub objects: u64,
    pub edges: u64,
    pub types: u64,
    pub heap_bytes: u64,
    pub file_bytes: u64,
    pub losses: Losses,
    /// Sessions run (1, or more after retries with bigger buffers).
    pub attempts: u32,
    /// The last attempt's buffer.
    pub buffer_mb: u32,
    /// What the runtime agreed to: `block` (CollectTracing6) or `drop`.
    pub buffering: BufferingMode,
    /// The command that started the last session.
    pub start_command: &'static str,
    pub seconds: f64,
}

/// Session buffer: the whole walk is written before streaming starts on .NET 10 and older.
pub const DEFAULT_BUFFER_MB: u32 = 1024;
/// The largest buffer a retry asks for.
const MAX_BUFFER_MB: u32 = 8192;
/// Each retry after a loss multiplies the buffer by this.
const RETRY_FACTOR: u32 = 4;
/// Retries after the first attempt.
const MAX_RETRIES: u32 = 2;
/// How long the runtime gets to finish the stream (rundown included) once stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Collects a snapshot and writes it.
pub fn collect(opts: &CollectOptions, interrupted: &AtomicBool) -> Result<CollectSummary> {
    let started = Instant::now();
    let (client, pid) = connect(&opts.target, opts.timeout)?;
    let name = process_name(&client, pid);
    let client = client.with_timeouts(Timeouts {
        connect: Duration::from_secs(3),
        // The CollectTracing reply comes after the whole heap walk on .NET 10 and older; our
        // own deadline is checked while it waits.
        io: opts.timeout + Duration::from_secs(5),
    });
    let output = output_path(opts.output.as_deref(), &name, pid);
    eprintln!(
        "Collecting a heap snapshot of process {pid} ({name}): its runtime runs one blocking gen2 GC and streams the heap."
    );
    let channel: SharedChannel = Arc::new(client);
    let mut buffer_mb = opts.buffer_mb.clamp(1, MAX_BUFFER_MB);
    let mut attempts = 0u32;
    let (walked, losses) = loop {
        attempts += 1;
        let walked = walk_once(&channel, pid, buffer_mb, opts, interrupted)?;
        let losses = walked.losses;
        if !losses.any() || walked.buffering == BufferingMode::Block {
            break (walked, losses);
        }
        let bigger = buffer_mb.saturating_mul(RETRY_FACTOR).min(MAX_BUFFER_MB);
        if attempts > MAX_RETRIES || bigger == buffer_mb {
            break (walked, losses);
        }
        eprintln!(
            "The runtime lost events with a {buffer_mb} MB buffer ({}); retrying the snapshot with {bigger} MB.",
            loss_text(&losses)
        );
        drop(walked);
        buffer_mb = bigger;
    };
    let Walked {
        mut snap,
        buffering,
        command,
        ..
    } = walked;
    snap.meta.process_name = Some(name);
    if losses.any() {
        let text = loss_text(&losses);
        if !opts.allow_loss {
            bail!("{text} after {attempts} attempt(s), the last with a {buffer_mb} MB buffer; no file written (rerun, or pass --allow-loss to keep an incomplete snapshot)");
        }
        eprintln!("Warning: {text}; the snapshot is incomplete");
        snap.meta.collection_log = Some(text);
    }
    let file_bytes = write_file_atomic(&snap, &output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let objects = (0..snap.node_count() as u32)
        .filter(|&i| snap.is_object(i))
        .count() as u64;
    let heap_bytes = snap.total_size.max(0) as u64;
    Ok(CollectSummary {
        path: output,
        pid,
        objects,
        edges: snap.children.len() as u64,
        types: snap.types.len() as u64,
        heap_bytes,
        file_bytes,
        losses,
        attempts,
        buffer_mb,
        buffering,
        start_command: command,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One session's snapshot.
struct Walked {
    snap: Snapshot,
    losses: Losses,
    buffering: BufferingMode,
    command: &'static str,
}

/// One session: start it, wait for the walk's end, stop it, build the snapshot. `--timeout` counts
/// from the start of each attempt.
fn walk_once(
    channel: &SharedChannel,
    pid: i32,
    buffer_mb: u32,
    opts: &CollectOptions,
    interrupted: &AtomicBool,
) -> Result<Walked> {
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let (tx, rx) = mpsc::channel();
    let mut collector = Some(Collector::new(progress.clone()));
    let sink = move |chunk: Chunk<'_>| match chunk {
        Chunk::Data(bytes) => {
            if let Some(c) = collector.as_mut() {
                c.feed(bytes);
            }
        }
        Chunk::End(err) => {
            if let Some(c) = collector.take() {
                let _ = tx.send((c, err));
            }
        }
    };
    let mut config = SessionConfig::new(vec![Provider::new(
        RUNTIME_PROVIDER,
        HEAP_SNAPSHOT_KEYWORDS,
        5,
    )]);
    config.circular_buffer_mb = buffer_mb;
    config.request_rundown = true;
    // Heap events come from the GC, not from managed frames: stacks would only cost bytes.
    config.stackwalk = false;
    config.buffering = opts.buffering;
    let mut session = start(
        channel.clone(),
        config,
        sink,
        opts.timeout,
        started,
        interrupted,
    )
    .with_context(|| format!("cannot start the heap snapshot session in process {pid}"))?;
    let (buffering, command) = (session.buffering(), session.start_command());
    let outcome = wait(&session, &progress, opts, started, interrupted);
    // The stream closed by the runtime, not by our StopTracing: the process went away.
    let ended_by_target = session.has_ended() && !progress.complete.load(Ordering::Acquire);
    // Stop in every case; the rundown that follows names the modules.
    let stopped = session.stop(STOP_TIMEOUT);
    let (collector, stream_error) = rx
        .recv_timeout(Duration::from_secs(5))
        .context("the event stream did not end after the session was stopped")?;
    drop(session);
    outcome?;
    if let Some(e) = &collector.error {
        bail!("cannot read the event stream of process {pid}: {e}");
    }
    let lost_end = !collector.is_complete() && !ended_by_target && collector.losses().any();
    if !collector.is_complete() && !lost_end {
        let detail = stream_error.map(|e| format!(" ({e})")).unwrap_or_default();
        bail!(
            "the event stream of process {pid} ended before the heap walk finished{detail}: did the process exit?{}",
            stopped.err().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
    let mut losses = collector.losses();
    let meta = Meta {
        process_name: None,
        process_id: pid,
        time_ticks: now_ticks(),
        creation_tool: Some("dn-dump".into()),
        collection_log: None,
    };
    let (snap, balance) = to_snapshot(collector.into_heap(), meta).map_err(anyhow::Error::msg)?;
    losses.batches += u64::from(balance.missing_edges > 0 || balance.extra_edges > 0);
    Ok(Walked {
        snap,
        losses,
        buffering,
        command,
    })
}

/// Starts the session on a thread of its own: on .NET 10 and older the runtime answers only after
/// the whole heap walk, and Ctrl-C or the timeout must not wait for that. An abandoned start
/// ends with our process (closing the socket ends the session in the runtime), or, should the
/// reply still come, with the session's drop, which stops it.
fn start(
    channel: SharedChannel,
    config: SessionConfig,
    sink: impl FnMut(Chunk<'_>) + Send + 'static,
    timeout: Duration,
    started: Instant,
    interrupted: &AtomicBool,
) -> Result<Session> {
    let handle = std::thread::Builder::new()
        .name("gcdump-start".into())
        .spawn(move || Session::start(channel, &config, sink))?;
    while !handle.is_finished() {
        if interrupted.load(Ordering::Acquire) {
            bail!("interrupted while the runtime walked its heap; no file written");
        }
        if started.elapsed() > timeout {
            bail!(
                "timed out after {} s waiting for the runtime to start the session; no file written",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match handle.join() {
        Ok(r) => Ok(r?),
        Err(_) => bail!("the session start failed unexpectedly"),
    }
}

fn loss_text(l: &Losses) -> String {
    let end = if l.unfinished > 0 {
        ", the walk's end event lost"
    } else {
        ""
    };
    format!(
        "events lost: {} (sequence gaps), {} batches missing, {} unreadable{end}",
        l.events, l.batches, l.malformed
    )
}

/// A stream that has lost events and then stays this long without a byte has lost the walk's
/// end too (the runtime flushes its buffers every 100 ms or so).
const QUIET_AFTER_LOSS: Duration = Duration::from_secs(3);

/// Waits for the walk to end, printing progress; `Err` on timeout, Ctrl-C or an early end.
fn wait(
    session: &Session,
    progress: &Progress,
    opts: &CollectOptions,
    started: Instant,
    interrupted: &AtomicBool,
) -> Result<()> {
    let mut last_print = Instant::now();
    let (mut last_bytes, mut last_change) = (0, Instant::now());
    loop {
        if progress.complete.load(Ordering::Acquire) {
            return Ok(());
        }
        let bytes = progress.bytes.load(Ordering::Relaxed);
        if bytes != last_bytes {
            (last_bytes, last_change) = (bytes, Instant::now());
        } else if progress.lost.load(Ordering::Relaxed) > 0
            && last_change.elapsed() > QUIET_AFTER_LOSS
        {
            // The caller counts the missing end as a loss (and may retry).
            return Ok(());
        }
        if interrupted.load(Ordering::Acquire) {
            bail!("interrupted; the session was stopped and no file written");
        }
        if session.has_ended() {
            // The stream's end is examined by the caller.
            return Ok(());
        }
        if started.elapsed() > opts.timeout {
            bail!(
                "timed out after {} s waiting for the heap walk ({} nodes received); the session was stopped and no file written",
                opts.timeout.as_secs(),
                progress.nodes.load(Ordering::Relaxed)
            );
        }
        if opts.verbose && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!(
                "  received {} nodes, {} edges",
                progress.nodes.load(Ordering::Relaxed),
                progress.edges.load(Ordering::Relaxed)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(target: &Target, timeout: Duration) -> Result<(DiagnosticsClient, i32)> {
    // Questions before the session get short answers: a stopped runtime must not hold us.
    let timeouts = Timeouts {
        connect: Duration::from_secs(3),
        io: Duration::from_secs(2).min(timeout),
    };
    let (client, pid) = match target {
        Target::Pid(pid) => (DiagnosticsClient::for_pid(*pid)?, Some(*pid)),
        Target::Name(name) => {
            let pid = resolve_name(name)?;
            (DiagnosticsClient::for_pid(pid)?, Some(pid))
        }
        Target::Port(path) => {
            let text = path.to_string_lossy();
            let bare = text.strip_suffix(",connect").unwrap_or(&text);
            if bare.ends_with(",listen") {
                bail!("--diagnostic-port: only connect mode (PATH or PATH,connect) is supported");
            }
            (DiagnosticsClient::new(bare), None)
        }
    };
    let client = client.with_timeouts(timeouts);
    let pid = match pid {
        Some(p) => p,
        None => process_info(&client)
            .map(|i| i.process_id as i32)
            .with_context(|| {
                format!(
                    "cannot talk to the runtime at {}",
                    client.socket().display()
                )
            })?,
    };
    Ok((client, pid))
}

fn resolve_name(name: &str) -> Result<i32> {
    let all = dn_core::ps::list_processes();
    let found: Vec<i32> = all
        .iter()
        .filter(|p| p.name == name || p.process_name == name)
        .map(|p| p.pid)
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no .NET process named '{name}' was found (dn-dump ps lists them)"),
        many => bail!(
            "{} .NET processes are named '{name}' ({}); pick one with -p PID",
            many.len(),
            many.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The entry assembly's name, else the process name.
fn process_name(client: &DiagnosticsClient, pid: i32) -> String {
    let from_runtime = process_info(client)
        .ok()
        .and_then(|i| i.entrypoint_assembly);
    from_runtime
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "process".into())
}

/// `-o` as given (`.gcdump` appended when missing), else `NAME_PID_YYYYMMDD_HHMMSS.gcdump`.
pub fn output_path(output: Option<&Path>, name: &str, pid: i32) -> PathBuf {
    match output {
        Some(p) if p.extension().is_some_and(|e| e == "gcdump") => p.to_path_buf(),
        Some(p) => {
            let mut s = p.as_os_str().to_owned();
            s.push(".gcdump");
            PathBuf::from(s)
        }
        None => {
            let safe: String = name
                .chars()
                .map(|c| if c == '/' || c.is_control() { '_' } else { c })
                .collect();
            PathBuf::from(format!(
                "{safe}_{pid}_{}.gcdump",
                chrono::Local::now().format("%Y%m%d_%H%M%S")
            ))
        }
    }
}

/// Local time as .NET `DateTime.Ticks`.
fn now_ticks() -> i64 {
    let local = chrono::Local::now().naive_local();
    let secs = local.and_utc().timestamp();
    let nanos = i64::from(local.and_utc().timestamp_subsec_nanos());
    (secs + 62_135_596_800) * 10_000_000 + nanos / 100
}
