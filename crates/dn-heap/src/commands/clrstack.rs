//! `clrstack [-a] [-p] [-l] [-all] [-f] [-c N]`: managed stacks through the DAC's stack walk,
//! in SOS's shape.

use anyhow::bail;
use serde::Serialize;

use super::{parse_num, Render, Session};
use crate::dac::{FrameKind, StackFrame, VarLocation, VarValue, Variable, WalkError, WalkOptions};

/// What `clrstack` was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClrStackOptions {
    pub all: bool,
    pub walk: WalkOptions,
    /// `-f`: `module!method + offset`.
    pub full_names: bool,
}

impl ClrStackOptions {
    pub fn parse(args: &[&str]) -> anyhow::Result<ClrStackOptions> {
        let mut o = ClrStackOptions::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.to_ascii_lowercase().as_str() {
                "-a" => {
                    o.walk.arguments = true;
                    o.walk.locals = true;
                }
                "-p" => o.walk.arguments = true,
                "-l" => o.walk.locals = true,
                "-all" => o.all = true,
                "-f" => o.full_names = true,
                // Source lines come from PDBs, which we do not read: `-n` changes nothing.
                "-n" => {}
                "-c" => {
                    let n = parse_num(it.next().copied(), "-c")?;
                    o.walk.max_frames = Some(usize::try_from(n).unwrap_or(usize::MAX));
                }
                other => bail!(
                    "unknown clrstack option '{other}': usage: clrstack [-a] [-p] [-l] [-all] [-f] [-c N]"
                ),
            }
        }
        Ok(o)
    }
}

/// One thread's stack.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadStack {
    pub os_thread_id: u32,
    /// Debugger index (`setthread N`); `None` if the thread is not among the target's threads.
    pub index: Option<usize>,
    pub frames: Vec<StackFrame>,
    /// Why there is no stack (not a managed thread, the walk could not start).
    pub error: Option<String>,
    /// Why the walk ended early; the frames before it are kept.
    pub incomplete: Option<String>,
}

/// `clrstack`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct ClrStack {
    pub all: bool,
    pub full_names: bool,
    pub threads: Vec<ThreadStack>,
    /// Walks that stopped early, one line each.
    pub warnings: Vec<String>,
}

pub fn clrstack(s: &Session, o: &ClrStackOptions) -> anyhow::Result<ClrStack> {
    let tids: Vec<u32> = if o.all {
        s.runtime
            .dac
            .threads()?
            .iter()
            .filter(|t| t.os_id != 0)
            .map(|t| t.os_id)
            .collect()
    } else {
        vec![s.current_thread()?.1]
    };
    let mut threads = Vec::new();
    let mut warnings = Vec::new();
    for tid in tids {
        if s.cancelled() {
            warnings.push("cancelled: not every thread was walked".to_string());
            break;
        }
        let index = s.thread_index(tid);
        let t = match s.runtime.dac.walk_stack(tid, o.walk, &s.cancel) {
            Ok(w) => {
                if let Some(why) = &w.stopped {
                    warnings.push(format!("thread 0x{tid:x}: {why}"));
                }
                ThreadStack {
                    os_thread_id: tid,
                    index,
                    frames: w.frames,
                    error: None,
                    incomplete: w.stopped,
                }
            }
            Err(e) => {
                if o.all || !matches!(e, WalkError::NotManaged(_)) {
                    warnings.push(e.to_string());
                }
                ThreadStack {
                    os_thread_id: tid,
                    index,
                    frames: Vec::new(),
                    error: Some(e.to_string()),
                    incomplete: None,
                }
            }
        };
        threads.push(t);
    }
    Ok(ClrStack {
        all: o.all,
        full_names: o.full_names,
        threads,
        warnings,
    })
}

