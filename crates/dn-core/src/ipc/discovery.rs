//! Finding runtimes' diagnostics sockets on Linux.
//!
//! A runtime listens on `$TMPDIR/dotnet-diagnostic-<pid>-<key>-socket`, where TMPDIR is the
//! *target's*, pid is the pid inside the target's PID namespace and key is the target's start time
//! (field 22 of `/proc/PID/stat`). Sockets of exited runtimes linger (SIGKILL leaves them), and pids
//! get reused, so a socket only counts when its key matches the live process's start time.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::IpcError;

const PREFIX: &str = "dotnet-diagnostic-";
const SUFFIX: &str = "-socket";

/// Where a runtime can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pid as this tool sees it.
    pub pid: i32,
    /// The pid inside the target's own PID namespace (equal to `pid` outside containers).
    pub ns_pid: i32,
    pub socket: PathBuf,
}

/// Facts about a process read from /proc, each of which may be unavailable to us.
#[derive(Debug, Clone, Default)]
pub struct ProcFacts {
    pub starttime: Option<u64>,
    pub ns_pid: Option<i32>,
    pub in_other_namespace: bool,
    /// The target's TMPDIR (None when unset or unreadable).
    pub tmpdir: Option<PathBuf>,
    pub environ_readable: bool,
    pub zombie: bool,
}

pub fn proc_facts(pid: i32) -> Option<ProcFacts> {
    let proc = procfs::process::Process::new(pid).ok()?;
    let stat = proc.stat().ok()?;
    let mut facts = ProcFacts {
        starttime: Some(stat.starttime),
        zombie: stat.state == 'Z' || stat.state == 'X',
        ..Default::default()
    };
    if let Ok(status) = proc.status() {
        if let Some(ns) = status.nspid.filter(|v| !v.is_empty()) {
            facts.in_other_namespace = ns.len() > 1;
            facts.ns_pid = ns.last().copied();
        }
    }
    if let Ok(env) = proc.environ() {
        facts.environ_readable = true;
        facts.tmpdir = env
            .get(OsStr::new("TMPDIR"))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    Some(facts)
}

/// This tool's own temp directory, as the runtime would compute it.
fn own_tmpdir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Directories where `pid`'s socket may be, most likely first.
fn candidate_dirs(pid: i32, facts: &ProcFacts) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let target_tmp = facts
        .tmpdir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    if facts.in_other_namespace {
        // The socket lives in the container's filesystem, reachable through /proc/PID/root.
        let rel = target_tmp.strip_prefix("/").unwrap_or(&target_tmp);
        dirs.push(PathBuf::from(format!("/proc/{pid}/root")).join(rel));
    } else {
        dirs.push(target_tmp);
        if !facts.environ_readable {
            // Without the target's environment, guess it shares ours.
            dirs.push(own_tmpdir());
        }
    }
    dirs.dedup();
    dirs
}

/// Parses `dotnet-diagnostic-<pid>-<key>-socket` into (pid, key).
pub fn parse_socket_name(name: &OsStr) -> Option<(i32, u64)> {
    let s = std::str::from_utf8(name.as_bytes()).ok()?;
    let mid = s.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (pid, key) = mid.split_once('-')?;
    Some((pid.parse().ok()?, key.parse().ok()?))
}

struct SocketFile {
    path: PathBuf,
    key: u64,
    mtime: SystemTime,
}

fn sockets_in(dir: &Path, ns_pid: i32) -> Vec<SocketFile> {
    all_sockets_in(dir)
        .into_iter()
        .filter(|(pid, _)| *pid == ns_pid)
        .map(|(_, f)| f)
        .collect()
}

/// Every diagnostics socket file in `dir`, with the pid its name carries. Only the matching
/// names are stat'ed: temp dirs can hold thousands of unrelated files.
fn all_sockets_in(dir: &Path) -> Vec<(i32, SocketFile)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let (pid, key) = parse_socket_name(&e.file_name())?;
            let mtime = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Some((
                pid,
                SocketFile {
                    path: e.path(),
                    key,
                    mtime,
                },
            ))
        })
        .collect()
}

/// Picks the live runtime's socket among the files named for `ns_pid`: the key must equal the
/// process start time (the runtime writes 0 when it cannot compute it); newest first.
fn pick_socket(mut files: Vec<SocketFile>, starttime: Option<u64>) -> Option<PathBuf> {
    files.retain(|f| match starttime {
        Some(st) => f.key == st || f.key == 0,
        None => true,
    });
    files.sort_by_key(|f| std::cmp::Reverse(f.mtime));
    files.into_iter().next().map(|f| f.path)
}

/// Finds the diagnostics socket of `pid`.
pub fn find_endpoint(pid: i32) -> Result<Endpoint, IpcError> {
    let facts = proc_facts(pid).ok_or(IpcError::NoSuchProcess { pid })?;
    find_endpoint_with(pid, &facts)
}

