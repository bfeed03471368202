//! The labels that tell processes apart on one /metrics endpoint (`serve --all`): pid, process,
//! runtime_version, and container_id for a process in another PID namespace.

use dn_core::ps::DotnetProcess;

pub type Labels = Vec<(String, String)>;

pub fn process_labels(p: &DotnetProcess) -> Labels {
    let mut l = vec![
        ("pid".to_string(), p.pid.to_string()),
        ("process".to_string(), p.name.clone()),
        (
            "runtime_version".to_string(),
            p.runtime_version.clone().unwrap_or_default(),
        ),
    ];
    if let Some(id) = container_id(p.pid) {
        l.push(("container_id".to_string(), id));
    }
    l
}

/// For a process in another PID namespace: the container's id from its cgroup path (Docker,
/// containerd, CRI-O, Podman all put the 64-hex-digit id there), else the PID namespace itself
/// (`pidns-<inode>`). `None` for processes in our own namespace.
pub fn container_id(pid: i32) -> Option<String> {
    let facts = dn_core::ipc::discovery::proc_facts(pid)?;
    if !facts.in_other_namespace {
        return None;
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    if let Some(id) = id_in_cgroup(&cgroup) {
        return Some(id);
    }
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let ns = ns.to_string_lossy();
    let inode = ns.trim_start_matches("pid:[").trim_end_matches(']');
    Some(format!("pidns-{inode}"))
}

/// The last 64-hex-digit word of a cgroup file (`/docker/<id>`, `cri-containerd-<id>.scope`...).
fn id_in_cgroup(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .rfind(|w| w.len() == 64)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_cgroup_paths() {
        let id = "a".repeat(64);
        assert_eq!(
            id_in_cgroup(&format!("0::/system.slice/docker-{id}.scope\n")),
            Some(id.clone())
        );
        assert_eq!(
            id_in_cgroup(&format!("12:memory:/kubepods/besteffort/pod1/{id}\n")),
            Some(id)
        );
        assert_eq!(id_in_cgroup("0::/user.slice/session-1.scope\n"), None);
    }
}
