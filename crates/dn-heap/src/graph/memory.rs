//! Before the heap graph is allocated: its estimated size against what this process may still
//! allocate (the machine's available memory, a cgroup limit, `ulimit -v`).

use anyhow::bail;
use dn_graph::HeapGraph;

/// Refuses to build a graph the machine cannot hold (estimated before allocating).
pub(super) fn check_memory(objects: usize, already: usize) -> anyhow::Result<()> {
    // References per object are not known before reading them; heaps measured here hold 1-3.
    // `already`: the node columns, allocated by now (and no longer in what is available).
    let estimate = HeapGraph::estimate_bytes(objects, objects.saturating_mul(3))
        .saturating_sub(already as u64);
    fits(objects, estimate, available_memory())
}

/// The refusal, when `estimate` bytes are more than `available` (`None`: unknown, allowed).
fn fits(
    objects: usize,
    estimate: u64,
    available: Option<(u64, &'static str)>,
) -> anyhow::Result<()> {
    match available {
        Some((avail, what)) if estimate > avail => bail!(
            "the heap graph of {objects} objects needs about {} MiB, more than the {} MiB {what}",
            estimate >> 20,
            avail >> 20
        ),
        _ => Ok(()),
    }
}

/// What this process may still allocate: the least of the machine's available memory, the
/// room left in its cgroup (a container's limit) and its address-space limit (`ulimit -v`).
fn available_memory() -> Option<(u64, &'static str)> {
    let mut best: Option<(u64, &'static str)> = None;
    let mut consider = |v: Option<u64>, what: &'static str| {
        if let Some(v) = v {
            if best.is_none_or(|b| v < b.0) {
                best = Some((v, what));
            }
        }
    };
    consider(meminfo_available(), "of memory available on this machine");
    consider(
        cgroup_room(),
        "left under this process's cgroup memory limit",
    );
    consider(
        address_space_room(),
        "left under its address-space limit (ulimit -v)",
    );
    best
}

/// MemAvailable, in bytes.
fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// memory.max - memory.current of this process's cgroup (v2), when it has a limit.
fn cgroup_room() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?; // "max" (no limit) fails here
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// RLIMIT_AS minus the address space in use (VmSize), when a limit is set.
fn address_space_room() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?; // "unlimited" fails here
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(soft.saturating_sub(kib.saturating_mul(1024)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_graph_bigger_than_the_memory_left() {
        let e = fits(
            30_000_000,
            2_000 << 20,
            Some((1_000 << 20, "of memory available on this machine")),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "the heap graph of 30000000 objects needs about 2000 MiB, more than the 1000 MiB of memory available on this machine"
        );
        assert!(fits(10, 1 << 20, Some((2 << 20, "x"))).is_ok());
        assert!(fits(10, u64::MAX, None).is_ok());
    }

    #[test]
    fn this_machine_reports_its_available_memory() {
        let (avail, _) = available_memory().expect("MemAvailable is readable on Linux");
        assert!(avail > 0);
    }
}
