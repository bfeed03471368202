//! Where static fields of reference type live, so a root path through a statics holder can say
//! which static it goes through (`(static variable: Type.Field)`, as SOS prints); and which
//! thread-static fields of reference type there are (their storage is per thread: see
//! `thread_statics`).

use rustc_hash::FxHashMap;

use super::static_skips::{StaticSkip, StaticSkips};
use super::thread_statics::ThreadStaticField;
use crate::heap::Runtime;

/// CorElementTypes a static slot holds a reference for (structs are boxed).
fn is_reference_slot(et: u32) -> bool {
    matches!(et, 0xe | 0x11 | 0x12 | 0x14 | 0x1c | 0x1d)
}

/// The reference-typed statics of every loaded type, and what the DAC would not show.
#[derive(Debug, Default)]
pub(crate) struct StaticSlots {
    /// Slot address -> "Namespace.Type.Field".
    pub slots: FxHashMap<u64, String>,
    /// The reference-typed thread-static fields, per type in the order met.
    pub thread_fields: Vec<ThreadStaticField>,
    /// What was skipped, one line per reason: each is a root possibly missing or misnamed.
    pub warnings: Vec<String>,
}

/// Slot address -> "Namespace.Type.Field" for every reference-typed static field of every loaded
/// type, with a warning per kind of thing the DAC would not read; and the thread-static fields
/// of reference type (whose slots differ per thread).
pub(crate) fn static_slots(rt: &Runtime) -> StaticSlots {
    let dac = &rt.dac;
    let mut out = StaticSlots::default();
    let modules = match dac.modules() {
        Ok(m) => m,
        Err(e) => {
            out.warnings.push(format!(
                "the DAC could not list the modules ({e}): no static roots"
            ));
            return out;
        }
    };
    out.warnings
        .extend(modules.warning("their types' statics are not roots"));
    let mut skips = StaticSkips::default();
    for &module in &modules.modules {
        let Ok(types) = dac.module_types(module) else {
            skips.add(StaticSkip::ModuleTypes, module);
            continue;
        };
        for mt in types {
            type_statics(rt, module, mt, &mut out, &mut skips);
        }
    }
    out.warnings.extend(skips.warnings());
    out
}

/// Adds the reference-typed static slots and thread-static fields of one type to `out`,
/// counting in `skips` what the DAC would not read.
fn type_statics(
    rt: &Runtime,
    module: u64,
    mt: u64,
    out: &mut StaticSlots,
    skips: &mut StaticSkips,
) {
    let dac = &rt.dac;
    let Ok(fd) = dac.method_table_field_data(mt) else {
        skips.add(StaticSkip::TypeFields, mt);
        return;
    };
    // wNumStaticFields counts thread statics too.
    let statics = usize::from(fd.num_static_fields);
    if statics == 0 {
        return;
    }
    let Some(own) = own_instance_fields(rt, mt, fd.num_instance_fields) else {
        skips.add(StaticSkip::TypeFields, mt);
        return;
    };
    // None: not asked yet; Some(None): the DAC refused.
    let mut bases: Option<Option<(u64, u64)>> = None;
    let mut base_refused = false;
    let mut addr = fd.first_field;
    // The list holds this type's own instance fields, then its statics. NextField does not end
    // with 0 and the DAC must never see a FieldDesc past the list.
    for _ in 0..own.saturating_add(statics) {
        let f = match (addr != 0).then(|| dac.field_desc_data(addr)) {
            Some(Ok(f)) => f,
            // The list ended early or a FieldDesc was refused: the rest is unknown.
            _ => {
                skips.add(StaticSkip::TypeFields, mt);
                break;
            }
        };
        addr = f.next_field;
        if !f.is_static || !is_reference_slot(f.element_type) {
            continue;
        }
        if f.is_thread_local {
            out.thread_fields.push(ThreadStaticField {
                module,
                mt,
                offset: f.offset,
                name: field_label(rt, module, mt, f.token, skips),
            });
            continue;
        }
        let gc = match *bases.get_or_insert_with(|| dac.statics_bases(mt, module).ok()) {
            Some((_, gc)) => gc,
            None => {
                if !base_refused {
                    skips.add(StaticSkip::StaticsBase, mt);
                    base_refused = true;
                }
                continue;
            }
        };
        // No GC statics allocated (the type's statics are not initialized): nothing to root.
        if gc == 0 {
            continue;
        }
        let Some(slot) = gc.checked_add(u64::from(f.offset)) else {
            skips.add(StaticSkip::TypeFields, mt);
            break;
        };
        let name = field_label(rt, module, mt, f.token, skips);
        out.slots.insert(slot, name);
    }
}

/// "Namespace.Type.Field"; a field the DAC would not name is named by its token (and counted).
fn field_label(rt: &Runtime, module: u64, mt: u64, token: u32, skips: &mut StaticSkips) -> String {
    let field = rt.dac.field_name(module, token).unwrap_or_else(|_| {
        skips.add(StaticSkip::FieldName, mt);
        format!("<field {token:#x}>")
    });
    format!("{}.{field}", rt.heap.type_name(&rt.dac, mt))
}

/// Instance fields a type declares itself (its count minus its parent's).
fn own_instance_fields(rt: &Runtime, mt: u64, num_instance_fields: u16) -> Option<usize> {
    let parent = rt.dac.method_table_data(mt).ok()?.parent;
    let inherited = if parent == 0 {
        0
    } else {
        rt.dac
            .method_table_field_data(parent)
            .ok()?
            .num_instance_fields
    };
    Some(num_instance_fields.saturating_sub(inherited) as usize)
}
