//! SOS-style commands over a [`Runtime`]: each returns a typed, serializable result that can
//! also render itself as SOS-shaped text.

mod clrstack;
mod dominators;
mod dso;
mod dumpasync;
mod dumpheap;
mod dumpmt;
mod dumpobj;
mod eeheap;
mod eeversion;
pub(crate) mod gcroot;
pub(crate) mod heapstat;
mod help;
mod info;
mod loaderheap;
mod modules;
mod name2ee;
mod objects;
mod pe;
mod setthread;
pub(crate) mod suspects;
mod syncblk;
mod verifyheap;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use serde::Serializer;

pub use clrstack::{ClrStack, ClrStackOptions, ThreadStack};
pub use dominators::{dominators, DominatorNode, DominatorTree, DominatorsOptions};
pub use dso::{DumpStackObjects, StackObject, StackRange};
pub use dumpasync::{
    AsyncField, AsyncFrame, AsyncGroup, AsyncStack, AsyncStatRow, DumpAsync, DumpAsyncCoalesced,
    DumpAsyncOptions, DumpAsyncStats,
};
pub use dumpheap::{
    dumpheap_stat, DumpHeap, DumpHeapOptions, DumpHeapStat, DumpHeapStrings, FrozenCount,
    HeapObjectRow, StringStat,
};
pub use dumpmt::{DumpMt, MethodRow};
pub use dumpobj::{ArrayElement, ArraySummary, DumpArray, DumpObj, FieldValue};
pub use eeheap::{eeheap, EeHeap, EeHeapAll, EeHeapParts, SegmentRow};
pub use eeversion::EeVersion;
pub use gcroot::{GcRoot, PathNode, RootPath};
pub use heapstat::TypeStat;
pub use help::HelpTopic;
pub use info::{ClrThreads, Help, HelpRow, ThreadRow};
pub use loaderheap::{
    CodeHeapRow, DomainHeaps, HeapBlock, JitManagerHeaps, KindHeaps, LoaderHeaps, ModuleHeapsTotal,
    NativeHeapKind,
};
pub use modules::{ModuleRow, Modules, ModulesOptions};
pub use name2ee::{Name2Ee, Name2EeMatch, Name2EeModule};
pub use objects::{FinalizeQueue, GcHandles, HandleRow, ObjSize};
pub use pe::{ExceptionInfo, InnerException, PrintException, TraceFrame};
pub use setthread::{CurrentThread, OsThread, OsThreads};
pub use suspects::{
    suspects, Accumulated, AccumulationPoint, PointOwner, Suspect, SuspectRoot, SuspectShape,
    Suspects,
};
pub use syncblk::{LockOwner, SyncBlk, SyncBlockRow};
pub use verifyheap::{HeapError, HeapErrorKind, VerifyHeap};

use crate::graph::{LiveSet, ObjectGraph};
use crate::heap::Runtime;

/// A command's result: JSON for programs, text in SOS's shape for people.
pub trait CommandOutput {
    fn to_json(&self) -> serde_json::Value;
    /// One line of JSON, fields in declaration order.
    fn to_json_line(&self) -> String;
    fn to_text(&self) -> String;
}

impl<T: serde::Serialize + Render> CommandOutput for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
    fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
    fn to_text(&self) -> String {
        self.render()
    }
}

/// Text rendering of a result.
pub trait Render {
    fn render(&self) -> String;
}

