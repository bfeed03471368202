//! `dn-ps`: every .NET process the user can see, with what can be known about each.
//!
//! Unlike `dotnet-trace ps`, which only lists socket names, we ask each runtime about itself
//! (ProcessInfo) so the runtime version, architecture and entry assembly are shown. A process we
//! cannot talk to is still listed, with the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::ipc::{self, DiagnosticsClient, Endpoint, IpcError, Timeouts};
use crate::render::{Align, Table};

/// One row of the listing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DotnetProcess {
    pub pid: i32,
    /// What to call the process: the entry assembly for `dotnet app.dll`, else the process name.
    pub name: String,
    /// The kernel's name for the process (`comm`).
    pub process_name: String,
    pub executable: Option<String>,
    pub command_line: Option<String>,
    pub runtime_version: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub entrypoint_assembly: Option<String>,
    pub runtime_identifier: Option<String>,
    pub socket: String,
    /// Why some facts are missing (no permission, old runtime...); None when all went well.
    pub reason: Option<String>,
}

/// Timeouts for listing: a hung runtime must not hold up the whole list.
const LIST_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    io: Duration::from_secs(2),
};

/// Lists every .NET process visible to this user, sorted by pid. Each runtime is asked in its own
/// thread, started as soon as discovery finds it, so runtimes answer while /proc is still walked.
pub fn list_processes() -> Vec<DotnetProcess> {
    let rows = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        ipc::discovery::for_each_endpoint(|ep| {
            let rows = &rows;
            s.spawn(move || {
                if let Some(row) = describe(&ep) {
                    rows.lock().unwrap_or_else(|e| e.into_inner()).push(row);
                }
            });
        });
    });
    let mut rows = rows.into_inner().unwrap_or_else(|e| e.into_inner());
    rows.sort_by_key(|r| r.pid);
    rows
}

/// The listing as people read it: a table (with a NOTE column when some process has a reason),
/// or one line saying there is nothing to list. `width` cuts long values with `…`.
pub fn render_listing(rows: &[DotnetProcess], width: Option<usize>) -> String {
    if rows.is_empty() {
        return "No .NET processes were found.\n".to_string();
    }
    table(rows).render(width)
}

fn table(rows: &[DotnetProcess]) -> Table {
    let with_notes = rows.iter().any(|r| r.reason.is_some());
    let mut t = Table::new()
        .column("PID", Align::Right, false)
        .column("NAME", Align::Left, true)
        .column("RUNTIME", Align::Left, false)
        .column("ARCH", Align::Left, false)
        .column("COMMAND LINE", Align::Left, true);
    if with_notes {
        t = t.column("NOTE", Align::Left, true);
    }
    let dash = || "-".to_string();
    for r in rows {
        let mut cells = vec![
            r.pid.to_string(),
            r.name.clone(),
            r.runtime_version.clone().unwrap_or_else(dash),
            r.arch.clone().unwrap_or_else(dash),
            r.command_line.clone().unwrap_or_else(dash),
        ];
        if with_notes {
            cells.push(r.reason.clone().unwrap_or_default());
        }
        t.row(cells);
    }
    t
}

/// Describes one endpoint; None when it turned out to be stale (no runtime listening).
pub fn describe(ep: &Endpoint) -> Option<DotnetProcess> {
    let proc_ = procfs::process::Process::new(ep.pid).ok();
    let process_name = proc_
        .as_ref()
        .and_then(|p| p.stat().ok())
        .map(|s| s.comm)
        .unwrap_or_default();
    let executable = proc_
        .as_ref()
        .and_then(|p| p.exe().ok())
        .map(|p| p.display().to_string());
    let proc_cmdline = proc_
        .as_ref()
        .and_then(|p| p.cmdline().ok())
        .filter(|v| !v.is_empty())
        .map(|v| v.join(" "));

    let mut row = DotnetProcess {
        pid: ep.pid,
        name: process_name.clone(),
        process_name,
        executable,
        command_line: proc_cmdline,
        runtime_version: None,
        os: None,
        arch: None,
        entrypoint_assembly: None,
        runtime_identifier: None,
        socket: ep.socket.display().to_string(),
        reason: None,
    };

    let client = DiagnosticsClient::new(&ep.socket).with_timeouts(LIST_TIMEOUTS);
    match ipc::process::process_info(&client) {
        Ok(info) => {
            row.command_line = Some(info.command_line)
                .filter(|c| !c.is_empty())
                .or(row.command_line);
            row.runtime_version = info.runtime_version;
            row.os = Some(info.os);
            row.arch = Some(info.arch);
            row.runtime_identifier = info.runtime_identifier;
            row.entrypoint_assembly = info.entrypoint_assembly;
        }
        Err(e) if e.is_stale() => return None,
        Err(e) if e.is_unknown_command() => {
            // .NET Core 3.x has no Process command set: learn what we can from /proc.
            row.runtime_version = runtime_version_from_maps(ep.pid);
            row.os = Some("Linux".into());
            row.reason = Some(
                "the runtime predates ProcessInfo (.NET Core 3.x): facts read from /proc".into(),
            );
        }
        Err(e) => {
            row.runtime_version = runtime_version_from_maps(ep.pid);
            row.reason = Some(reason_for(&e));
        }
    }
    if let Some(asm) = &row.entrypoint_assembly {
        if is_dotnet_host(&row.process_name, row.executable.as_deref()) {
            row.name = asm.clone();
        }
    }
    Some(row)
}

fn reason_for(e: &IpcError) -> String {
    if e.is_permission() {
        let owner = match e {
            IpcError::Connect { path, .. } => ipc::socket_owner(path)
                .map(|uid| format!(" (uid {uid})"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        format!("permission denied: the runtime's socket belongs to another user{owner}; run as that user or as root")
    } else {
        e.to_string()
    }
}

fn is_dotnet_host(comm: &str, exe: Option<&str>) -> bool {
    comm == "dotnet" || exe.is_some_and(|e| Path::new(e).file_name().is_some_and(|f| f == "dotnet"))
}

/// The runtime version of a process whose runtime did not say it: from the folder of the
/// `libcoreclr.so` it maps (`.../Microsoft.NETCore.App/3.1.3/`), or for a self-contained app from
/// the `includedFrameworks` of the `*.runtimeconfig.json` beside it.
pub fn runtime_version_from_maps(pid: i32) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let coreclr = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libcoreclr.so"))?;
    let dir = Path::new(coreclr).parent()?;
    // Read through the process's root so containers work too.
    let dir_seen =
        PathBuf::from(format!("/proc/{pid}/root")).join(dir.strip_prefix("/").unwrap_or(dir));
    let name = dir.file_name()?.to_str()?;
    if name.chars().next().is_some_and(|c| c.is_ascii_digit()) && name.contains('.') {
        return Some(name.to_string());
    }
    for entry in std::fs::read_dir(&dir_seen).ok()?.flatten() {
        let fname = entry.file_name();
        if !fname.to_string_lossy().ends_with(".runtimeconfig.json") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let opts = &json["runtimeOptions"];
        let frameworks = opts["includedFrameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                opts["includedFramework"]
                    .as_object()
                    .map(|_| &opts["includedFramework"]),
            );
        for fw in frameworks {
            if fw["name"] == "Microsoft.NETCore.App" {
                return fw["version"].as_str().map(str::to_string);
            }
        }
    }
    None
}
