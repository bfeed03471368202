//! `serve --all`: one /metrics endpoint for every .NET process this user can reach on the host.
//!
//! Discovery (dn-core's, containers included) runs every `--discover-interval` in its own thread;
//! each new process is attached in its own thread too, so a runtime that hangs or refuses holds up
//! nobody: it is reported once and skipped (until a new process takes its pid). A process whose
//! stream ends (it exited, or its session was ended) drops out with all its series.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use dn_core::ipc::discovery::{for_each_endpoint, proc_facts, Endpoint};

use super::serve::{listen, serve_http};
use super::{options, process_gone, stop_flag};
use crate::args::ServeArgs;
use crate::labels::{process_labels, Labels};
use crate::prefer::Preference;
use crate::prometheus::Totals;
use crate::sample::Sample;
use crate::store::Store;
use crate::watch::{ChildOutput, Msg, TargetSpec, Watch, WatchOptions};

/// What the endpoint shows: per pid, its labels and latest values.
type Shared = Arc<Mutex<BTreeMap<i32, (Labels, Store)>>>;

/// How often the sessions' channels are drained: values are at most this late on the endpoint.
const TICK: Duration = Duration::from_millis(250);

enum Event {
    /// A discovery pass: every endpoint found.
    Found(Vec<Endpoint>),
    /// An attach attempt ended.
    Attached(i32, Result<Box<(Watch, Labels)>, String>),
}

/// One watched process.
struct Member {
    watch: Watch,
    prefer: Preference,
    totals: Totals,
}

pub fn serve_all(a: &ServeArgs) -> Result<()> {
    let opts = options(&a.session, ChildOutput::Stderr)?;
    let stop = stop_flag()?;
    let (server, addr) = listen(&a.listen)?;
    let shared: Shared = Arc::default();
    let http = {
        let (shared, server) = (shared.clone(), server.clone());
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve_http(&server, || render(&shared)))?
    };
    println!("Serving the counters of every .NET process at http://{addr}/metrics");
    let _ = io::stdout().flush();

    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let discover_every = Duration::from_secs(u64::from(a.discover_interval));
    let (tx, rx) = channel();
    let mut members: BTreeMap<i32, Member> = BTreeMap::new();
    let mut attaching: HashSet<i32> = HashSet::new();
    // Pids that could not be watched, with their start time (a new process may reuse the pid).
    let mut failed: HashMap<i32, Option<u64>> = HashMap::new();
    let mut next_discovery = Instant::now();
    let mut discovering = false;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && a.session.duration.is_none_or(|d| started.elapsed() < d)
    {
        if !discovering && Instant::now() >= next_discovery {
            discovering = true;
            discover(tx.clone());
        }
        loop {
            match rx.try_recv() {
                Ok(Event::Found(eps)) => {
                    discovering = false;
                    next_discovery = Instant::now() + discover_every;
                    for ep in eps {
                        let pid = ep.pid;
                        if members.contains_key(&pid) || attaching.contains(&pid) {
                            continue;
                        }
                        if failed.get(&pid).is_some_and(|t| *t == start_time(pid)) {
                            continue;
                        }
                        failed.remove(&pid);
                        attaching.insert(pid);
                        attach(ep, opts.clone(), tx.clone());
                    }
                    // Belt and braces: a process gone without its stream ending.
                    let gone: Vec<i32> = members
                        .keys()
                        .copied()
                        .filter(|p| process_gone(*p))
                        .collect();
                    for pid in gone {
                        drop_member(&mut members, &shared, pid);
                    }
                }
                Ok(Event::Attached(pid, Ok(attached))) => {
                    let (watch, labels) = *attached;
                    attaching.remove(&pid);
                    lock(&shared).insert(pid, (labels, Store::default()));
                    let prefer = Preference::new(&watch.plan.meter_providers, refresh);
                    members.insert(
                        pid,
                        Member {
                            watch,
                            prefer,
                            totals: Totals::default(),
                        },
                    );
                }
                Ok(Event::Attached(pid, Err(e))) => {
                    attaching.remove(&pid);
                    if !process_gone(pid) {
                        eprintln!("Warning: process {pid} is not watched: {e}");
                    }
                    failed.insert(pid, start_time(pid));
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        let mut ended = Vec::new();
        for (pid, m) in members.iter_mut() {
            if !m.drain(*pid, &shared) {
                ended.push(*pid);
            }
        }
        for pid in ended {
            drop_member(&mut members, &shared, pid);
        }
        std::thread::sleep(TICK);
    }
    // Every session is stopped at once: each waits for its runtime's reply.
    std::thread::scope(|s| {
        for (_, m) in std::mem::take(&mut members) {
            s.spawn(move || drop(m));
        }
    });
    server.unblock();
    let _ = http.join();
    Ok(())
}

impl Member {
    /// Takes in what the session sent; false once its stream has ended.
    fn drain(&mut self, pid: i32, shared: &Shared) -> bool {
        loop {
            let (samples, switched) = match self.watch.rx.try_recv() {
                Ok(Msg::Samples(s)) => {
                    let v = self.prefer.samples(s);
                    (v.emit, v.switched_to_meter)
                }
                Ok(Msg::IntervalEnd) => (self.prefer.interval_end(), Vec::new()),
                Ok(Msg::Warning(w)) => {
                    eprintln!("Warning: process {pid}: {w}");
                    continue;
                }
                Ok(Msg::Published(_)) => continue,
                Ok(Msg::Ended(_)) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => (self.prefer.tick(), Vec::new()),
            };
            let empty = samples.is_empty() && switched.is_empty();
            self.publish(pid, shared, samples, &switched);
            if empty {
                return true;
            }
        }
    }

    fn publish(&mut self, pid: i32, shared: &Shared, samples: Vec<Sample>, switched: &[String]) {
        if samples.is_empty() && switched.is_empty() {
            return;
        }
        let samples = self.totals.convert(samples);
        if let Some((_, store)) = lock(shared).get_mut(&pid) {
            store.apply(switched, samples);
        }
    }
}

fn drop_member(members: &mut BTreeMap<i32, Member>, shared: &Shared, pid: i32) {
    lock(shared).remove(&pid);
    if let Some(m) = members.remove(&pid) {
        // Stopping waits for the runtime (if it is still there): not on the serving loop.
        std::thread::spawn(move || drop(m));
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, BTreeMap<i32, (Labels, Store)>> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn render(shared: &Shared) -> String {
    let map = lock(shared);
    crate::prometheus::render_all(map.values().map(|(l, s)| (&l[..], s)))
}

fn start_time(pid: i32) -> Option<u64> {
    proc_facts(pid).and_then(|f| f.starttime)
}

/// One discovery pass in its own thread (the /proc walk may be slow on a busy host).
fn discover(tx: Sender<Event>) {
    std::thread::spawn(move || {
        let mut found = Vec::new();
        for_each_endpoint(|ep| found.push(ep));
        let _ = tx.send(Event::Found(found));
    });
}

/// Attaches to one process in its own thread: a runtime that does not answer blocks only this.
fn attach(ep: Endpoint, opts: WatchOptions, tx: Sender<Event>) {
    std::thread::spawn(move || {
        let result = match dn_core::ps::describe(&ep) {
            None => Err("its runtime does not answer".to_string()),
            Some(row) => Watch::start(&TargetSpec::Pid(ep.pid), &opts)
                .map(|w| Box::new((w, process_labels(&row))))
                .map_err(|e| format!("{e:#}")),
        };
        let _ = tx.send(Event::Attached(ep.pid, result));
    });
}
