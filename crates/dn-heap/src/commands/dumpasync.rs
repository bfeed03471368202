//! `dumpasync`: the async state machines on the heap and what awaits what, as current SOS's
//! (managed) command shows them: each stack starts at a task nothing else continues from and
//! lists, indented, the tasks and state machines that continue when it completes.

use std::ops::ControlFlow;

use anyhow::{bail, Context};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::dumpobj::{fields_of, FieldValue};
use super::{parse_addr, ser_hex, Render, Session};

/// `Task.m_stateFlags` bits of a finished task: RanToCompletion | Faulted | Canceled.
const TASK_COMPLETED: i64 = 0x1000000 | 0x200000 | 0x400000;
/// Continuation links followed at most from one object (wrappers, delegates, lists).
const MAX_HOPS: usize = 8;
/// Continuations taken from one list at most.
const MAX_LIST: u32 = 4096;

/// What `dumpasync` was asked for.
#[derive(Debug, Clone, Default)]
pub struct DumpAsyncOptions {
    pub address: Option<u64>,
    pub mt: Option<u64>,
    pub type_substring: Option<String>,
    /// Show stacks of plain tasks too (without a state machine).
    pub tasks: bool,
    /// Include completed tasks.
    pub completed: bool,
}

impl DumpAsyncOptions {
    pub fn parse(args: &[&str]) -> anyhow::Result<DumpAsyncOptions> {
        let mut o = DumpAsyncOptions::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.to_ascii_lowercase().as_str() {
                "-addr" | "--address" => o.address = Some(parse_addr(it.next().copied(), "dumpasync --address ADDR")?),
                "-mt" | "--methodtable" => o.mt = Some(parse_addr(it.next().copied(), "dumpasync --methodtable MT")?),
                "-type" | "--type" => {
                    o.type_substring = Some(it.next().context("--type needs a type name")?.to_string())
                }
                "-t" | "--tasks" => o.tasks = true,
                "-c" | "--completed" => o.completed = true,
                other => bail!(
                    "unknown dumpasync option '{other}': usage: dumpasync [--address ADDR] [--methodtable MT] [--type NAME] [--tasks] [--completed]"
                ),
            }
        }
        Ok(o)
    }
}

/// One task or state machine in a stack.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncFrame {
    /// Nesting level: 0 is what is awaited, 1 what awaits it, and so on.
    pub depth: usize,
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    /// The state machine's type (`Program+<MainAsync>d__0`), or the task's type.
    pub type_name: String,
    /// `<>1__state` of a state machine: -1 running or not started, N awaiting at await N.
    pub state: Option<i64>,
    /// `Task.m_stateFlags`.
    pub task_flags: i64,
    pub is_state_machine: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AsyncStack {
    pub frames: Vec<AsyncFrame>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DumpAsync {
    pub stacks: Vec<AsyncStack>,
    pub warnings: Vec<String>,
}

#[derive(Clone)]
enum Kind {
    Other,
    Task,
    /// An AsyncStateMachineBox, with its state machine's type name.
    Box(String),
}

fn field<'a>(fields: &'a [FieldValue], name: &str) -> Option<&'a FieldValue> {
    fields.iter().find(|f| !f.is_static && f.name == name)
}

fn hex_value(f: Option<&FieldValue>) -> u64 {
    f.and_then(|f| f.value.as_str())
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

struct Scan<'s> {
    s: &'s Session,
    kinds: FxHashMap<u64, Kind>,
}

impl Scan<'_> {
    fn kind(&mut self, mt: u64) -> Kind {
        if let Some(k) = self.kinds.get(&mt) {
            return k.clone();
        }
        let (dac, heap) = (&self.s.runtime.dac, &self.s.runtime.heap);
        let name = heap.type_name(dac, mt);
        let k = if let Some(at) = name.find("AsyncStateMachineBox<") {
            // ...AsyncTaskMethodBuilder<T>+AsyncStateMachineBox<TStateMachine>
            let inner = &name[at + "AsyncStateMachineBox<".len()..];
            Kind::Box(inner.strip_suffix('>').unwrap_or(inner).to_string())
        } else {
            let mut m = mt;
            let mut k = Kind::Other;
            for _ in 0..64 {
                if m == 0 {
                    break;
                }
                if heap.type_name(dac, m) == "System.Threading.Tasks.Task" {
                    k = Kind::Task;
                    break;
                }
                m = dac.method_table_data(m).map(|d| d.parent).unwrap_or(0);
            }
            k
        };
        self.kinds.insert(mt, k.clone());
        k
    }

    fn mt_of(&self, obj: u64) -> Option<u64> {
        self.s
            .runtime
            .heap
            .memory()
            .read_u64(obj)
            .ok()
            .map(|m| m & !7)
    }

    fn fields(&self, obj: u64) -> Vec<FieldValue> {
        match self.mt_of(obj) {
            Some(mt) => fields_of(&self.s.runtime.dac, &self.s.runtime.heap, mt, obj),
            None => Vec::new(),
        }
    }

    /// The tasks a continuation object stands for: a task or box itself, or what a wrapper,
    /// a delegate or a list of continuations leads to.
    fn resolve(&mut self, obj: u64, tasks: &FxHashSet<u64>, hops: usize, out: &mut Vec<u64>) {
        if obj == 0 || hops > MAX_HOPS {
            return;
        }
        if tasks.contains(&obj) {
            out.push(obj);
            return;
        }
        let fields = self.fields(obj);
        if let Some(items) = field(&fields, "_items").map(|f| hex_value(Some(f))) {
            // List<object>: several continuations.
            let mem = self.s.runtime.heap.memory();
            let n = mem
                .read_u32(items.wrapping_add(8))
                .unwrap_or(0)
                .min(MAX_LIST);
            for i in 0..u64::from(n) {
                if let Ok(e) = mem.read_u64(items + 16 + i * 8) {
                    self.resolve(e, tasks, hops + 1, out);
                }
            }
            return;
        }
        for name in [
            "m_task",
            "_continuation",
            "_target",
            "m_action",
            "StateMachine",
        ] {
            let v = hex_value(field(&fields, name));
            if v != 0 && v != obj {
                self.resolve(v, tasks, hops + 1, out);
                return;
            }
        }
    }

    /// `<>1__state` of a box's state machine (a struct inside the box in release builds, an
    /// object in debug builds).
    fn state(&self, fields: &[FieldValue]) -> Option<i64> {
        let sm = field(fields, "StateMachine")?;
        let at = hex_value(Some(sm));
        if at == 0 {
            return None;
        }
        let inner = if sm.is_value_type {
            fields_of(
                &self.s.runtime.dac,
                &self.s.runtime.heap,
                sm.mt,
                at.checked_sub(8)?,
            )
        } else {
            self.fields(at)
        };
        field(&inner, "<>1__state")?.value.as_i64()
    }
}

