//! The subcommands: attach, run the event loop, hand samples to a consumer (screen, writer,
//! endpoint), and end cleanly on q, Ctrl-C, SIGTERM, --duration, target exit or error.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::args::{CollectArgs, ListArgs, MonitorArgs, PsArgs, ServeArgs, SessionArgs};
use crate::collect::{self, Format, SampleWriter};
use crate::monitor::screen;
use crate::monitor::terminal::{Painter, TerminalGuard};
use crate::plan::MetricsLimits;
use crate::prefer::Preference;
use crate::sample::Sample;
use crate::spec::{parse_counters, ProviderSpec, DEFAULT_PROVIDER};
use crate::store::Store;
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

fn target_of(a: &SessionArgs) -> Result<TargetSpec> {
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

fn options(a: &SessionArgs, child_output: ChildOutput) -> Result<WatchOptions> {
    Ok(WatchOptions {
        specs: specs_of(a)?,
        refresh_secs: a.refresh_interval,
        limits: MetricsLimits {
            max_histograms: a.max_histograms,
            max_time_series: a.max_time_series,
        },
        child_output,
    })
}

/// SIGINT/SIGTERM/SIGHUP set the flag; a second SIGINT while we are still stopping exits at once.
fn stop_flag() -> Result<Arc<AtomicBool>> {
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
            Ok(Msg::Ended(err)) => break ended(watch, err),
            Err(RecvTimeoutError::Timeout) => {
                let released = prefer.tick();
                if !released.is_empty() && consumer.samples(released, &[])? == Control::Quit {
                    break Outcome::Quit;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break ended(watch, None),
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

fn report(outcome: &Outcome) {
    if let Outcome::TargetExited(t) | Outcome::SessionEnded(t) = outcome {
        // The terminal may be gone already: nothing to do about a failed write.
        let _ = writeln!(io::stdout(), "{t}");
    }
}

// ---------------------------------------------------------------------------------- monitor

pub fn monitor(a: &MonitorArgs) -> Result<()> {
    let tty = io::stdout().is_terminal();
    let out = if tty {
        ChildOutput::Discard
    } else {
        ChildOutput::Stderr
    };
    let opts = options(&a.session, out)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    let mut watch = Watch::start(&target, &opts)?;
    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let outcome = if tty {
        let guard = TerminalGuard::enter().context("cannot set up the terminal")?;
        let mut screen = LiveScreen::new(a.raw, watch.pid);
        let r = event_loop(&mut watch, refresh, a.session.duration, &stop, &mut screen);
        drop(guard);
        r?
    } else {
        let mut plain = PlainSnapshots::new(a.raw, watch.pid);
        event_loop(&mut watch, refresh, a.session.duration, &stop, &mut plain)?
    };
    report(&outcome);
    Ok(())
}

/// The full-screen monitor.
struct LiveScreen {
    store: Store,
    painter: Painter,
    raw: bool,
    paused: bool,
    keys: bool,
    warning: Option<String>,
    dirty: bool,
    pid: i32,
}

impl LiveScreen {
    fn new(raw: bool, pid: i32) -> Self {
        LiveScreen {
            store: Store::default(),
            painter: Painter::default(),
            raw,
            paused: false,
            keys: io::stdin().is_terminal(),
            warning: None,
            dirty: true,
            pid,
        }
    }

    fn frame(&self, width: usize) -> screen::Frame {
        let status = if self.paused {
            "Paused".to_string()
        } else if self.store.is_empty() {
            "Waiting for initial payload...".to_string()
        } else {
            "Running".to_string()
        };
        let status = format!("{status}   (process {})", self.pid);
        screen::Frame {
            header: screen::header(&status, self.warning.as_deref(), width),
            body: screen::body(&self.store, self.raw, width),
        }
    }

    fn handle_key(&mut self, key: crossterm::event::KeyEvent) -> Control {
        use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
        if key.kind == KeyEventKind::Release {
            return Control::Continue;
        }
        let page = self.painter.page.max(1) as isize;
        let rows = screen::body(&self.store, self.raw, 80).len();
        match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Control::Quit
            }
            KeyCode::Char('q') | KeyCode::Char('Q') => return Control::Quit,
            KeyCode::Char('p') | KeyCode::Char('P') => self.paused = true,
            KeyCode::Char('r') | KeyCode::Char('R') => self.paused = false,
            KeyCode::Up => self.painter.scroll_by(-1, rows),
            KeyCode::Down => self.painter.scroll_by(1, rows),
            KeyCode::PageUp => self.painter.scroll_by(-page, rows),
            KeyCode::PageDown => self.painter.scroll_by(page, rows),
            KeyCode::Home => self.painter.scroll_by(-(rows as isize), rows),
            KeyCode::End => self.painter.scroll_by(rows as isize, rows),
            _ => return Control::Continue,
        }
        self.dirty = true;
        Control::Continue
    }
}

impl Consumer for LiveScreen {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        if self.paused {
            return Ok(Control::Continue);
        }
        self.store.apply(switched, samples);
        self.dirty = true;
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        self.warning = Some(format!("Warning: {text}"));
        self.dirty = true;
    }

    fn tick(&mut self) -> Result<Control> {
        use crossterm::event::{self, Event};
        if self.keys && terminal_hung_up() {
            // The terminal is gone (closed window, killed multiplexer): nothing to show on.
            return Ok(Control::Quit);
        }
        while self.keys && event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(k) if self.handle_key(k) == Control::Quit => {
                    return Ok(Control::Quit);
                }
                Event::Resize(_, _) => {
                    self.painter.invalidate();
                    self.dirty = true;
                }
                _ => {}
            }
        }
        let size = crossterm::terminal::size().unwrap_or((80, 24));
        if self.dirty {
            let frame = self.frame(size.0 as usize);
            self.painter.paint(&mut io::stdout().lock(), &frame, size)?;
            self.dirty = false;
        }
        Ok(Control::Continue)
    }
}

