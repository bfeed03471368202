//! Writes a [`Snapshot`] as a `.gcdump` (GCHeapDump 10/8 holding Graphs.MemoryGraph 1/0), the
//! layout `dotnet-gcdump report` and PerfView read. Two passes over the nodes (record lengths
//! for the labels, then the records) so the blob is never held in memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::fastser::{tag, Writer, HEADER};
use crate::snapshot::{cint, Snapshot, UNDEFINED_TYPE};

/// Writes `snap` to `out`.
pub fn write_gcdump<W: Write>(snap: &Snapshot, out: W) -> io::Result<W> {
    check(snap)?;
    let mut w = Writer::new(out);
    w.i32(HEADER.len() as i32)?;
    w.bytes(HEADER)?;
    w.begin_object("GCHeapDump", 10, 8)?;
    write_memory_graph(&mut w, snap)?;
    w.u8(u8::from(snap.is_64bit))?;
    w.f32(1.0)?;
    w.f32(1.0)?;
    w.u8(tag::NULL)?; // JSHeapInfo
    w.u8(tag::NULL)?; // DotNetHeapInfo
    let m = &snap.meta;
    w.string(m.collection_log.as_deref())?;
    w.i64(m.time_ticks)?;
    w.string(None)?; // machine name
    w.string(m.process_name.as_deref())?;
    w.i32(m.process_id)?;
    w.i64(0)?; // total commit
    w.i64(0)?; // working set
    w.i32(0)?; // count multipliers
    if let Some(tool) = &m.creation_tool {
        w.u8(tag::STRING)?;
        w.string(Some(tool))?;
    }
    w.end_object()?;
    w.finish()
}

fn check(snap: &Snapshot) -> io::Result<()> {
    let n = snap.node_count();
    let ok = snap.node_sizes.len() == n
        && snap.addresses.len() == n
        && snap.child_offsets.len() == n + 1
        && (snap.root as usize) < n
        && i32::try_from(n).is_ok()
        && i32::try_from(snap.types.len()).is_ok();
    if ok {
        Ok(())
    } else {
        Err(io::Error::other("inconsistent snapshot columns"))
    }
}

/// The bytes of node `i`'s record: (type<<1 | explicit), [size], child count, child deltas.
fn record_len(snap: &Snapshot, i: usize, explicit: bool) -> usize {
    let t = snap.node_types[i] as i32;
    let children = snap.children_of(i as u32);
    let mut len = cint::len(t.wrapping_shl(1) | i32::from(explicit));
    if explicit {
        len += cint::len(snap.node_sizes[i] as i32);
    }
    len += cint::len(children.len() as i32);
    for &c in children {
        len += cint::len((c as i32).wrapping_sub(i as i32));
    }
    len
}

fn is_undefined(snap: &Snapshot, i: usize) -> bool {
    snap.node_types[i] == UNDEFINED_TYPE && snap.children_of(i as u32).is_empty()
}

fn explicit_size(snap: &Snapshot, i: usize) -> bool {
    let t = snap.node_types[i] as usize;
    snap.types.get(t).map(|t| t.size) != Some(snap.node_sizes[i] as i32)
}

fn write_memory_graph<W: Write>(w: &mut Writer<W>, snap: &Snapshot) -> io::Result<()> {
    w.begin_object("Graphs.MemoryGraph", 1, 0)?;
    w.i64(snap.total_size)?;
    w.i32(snap.root as i32)?;
    w.i32(snap.types.len() as i32)?;
    for t in &snap.types {
        w.string(Some(&t.name))?;
        w.i32(t.size)?;
        w.string(t.module.as_deref())?;
    }
    let n = snap.node_count();
    w.i32(n as i32)?;
    // Offset 0 holds the `00 00` placeholder every undefined node points at.
    let mut next: u64 = 2;
    let mut labels = Vec::with_capacity(64 * 1024);
    for i in 0..n {
        let label = if is_undefined(snap, i) {
            0
        } else {
            let at = next;
            next += record_len(snap, i, explicit_size(snap, i)) as u64;
            at
        };
        labels.extend_from_slice(&(label as u32).to_le_bytes());
        if labels.len() >= 64 * 1024 {
            w.bytes(&labels)?;
            labels.clear();
        }
    }
    w.bytes(&labels)?;
    let blob_len = i32::try_from(next)
        .map_err(|_| io::Error::other("the snapshot does not fit the .gcdump format"))?;
    w.i32(blob_len)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(&[0, 0]);
    for i in 0..n {
        if is_undefined(snap, i) {
            continue;
        }
        let explicit = explicit_size(snap, i);
        let t = snap.node_types[i] as i32;
        cint::write(&mut buf, t.wrapping_shl(1) | i32::from(explicit));
        if explicit {
            cint::write(&mut buf, snap.node_sizes[i] as i32);
        }
        let children = snap.children_of(i as u32);
        cint::write(&mut buf, children.len() as i32);
        for &c in children {
            cint::write(&mut buf, (c as i32).wrapping_sub(i as i32));
        }
        if buf.len() >= 64 * 1024 {
            w.bytes(&buf)?;
            buf.clear();
        }
    }
    w.bytes(&buf)?;
    w.i32(n as i32)?;
    buf.clear();
    for &a in &snap.addresses {
        buf.extend_from_slice(&a.to_le_bytes());
        if buf.len() >= 64 * 1024 {
            w.bytes(&buf)?;
            buf.clear();
        }
    }
    w.bytes(&buf)?;
    w.u8(tag::BYTE)?;
    w.u8(u8::from(snap.is_64bit))?;
    w.end_object()
}

/// Writes `snap` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed. On any error the temporary file is removed and nothing exists under `path`.
pub fn write_file_atomic(snap: &Snapshot, path: &Path) -> io::Result<u64> {
    let tmp = temp_name(path);
    let result = (|| {
        let f = File::create(&tmp)?;
        let f = write_gcdump(snap, BufWriter::with_capacity(1 << 20, f))?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        let len = f.metadata()?.len();
        std::fs::rename(&tmp, path)?;
        Ok(len)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
