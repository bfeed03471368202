//! `dumpasync --coalesce` (the stacks as a tree of identical frames with counts) and
//! `dumpasync --stats` (frames counted by description).

use serde::Serialize;

use super::super::{n0, ser_hex, Render, Session};
use super::{collect, Chains, DumpAsyncOptions};

/// Frames that render the same at one level of the coalesced stacks.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncGroup {
    pub count: usize,
    /// The first frame's MethodTable.
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    /// `(state) name` for a state machine, the type name for a task.
    pub description: String,
    /// What continues from the group's frames, grouped the same way.
    pub continuations: Vec<AsyncGroup>,
}

/// `dumpasync --coalesce`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpAsyncCoalesced {
    pub stacks: Vec<AsyncGroup>,
    pub warnings: Vec<String>,
}

/// One row of `dumpasync --stats`.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncStatRow {
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    pub count: usize,
    pub type_name: String,
}

/// `dumpasync --stats`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpAsyncStats {
    pub rows: Vec<AsyncStatRow>,
    pub warnings: Vec<String>,
}

/// No real chain nests this deep; a cycle the continuation links missed must still end.
const MAX_DEPTH: usize = 1024;

/// Groups `frames` by description (first met first, then by count, largest first, keeping
/// that order among equals), and each group's continuations below it.
fn level(c: &Chains, frames: &[u64], depth: usize) -> Vec<AsyncGroup> {
    let mut groups: Vec<(String, Vec<u64>)> = Vec::new();
    for &a in frames {
        let d = c.frames[&a].description();
        match groups.iter_mut().find(|(k, _)| *k == d) {
            Some((_, members)) => members.push(a),
            None => groups.push((d, vec![a])),
        }
    }
    groups.sort_by_key(|(_, m)| std::cmp::Reverse(m.len()));
    groups
        .into_iter()
        .map(|(description, members)| {
            let next: Vec<u64> = members
                .iter()
                .flat_map(|a| c.next[a].iter().copied())
                .collect();
            AsyncGroup {
                count: members.len(),
                mt: c.frames[&members[0]].mt,
                description,
                continuations: if next.is_empty() || depth >= MAX_DEPTH {
                    Vec::new()
                } else {
                    level(c, &next, depth + 1)
                },
            }
        })
        .collect()
}

pub fn dumpasync_coalesced(
    s: &Session,
    o: &DumpAsyncOptions,
) -> anyhow::Result<DumpAsyncCoalesced> {
    let c = collect(s, o)?;
    let roots: Vec<u64> = c.roots.iter().copied().filter(|&r| c.shown(r, o)).collect();
    let stacks = level(&c, &roots, 0);
    Ok(DumpAsyncCoalesced {
        stacks,
        warnings: c.warnings,
    })
}

pub fn dumpasync_stats(s: &Session, o: &DumpAsyncOptions) -> anyhow::Result<DumpAsyncStats> {
    let c = collect(s, o)?;
    let mut rows: Vec<AsyncStatRow> = Vec::new();
    for a in &c.order {
        let f = &c.frames[a];
        // Each frame alone: those selected, and state machines only unless --tasks.
        if !f.selected(o) || !(o.tasks || f.is_state_machine) {
            continue;
        }
        match rows.iter_mut().find(|r| r.type_name == f.type_name) {
            Some(r) => r.count += 1,
            None => rows.push(AsyncStatRow {
                mt: f.mt,
                count: 1,
                type_name: f.type_name.clone(),
            }),
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.count));
    Ok(DumpAsyncStats {
        rows,
        warnings: c.warnings,
    })
}

fn render_group(out: &mut String, g: &AsyncGroup, depth: usize) {
    out.push_str(&format!(
        "{}[{}] {:016x} {}\n",
        "  ".repeat(depth),
        g.count,
        g.mt,
        g.description
    ));
    for c in &g.continuations {
        render_group(out, c, depth + 1);
    }
}

impl Render for DumpAsyncCoalesced {
    fn render(&self) -> String {
        let mut out = String::new();
        for (i, g) in self.stacks.iter().enumerate() {
            out.push_str(&format!("STACKS {}\n", i + 1));
            render_group(&mut out, g, 0);
            out.push('\n');
        }
        crate::commands::push_warnings(&mut out, &self.warnings);
        out
    }
}

impl Render for DumpAsyncStats {
    fn render(&self) -> String {
        let mut out = format!("{:<16} {:<8} Type\n", "MT", "Count");
        for r in &self.rows {
            out.push_str(&format!(
                "{:016x} {:<8} {}\n",
                r.mt,
                n0(r.count as u64),
                r.type_name
            ));
        }
        crate::commands::push_warnings(&mut out, &self.warnings);
        out
    }
}
