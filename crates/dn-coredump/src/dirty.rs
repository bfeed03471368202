//! Which pages the target wrote after the pre-copy read them. Where the kernel keeps soft-dirty
//! bits (`CONFIG_MEM_SOFT_DIRTY`), clearing them (`echo 4 > /proc/PID/clear_refs`) before the
//! pre-copy and reading pagemap bit 55 during the stop names exactly those pages, as CRIU does.
//! Clearing them only write-protects the target's page table entries: its next write to each
//! page takes a minor fault that sets the bit again; its memory and behaviour are unchanged.
//! Without soft-dirty bits, every resident page is read again during the stop and compared with
//! what the pre-copy wrote to the file; only the pages that differ are written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use serde::Serialize;

use crate::maps::PAGE;
use crate::memory;

/// How the stop finds the pages written since the pre-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tracking {
    /// pagemap's soft-dirty bits: only written pages are read during the stop.
    SoftDirty,
    /// No soft-dirty bits (kernel without `CONFIG_MEM_SOFT_DIRTY`): every resident page is read
    /// during the stop and compared with the file.
    Compare,
}

/// The tracking this kernel offers: soft-dirty if a page this process writes after clearing
/// its own bits shows bit 55, else [`Tracking::Compare`].
pub fn probe() -> Tracking {
    if soft_dirty_works().unwrap_or(false) {
        Tracking::SoftDirty
    } else {
        Tracking::Compare
    }
}

fn soft_dirty_works() -> io::Result<bool> {
    let mut buf = vec![1u8; 2 * PAGE as usize];
    let base = buf.as_ptr() as u64;
    let first = (base.div_ceil(PAGE) * PAGE - base) as usize;
    clear(std::process::id() as i32)?;
    buf[first] = 2;
    let page = std::hint::black_box(&buf).as_ptr() as u64 + first as u64;
    let pagemap = File::open("/proc/self/pagemap")?;
    let mut raw = [0u8; 8];
    pagemap.read_exact_at(&mut raw, page / PAGE * 8)?;
    let entry = u64::from_le_bytes(raw);
    Ok(memory::holds_data(entry) && memory::soft_dirty(entry))
}

/// Clears the soft-dirty bits of every page of process `pid`.
pub fn clear(pid: i32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/clear_refs"))?;
    f.write_all(b"4")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_agrees_with_the_kernel_config_where_it_is_readable() {
        let t = probe();
        assert_eq!(probe(), t, "the probe's answer is the kernel's, not chance");
        // /proc/config.gz is optional; where it exists its answer must match the probe.
        let Ok(out) = std::process::Command::new("sh")
            .args(["-c", "zcat /proc/config.gz | grep MEM_SOFT_DIRTY"])
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("CONFIG_MEM_SOFT_DIRTY=y") {
            assert_eq!(t, Tracking::SoftDirty, "{text}");
        } else if text.contains("CONFIG_MEM_SOFT_DIRTY is not set") {
            assert_eq!(t, Tracking::Compare, "{text}");
        }
    }
}
