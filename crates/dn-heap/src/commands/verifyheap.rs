//! `verifyheap`: walks every object of the GC heap and every reference they hold; reports the
//! first problems with their addresses (an object the walk could not size or step over, a
//! reference that points where no object starts).

use std::ops::ControlFlow;

use anyhow::bail;
use serde::Serialize;

use super::{ser_hex, Render, Session};
use crate::heap::{HeapObject, RefsRead, WalkError};

/// Problems listed at most; the rest are counted.
const MAX_LISTED: usize = 100;

/// What is wrong at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeapErrorKind {
    /// The walk could not read or step over the object here.
    BadObject,
    /// A reference field points where no object starts.
    BadReference,
    /// The object's references could not be read (its bytes or its type's GCDesc are missing).
    UnreadableReferences,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
pub struct HeapError {
    pub kind: HeapErrorKind,
    /// The object (or, for a bad object, the address the walk was at).
    #[serde(serialize_with = "ser_hex")]
    pub object: u64,
    /// For a bad reference: the field's address and what it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// `verifyheap`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyHeap {
    pub objects: u64,
    pub references: u64,
    /// Problems found in all.
    pub error_count: u64,
    /// The first ones, in address order.
    pub errors: Vec<HeapError>,
}

impl VerifyHeap {
    fn push(&mut self, e: HeapError) {
        self.error_count += 1;
        if self.errors.len() < MAX_LISTED {
            self.errors.push(e);
        }
    }
}

pub fn verifyheap(s: &Session) -> anyhow::Result<VerifyHeap> {
    let rt = &s.runtime;
    let heap = &rt.heap;
    let free = heap.globals.free_mt;
    // Pass 1: where objects start.
    let mut starts: Vec<u64> = Vec::new();
    let mut out = VerifyHeap {
        objects: 0,
        references: 0,
        error_count: 0,
        errors: Vec::new(),
    };
    let issues = heap
        .walk_in_address_order(&rt.dac, Some(&s.cancel), |o| {
            starts.push(o.address);
            ControlFlow::Continue(())
        })
        .map_err(|WalkError::Cancelled| anyhow::anyhow!("cancelled"))?;
    for i in issues {
        out.push(HeapError {
            kind: HeapErrorKind::BadObject,
            object: i.address,
            field: None,
            message: format!("segment {:#x}: {}", i.segment, i.message),
        });
    }
    // Pass 2: every reference lands on an object start.
    let mut found = Vec::new();
    let res = heap.walk_in_address_order(&rt.dac, Some(&s.cancel), |o| {
        if o.mt == free {
            return ControlFlow::Continue(());
        }
        found.push(*o);
        if found.len() >= 4096 {
            check_objects(s, &starts, &mut found, &mut out);
        }
        ControlFlow::Continue(())
    });
    if res.is_err() || s.cancelled() {
        bail!("cancelled");
    }
    check_objects(s, &starts, &mut found, &mut out);
    out.errors.sort_by_key(|e| e.object);
    Ok(out)
}

/// Checks the references of `batch` (then empties it).
fn check_objects(s: &Session, starts: &[u64], batch: &mut Vec<HeapObject>, out: &mut VerifyHeap) {
    let rt = &s.runtime;
    for o in batch.drain(..) {
        out.objects += 1;
        let Some(info) = rt.heap.mt_info(&rt.dac, o.mt) else {
            out.push(HeapError {
                kind: HeapErrorKind::BadObject,
                object: o.address,
                field: None,
                message: format!("MethodTable {:#x} cannot be read", o.mt),
            });
            continue;
        };
        let mut bad = Vec::new();
        let read = rt
            .heap
            .for_each_reference(o.address, &info, o.size, |slot, v| {
                out.references += 1;
                if starts.binary_search(&v).is_err() {
                    bad.push((slot, v));
                }
            });
        for (slot, v) in bad {
            out.push(HeapError {
                kind: HeapErrorKind::BadReference,
                object: o.address,
                field: Some(format!("{slot:#x}")),
                message: format!(
                    "field at +{:#x} holds {v:#x}, where no object starts",
                    slot.wrapping_sub(o.address)
                ),
            });
        }
        if read == RefsRead::Unreadable {
            out.push(HeapError {
                kind: HeapErrorKind::UnreadableReferences,
                object: o.address,
                field: None,
                message: "the object's bytes are not in the dump".into(),
            });
        }
    }
}

impl Render for VerifyHeap {
    fn render(&self) -> String {
        if self.error_count == 0 {
            return format!(
                "No heap corruption detected ({} objects, {} references checked).\n",
                self.objects, self.references
            );
        }
        let mut out = String::new();
        for e in &self.errors {
            out.push_str(&format!("object {:016x}: {}\n", e.object, e.message));
        }
        if self.error_count > self.errors.len() as u64 {
            out.push_str(&format!(
                "... and {} more\n",
                self.error_count - self.errors.len() as u64
            ));
        }
        out.push_str(&format!(
            "{} error(s) in {} objects and {} references.\n",
            self.error_count, self.objects, self.references
        ));
        out
    }
}
