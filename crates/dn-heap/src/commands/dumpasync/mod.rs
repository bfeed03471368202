//! `dumpasync`: the async state machines on the heap and what awaits what, as current SOS's
//! (managed) command shows them: each stack starts at a task nothing else continues from and
//! lists, indented, the tasks and state machines that continue when it completes.
//! `--fields` adds each frame's state machine fields ([`fields`]); `--coalesce` and `--stats`
//! group the same frames ([`views`]).

mod fields;
mod views;

pub use fields::AsyncField;
pub use views::{
    dumpasync_coalesced, dumpasync_stats, AsyncGroup, AsyncStatRow, DumpAsyncCoalesced,
    DumpAsyncStats,
};

use std::ops::ControlFlow;

use anyhow::{bail, Context};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::dumpobj::{fields_of, FieldValue};
use super::gcroot::{gcroot, GcRoot};
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
    /// Show each frame's state machine fields (the task's, for a plain task).
    pub fields: bool,
    /// Count the frames by type instead of showing stacks.
    pub stats: bool,
    /// Group stacks and parts of stacks that are the same, with counts.
    pub coalesce: bool,
    /// What keeps each stack alive: gcroot of its last frame.
    pub roots: bool,
}

const USAGE: &str = "usage: dumpasync [--address ADDR] [--methodtable MT] [--type NAME] [--tasks] [--completed] [--fields] [--roots] [--stats | --coalesce]";

impl DumpAsyncOptions {
    pub fn parse(args: &[&str]) -> anyhow::Result<DumpAsyncOptions> {
        let mut o = DumpAsyncOptions::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.to_ascii_lowercase().as_str() {
                "-addr" | "--address" => {
                    o.address = Some(parse_addr(it.next().copied(), "dumpasync --address ADDR")?)
                }
                "-mt" | "--methodtable" => {
                    o.mt = Some(parse_addr(
                        it.next().copied(),
                        "dumpasync --methodtable MT",
                    )?)
                }
                "-type" | "--type" => {
                    o.type_substring =
                        Some(it.next().context("--type needs a type name")?.to_string())
                }
                "-t" | "--tasks" => o.tasks = true,
                "-c" | "--completed" => o.completed = true,
                "-f" | "--fields" => o.fields = true,
                "--stats" => o.stats = true,
                "--coalesce" => o.coalesce = true,
                // The old native SOS's -stacks (show the continuation chains) is what dumpasync
                // always does now.
                "-stacks" | "--stacks" => {}
                "-roots" | "--roots" => o.roots = true,
                other => bail!("unknown dumpasync option '{other}': {USAGE}"),
            }
        }
        if o.stats && o.coalesce {
            bail!("dumpasync: --stats and --coalesce are two views; choose one");
        }
        if o.roots && (o.stats || o.coalesce) {
            bail!("dumpasync --roots roots each stack: it does not go with --stats or --coalesce");
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
    /// With `--fields`: the state machine's fields (the task's for a plain task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<AsyncField>>,
}

impl AsyncFrame {
    /// SOS's grouping key and description: `(state) name` for a state machine, the name else.
    fn description(&self) -> String {
        match (self.is_state_machine, self.state) {
            (true, Some(st)) => format!("({st}) {}", self.type_name),
            (true, None) => format!("(0) {}", self.type_name),
            _ => self.type_name.clone(),
        }
    }

