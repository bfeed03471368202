//! Attaching to the target (pid, name, a diagnostic port, or a command we start) and running the
//! counters session; its events arrive as [`Msg`]s on a channel.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dn_core::eventpipe::{Chunk, Session, SessionConfig, SharedChannel};
use dn_core::ipc::client::send_request;
use dn_core::ipc::client::Reply;
use dn_core::ipc::process::{process_info, resume_runtime, CommandChannel};
use dn_core::ipc::protocol::Command as Command_;
use dn_core::ipc::reverse::ReversePort;
use dn_core::ipc::IpcError;
use dn_core::ipc::{DiagnosticsClient, ProcessInfo};
use dn_nettrace::NettraceParser;

use crate::decode::{Decoded, Decoder};
use crate::plan::{plan, MetricsLimits, Plan};
use crate::sample::Sample;
use crate::spec::ProviderSpec;

/// Which process to watch.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    Pid(i32),
    Name(String),
    /// A path we listen on (the runtime connects), or `PATH,connect` to connect to a runtime.
    DiagnosticPort(String),
    /// Start this command and watch it from its first instruction.
    Command(Vec<String>),
}

/// Where the output of a child we start goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildOutput {
    /// Our stderr (keeps our stdout clean for data).
    Stderr,
    /// Nowhere (a full-screen monitor owns the terminal); stdin is not shared either.
    Discard,
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub specs: Vec<ProviderSpec>,
    pub refresh_secs: u32,
    pub limits: MetricsLimits,
    pub child_output: ChildOutput,
    /// Resume a runtime that waits at startup once the session runs (else leave it suspended).
    pub resume_runtime: bool,
    /// Histogram percentiles to show, in percent.
    pub percentiles: Vec<f64>,
}

/// What the session thread reports.
#[derive(Debug)]
pub enum Msg {
    Samples(Vec<Sample>),
    IntervalEnd,
    Warning(String),
    /// Counters the target publishes but that were not asked for, each reported once.
    Published(Vec<(String, String)>),
    /// The stream ended; `Some` with a reason when it was not a clean end.
    Ended(Option<String>),
}

/// A running watch. Dropping it stops the session and, for a started command, ends the child.
pub struct Watch {
    pub pid: i32,
    pub info: Option<ProcessInfo>,
    pub plan: Plan,
    /// What was asked for (`--counters`).
    pub specs: Vec<ProviderSpec>,
    pub rx: Receiver<Msg>,
    session: Option<Session>,
    child: Option<Child>,
    socket_path: Option<PathBuf>,
}

/// How long a runtime gets to connect to a reverse port.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

impl Watch {
    pub fn start(target: &TargetSpec, opts: &WatchOptions) -> Result<Watch> {
        match target {
            TargetSpec::Pid(pid) => Self::attach_pid(*pid, opts),
            TargetSpec::Name(name) => Self::attach_pid(resolve_name(name)?, opts),
            TargetSpec::DiagnosticPort(spec) => match spec.strip_suffix(",connect") {
                Some(path) => {
                    let client = DiagnosticsClient::new(path);
                    let info = process_info(&client).ok();
                    let pid = info.as_ref().map(|i| i.process_id as i32).unwrap_or(0);
                    Self::with_channel(pid, info, Arc::new(client), None, None, opts)
                }
                None => {
                    let path = spec.strip_suffix(",listen").unwrap_or(spec);
                    eprintln!("Waiting for connection on {path}");
                    eprintln!("Start an application with the following environment variable: DOTNET_DiagnosticPorts={path}");
                    let port = ReversePort::bind(path.as_ref())
                        .with_context(|| format!("cannot listen on {path}"))?;
                    Self::attach_reverse(port, None, opts)
                }
            },
            TargetSpec::Command(argv) => Self::launch(argv, opts),
        }
    }

