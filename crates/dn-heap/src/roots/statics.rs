//! Where static fields of reference type live, so a root path through a statics holder can say
//! which static it goes through (`(static variable: Type.Field)`, as SOS prints).

use rustc_hash::FxHashMap;

use crate::heap::Runtime;

/// CorElementTypes a static slot holds a reference for (structs are boxed).
fn is_reference_slot(et: u32) -> bool {
    matches!(et, 0xe | 0x11 | 0x12 | 0x14 | 0x1c | 0x1d)
}

/// Slot address -> "Namespace.Type.Field" for every reference-typed static field of every loaded
/// type. Thread statics are not included.
pub(crate) fn static_slots(rt: &Runtime) -> FxHashMap<u64, String> {
    let (dac, heap) = (&rt.dac, &rt.heap);
    let mut out = FxHashMap::default();
    let Ok(modules) = dac.modules() else {
        return out;
    };
    for module in modules.modules {
        let Ok(types) = dac.module_types(module) else {
            continue;
        };
        for mt in types {
            let Ok(fd) = dac.method_table_field_data(mt) else {
                continue;
            };
            // wNumStaticFields counts thread statics too.
            let statics = fd.num_static_fields as usize;
            if statics == 0 {
                continue;
            }
            let Some(own) = own_instance_fields(rt, mt, fd.num_instance_fields) else {
                continue;
            };
            let mut bases: Option<(u64, u64)> = None;
            let mut addr = fd.first_field;
            // The list holds this type's own instance fields, then its statics. NextField does
            // not end with 0 and the DAC must never see a FieldDesc past the list.
            for _ in 0..own + statics {
                if addr == 0 {
                    break;
                }
                let Ok(f) = dac.field_desc_data(addr) else {
                    break;
                };
                addr = f.next_field;
                if !f.is_static {
                    continue;
                }
                if f.is_thread_local || !is_reference_slot(f.element_type) {
                    continue;
                }
                let (_, gc) =
                    *bases.get_or_insert_with(|| dac.statics_bases(mt, module).unwrap_or((0, 0)));
                if gc == 0 {
                    continue;
                }
                let Ok(field) = dac.field_name(module, f.token) else {
                    continue;
                };
                out.insert(
                    gc + f.offset as u64,
                    format!("{}.{field}", heap.type_name(dac, mt)),
                );
            }
        }
    }
    out
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