/// True when stdin, our terminal, has hung up. crossterm would spin forever reading its EOF.
fn terminal_hung_up() -> bool {
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut fds, 1, 0) };
    if ready <= 0 {
        return false;
    }
    if fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return true;
    }
    let mut pending: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int.
    let r = unsafe { libc::ioctl(0, libc::FIONREAD, &mut pending) };
    // Readable with nothing to read: end of file.
    r == 0 && pending == 0
}

/// stdout is not a terminal: one plain-text snapshot per interval, no escape codes.
struct PlainSnapshots {
    store: Store,
    raw: bool,
    pid: i32,
    dirty: bool,
    last_sample: Instant,
    width: usize,
}

impl PlainSnapshots {
    fn new(raw: bool, pid: i32) -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        PlainSnapshots {
            store: Store::default(),
            raw,
            pid,
            dirty: false,
            last_sample: Instant::now(),
            width,
        }
    }
}

/// An interval's values arrive within a few ms; a quiet spell this long means it is complete.
const SNAPSHOT_QUIET: Duration = Duration::from_millis(250);

impl Consumer for PlainSnapshots {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        if !samples.is_empty() {
            self.last_sample = Instant::now();
            self.dirty = true;
        }
        self.store.apply(switched, samples);
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }

    fn tick(&mut self) -> Result<Control> {
        if !self.dirty || self.last_sample.elapsed() < SNAPSHOT_QUIET {
            return Ok(Control::Continue);
        }
        self.dirty = false;
        let mut text = format!(
            "{} process {}\n",
            collect::rfc3339(std::time::SystemTime::now()),
            self.pid
        );
        for l in screen::body(&self.store, self.raw, self.width) {
            text.push_str(l.trim_end());
            text.push('\n');
        }
        text.push('\n');
        let mut out = io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => Ok(Control::Continue),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Control::Quit),
            Err(e) => Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------------------------- collect

pub fn collect(a: &CollectArgs) -> Result<()> {
    let output = a.output.clone().unwrap_or_else(|| {
        format!(
            "counter.{}",
            match a.format {
                Format::Csv => "csv",
                Format::Json => "json",
                Format::Jsonl => "jsonl",
            }
        )
    });
    if output.is_empty() {
        bail!("Output cannot be an empty string");
    }
    let to_stdout = output == "-";
    let opts = options(&a.session, ChildOutput::Stderr)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    let sink: Box<dyn Write + Send> = if to_stdout {
        Box::new(io::stdout())
    } else {
        Box::new(io::BufWriter::new(
            std::fs::File::create(&output).with_context(|| format!("cannot create {output}"))?,
        ))
    };
    let mut watch = Watch::start(&target, &opts)?;
    let writer = collect::writer(a.format, sink, watch.pid)?;
    if !to_stdout {
        eprintln!(
            "Collecting counters of process {} into {output}. Press Ctrl-C to stop.",
            watch.pid
        );
    }
    let mut c = Collector { writer };
    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let result = event_loop(&mut watch, refresh, a.session.duration, &stop, &mut c);
    let finished = c.writer.finish();
    let outcome = result?;
    match finished {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("cannot finish the output"),
    }
    if let Outcome::TargetExited(t) | Outcome::SessionEnded(t) = &outcome {
        eprintln!("{t}");
    }
    if !to_stdout {
        eprintln!("File saved to {output}");
    }
    Ok(())
}