    fn attach_pid(pid: i32, opts: &WatchOptions) -> Result<Watch> {
        let client = DiagnosticsClient::for_pid(pid)?;
        let info = match process_info(&client) {
            Ok(i) => Some(i),
            // .NET Core 3.1 knows no ProcessInfo: watch it all the same.
            Err(e) if e.is_unknown_command() => None,
            Err(e) => return Err(e.into()),
        };
        Self::with_channel(pid, info, Arc::new(client), None, None, opts)
    }

    /// Waits for a runtime on `port`, asks it who it is, then runs the session over the port.
    fn attach_reverse(
        mut port: ReversePort,
        mut child: Option<Child>,
        opts: &WatchOptions,
    ) -> Result<Watch> {
        let deadline = Instant::now() + CONNECT_WAIT;
        let (adv, stream) = loop {
            match port.accept(Duration::from_millis(250)) {
                Ok(x) => break x,
                Err(_) if Instant::now() < deadline => {
                    if let Some(c) = child.as_mut() {
                        if let Some(status) = c.try_wait()? {
                            bail!("the command exited ({}) before its runtime connected to the diagnostic port (is it a .NET 5+ app started directly, not through a wrapper?)", describe_status(status));
                        }
                    }
                }
                Err(_) => bail!(
                    "Unable to start tracing session - the target app failed to connect to the diagnostics port {} within {}s",
                    port.path().display(),
                    CONNECT_WAIT.as_secs()
                ),
            }
        };
        port.expect_pid(adv.pid);
        let info = process_info(&FirstThenPort {
            first: std::sync::Mutex::new(Some(stream)),
            port: &port,
        })
        .ok();
        let socket_path = port.path().to_path_buf();
        let port = Arc::new(port);
        let mut w = Self::with_channel(
            adv.pid as i32,
            info,
            port.clone(),
            child,
            Some(socket_path),
            opts,
        )?;
        if !opts.resume_runtime {
            eprintln!("The runtime of process {} stays suspended (--resume-runtime false): another tool must resume it.", w.pid);
            return Ok(w);
        }
        // Let a runtime waiting at startup go on, now that the session sees everything.
        if let Err(e) = resume_runtime(&*port) {
            w.stop();
            return Err(anyhow!("cannot resume the runtime: {e}"));
        }
        Ok(w)
    }

    fn launch(argv: &[String], opts: &WatchOptions) -> Result<Watch> {
        let (program, args) = argv.split_first().context("no command to start")?;
        let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S");
        let path =
            std::env::temp_dir().join(format!("dn-counters-{}-{stamp}.socket", std::process::id()));
        let port = ReversePort::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args).env(
            "DOTNET_DiagnosticPorts",
            format!("{},suspend,connect", path.display()),
        );
        match opts.child_output {
            ChildOutput::Stderr => {
                cmd.stdout(std::io::stderr());
            }
            ChildOutput::Discard => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let mut port = port;
        port.expect_pid(u64::from(child.id()));
        Self::attach_reverse(port, Some(child), opts)
    }

    fn with_channel(
        pid: i32,
        info: Option<ProcessInfo>,
        channel: SharedChannel,
        child: Option<Child>,
        socket_path: Option<PathBuf>,
        opts: &WatchOptions,
    ) -> Result<Watch> {
        let major = info.as_ref().and_then(|i| i.runtime_major());
        let plan = plan(&opts.specs, major, opts.refresh_secs, opts.limits);
        let decoder = Decoder::new(
            opts.specs.clone(),
            plan.metrics_session.clone(),
            plan.client_id.clone(),
            opts.refresh_secs,
        )
        .with_percentiles(&opts.percentiles);
        // Qualified: the `channel` in scope here is the diagnostics channel.
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = stream_sink(decoder, tx);
        let session = Session::start(channel, &SessionConfig::new(plan.providers.clone()), sink)
            .with_context(|| format!("Failed to start the counter session in process {pid}"))?;
        Ok(Watch {
            pid,
            info,
            plan,
            specs: opts.specs.clone(),
            rx,
            session: Some(session),
            child,
            socket_path,
        })
    }

