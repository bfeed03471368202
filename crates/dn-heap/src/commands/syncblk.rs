//! `syncblk [-all] [N]`: the sync block table: which object's lock is held, by which thread,
//! how many wait.

use anyhow::{bail, Context};
use serde::Serialize;

use super::{ser_hex, Render, Session};

/// The thread owning a lock.
#[derive(Debug, Clone, Serialize)]
pub struct LockOwner {
    /// The runtime's `Thread*`.
    #[serde(serialize_with = "ser_hex")]
    pub thread: u64,
    /// `None` when no managed thread has that address (orphaned lock).
    pub os_thread_id: Option<u32>,
    pub managed_thread_id: Option<u32>,
    /// Debugger index (`setthread N`).
    pub index: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncBlockRow {
    pub index: u32,
    #[serde(serialize_with = "ser_hex")]
    pub sync_block: u64,
    /// Bit 0: held; plus 2 per thread waiting to enter.
    pub monitor_held: u32,
    pub recursion: u32,
    pub owner: Option<LockOwner>,
    #[serde(serialize_with = "ser_hex")]
    pub object: u64,
    pub type_name: String,
    pub free: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncBlk {
    pub rows: Vec<SyncBlockRow>,
    pub total: u32,
    pub free: u32,
}

pub fn syncblk(s: &Session, args: &[&str]) -> anyhow::Result<SyncBlk> {
    let mut all = false;
    let mut only = None;
    for a in args {
        match *a {
            "-all" => all = true,
            o if o.starts_with('-') => {
                bail!("unknown syncblk option '{o}': usage: syncblk [-all] [N]")
            }
            n => {
                only = Some(
                    n.parse::<u32>()
                        .with_context(|| format!("'{n}' is not a sync block index"))?,
                )
            }
        }
    }
    let dac = &s.runtime.dac;
    let blocks = dac.sync_blocks()?;
    if let Some(n) = only {
        if n == 0 || n as usize > blocks.len() {
            bail!(
                "no sync block {n}: the table has {} (1..{})",
                blocks.len(),
                blocks.len()
            );
        }
    }
    let threads = dac.threads()?;
    let mut rows = Vec::new();
    for b in &blocks {
        let shown = match only {
            Some(n) => b.index == n,
            None => all || (b.monitor_held > 0 && !b.free),
        };
        if !shown {
            continue;
        }
        let owner = (b.holding_thread != 0).then(|| {
            // The owner is a `Thread*`; a runtime whose lock is managed may give the managed
            // thread id instead.
            let t = threads
                .iter()
                .find(|t| t.address == b.holding_thread)
                .or_else(|| {
                    threads
                        .iter()
                        .find(|t| u64::from(t.managed_id) == b.holding_thread)
                });
            LockOwner {
                thread: b.holding_thread,
                os_thread_id: t.map(|t| t.os_id),
                managed_thread_id: t.map(|t| t.managed_id),
                index: t.and_then(|t| s.thread_index(t.os_id)),
            }
        });
        let type_name = if b.object == 0 {
            String::new()
        } else {
            s.runtime
                .heap
                .memory()
                .read_u64(b.object)
                .ok()
                .map(|mt| s.runtime.heap.type_name(dac, mt & !7))
                .unwrap_or_else(|| "<unreadable>".into())
        };
        rows.push(SyncBlockRow {
            index: b.index,
            sync_block: b.address,
            monitor_held: b.monitor_held,
            recursion: b.recursion,
            owner,
            object: b.object,
            type_name,
            free: b.free,
        });
    }
    Ok(SyncBlk {
        rows,
        total: blocks.len() as u32,
        free: blocks.iter().filter(|b| b.free).count() as u32,
    })
}

impl Render for SyncBlk {
    fn render(&self) -> String {
        let mut out = String::from(
            "Index         SyncBlock MonitorHeld Recursion Owning Thread Info          SyncBlock Owner\n",
        );
        for r in &self.rows {
            let owner = match &r.owner {
                None => format!("{:16} none", 0),
                Some(o) => match (o.os_thread_id, o.index) {
                    (Some(os), Some(i)) => format!("{:016X} {os:x} {i:3}", o.thread),
                    (Some(os), None) => format!("{:016X} {os:x} XXX", o.thread),
                    (None, _) => format!("{:016X} orphaned", o.thread),
                },
            };
            out.push_str(&format!(
                "{:5} {:016X} {:12} {:9} {owner}   {:016x} {}\n",
                r.index, r.sync_block, r.monitor_held, r.recursion, r.object, r.type_name
            ));
        }
        out.push_str(&format!(
            "-----------------------------\nTotal           {}\nFree            {}\n",
            self.total, self.free
        ));
        out
    }
}
