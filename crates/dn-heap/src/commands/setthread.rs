//! `threads` / `setthread`: the dump's OS threads by debugger index, and the current thread
//! the thread commands (`clrstack`, `pe`, `dso`) work on.

use anyhow::{bail, Context};
use serde::Serialize;

use super::{Render, Session};

/// One OS thread.
#[derive(Debug, Clone, Serialize)]
pub struct OsThread {
    pub index: usize,
    pub os_thread_id: u32,
    pub current: bool,
}

/// `setthread` without arguments: the threads, the current one marked.
#[derive(Debug, Clone, Serialize)]
pub struct OsThreads {
    pub threads: Vec<OsThread>,
}

/// `setthread N` / `setthread -t OSID`: the thread now current.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentThread {
    pub index: usize,
    pub os_thread_id: u32,
}

impl Session {
    /// Linux TIDs by debugger index.
    pub(crate) fn thread_ids(&self) -> Vec<u32> {
        self.runtime.target.thread_ids()
    }

    /// The current thread as (index, TID); the first thread until one is selected.
    pub(crate) fn current_thread(&self) -> anyhow::Result<(usize, u32)> {
        let ids = self.thread_ids();
        let want = *self.current.lock().unwrap_or_else(|e| e.into_inner());
        match want {
            Some(tid) => ids
                .iter()
                .position(|&t| t == tid)
                .map(|i| (i, tid))
                .context("the current thread is not in the target any more"),
            None => ids
                .first()
                .map(|&t| (0, t))
                .context("the target has no threads"),
        }
    }

    /// The debugger index of a TID.
    pub(crate) fn thread_index(&self, tid: u32) -> Option<usize> {
        self.thread_ids().iter().position(|&t| t == tid)
    }
}

/// Parses a thread id given as decimal or `0x` hex.
fn parse_tid(s: &str) -> anyhow::Result<u32> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.with_context(|| format!("'{s}' is not a thread id (decimal, or hex with 0x)"))
}

pub enum SetThread {
    List(OsThreads),
    Selected(CurrentThread),
}

pub fn setthread(s: &Session, args: &[&str]) -> anyhow::Result<SetThread> {
    let ids = s.thread_ids();
    let select = |index: usize| -> anyhow::Result<SetThread> {
        let tid = *ids.get(index).with_context(|| {
            format!(
                "no thread with index {index}: the target has {} threads (0..{})",
                ids.len(),
                ids.len().saturating_sub(1)
            )
        })?;
        *s.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(tid);
        Ok(SetThread::Selected(CurrentThread {
            index,
            os_thread_id: tid,
        }))
    };
    let mut it = args.iter();
    match it.next().copied() {
        None => {
            let (cur, _) = s.current_thread()?;
            Ok(SetThread::List(OsThreads {
                threads: ids
                    .iter()
                    .enumerate()
                    .map(|(index, &os_thread_id)| OsThread {
                        index,
                        os_thread_id,
                        current: index == cur,
                    })
                    .collect(),
            }))
        }
        Some("-t" | "--tid") => {
            let v = it.next().context("usage: setthread -t OSID")?;
            let tid = parse_tid(v)?;
            let index = ids
                .iter()
                .position(|&t| t == tid)
                .with_context(|| format!("no thread with OS id {tid} (0x{tid:x}) in the target"))?;
            select(index)
        }
        Some(n) if !n.starts_with('-') => {
            let index: usize = n
                .parse()
                .with_context(|| format!("'{n}' is not a thread index"))?;
            select(index)
        }
        Some(other) => bail!("unknown option '{other}': usage: setthread [N] | setthread -t OSID"),
    }
}

impl Render for OsThreads {
    fn render(&self) -> String {
        let mut out = String::new();
        for t in &self.threads {
            out.push_str(&format!(
                "{}{} 0x{:04X} ({})\n",
                if t.current { "*" } else { " " },
                t.index,
                t.os_thread_id,
                t.os_thread_id
            ));
        }
        out
    }
}

impl Render for CurrentThread {
    fn render(&self) -> String {
        format!(
            "Current thread: {} 0x{:04X} ({})",
            self.index, self.os_thread_id, self.os_thread_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_ids_are_decimal_or_hex() {
        assert_eq!(parse_tid("1801").unwrap(), 1801);
        assert_eq!(parse_tid("0x709").unwrap(), 0x709);
        assert!(parse_tid("709h").is_err());
        assert!(parse_tid("-1").is_err());
    }
}