pub fn dumpasync(s: &Session, o: &DumpAsyncOptions) -> anyhow::Result<DumpAsync> {
    let (dac, heap) = (&s.runtime.dac, &s.runtime.heap);
    let mut scan = Scan {
        s,
        kinds: FxHashMap::default(),
    };
    let mut found: Vec<(u64, u64)> = Vec::new();
    let issues = heap.walk(dac, Some(&s.cancel), |obj| {
        // SOS skips objects too small to be a task.
        if obj.size > 24 && !matches!(scan.kind(obj.mt), Kind::Other) {
            found.push((obj.address, obj.mt));
        }
        ControlFlow::Continue(())
    })?;
    let mut warnings: Vec<String> = issues
        .iter()
        .map(|i| format!("heap walk: {:x}: {}", i.address, i.message))
        .collect();
    if s.cancelled() {
        warnings.push("cancelled: the heap was not walked to the end".into());
    }
    // Every task's facts and continuations.
    let mut frames: FxHashMap<u64, AsyncFrame> = FxHashMap::default();
    let mut raw_next: FxHashMap<u64, u64> = FxHashMap::default();
    for &(addr, mt) in &found {
        let fields = scan.fields(addr);
        let flags = field(&fields, "m_stateFlags")
            .and_then(|f| f.value.as_i64())
            .unwrap_or(0);
        if flags & TASK_COMPLETED != 0 && !o.completed {
            continue;
        }
        let (type_name, state, is_sm) = match scan.kind(mt) {
            Kind::Box(name) => (name, scan.state(&fields), true),
            _ => (heap.type_name(dac, mt), None, false),
        };
        raw_next.insert(addr, hex_value(field(&fields, "m_continuationObject")));
        frames.insert(
            addr,
            AsyncFrame {
                depth: 0,
                address: addr,
                mt,
                type_name,
                state,
                task_flags: flags,
                is_state_machine: is_sm,
            },
        );
    }
    let kept: FxHashSet<u64> = frames.keys().copied().collect();
    let mut next: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
    let mut continued: FxHashSet<u64> = FxHashSet::default();
    let mut addrs: Vec<u64> = kept.iter().copied().collect();
    addrs.sort_unstable();
    for &a in &addrs {
        let mut out = Vec::new();
        scan.resolve(raw_next[&a], &kept, 0, &mut out);
        out.retain(|&c| c != a);
        continued.extend(out.iter().copied());
        next.insert(a, out);
    }
    let mut stacks = Vec::new();
    for &root in addrs.iter().filter(|a| !continued.contains(a)) {
        let mut list = Vec::new();
        let mut seen = FxHashSet::default();
        let mut todo = vec![(root, 0usize)];
        while let Some((a, depth)) = todo.pop() {
            if !seen.insert(a) {
                continue;
            }
            let mut f = frames[&a].clone();
            f.depth = depth;
            list.push(f);
            for &c in next[&a].iter().rev() {
                todo.push((c, depth + 1));
            }
        }
        let any_sm = list.iter().any(|f| f.is_state_machine);
        let matches = list.iter().any(|f| {
            o.address.is_none_or(|x| f.address == x)
                && o.mt.is_none_or(|m| f.mt == m)
                && o.type_substring
                    .as_ref()
                    .is_none_or(|t| f.type_name.contains(t.as_str()))
        });
        if (any_sm || o.tasks) && matches {
            stacks.push(AsyncStack { frames: list });
        }
    }
    Ok(DumpAsync { stacks, warnings })
}

impl Render for DumpAsync {
    fn render(&self) -> String {
        let mut out = String::new();
        for (i, st) in self.stacks.iter().enumerate() {
            out.push_str(&format!("STACK {}\n", i + 1));
            for f in &st.frames {
                let state = match f.state {
                    Some(s) => s.to_string(),
                    None if f.task_flags & 0x1000000 != 0 => "RanToCompletion".into(),
                    None if f.task_flags & 0x200000 != 0 => "Faulted".into(),
                    None if f.task_flags & 0x400000 != 0 => "Canceled".into(),
                    None => " ".into(),
                };
                out.push_str(&format!(
                    "{}{:016x} {:016x} ({state}) {}\n",
                    "  ".repeat(f.depth),
                    f.address,
                    f.mt,
                    f.type_name
                ));
            }
            out.push('\n');
        }
        for w in &self.warnings {
            out.push_str(&format!("Warning: {w}\n"));
        }
        out
    }
}