/// The commands `help` lists and the REPL completes.
pub const COMMANDS: &[(&str, &str)] = &[
    ("dumpheap", "dumpheap [-stat [-retained] [-sort size|retained]] [-type SUBSTR] [-mt MT] [-min N] [-max N] [-gen G] [-live|-dead] [-strings] [-short]: objects on the GC heap"),
    ("dumpobj", "dumpobj ADDR (alias do): an object's type, size and fields"),
    ("dumparray", "dumparray ADDR [-start I] [-length N]: an array's elements"),
    ("dumpmt", "dumpmt [-md] MT: a MethodTable; -md lists the methods in its slots"),
    ("gcroot", "gcroot ADDR [-nostacks]: what keeps an object alive"),
    ("objsize", "objsize ADDR [-stat] [-short]: every object reachable from an object, and their size (not its retained size: see dominators)"),
    ("dominators", "dominators [ADDR] [-depth N] [-top K] [-type SUBSTR]: who keeps the memory alive: the dominator tree with retained sizes"),
    ("suspects", "suspects [-threshold PCT]: leak suspects (Eclipse MAT's): objects or types retaining over PCT% (10) of the live heap"),
    ("gchandles", "gchandles: GC handles and the objects they hold"),
    ("finalizequeue", "finalizequeue (alias fq): objects registered for finalization"),
    ("eeheap", "eeheap [-gc] [-loader]: the GC heap's segments and sizes (-gc), the loader heaps per domain and the JIT code heaps (-loader); both, with their total, by default"),
    ("dumpgen", "dumpgen GEN [-type SUBSTR] [-mt MT]: per-type statistics of one generation (gen0, gen1, gen2, loh, poh, foh)"),
    ("clrthreads", "clrthreads: managed threads"),
    ("eeversion", "eeversion: the runtime's version (from the dump itself), GC mode, and which DAC reads it"),
    ("modules", "modules (alias lm) [-v] [-n NAME]: the files mapped in the target; -v adds build ids and version strings"),
    ("verifyheap", "verifyheap: walks every object and reference of the GC heap; lists the first problems with their addresses"),
    ("name2ee", "name2ee MODULE TYPE|TYPE.METHOD (or MODULE!NAME; * for every module): loaded types whose name contains TYPE, or their methods named METHOD"),
    ("setthread", "setthread [N] | setthread -t OSID (alias threads): list the target's threads, or make one current by debugger index or OS thread id"),
    ("clrstack", "clrstack [-a] [-p] [-l] [-all] [-f] [-c N]: the current thread's managed stack (-all: every managed thread; -p arguments, -l locals, -a both; -f module!method + offset)"),
    ("pe", "pe [-nested] [ADDR] (alias printexception): an exception's type, message, stack trace and inner exceptions; without ADDR the current thread's"),
    ("syncblk", "syncblk [-all] [N]: sync blocks: the locks held, their owner threads and waiters"),
    ("dumpasync", "dumpasync [--address ADDR] [--methodtable MT] [--type NAME] [--tasks] [--completed] [--fields] [--roots] [--stats | --coalesce]: async state machines and what awaits what; --fields their fields, --roots what keeps each stack alive (gcroot of its last frame), --stats counts by type, --coalesce identical stacks grouped with counts"),
    ("dumpstackobjects", "dumpstackobjects [TOP [BOTTOM]] (alias dso): objects referenced from the current thread's stack and registers"),
    ("help", "help [COMMAND]: this list, or one command's usage"),
    ("exit", "exit (alias quit, q): leave"),
];

/// What the commands that answer from the heap graph alone (`dominators`, `suspects`,
/// `gcroot`, `-retained`) need from a session: a core's [`Session`] and a heap snapshot's
/// [`crate::snapshot::SnapshotSession`] both provide it.
pub trait GraphSession {
    /// The heap graph, built on first use and kept.
    fn graph(&self) -> anyhow::Result<Arc<ObjectGraph>>;
    /// The name of a graph type (`ObjectGraph::mts` value).
    fn type_name(&self, mt: u64) -> String;
    /// Set by Ctrl-C.
    fn cancel_flag(&self) -> &AtomicBool;
    /// The runtime behind a dump; `None` for a heap snapshot, which has no memory contents.
    fn runtime(&self) -> Option<&Runtime>;
    fn is_cancelled(&self) -> bool {
        self.cancel_flag().load(Ordering::Relaxed)
    }
}

/// A session the command line and the prompt can drive.
pub trait RunCommand {
    /// Runs one command line. `Ok(None)` for an empty line.
    fn run_command(&self, line: &str) -> anyhow::Result<Option<Box<dyn CommandOutput>>>;
}

impl GraphSession for Session {
    fn graph(&self) -> anyhow::Result<Arc<ObjectGraph>> {
        Session::graph(self)
    }
    fn type_name(&self, mt: u64) -> String {
        self.runtime.heap.type_name(&self.runtime.dac, mt)
    }
    fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }
    fn runtime(&self) -> Option<&Runtime> {
        Some(&self.runtime)
    }
}

impl RunCommand for Session {
    fn run_command(&self, line: &str) -> anyhow::Result<Option<Box<dyn CommandOutput>>> {
        self.execute(line)
    }
}

/// Commands that need no GC heap (they run on mini and triage dumps too).
const WITHOUT_HEAP: &[&str] = &[
    "eeversion",
    "modules",
    "lm",
    "clrthreads",
    "threads",
    "setthread",
    "clrstack",
    "help",
    "soshelp",
    "?",
    "dumpmt",
    "name2ee",
];

/// An analysis session: the runtime, a cancellation flag for Ctrl-C, and the heap graph once
/// a command has needed it.
pub struct Session {
    pub runtime: Runtime,
    pub cancel: Arc<AtomicBool>,
    /// Show a progress bar on stderr (when it is a terminal) for long steps.
    pub progress: bool,
    graph: Mutex<Option<Arc<ObjectGraph>>>,
    /// The current thread's TID (`setthread`); the target's first thread when `None`.
    current: Mutex<Option<u32>>,
}