    /// The exit status of a command we started, once it has exited.
    pub fn child_exit(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn has_child(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the session (StopTracing, stream drained) and ends a child we started.
    pub fn stop(&mut self) {
        if let Some(mut s) = self.session.take() {
            let _ = s.stop(dn_core::eventpipe::DEFAULT_STOP_TIMEOUT);
        }
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if let Some(p) = self.socket_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The drain thread's consumer: parses nettrace and decodes events as bytes arrive. A parse error
/// is reported once; the rest of the stream is still read (and dropped) so the session can end.
fn stream_sink(decoder: Decoder, tx: Sender<Msg>) -> impl FnMut(Chunk<'_>) + Send + 'static {
    let mut parser = NettraceParser::new();
    let mut failed = false;
    let mut published = std::collections::HashSet::new();
    move |chunk| match chunk {
        Chunk::Data(bytes) if !failed => {
            let mut batch = Vec::new();
            let mut result = parser.feed(bytes);
            while result.is_ok() {
                match parser.next_event() {
                    Ok(Some(ev)) => match decoder.decode(&ev) {
                        Decoded::Samples(s) => batch.extend(s),
                        Decoded::SamplesAndWarning(s, w) => {
                            batch.extend(s);
                            let _ = tx.send(Msg::Warning(w));
                        }
                        Decoded::IntervalEnd => {
                            flush(&tx, &mut batch);
                            let _ = tx.send(Msg::IntervalEnd);
                        }
                        Decoded::Warning(w) => {
                            let _ = tx.send(Msg::Warning(w));
                        }
                        Decoded::Unwanted { provider, name } => {
                            if published.len() < 10_000
                                && published.insert((provider.clone(), name.clone()))
                            {
                                let _ = tx.send(Msg::Published(vec![(provider, name)]));
                            }
                        }
                        Decoded::Nothing => {}
                    },
                    Ok(None) => break,
                    Err(e) => result = Err(e),
                }
            }
            flush(&tx, &mut batch);
            if let Err(e) = result {
                failed = true;
                let _ = tx.send(Msg::Warning(format!(
                    "cannot read the event stream any further: {e}"
                )));
            }
        }
        Chunk::Data(_) => {}
        Chunk::End(err) => {
            let _ = tx.send(Msg::Ended(err.map(|e| e.to_string())));
        }
    }
}

fn flush(tx: &Sender<Msg>, batch: &mut Vec<Sample>) {
    if !batch.is_empty() {
        let _ = tx.send(Msg::Samples(std::mem::take(batch)));
    }
}

/// The connection that came with the advertise message carries the first command; later ones
/// (fallbacks to older ProcessInfo versions) wait for the runtime's next connection.
struct FirstThenPort<'a> {
    first: std::sync::Mutex<Option<UnixStream>>,
    port: &'a ReversePort,
}

impl CommandChannel for FirstThenPort<'_> {
    fn exchange(&self, cmd: Command_, payload: &[u8]) -> Result<Reply, IpcError> {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        match first {
            Some(stream) => send_request(stream, cmd, payload),
            None => self.port.exchange(cmd, payload),
        }
    }
}

pub fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".into(),
    }
}

/// The one .NET process called `name`, or an error listing the candidates.
pub fn resolve_name(name: &str) -> Result<i32> {
    let all = dn_core::ps::list_processes();
    let matches: Vec<_> = all
        .iter()
        .filter(|p| p.name == name || p.process_name == name)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.pid),
        [] => bail!("no .NET process named '{name}' was found (dn-counters ps lists them)"),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|p| {
                    format!(
                        "{} ({})",
                        p.pid,
                        p.command_line.as_deref().unwrap_or(&p.process_name)
                    )
                })
                .collect();
            bail!(
                "{} .NET processes are named '{name}': {}; pick one with -p PID",
                many.len(),
                list.join(", ")
            )
        }
    }
}
