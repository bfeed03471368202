//! Thread-static fields of reference type as roots of their own: one per live thread and field
//! holding an object, named `Type.Field` with the thread's OS id. The runtime keeps a thread's
//! thread statics in storage of its own (a per-thread array reached through a handle before
//! .NET 9, arrays the GC scans with the thread from .NET 9); with each field a root, that
//! storage never dominates what a field holds.

use dn_graph::RootKind;
use rustc_hash::FxHashMap;

use super::static_skips::{StaticSkip, StaticSkips};
use super::{RootDetail, RootRecord, RootSet};
use crate::heap::Runtime;

/// A reference-typed thread-static field of a loaded type.
#[derive(Debug, Clone)]
pub(crate) struct ThreadStaticField {
    pub module: u64,
    pub mt: u64,
    /// Offset of the field's slot from the type's GC thread-statics base.
    pub offset: u32,
    /// "Namespace.Type.Field".
    pub name: String,
}

/// Adds a root for each `fields` entry that holds an object on a live thread, in thread then
/// type order; what the DAC refused goes to the warnings.
pub(super) fn thread_static_roots(rt: &Runtime, fields: &[ThreadStaticField], set: &mut RootSet) {
    if fields.is_empty() {
        return;
    }
    let threads = match rt.dac.threads() {
        Ok(t) => t,
        Err(e) => {
            set.warnings.push(format!(
                "the thread list could not be read ({e}): thread statics are not roots"
            ));
            return;
        }
    };
    // The fields of a type are together: one base per type and thread.
    let mut by_type: FxHashMap<u64, Vec<&ThreadStaticField>> = FxHashMap::default();
    let mut types = Vec::new();
    for f in fields {
        by_type
            .entry(f.mt)
            .or_insert_with(|| {
                types.push(f.mt);
                Vec::new()
            })
            .push(f);
    }
    let mem = rt.heap.memory();
    let mut skips = StaticSkips::default();
    let (mut unreadable, mut overflow) = (0usize, 0usize);
    for t in threads.iter().filter(|t| t.is_live()) {
        for mt in &types {
            let fs = &by_type[mt];
            let gc = match rt.dac.thread_statics_bases(*mt, fs[0].module, t.address) {
                Ok((_, gc)) => gc,
                Err(_) => {
                    skips.add(StaticSkip::ThreadStaticsBase, *mt);
                    continue;
                }
            };
            // This thread has not touched the type's thread statics.
            if gc == 0 {
                continue;
            }
            for f in fs {
                let Some(slot) = gc.checked_add(u64::from(f.offset)) else {
                    overflow += 1;
                    continue;
                };
                match mem.read_u64(slot) {
                    Ok(0) => {}
                    Ok(object) => set.roots.push(RootRecord {
                        kind: RootKind::ThreadStatic,
                        slot,
                        object,
                        interior: false,
                        detail: RootDetail::ThreadStatic {
                            field: f.name.clone(),
                            thread: t.os_id,
                        },
                    }),
                    Err(_) => unreadable += 1,
                }
            }
        }
    }
    set.warnings.extend(skips.warnings());
    if unreadable > 0 {
        set.warnings.push(format!(
            "{unreadable} thread-static field(s) could not be read from the dump: not roots"
        ));
    }
    if overflow > 0 {
        set.warnings.push(format!(
            "{overflow} thread-static field(s) lie past the end of the address space: not roots"
        ));
    }
}