/// [`find_endpoint`] for a process whose /proc facts were already read.
fn find_endpoint_with(pid: i32, facts: &ProcFacts) -> Result<Endpoint, IpcError> {
    if facts.zombie {
        return Err(IpcError::NoSuchProcess { pid });
    }
    let ns_pid = facts.ns_pid.unwrap_or(pid);
    let dirs = candidate_dirs(pid, facts);
    for dir in &dirs {
        if let Some(socket) = pick_socket(sockets_in(dir, ns_pid), facts.starttime) {
            return Ok(Endpoint {
                pid,
                ns_pid,
                socket,
            });
        }
    }
    Err(IpcError::NoSocket {
        pid,
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Every process with a live-looking diagnostics socket that this user can see, by pid.
///
/// Two sources, as the .NET tools use: socket names in the shared temp directories, and a /proc
/// walk for processes with their own TMPDIR or in another PID namespace. Stale files (dead pid, or a
/// key that is not the live process's start time) are skipped.
///
/// Each endpoint is handed over as soon as it is found, so a caller can start talking to the first
/// runtimes while the /proc walk goes on.
pub fn for_each_endpoint(mut on_found: impl FnMut(Endpoint)) {
    let me = std::process::id() as i32;
    let mut found: std::collections::BTreeSet<i32> = Default::default();

    // 1. Names in the shared temp dirs, each read once: cheap, and covers every same-namespace
    //    default case, including processes of other users whose environment we cannot read.
    let mut shared_dirs = vec![own_tmpdir(), PathBuf::from("/tmp")];
    shared_dirs.dedup_by(|a, b| same_dir(a, b));
    let mut by_pid: BTreeMap<i32, Vec<SocketFile>> = BTreeMap::new();
    for dir in &shared_dirs {
        for f in all_sockets_in(dir) {
            by_pid.entry(f.0).or_default().push(f.1);
        }
    }
    for (pid, files) in by_pid {
        if pid == me {
            continue;
        }
        let Some(stat) = procfs::process::Process::new(pid)
            .and_then(|p| p.stat())
            .ok()
        else {
            continue; // the pid is gone: stale files
        };
        if matches!(stat.state, 'Z' | 'X') {
            continue;
        }
        if let Some(socket) = pick_socket(files, Some(stat.starttime)) {
            found.insert(pid);
            on_found(Endpoint {
                pid,
                ns_pid: pid,
                socket,
            });
        }
    }

    // 2. The /proc walk: processes with a TMPDIR of their own or in a container.
    let my_ns = std::fs::read_link("/proc/self/ns/pid").ok();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me
                || found.contains(&pid)
                || !worth_a_closer_look(pid, my_ns.as_deref(), &shared_dirs)
            {
                continue;
            }
            let Some(facts) = proc_facts(pid) else {
                continue;
            };
            let special = facts.in_other_namespace
                || facts
                    .tmpdir
                    .as_deref()
                    .is_some_and(|t| !shared_dirs.iter().any(|d| same_dir(d, t)));
            if special {
                if let Ok(ep) = find_endpoint_with(pid, &facts) {
                    on_found(ep);
                }
            }
        }
    }
}

/// A cheap first filter for the /proc walk (it runs for every process on the machine): only a
/// process in another PID namespace, or with a TMPDIR of its own, can hide a socket from step 1.
fn worth_a_closer_look(pid: i32, my_ns: Option<&Path>, shared_dirs: &[PathBuf]) -> bool {
    if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .as_deref()
        != my_ns
    {
        return true;
    }
    match std::fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env
            .split(|b| *b == 0)
            .filter_map(|kv| kv.strip_prefix(b"TMPDIR="))
            .any(|t| {
                !t.is_empty()
                    && !shared_dirs
                        .iter()
                        .any(|d| same_dir(d, Path::new(OsStr::from_bytes(t))))
            }),
        Err(_) => false,
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let trim = |p: &Path| p.to_string_lossy().trim_end_matches('/').to_string();
    trim(a) == trim(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_parse() {
        assert_eq!(
            parse_socket_name(OsStr::new("dotnet-diagnostic-7191-1505673-socket")),
            Some((7191, 1505673))
        );
        assert_eq!(
            parse_socket_name(OsStr::new("dotnet-diagnostic-7191-socket")),
            None
        );
        assert_eq!(
            parse_socket_name(OsStr::new("clr-debug-pipe-7191-1505673-in")),
            None
        );
        assert_eq!(
            parse_socket_name(OsStr::new("dotnet-diagnostic-x-1-socket")),
            None
        );
    }

    #[test]
    fn stale_keys_lose_to_the_live_start_time() {
        let t = SystemTime::UNIX_EPOCH;
        let files = vec![
            SocketFile {
                path: "/tmp/old".into(),
                key: 5,
                mtime: t + std::time::Duration::from_secs(9),
            },
            SocketFile {
                path: "/tmp/live".into(),
                key: 7,
                mtime: t,
            },
        ];
        assert_eq!(
            pick_socket(files, Some(7)),
            Some(PathBuf::from("/tmp/live"))
        );
        let files = vec![SocketFile {
            path: "/tmp/old".into(),
            key: 5,
            mtime: t,
        }];
        assert_eq!(pick_socket(files, Some(7)), None);
    }

    #[test]
    fn missing_pid_is_a_clear_error() {
        let e = find_endpoint(i32::MAX).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("process {} is not running", i32::MAX)
        );
    }
}