impl Session {
    pub fn new(runtime: Runtime) -> Session {
        Session {
            runtime,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: false,
            graph: Mutex::new(None),
            current: Mutex::new(None),
        }
    }

    /// The heap graph, built by the first command that needs it and kept for the session.
    pub fn graph(&self) -> anyhow::Result<Arc<ObjectGraph>> {
        let mut slot = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = slot.as_ref() {
            return Ok(g.clone());
        }
        let g = Arc::new(ObjectGraph::build(
            &self.runtime,
            &self.cancel,
            self.progress,
        )?);
        *slot = Some(g.clone());
        Ok(g)
    }

    /// Which objects are live: from the heap graph if this session has built it, else from a
    /// mark pass (faster, and nothing is kept).
    pub fn live_set(&self) -> anyhow::Result<LiveSet> {
        let built = self.graph.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match built {
            Some(g) => Ok(LiveSet::from_graph(g)),
            None => LiveSet::mark(&self.runtime, &self.cancel, self.progress),
        }
    }

    /// Runs one command line. `Ok(None)` for an empty line.
    pub fn execute(&self, line: &str) -> anyhow::Result<Option<Box<dyn CommandOutput>>> {
        let cmd = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_start_matches('!')
            .to_ascii_lowercase();
        if let Some(why) = &self.runtime.heap.unavailable {
            if !cmd.is_empty() && !WITHOUT_HEAP.contains(&cmd.as_str()) {
                bail!("{cmd}: {why}");
            }
        }
        let r = self.run_line(line);
        self.explain(&cmd, r)
    }

    fn run_line(&self, line: &str) -> anyhow::Result<Option<Box<dyn CommandOutput>>> {
        let Some((cmd, args)) = split_command(line) else {
            return Ok(None);
        };
        let args = &args[..];
        self.cancel.store(false, Ordering::SeqCst);
        let out: Box<dyn CommandOutput> = match cmd.as_str() {
            "dumpheap" => {
                let opts = DumpHeapOptions::parse(args)?;
                if opts.stat {
                    Box::new(dumpheap::dumpheap_stat(self, &opts)?)
                } else if opts.strings {
                    Box::new(dumpheap::dumpheap_strings(self, &opts)?)
                } else {
                    Box::new(dumpheap::dumpheap(self, &opts)?)
                }
            }
            "dumpobj" | "do" => {
                let addr = first_addr(args, "dumpobj ADDR")?;
                Box::new(dumpobj::dumpobj(self, addr)?)
            }
            "dumparray" | "da" => {
                let mut addr = None;
                let (mut start, mut length) = (0u64, None);
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    match *a {
                        "-start" => start = parse_num(it.next().copied(), "-start")?,
                        "-length" => length = Some(parse_num(it.next().copied(), "-length")?),
                        "-details" | "-nofields" => {}
                        other => addr = Some(parse_addr(Some(other), "dumparray ADDR")?),
                    }
                }
                let addr = addr.context("usage: dumparray ADDR [-start I] [-length N]")?;
                Box::new(dumpobj::dumparray(self, addr, start, length)?)
            }
            "dumpmt" => {
                let (mt, md) = dumpmt::parse(args)?;
                Box::new(dumpmt::dumpmt(self, mt, md)?)
            }
            "gcroot" => {
                let addr = first_addr(args, "gcroot ADDR")?;
                let nostacks = args.iter().any(|a| a.eq_ignore_ascii_case("-nostacks"));
                Box::new(gcroot::gcroot(self, addr, !nostacks)?)
            }
            "objsize" => {
                let addr = first_addr(args, "objsize ADDR")?;
                let stat = args
                    .iter()
                    .any(|a| matches!(a.to_ascii_lowercase().as_str(), "-stat" | "-summary"));
                let short = args.iter().any(|a| a.eq_ignore_ascii_case("-short"));
                Box::new(objects::objsize(self, addr, stat, short)?)
            }
            "dominators" => {
                let o = DominatorsOptions::parse(args)?;
                Box::new(dominators::dominators(self, &o)?)
            }
            "suspects" => {
                let pct = suspects::parse_threshold(args)?;
                Box::new(suspects::suspects(self, pct)?)
            }
            "gchandles" => Box::new(objects::gchandles(self)?),
            "finalizequeue" | "fq" => Box::new(objects::finalizequeue(self)?),
            "eeheap" => match EeHeapParts::parse(args)? {
                EeHeapParts::Gc => Box::new(eeheap::eeheap(self)),
                EeHeapParts::Loader => Box::new(loaderheap::loader_heaps(self)?),
                EeHeapParts::Both => Box::new(eeheap::eeheap_all(self)?),
            },
            "dumpgen" => {
                let (gen, rest) = args.split_first().ok_or_else(|| {
                    anyhow::anyhow!("usage: dumpgen GEN (gen0, gen1, gen2, loh, poh, foh)")
                })?;
                let mut words = vec!["-stat", "-gen", *gen];
                words.extend_from_slice(rest);
                Box::new(dumpheap::dumpheap_stat(
                    self,
                    &DumpHeapOptions::parse(&words)?,
                )?)
            }
            "clrthreads" => Box::new(info::clrthreads(self)?),
            "eeversion" => Box::new(eeversion::eeversion(self)),
            "verifyheap" => Box::new(verifyheap::verifyheap(self)?),
            "name2ee" => {
                let (module, name) = name2ee::parse(args)?;
                Box::new(name2ee::name2ee(self, &module, &name)?)
            }
            "modules" | "lm" => Box::new(modules::modules(self, &ModulesOptions::parse(args)?)),
            "setthread" | "threads" => match setthread::setthread(self, args)? {
                setthread::SetThread::List(l) => Box::new(l),
                setthread::SetThread::Selected(c) => Box::new(c),
            },
            "dumpasync" => {
                let o = DumpAsyncOptions::parse(args)?;
                if o.stats {
                    Box::new(dumpasync::dumpasync_stats(self, &o)?)
                } else if o.coalesce {
                    Box::new(dumpasync::dumpasync_coalesced(self, &o)?)
                } else {
                    Box::new(dumpasync::dumpasync(self, &o)?)
                }
            }
            "dumpstackobjects" | "dso" => Box::new(dso::dso(self, args)?),
            "syncblk" => Box::new(syncblk::syncblk(self, args)?),
            "pe" | "printexception" => Box::new(pe::pe(self, args)?),
            "clrstack" => Box::new(clrstack::clrstack(self, &ClrStackOptions::parse(args)?)?),
            "help" | "soshelp" | "?" => match args.first() {
                Some(topic) => Box::new(help::topic(topic)?),
                None => Box::new(Help::new()),
            },
            other => bail!("unknown command '{other}' (type 'help' for the list)"),
        };
        Ok(Some(out))
    }

    /// [`Session::execute`], with failures on a dump without the GC heap explained.
    fn explain(
        &self,
        cmd: &str,
        r: anyhow::Result<Option<Box<dyn CommandOutput>>>,
    ) -> anyhow::Result<Option<Box<dyn CommandOutput>>> {
        match (&self.runtime.heap.unavailable, r) {
            (Some(_), Err(e)) => Err(e.context(format!(
                "{cmd}: this dump lacks the runtime memory the command reads (it holds no GC \
                 heap either: a mini or triage dump)"
            ))),
            (_, r) => r,
        }
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A command line's command (lowercase, SOS's `!` prefix dropped) and its arguments; `None`
/// for an empty line.
pub(crate) fn split_command(line: &str) -> Option<(String, Vec<&str>)> {
    let mut words = line.split_whitespace();
    let cmd = words.next()?.trim_start_matches('!').to_ascii_lowercase();
    Some((cmd, words.collect()))
}