    /// Whether the frame is one `--address`, `--methodtable` and `--type` ask for.
    fn selected(&self, o: &DumpAsyncOptions) -> bool {
        o.address.is_none_or(|x| self.address == x)
            && o.mt.is_none_or(|m| self.mt == m)
            && o.type_substring
                .as_ref()
                .is_none_or(|t| self.type_name.contains(t.as_str()))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AsyncStack {
    pub frames: Vec<AsyncFrame>,
    /// With `--roots`: gcroot of the stack's last frame (what keeps the whole chain alive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roots: Option<GcRoot>,
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

    /// A box's state machine (a struct inside the box in release builds, an object in debug
    /// builds): the address its fields' offsets count from, and its fields.
    fn state_machine(&self, fields: &[FieldValue]) -> Option<(u64, Vec<FieldValue>)> {
        let sm = field(fields, "StateMachine")?;
        let at = hex_value(Some(sm));
        if at == 0 {
            return None;
        }
        if sm.is_value_type {
            let base = at.checked_sub(8)?;
            let inner = fields_of(&self.s.runtime.dac, &self.s.runtime.heap, sm.mt, base);
            Some((base, inner))
        } else {
            Some((at, self.fields(at)))
        }
    }
}

/// Every task and state machine kept (heap order), what continues from each, and the stacks'
/// first frames (those nothing continues from), before the selection by options.
struct Chains {
    frames: FxHashMap<u64, AsyncFrame>,
    /// Kept addresses in heap order.
    order: Vec<u64>,
    next: FxHashMap<u64, Vec<u64>>,
    roots: Vec<u64>,
    warnings: Vec<String>,
}

impl Chains {
    /// Whether the stack from `root` has a selected frame and (unless `--tasks`) a state
    /// machine, as SOS decides which stacks to show.
    fn shown(&self, root: u64, o: &DumpAsyncOptions) -> bool {
        let (mut selected, mut sm) = (false, o.tasks);
        let mut seen = FxHashSet::default();
        let mut todo = vec![root];
        while let Some(a) = todo.pop() {
            if !seen.insert(a) {
                continue;
            }
            let f = &self.frames[&a];
            selected |= f.selected(o);
            sm |= f.is_state_machine;
            if selected && sm {
                return true;
            }
            todo.extend(self.next[&a].iter().copied());
        }
        false
    }
}

fn collect(s: &Session, o: &DumpAsyncOptions) -> anyhow::Result<Chains> {
    let (dac, heap) = (&s.runtime.dac, &s.runtime.heap);
    let mem = heap.memory();
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
    let type_of = |obj: u64| {
        mem.read_u64(obj)
            .ok()
            .map(|mt| heap.type_name(dac, mt & !7))
    };
    // Every task's facts and continuations.
    let mut frames: FxHashMap<u64, AsyncFrame> = FxHashMap::default();
    let mut raw_next: FxHashMap<u64, u64> = FxHashMap::default();
    let mut order = Vec::new();
    for &(addr, mt) in &found {
        let fields = scan.fields(addr);
        let flags = field(&fields, "m_stateFlags")
            .and_then(|f| f.value.as_i64())
            .unwrap_or(0);
        if flags & TASK_COMPLETED != 0 && !o.completed {
            continue;
        }
        let (type_name, sm, is_sm) = match scan.kind(mt) {
            Kind::Box(name) => (name, scan.state_machine(&fields), true),
            _ => (heap.type_name(dac, mt), None, false),
        };
        let state = sm
            .as_ref()
            .and_then(|(_, f)| field(f, "<>1__state"))
            .and_then(|f| f.value.as_i64());
        let shown_fields = o.fields.then(|| match &sm {
            Some((base, f)) => fields::field_rows(mem, f, *base, &type_of),
            None if is_sm => Vec::new(),
            None => fields::field_rows(mem, &fields, addr, &type_of),
        });
        raw_next.insert(addr, hex_value(field(&fields, "m_continuationObject")));
        order.push(addr);
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
                fields: shown_fields,
            },
        );
    }
    let kept: FxHashSet<u64> = order.iter().copied().collect();
    let mut next: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
    let mut continued: FxHashSet<u64> = FxHashSet::default();
    for &a in &order {
        let mut out = Vec::new();
        scan.resolve(raw_next[&a], &kept, 0, &mut out);
        out.retain(|&c| c != a);
        continued.extend(out.iter().copied());
        next.insert(a, out);
    }
    let roots = order
        .iter()
        .copied()
        .filter(|a| !continued.contains(a))
        .collect();
    Ok(Chains {
        frames,
        order,
        next,
        roots,
        warnings,
    })
}

/// `dumpasync`: each stack from its first frame, continuations indented below.
pub fn dumpasync(s: &Session, o: &DumpAsyncOptions) -> anyhow::Result<DumpAsync> {
    let c = collect(s, o)?;
    let mut stacks = Vec::new();
    for &root in c.roots.iter().filter(|&&r| c.shown(r, o)) {
        let mut list = Vec::new();
        let mut seen = FxHashSet::default();
        let mut todo = vec![(root, 0usize)];
        while let Some((a, depth)) = todo.pop() {
            if !seen.insert(a) {
                continue;
            }
            let mut f = c.frames[&a].clone();
            f.depth = depth;
            list.push(f);
            for &n in c.next[&a].iter().rev() {
                todo.push((n, depth + 1));
            }
        }
        stacks.push(AsyncStack {
            frames: list,
            roots: None,
        });
    }
    let mut warnings = c.warnings;
    if o.roots {
        for st in &mut stacks {
            let Some(tail) = st.frames.last().map(|f| f.address) else {
                continue;
            };
            match gcroot(s, tail, true) {
                Ok(r) => st.roots = Some(r),
                Err(e) => warnings.push(format!("gcroot {tail:x}: {e:#}")),
            }
        }
    }
    Ok(DumpAsync { stacks, warnings })
}

/// `Task.m_stateFlags` as SOS names them, `|`-separated; a space when none is set.
fn task_flags_text(flags: i64) -> String {
    const NAMES: [(i64, &str); 10] = [
        (0x10000, "Started"),
        (0x20000, "DelegateInvoked"),
        (0x40000, "Disposed"),
        (0x80000, "ExceptionObservedByParent"),
        (0x100000, "CancellationAcknowledged"),
        (0x200000, "Faulted"),
        (0x400000, "Canceled"),
        (0x800000, "WaitingOnChildren"),
        (0x1000000, "RanToCompletion"),
        (0x4000000, "CompletionReserved"),
    ];
    let set: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, n)| n)
        .collect();
    if set.is_empty() {
        " ".into()
    } else {
        set.join("|")
    }
}

