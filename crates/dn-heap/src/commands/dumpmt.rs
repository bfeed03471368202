//! `dumpmt [-md] MT`: a MethodTable, and with `-md` the methods in its slots.

use anyhow::bail;
use serde::Serialize;

use super::{ser_hex, ser_hex_opt, Render, Session};
use crate::dac::JitKind;

/// One row of `dumpmt -md`'s MethodDesc table.
#[derive(Debug, Clone, Serialize)]
pub struct MethodRow {
    #[serde(serialize_with = "ser_hex")]
    pub entry: u64,
    #[serde(serialize_with = "ser_hex")]
    pub method_desc: u64,
    pub jit: JitKind,
    pub slot: u32,
    pub name: String,
}

/// `dumpmt [-md] MT`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpMt {
    #[serde(serialize_with = "ser_hex")]
    pub mt: u64,
    pub name: String,
    #[serde(serialize_with = "ser_hex")]
    pub parent: u64,
    /// The EEClass (runtimes before .NET 9, where MethodTables point at one).
    #[serde(serialize_with = "ser_hex_opt")]
    pub eeclass: Option<u64>,
    /// The canonical MethodTable (.NET 9+), when it is not this one (generic instantiations).
    #[serde(serialize_with = "ser_hex_opt")]
    pub canonical: Option<u64>,
    #[serde(serialize_with = "ser_hex")]
    pub module: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_name: Option<String>,
    pub token: u32,
    pub base_size: u32,
    pub component_size: u32,
    pub contains_pointers: bool,
    pub num_methods: u16,
    pub num_interfaces: u16,
    /// With `-md`: the methods in the slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<MethodRow>>,
    /// Slots whose method could not be read.
    pub warnings: Vec<String>,
}

pub fn parse(args: &[&str]) -> anyhow::Result<(u64, bool)> {
    let mut md = false;
    let mut mt = None;
    for a in args {
        match a.to_ascii_lowercase().as_str() {
            "-md" => md = true,
            o if o.starts_with('-') => bail!("dumpmt: unknown option '{a}' (dumpmt [-md] MT)"),
            _ => mt = Some(super::parse_addr(Some(a), "dumpmt [-md] MT")?),
        }
    }
    Ok((
        mt.ok_or_else(|| anyhow::anyhow!("usage: dumpmt [-md] MT"))?,
        md,
    ))
}

pub fn dumpmt(s: &Session, mt: u64, with_methods: bool) -> anyhow::Result<DumpMt> {
    let rt = &s.runtime;
    let d = match rt.heap.mt_info(&rt.dac, mt) {
        Some(info) => info.data,
        None => rt
            .dac
            .method_table_data(mt)
            .map_err(|_| anyhow::anyhow!("0x{mt:x} is not a MethodTable"))?,
    };
    // On .NET 9+ the "class" the DAC gives is the canonical MethodTable.
    let class_is_mt = rt.dac.method_table_for_eeclass(d.class).ok() == Some(d.class);
    let (eeclass, canonical) = if class_is_mt {
        (None, (d.class != mt).then_some(d.class))
    } else {
        (Some(d.class), None)
    };
    let mut warnings = Vec::new();
    let methods = with_methods.then(|| {
        let runtime = (
            rt.module.base,
            rt.target
                .modules()
                .iter()
                .find(|m| m.base == rt.module.base)
                .and_then(|m| m.ranges.iter().map(|r| r.1).max())
                .unwrap_or(rt.module.base),
        );
        let slots = rt.dac.method_table_slots(mt, u32::from(d.num_methods));
        if slots.len() < usize::from(d.num_methods) && !rt.dac.sos_versions().contains(&15) {
            warnings.push(format!(
                "{} of {} slots could not be read",
                usize::from(d.num_methods) - slots.len(),
                d.num_methods
            ));
        }
        slots
            .into_iter()
            .map(|sm| {
                let name = if sm.method_desc == 0 {
                    String::from("<no MethodDesc>")
                } else {
                    rt.dac
                        .method_desc_name(sm.method_desc)
                        .unwrap_or_else(|e| format!("<name unavailable: {e}>"))
                };
                MethodRow {
                    entry: sm.entry,
                    method_desc: sm.method_desc,
                    jit: if sm.method_desc == 0 {
                        JitKind::None
                    } else {
                        rt.dac.jit_kind(sm.entry, sm.method_desc, runtime)
                    },
                    slot: sm.slot,
                    name,
                }
            })
            .collect()
    });
    Ok(DumpMt {
        mt,
        name: rt.heap.type_name(&rt.dac, mt),
        parent: d.parent,
        eeclass,
        canonical,
        module: d.module,
        module_name: rt.dac.module_name(d.module).ok().filter(|m| !m.is_empty()),
        token: d.token,
        base_size: d.base_size,
        component_size: d.component_size,
        contains_pointers: d.contains_pointers,
        num_methods: d.num_methods,
        num_interfaces: d.num_interfaces,
        methods,
        warnings,
    })
}

impl Render for DumpMt {
    fn render(&self) -> String {
        let row = |label: &str, v: String| format!("{:<20}{v}\n", label);
        let mut out = row("Parent:", format!("{:016x}", self.parent));
        if let Some(c) = self.eeclass {
            out.push_str(&row("EEClass:", format!("{c:016x}")));
        }
        if let Some(c) = self.canonical {
            out.push_str(&row("Canonical:", format!("{c:016x}")));
        }
        out.push_str(&row("Module:", format!("{:016x}", self.module)));
        out.push_str(&row("Name:", self.name.clone()));
        out.push_str(&row("mdToken:", format!("{:016x}", self.token)));
        out.push_str(&row(
            "File:",
            self.module_name
                .clone()
                .unwrap_or_else(|| "Unknown Module".into()),
        ));
        out.push_str(&row("BaseSize:", format!("0x{:x}", self.base_size)));
        if self.component_size != 0 {
            out.push_str(&row(
                "ComponentSize:",
                format!("0x{:x}", self.component_size),
            ));
        }
        out.push_str(&row("Has GC Pointers:", yes_no(self.contains_pointers)));
        out.push_str(&row("Number of Methods:", self.num_methods.to_string()));
        out.push_str(&row(
            "Number of IFaces in IFaceMap:",
            self.num_interfaces.to_string(),
        ));
        if let Some(methods) = &self.methods {
            out.push_str("--------------------------------------\nMethodDesc Table\n");
            out.push_str(&format!(
                "{:>16} {:>16} {:>6} {:>16} Name\n",
                "Entry", "MethodDesc", "JIT", "Slot"
            ));
            for m in methods {
                out.push_str(&format!(
                    "{:016x} {:016x} {:>6} {:016x} {}\n",
                    m.entry,
                    m.method_desc,
                    m.jit.name(),
                    m.slot,
                    m.name
                ));
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.to_string()
}