/// The first argument that is not an option, as a hex address.
pub(crate) fn first_addr(args: &[&str], usage: &str) -> anyhow::Result<u64> {
    parse_addr(args.iter().find(|a| !a.starts_with('-')).copied(), usage)
}

/// Parses a hex address, with or without `0x`.
pub fn parse_addr(s: Option<&str>, usage: &str) -> anyhow::Result<u64> {
    let s = s.with_context(|| format!("usage: {usage}"))?;
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u64::from_str_radix(t, 16).with_context(|| format!("'{s}' is not a hex address"))
}

/// Parses a decimal number (or hex with `0x`).
pub fn parse_num(s: Option<&str>, what: &str) -> anyhow::Result<u64> {
    let s = s.with_context(|| format!("{what} needs a value"))?;
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.with_context(|| format!("'{s}' is not a number for {what}"))
}

/// Serializes an address as "0x…" (JSON has no 64-bit integers every reader handles).
pub fn ser_hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("0x{v:x}"))
}

pub fn ser_hex_opt<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("0x{v:x}")),
        None => s.serialize_none(),
    }
}

/// Thousands separators, as SOS's `n0` format (one implementation, in dn-core).
pub use dn_core::render::n0;

/// The `Warning:` lines that end a command's text: what was skipped, one line each.
pub(crate) fn push_warnings(out: &mut String, warnings: &[String]) {
    for w in warnings {
        out.push_str(&format!("Warning: {w}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_or_without_prefix() {
        assert_eq!(parse_addr(Some("0x7f00"), "x").unwrap(), 0x7f00);
        assert_eq!(parse_addr(Some("7f00"), "x").unwrap(), 0x7f00);
        assert!(parse_addr(Some("zz"), "x").is_err());
        assert!(parse_addr(None, "x").is_err());
    }
}
