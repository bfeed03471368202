//! Small readers of /proc/PID files: stat, status, task list.

use std::fs;
use std::io;

/// Kernel `PF_KTHREAD` bit of the `flags` field in /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of /proc/PID/stat (or task/TID/stat) the dump needs.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub flags: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub nice: i64,
}

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses a stat line. The command name may contain spaces and parentheses,
/// so fields are counted after the last ')'.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|s| s.parse::<i64>().ok());
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: num(4)? as i32,
        pgrp: num(5)? as i32,
        session: num(6)? as i32,
        flags: f.get(9 - 3)?.parse().ok()?,
        utime_ticks: f.get(14 - 3)?.parse().ok()?,
        stime_ticks: f.get(15 - 3)?.parse().ok()?,
        nice: num(19)?,
    })
}

pub fn read_stat(pid: i32) -> io::Result<Stat> {
    read_stat_file(format!("/proc/{pid}/stat"))
}

pub fn read_task_stat(pid: i32, tid: i32) -> io::Result<Stat> {
    read_stat_file(format!("/proc/{pid}/task/{tid}/stat"))
}

fn read_stat_file(path: String) -> io::Result<Stat> {
    let text = fs::read_to_string(path)?;
    parse_stat(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stat line"))
}

/// Thread ids currently listed in /proc/PID/task.
pub fn task_ids(pid: i32) -> io::Result<Vec<i32>> {
    let mut tids = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.push(tid);
        }
    }
    Ok(tids)
}

/// One `Key:` line of /proc/PID/status, e.g. "Uid" -> "0\t0\t0\t0".
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

/// First number of a status field (real uid/gid).
pub fn status_first_u32(status: &str, key: &str) -> Option<u32> {
    status_field(status, key)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A hexadecimal status field such as SigPnd / SigBlk.
pub fn status_hex(status: &str, key: &str) -> u64 {
    status_field(status, key)
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0)
}

pub fn read_status(pid: i32) -> io::Result<String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
}

pub fn read_task_status(pid: i32, tid: i32) -> io::Result<String> {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
}

/// True while the process exists and is neither a zombie nor dead.
pub fn is_alive(pid: i32) -> bool {
    matches!(read_stat(pid), Ok(s) if s.state != 'Z' && s.state != 'X')
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_name() {
        let line =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 5 0 100 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.session, 1234);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.utime_ticks, 7);
        assert_eq!(s.stime_ticks, 3);
        assert_eq!(s.nice, 0);
        assert!(!s.is_kernel_thread());
    }

    #[test]
    fn own_process_is_read() {
        let me = std::process::id() as i32;
        let s = read_stat(me).unwrap();
        assert!(matches!(s.state, 'R' | 'S'), "{}", s.state);
        assert!(task_ids(me).unwrap().contains(&me));
        let st = read_status(me).unwrap();
        assert_eq!(
            status_first_u32(&st, "Uid"),
            Some(nix::unistd::getuid().as_raw())
        );
    }

    #[test]
    fn kthreadd_is_a_kernel_thread() {
        let s = read_stat(2).unwrap();
        assert!(s.is_kernel_thread());
    }
}