impl Render for DumpAsync {
    fn render(&self) -> String {
        let mut out = String::new();
        for (i, st) in self.stacks.iter().enumerate() {
            out.push_str(&format!("STACK {}\n", i + 1));
            for f in &st.frames {
                let state = match (f.is_state_machine, f.state) {
                    (true, st) => st.unwrap_or(0).to_string(),
                    (false, _) => task_flags_text(f.task_flags),
                };
                out.push_str(&format!(
                    "{}{:016x} {:016x} ({state}) {}\n",
                    "  ".repeat(f.depth),
                    f.address,
                    f.mt,
                    f.type_name
                ));
                if let Some(fs) = &f.fields {
                    fields::render_fields(&mut out, fs, (f.depth + 4) * 2);
                }
            }
            if let Some(r) = &st.roots {
                out.push_str(&format!("Roots of {:016x}:\n", r.target));
                out.push_str(&r.render());
                out.push('\n');
            }
            out.push('\n');
        }
        crate::commands::push_warnings(&mut out, &self.warnings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_conflicts_are_one_line_errors() {
        let o = DumpAsyncOptions::parse(&["-f", "--coalesce", "-t", "-stacks"]).unwrap();
        assert!(o.fields && o.coalesce && o.tasks && !o.stats && !o.roots);
        let o = DumpAsyncOptions::parse(&["--roots", "--type", "Outer"]).unwrap();
        assert!(o.roots && o.type_substring.as_deref() == Some("Outer"));
        for bad in [
            &["--stats", "--coalesce"][..],
            &["--roots", "--stats"],
            &["--bogus"],
            &["--address"],
        ] {
            let e = DumpAsyncOptions::parse(bad).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{bad:?}: {e}");
        }
    }

    #[test]
    fn task_flags_are_named_as_sos_names_them() {
        assert_eq!(task_flags_text(0x2000400), " ");
        assert_eq!(task_flags_text(0x1010000), "Started|RanToCompletion");
    }
}
