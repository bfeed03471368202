//! `dumpasync --fields`: the instance fields of a frame's state machine (or of the task, for a
//! plain task), one row each as SOS shows them.

use serde::Serialize;

use super::super::dumpheap::read_string;
use super::super::dumpobj::FieldValue;
use super::super::ser_hex;
use crate::memory::MemorySource;

/// One field row.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncField {
    pub name: String,
    /// The field's declared type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The declared type's MethodTable (0 if the runtime has not loaded it).
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    /// The object a reference field points to (0 for null); the field's own address otherwise.
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    /// The value as SOS prints it: a number, `true`, `'c'`, `"text"`, an address, `null`,
    /// `Type[n]` for an array.
    pub value: String,
}

/// Reads a pointer-sized value; 0 when the dump lacks it.
fn ptr(mem: &dyn MemorySource, at: u64) -> u64 {
    mem.read_u64(at).unwrap_or(0)
}

/// The rows of `fields`, the instance fields of an object at `base` (or of a struct whose data
/// starts at `base + 8`).
pub(super) fn field_rows(
    mem: &dyn MemorySource,
    fields: &[FieldValue],
    base: u64,
    type_of: &dyn Fn(u64) -> Option<String>,
) -> Vec<AsyncField> {
    fields
        .iter()
        .filter(|f| !f.is_static)
        .map(|f| {
            let at = base.wrapping_add(u64::from(f.offset));
            let reference = matches!(f.element_type, 0xe | 0x12 | 0x14 | 0x1c | 0x1d);
            let target = if reference { ptr(mem, at) } else { 0 };
            let value = match f.element_type {
                _ if reference && target == 0 => "null".to_string(),
                0x2 | 0x4..=0xd => f.value.to_string().trim_matches('"').to_string(),
                0x3 => match mem.read_u16(at) {
                    Ok(c) if (32..127).contains(&c) => format!("'{}'", c as u8 as char),
                    Ok(c) => format!("'\\u{c:04X}'"),
                    Err(_) => "(unknown)".into(),
                },
                0xe => match read_string(mem, target, 1 << 12) {
                    Some((s, _)) => format!("\"{s}\""),
                    None => "(unknown)".into(),
                },
                0x1d => {
                    let len = mem.read_u32(target.wrapping_add(8)).unwrap_or(0);
                    let element = type_of(target)
                        .map(|t| t.strip_suffix("[]").unwrap_or(&t).to_string())
                        .unwrap_or_else(|| "unknown".into());
                    format!("{element}[{len}]")
                }
                0x12 | 0x14 | 0x1c => format!("{target:016x}"),
                0x11 => format!("{at:016x}"),
                0xf | 0x18 | 0x19 | 0x1b => format!("{:016x}", ptr(mem, at)),
                _ => "(unknown)".into(),
            };
            // A class the runtime has not loaded has no MethodTable: ClrMD (and so SOS) calls
            // it Object.
            let type_name = if f.mt == 0 && matches!(f.element_type, 0x12 | 0x1c) {
                "Object".to_string()
            } else {
                f.type_name.clone()
            };
            AsyncField {
                name: f.name.clone(),
                type_name,
                mt: f.mt,
                address: if reference { target } else { at },
                value,
            }
        })
        .collect()
}

/// SOS's cut of a long text: `...` and its last `max - 3` characters.
fn truncate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n > max {
        let tail: String = s.chars().skip(n - (max - 3)).collect();
        format!("...{tail}")
    } else {
        s.to_string()
    }
}

/// The header and rows, indented by `indent` spaces.
pub(super) fn render_fields(out: &mut String, fields: &[AsyncField], indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str(&format!(
        "{pad}{:>16} {:>16} {:<32} {:>16} Name\n",
        "Address", "MT", "Type", "Value"
    ));
    for f in fields {
        out.push_str(&format!(
            "{pad}{:016x} {:016x} {:<32} {:>16} {}\n",
            f.address,
            f.mt,
            truncate(&f.type_name, 32),
            truncate(&f.value, 16),
            f.name
        ));
    }
}