struct Collector {
    writer: Box<dyn SampleWriter + Send>,
}

impl Consumer for Collector {
    fn samples(&mut self, samples: Vec<Sample>, _: &[String]) -> Result<Control> {
        for s in &samples {
            match self.writer.write(s) {
                Ok(()) => {}
                // Reader went away (`| head`): a normal way to stop.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Control::Quit),
                Err(e) => return Err(e).context("cannot write the output"),
            }
        }
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }
}

// ---------------------------------------------------------------------------------- serve

pub fn serve(a: &ServeArgs) -> Result<()> {
    let opts = options(&a.session, ChildOutput::Stderr)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    let server = tiny_http::Server::http(&a.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    let addr = server
        .server_addr()
        .to_ip()
        .map(|a| a.to_string())
        .unwrap_or_else(|| a.listen.clone());
    let mut watch = Watch::start(&target, &opts)?;
    let store = Arc::new(Mutex::new(Store::default()));
    let server = Arc::new(server);
    let pid = watch.pid;
    let http = {
        let (store, server) = (store.clone(), server.clone());
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve_http(&server, &store, pid))?
    };
    println!("Serving the counters of process {pid} at http://{addr}/metrics");
    let _ = io::stdout().flush();
    let mut exporter = Exporter {
        store,
        totals: Default::default(),
    };
    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let outcome = event_loop(
        &mut watch,
        refresh,
        a.session.duration,
        &stop,
        &mut exporter,
    )?;
    server.unblock();
    let _ = http.join();
    report(&outcome);
    Ok(())
}

fn serve_http(server: &tiny_http::Server, store: &Mutex<Store>, pid: i32) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let response = if path == "/metrics" {
            let body = store
                .lock()
                .map(|s| crate::prometheus::render(&s, pid))
                .unwrap_or_default();
            let ct = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            )
            .expect("static header");
            tiny_http::Response::from_string(body).with_header(ct)
        } else {
            tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
        };
        let _ = req.respond(response);
    }
}

struct Exporter {
    store: Arc<Mutex<Store>>,
    /// Running totals of per-interval increments, per series.
    totals: std::collections::HashMap<(String, String, String), f64>,
}

impl Consumer for Exporter {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        let totals = &mut self.totals;
        let samples = samples.into_iter().map(|mut s| {
            if s.kind == crate::sample::Kind::Rate {
                let key = (s.provider.clone(), s.name.clone(), s.tags_text());
                let total = totals.entry(key).or_default();
                *total += s.value;
                s.value = *total;
                s.kind = crate::sample::Kind::Counter;
            }
            s
        });
        if let Ok(mut st) = self.store.lock() {
            st.apply(switched, samples);
        }
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }
}

// ---------------------------------------------------------------------------------- list, ps

pub fn list(a: &ListArgs) -> Result<()> {
    let major = match &a.runtime_version {
        None => None,
        Some(v) => Some(
            v.split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .with_context(|| format!("'{v}' is not a runtime version (e.g. 8, 9.0, 10)"))?,
        ),
    };
    let rows = crate::known::for_runtime(major);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    use dn_core::render::{Align, Table};
    let mut t = Table::new()
        .column("PROVIDER", Align::Left, false)
        .column("SOURCE", Align::Left, false)
        .column("NAME", Align::Left, false)
        .column("UNIT", Align::Left, false)
        .column("KIND", Align::Left, false)
        .column("SINCE", Align::Right, false)
        .column("DESCRIPTION", Align::Left, true);
    for c in rows {
        t.row(vec![
            c.provider.to_string(),
            c.source.to_string(),
            c.name.to_string(),
            c.unit.to_string(),
            c.kind.to_string(),
            if c.since <= 3 {
                "3.0".into()
            } else {
                format!("{}.0", c.since)
            },
            c.description.to_string(),
        ]);
    }
    print!("{}", t.render(dn_core::render::output_width()));
    Ok(())
}

pub fn ps(a: &PsArgs) -> Result<()> {
    let rows = dn_core::ps::list_processes();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    // The same listing as dn-ps.
    print!(
        "{}",
        dn_core::ps::render_listing(&rows, dn_core::render::output_width())
    );
    Ok(())
}

/// Runs the parsed command line.
pub fn run(cli: &crate::args::Cli) -> Result<()> {
    use crate::args::Cmd;
    match &cli.command {
        Cmd::Monitor(a) => monitor(a),
        Cmd::Collect(a) => collect(a),
        Cmd::Serve(a) => serve(a),
        Cmd::List(a) => list(a),
        Cmd::Ps(a) => ps(a),
    }
}
