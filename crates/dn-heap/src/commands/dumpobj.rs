//! `dumpobj` and `dumparray`: one object's type, size, fields, string or array contents.

use anyhow::{bail, Context};
use serde::Serialize;

use super::dumpheap::read_string;
use super::{n0, ser_hex, Render, Session};
use crate::dac::{Dac, FieldDescData};
use crate::heap::GcHeap;
use crate::memory::MemorySource;

/// One field of an object (or a static of its type).
#[derive(Debug, Clone, Serialize)]
pub struct FieldValue {
    pub name: String,
    /// The field's type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// MethodTable of the field's type (0 if not loaded).
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    /// Offset from the start of the object's fields (object address + 8).
    pub offset: u32,
    pub is_static: bool,
    pub is_value_type: bool,
    /// The value: a number, a bool, an address as "0x…" for references and embedded structs.
    pub value: serde_json::Value,
    /// The field's CorElementType.
    #[serde(skip)]
    pub element_type: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArraySummary {
    pub rank: u32,
    pub length: u64,
    pub element_type: String,
    #[serde(serialize_with = "ser_hex")]
    pub element_mt: u64,
    /// Up to 128 elements of a byte or char array, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `dumpobj ADDR`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpObj {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub size: u64,
    pub generation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array: Option<ArraySummary>,
    pub free: bool,
    pub fields: Vec<FieldValue>,
}

/// CorElementType names as SOS prints them.
fn element_type_name(et: u32) -> &'static str {
    match et {
        0x1 => "System.Void",
        0x2 => "System.Boolean",
        0x3 => "System.Char",
        0x4 => "System.SByte",
        0x5 => "System.Byte",
        0x6 => "System.Int16",
        0x7 => "System.UInt16",
        0x8 => "System.Int32",
        0x9 => "System.UInt32",
        0xa => "System.Int64",
        0xb => "System.UInt64",
        0xc => "System.Single",
        0xd => "System.Double",
        0xe => "System.String",
        0xf => "PTR",
        0x11 => "VALUETYPE",
        0x12 => "CLASS",
        0x14 => "ARRAY",
        0x18 => "System.IntPtr",
        0x19 => "System.UIntPtr",
        0x1b => "FNPTR",
        0x1c => "System.Object",
        0x1d => "SZARRAY",
        _ => "UNKNOWN",
    }
}

fn is_reference(et: u32) -> bool {
    matches!(et, 0xe | 0x12 | 0x14 | 0x1c | 0x1d)
}

/// Reads a primitive or reference of element type `et` at `addr`.
fn read_value(mem: &dyn MemorySource, et: u32, addr: u64) -> serde_json::Value {
    use serde_json::json;
    let r = || -> crate::memory::Result<serde_json::Value> {
        Ok(match et {
            0x2 => json!(mem.read_u8(addr)? != 0),
            0x3 => {
                let c = mem.read_u16(addr)?;
                json!(char::from_u32(c as u32)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| format!("\\u{c:04x}")))
            }
            0x4 => json!(mem.read_u8(addr)? as i8),
            0x5 => json!(mem.read_u8(addr)?),
            0x6 => json!(mem.read_u16(addr)? as i16),
            0x7 => json!(mem.read_u16(addr)?),
            0x8 => json!(mem.read_u32(addr)? as i32),
            0x9 => json!(mem.read_u32(addr)?),
            0xa => json!(mem.read_u64(addr)? as i64),
            0xb => json!(mem.read_u64(addr)?),
            0xc => json!(f32::from_bits(mem.read_u32(addr)?)),
            0xd => json!(f64::from_bits(mem.read_u64(addr)?)),
            0x11 => json!(format!("0x{addr:x}")),
            _ => json!(format!("0x{:x}", mem.read_u64(addr)?)),
        })
    };
    r().unwrap_or(serde_json::Value::Null)
}

