//! `clrthreads`, `help`.

use serde::Serialize;

use super::{ser_hex, Render, Session, COMMANDS};

#[derive(Debug, Clone, Serialize)]
pub struct ThreadRow {
    pub managed_id: u32,
    pub os_id: u32,
    #[serde(serialize_with = "ser_hex")]
    pub thread: u64,
    pub state: u32,
    pub gc_mode: &'static str,
    #[serde(serialize_with = "ser_hex")]
    pub alloc_context_ptr: u64,
    #[serde(serialize_with = "ser_hex")]
    pub alloc_context_limit: u64,
    pub lock_count: i32,
    pub background: bool,
    pub dead: bool,
    pub finalizer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

/// `clrthreads`.
#[derive(Debug, Clone, Serialize)]
pub struct ClrThreads {
    pub thread_count: i32,
    pub unstarted: i32,
    pub background: i32,
    pub pending: i32,
    pub dead: i32,
    pub threads: Vec<ThreadRow>,
}

pub fn clrthreads(s: &Session) -> anyhow::Result<ClrThreads> {
    let rt = &s.runtime;
    let store = rt.dac.thread_store()?;
    let mem = rt.heap.memory();
    let threads = rt
        .dac
        .threads()?
        .into_iter()
        .map(|t| {
            let exception = (t.last_thrown_object_handle != 0)
                .then(|| mem.read_u64(t.last_thrown_object_handle).ok())
                .flatten()
                .filter(|&o| o != 0)
                .and_then(|o| {
                    rt.heap
                        .object_at(&rt.dac, o)
                        .map(|(i, _)| rt.heap.type_name(&rt.dac, i.mt))
                });
            ThreadRow {
                managed_id: t.managed_id,
                os_id: t.os_id,
                thread: t.address,
                state: t.state,
                gc_mode: if t.preemptive_gc_disabled {
                    "Cooperative"
                } else {
                    "Preemptive"
                },
                alloc_context_ptr: t.alloc_context_ptr,
                alloc_context_limit: t.alloc_context_limit,
                lock_count: t.lock_count as i32,
                background: t.state & 0x200 != 0,
                dead: t.state & 0x800 != 0,
                finalizer: t.address == store.finalizer_thread,
                exception,
            }
        })
        .collect();
    Ok(ClrThreads {
        thread_count: store.thread_count,
        unstarted: store.unstarted,
        background: store.background,
        pending: store.pending,
        dead: store.dead,
        threads,
    })
}

impl Render for ClrThreads {
    fn render(&self) -> String {
        let mut out = format!(
            "ThreadCount:      {}\nUnstartedThread:  {}\nBackgroundThread: {}\nPendingThread:    {}\nDeadThread:       {}\n",
            self.thread_count, self.unstarted, self.background, self.pending, self.dead
        );
        out.push_str(&format!(
            "{:>4} {:>6} {:>16} {:>8} {:>11} {:>33} {:>4} {}\n",
            "ID", "OSID", "ThreadOBJ", "State", "GC Mode", "GC Alloc Context", "Lock", "Exception"
        ));
        for t in &self.threads {
            let mut ex = t.exception.clone().unwrap_or_default();
            if t.finalizer {
                ex = format!("(Finalizer) {ex}");
            }
            out.push_str(&format!(
                "{:>4} {:>6x} {:016x} {:>8x} {:>11} {:016x}:{:016x} {:>4} {}\n",
                t.managed_id,
                t.os_id,
                t.thread,
                t.state,
                t.gc_mode,
                t.alloc_context_ptr,
                t.alloc_context_limit,
                t.lock_count,
                ex.trim_end()
            ));
        }
        out
    }
}

/// `help`.
#[derive(Debug, Clone, Serialize)]
pub struct Help {
    pub commands: Vec<HelpRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelpRow {
    pub name: &'static str,
    pub help: &'static str,
}

impl Help {
    pub fn new() -> Help {
        Help {
            commands: COMMANDS
                .iter()
                .map(|&(name, help)| HelpRow { name, help })
                .collect(),
        }
    }
}

impl Default for Help {
    fn default() -> Self {
        Help::new()
    }
}

impl Render for Help {
    fn render(&self) -> String {
        let mut out = String::from("Commands:\n");
        for c in &self.commands {
            out.push_str(&format!("  {:<14} {}\n", c.name, c.help));
        }
        out
    }
}