fn render_variable(out: &mut String, v: &Variable) {
    out.push_str("        ");
    if let Some(n) = &v.name {
        out.push_str(n);
        out.push(' ');
    }
    match v.location {
        VarLocation::Memory(a) if v.name.is_some() => out.push_str(&format!("(0x{a:016X}) ")),
        VarLocation::Memory(a) => out.push_str(&format!("0x{a:016X} ")),
        VarLocation::Register => out.push_str("(<CLR reg>) "),
        VarLocation::Unknown => {}
    }
    if v.name.is_some() || v.location != VarLocation::Unknown {
        out.push_str("= ");
    }
    match v.value {
        VarValue::Bits(b) => out.push_str(&format!("0x{b:016x}")),
        VarValue::Large => out.push_str("0x0000000000000000"),
        VarValue::NoData => out.push_str("<no data>"),
        VarValue::Unreadable => out.push_str("<unable to retrieve data>"),
    }
    out.push('\n');
}

impl ThreadStack {
    fn render(&self, out: &mut String, all: bool, full_names: bool) {
        match (all, self.index) {
            (false, Some(i)) => {
                out.push_str(&format!("OS Thread Id: 0x{:x} ({i})\n", self.os_thread_id))
            }
            _ => out.push_str(&format!("OS Thread Id: 0x{:x}\n", self.os_thread_id)),
        }
        if let Some(e) = &self.error {
            if !all {
                out.push_str(
                    "Unable to walk the managed stack. The current thread is likely not a managed thread. \
                     You can run clrthreads to get a list of managed threads in the process\n",
                );
            }
            out.push_str(&format!("({e})\n"));
            return;
        }
        out.push_str("        Child SP               IP Call Site\n");
        for f in &self.frames {
            match f.kind {
                FrameKind::Runtime => {
                    let ip = if full_names {
                        " ".repeat(16)
                    } else {
                        format!("{:016x}", f.ip)
                    };
                    out.push_str(&format!(
                        "{:016X} {ip} [{}: {:016x}] {}\n",
                        f.frame_address,
                        f.frame_name.as_deref().unwrap_or("Frame"),
                        f.frame_address,
                        f.method.as_deref().unwrap_or("")
                    ));
                }
                FrameKind::Managed => {
                    let name = match (&f.method, full_names) {
                        (Some(m), true) => {
                            let mut n = format!("{}!{m}", f.module.as_deref().unwrap_or("UNKNOWN"));
                            if let Some(off) = f.offset {
                                n.push_str(&format!(" + {off}"));
                            }
                            n
                        }
                        (Some(m), false) => m.clone(),
                        (None, _) => "<unknown>".to_string(),
                    };
                    out.push_str(&format!("{:016X} {:016X} {name}\n", f.sp, f.ip));
                    let mut any = false;
                    if let Some(args) = f.arguments.as_ref().filter(|a| !a.is_empty()) {
                        out.push_str("    PARAMETERS:\n");
                        args.iter().for_each(|v| render_variable(out, v));
                        any = true;
                    }
                    if let Some(locals) = f.locals.as_ref().filter(|l| !l.is_empty()) {
                        out.push_str("    LOCALS:\n");
                        locals.iter().for_each(|v| render_variable(out, v));
                        any = true;
                    }
                    if any || f.arguments.is_some() || f.locals.is_some() {
                        out.push('\n');
                    }
                }
            }
        }
        if let Some(why) = &self.incomplete {
            let _ = why; // the reason is in the warnings
            out.push_str("<failed>\nStack Walk failed. Reported stack incomplete.\n");
        }
    }
}

impl Render for ClrStack {
    fn render(&self) -> String {
        let mut out = String::new();
        for t in &self.threads {
            t.render(&mut out, self.all, self.full_names);
        }
        crate::commands::push_warnings(&mut out, &self.warnings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_sos() {
        let o = ClrStackOptions::parse(&["-a", "-all"]).unwrap();
        assert!(o.all && o.walk.arguments && o.walk.locals);
        let o = ClrStackOptions::parse(&["-p", "-c", "5"]).unwrap();
        assert!(o.walk.arguments && !o.walk.locals);
        assert_eq!(o.walk.max_frames, Some(5));
        assert!(ClrStackOptions::parse(&["-bogus"]).is_err());
        assert!(ClrStackOptions::parse(&["-c"]).is_err());
    }
}