/// Fields of `mt` and its parents, base class first (as SOS lists them).
pub(crate) fn fields_of(dac: &Dac, heap: &GcHeap, mt: u64, obj: u64) -> Vec<FieldValue> {
    let mem = heap.memory();
    let mut chain = Vec::new();
    let mut m = mt;
    while m != 0 && chain.len() < 64 {
        let Ok(d) = dac.method_table_data(m) else {
            break;
        };
        chain.push((m, d));
        m = d.parent;
    }
    chain.reverse();
    let mut out = Vec::new();
    let mut parent_instance = 0u16;
    for (m, d) in chain {
        let Ok(fd) = dac.method_table_field_data(m) else {
            continue;
        };
        let introduced = fd.num_instance_fields.saturating_sub(parent_instance);
        parent_instance = fd.num_instance_fields;
        // wNumStaticFields counts thread statics too; never step past the list (the DAC
        // must not see a FieldDesc beyond it).
        let total = introduced as usize + fd.num_static_fields as usize;
        let mut addr = fd.first_field;
        let mut statics: Option<(u64, u64)> = None;
        // FieldDesc.NextField does not end with 0: iterate exactly by count.
        for _ in 0..total {
            if addr == 0 {
                break;
            }
            let Ok(f) = dac.field_desc_data(addr) else {
                break;
            };
            addr = f.next_field;
            out.push(field_value(
                dac,
                heap,
                mem,
                m,
                d.module,
                obj,
                &f,
                &mut statics,
            ));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn field_value(
    dac: &Dac,
    heap: &GcHeap,
    mem: &dyn MemorySource,
    mt: u64,
    module: u64,
    obj: u64,
    f: &FieldDescData,
    statics: &mut Option<(u64, u64)>,
) -> FieldValue {
    let name = dac
        .field_name(module, f.token)
        .unwrap_or_else(|_| format!("<field 0x{:x}>", f.token));
    let type_name = if f.mt_of_type != 0 && !matches!(f.element_type, 0x2..=0xd | 0x18 | 0x19) {
        heap.type_name(dac, f.mt_of_type)
    } else {
        element_type_name(f.element_type).to_string()
    };
    let is_value_type = !is_reference(f.element_type);
    let value = if f.is_thread_local {
        serde_json::Value::Null
    } else if f.is_static {
        let bases = *statics.get_or_insert_with(|| dac.statics_bases(mt, module).unwrap_or((0, 0)));
        // References and structs live in the GC statics; primitives in the non-GC statics.
        let base = if is_reference(f.element_type) || f.element_type == 0x11 {
            bases.1
        } else {
            bases.0
        };
        if base == 0 {
            serde_json::Value::Null
        } else {
            read_value(mem, f.element_type, base + f.offset as u64)
        }
    } else {
        read_value(mem, f.element_type, obj + 8 + f.offset as u64)
    };
    FieldValue {
        name,
        type_name,
        mt: f.mt_of_type,
        offset: f.offset + 8,
        is_static: f.is_static,
        is_value_type,
        value,
        element_type: f.element_type,
    }
}

pub fn dumpobj(s: &Session, addr: u64) -> anyhow::Result<DumpObj> {
    let rt = &s.runtime;
    let (heap, dac) = (&rt.heap, &rt.dac);
    let mem = heap.memory();
    // Inside the GC heap an address must be where an object starts, not inside one.
    let starts_object = heap.segment_of(addr).is_none() || heap.find_object(dac, addr).is_some();
    let (Some((info, size)), true) = (heap.object_at(dac, addr), starts_object) else {
        bail!("Invalid object 0x{addr:x} (not the start of an object on the GC heap)");
    };
    let type_name = heap.type_name(dac, info.mt);
    let generation = heap
        .segment_of(addr)
        .map(|(_, seg)| format!("{:?}", seg.generation_of(addr)).to_lowercase())
        .unwrap_or_else(|| "not in the GC heap".into());
    let string = info
        .is_string
        .then(|| read_string(mem, addr, 1 << 20).map(|v| v.0))
        .flatten();
    let mut array = None;
    if info.component_size != 0 && !info.is_string && !info.is_free {
        let od = dac.object_data(addr).context("reading array data")?;
        let length = mem.read_u32(addr + 8).unwrap_or(0) as u64;
        let element_type = if od.element_type_handle != 0 {
            heap.type_name(dac, od.element_type_handle)
        } else {
            element_type_name(od.element_type).to_string()
        };
        let content = match od.element_type {
            0x5 | 0x4 => mem
                .read_vec(od.array_data, length.min(128) as usize)
                .ok()
                .map(|b| {
                    b.iter()
                        .map(|&c| {
                            if (0x20..0x7f).contains(&c) {
                                c as char
                            } else {
                                '.'
                            }
                        })
                        .collect()
                }),
            0x3 => mem
                .read_vec(od.array_data, (length.min(128) * 2) as usize)
                .ok()
                .map(|b| {
                    let u: Vec<u16> = b
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&u)
                }),
            _ => None,
        };
        array = Some(ArraySummary {
            rank: od.rank.max(1),
            length,
            element_type,
            element_mt: od.element_type_handle,
            content,
        });
    }
    let fields = if array.is_none() && !info.is_free {
        fields_of(dac, heap, info.mt, addr)
    } else {
        Vec::new()
    };
    let module = dac
        .module_name(info.data.module)
        .ok()
        .filter(|m| !m.is_empty());
    Ok(DumpObj {
        address: addr,
        mt: info.mt,
        type_name,
        size,
        generation,
        module,
        string,
        array,
        free: info.is_free,
        fields,
    })
}

impl Render for DumpObj {
    fn render(&self) -> String {
        if self.free {
            return format!(
                "Free Object\nSize:        {}(0x{:x}) bytes\n",
                self.size, self.size
            );
        }
        let mut out = String::new();
        out.push_str(&format!("{:<13}{}\n", "Name:", self.type_name));
        out.push_str(&format!("{:<13}{:016x}\n", "MethodTable:", self.mt));
        out.push_str(&format!(
            "{:<13}{}(0x{:x}) bytes\n",
            "Size:", self.size, self.size
        ));
        if let Some(a) = &self.array {
            out.push_str(&format!(
                "{:<13}Rank {}, Number of elements {}, Type {}\n",
                "Array:", a.rank, a.length, a.element_type
            ));
            if let Some(c) = &a.content {
                out.push_str(&format!("{:<13}{}\n", "Content:", c));
            }
        } else {
            out.push_str(&format!(
                "{:<13}{}\n",
                "File:",
                self.module.as_deref().unwrap_or("Unknown Module")
            ));
        }
        if let Some(st) = &self.string {
            out.push_str(&format!("{:<13}{}\n", "String:", st));
        }
        if self.array.is_none() {
            if self.fields.is_empty() {
                out.push_str("Fields:\nNone\n");
            } else {
                out.push_str("Fields:\n");
                out.push_str(&format!(
                    "{:>16} {:>8} {:>20} {:>4} {:>8} {:>16} Name\n",
                    "MT", "Offset", "Type", "VT", "Attr", "Value"
                ));
                for f in &self.fields {
                    let v = match &f.value {
                        serde_json::Value::String(s) => s.trim_start_matches("0x").to_string(),
                        serde_json::Value::Null => "<unavailable>".into(),
                        other => other.to_string(),
                    };
                    let mut t = f.type_name.clone();
                    if t.len() > 20 {
                        t = t[t.len() - 20..].to_string();
                    }
                    out.push_str(&format!(
                        "{:016x} {:>8x} {:>20} {:>4} {:>8} {:>16} {}\n",
                        f.mt,
                        f.offset,
                        t,
                        if f.is_value_type { "Yes" } else { "No" },
                        if f.is_static { "static" } else { "instance" },
                        v,
                        f.name
                    ));
                }
            }
        }
        out
    }
}

/// `dumparray ADDR`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpArray {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub element_type: String,
    pub rank: u32,
    pub length: u64,
    pub start: u64,
    pub elements: Vec<ArrayElement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArrayElement {
    pub index: u64,
    pub value: serde_json::Value,
}

pub fn dumparray(
    s: &Session,
    addr: u64,
    start: u64,
    length: Option<u64>,
) -> anyhow::Result<DumpArray> {
    let rt = &s.runtime;
    let (heap, dac) = (&rt.heap, &rt.dac);
    let mem = heap.memory();
    let Some((info, _)) = heap.object_at(dac, addr) else {
        bail!("Invalid object 0x{addr:x}")
    };
    if info.component_size == 0 || info.is_string || info.is_free {
        bail!("0x{addr:x} is not an array");
    }
    let od = dac.object_data(addr).context("reading array data")?;
    let total = mem.read_u32(addr + 8).unwrap_or(0) as u64;
    let end = length.map_or(total, |l| start.saturating_add(l).min(total));
    let et = od.element_type;
    let stride = info.component_size as u64;
    let elements = (start.min(end)..end)
        .map(|i| {
            let a = od.array_data + i * stride;
            let value = if is_reference(et) || et == 0x11 || stride > 8 {
                if is_reference(et) {
                    read_value(mem, 0x12, a)
                } else {
                    serde_json::json!(format!("0x{a:x}"))
                }
            } else {
                read_value(mem, et, a)
            };
            ArrayElement { index: i, value }
        })
        .collect();
    let element_type = if od.element_type_handle != 0 {
        heap.type_name(dac, od.element_type_handle)
    } else {
        element_type_name(et).to_string()
    };
    Ok(DumpArray {
        address: addr,
        type_name: heap.type_name(dac, info.mt),
        element_type,
        rank: od.rank.max(1),
        length: total,
        start,
        elements,
    })
}

impl Render for DumpArray {
    fn render(&self) -> String {
        let mut out = format!(
            "Name:        {}\nMethodTable: -\nArray:       Rank {}, Number of elements {}, Type {}\n",
            self.type_name,
            self.rank,
            n0(self.length),
            self.element_type
        );
        out = out.replace("MethodTable: -\n", "");
        for e in &self.elements {
            let v = match &e.value {
                serde_json::Value::String(s) => s.trim_start_matches("0x").to_string(),
                other => other.to_string(),
            };
            out.push_str(&format!("[{}] {}\n", e.index, v));
        }
        out
    }
}
