//! `lm` / `modules`: the files mapped in the target (the dump's native module list, as
//! dotnet-dump's `modules` shows it), with build ids from the target's memory on `-v`.

use serde::Serialize;

use super::{ser_hex, Render, Session};
use crate::dump::hex;

/// One mapped file.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleRow {
    #[serde(serialize_with = "ser_hex")]
    pub base: u64,
    /// From the lowest to the highest mapped address of the file.
    pub size: u64,
    pub path: String,
    /// GNU build id from the image in the target's memory (`-v` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The `@(#)Version` string from the image in the target's memory (`-v` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_string: Option<String>,
}

/// `lm [-v] [-n SUBSTR]`.
#[derive(Debug, Clone, Serialize)]
pub struct Modules {
    pub modules: Vec<ModuleRow>,
    pub total_image_size: u64,
    #[serde(skip)]
    verbose: bool,
}

/// Options of `lm`.
#[derive(Debug, Clone, Default)]
pub struct ModulesOptions {
    pub verbose: bool,
    /// Only modules whose path contains this (case-insensitive).
    pub name: Option<String>,
}

impl ModulesOptions {
    pub fn parse(args: &[&str]) -> anyhow::Result<ModulesOptions> {
        let mut o = ModulesOptions::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.to_ascii_lowercase().as_str() {
                "-v" | "--verbose" => o.verbose = true,
                "-n" | "--name" => {
                    o.name = Some(
                        it.next()
                            .ok_or_else(|| anyhow::anyhow!("-n needs a name"))?
                            .to_ascii_lowercase(),
                    )
                }
                other => anyhow::bail!("lm: unknown option '{other}' (lm [-v] [-n NAME])"),
            }
        }
        Ok(o)
    }
}

/// A mapped file that is not a module image: devices, anonymous shared memory, the
/// runtime's double-mapped executable memory. The dynamic loader is left out, as dotnet-dump does.
fn is_image(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !(path.starts_with("/dev/")
        || path.starts_with("/memfd:")
        || path.starts_with("/SYSV")
        || name.starts_with("ld-linux"))
}

/// A PE image's SizeOfImage, from its headers in the target's memory.
fn pe_image_size(mem: &dyn crate::memory::MemorySource, base: u64) -> Option<u64> {
    if mem.read_u16(base).ok()? != 0x5a4d {
        return None; // "MZ"
    }
    let pe = base.checked_add(u64::from(mem.read_u32(base + 0x3c).ok()?))?;
    if mem.read_u32(pe).ok()? != 0x4550 {
        return None; // "PE\0\0"
    }
    // SizeOfImage: 56 bytes into the optional header, which follows the 24-byte file header.
    Some(u64::from(mem.read_u32(pe.checked_add(24 + 56)?).ok()?))
}

/// The mappings of a file that follow each other from its base (the same file mapped again
/// elsewhere is not part of the image).
fn mapped_span(ranges: &[(u64, u64, u64)], base: u64) -> u64 {
    let mut end = base;
    for r in ranges.iter().filter(|r| r.0 >= base) {
        if r.0 > end {
            break;
        }
        end = end.max(r.1);
    }
    end - base
}

pub fn modules(s: &Session, o: &ModulesOptions) -> Modules {
    let target = &s.runtime.target;
    let mut rows = Vec::new();
    for m in target.modules() {
        let path = m.path.trim_end_matches(" (deleted)").to_string();
        if !is_image(&path) {
            continue;
        }
        if let Some(n) = &o.name {
            if !path.to_ascii_lowercase().contains(n.as_str()) {
                continue;
            }
        }
        let size =
            pe_image_size(&**target, m.base).unwrap_or_else(|| mapped_span(&m.ranges, m.base));
        let (build_id, version_string) = if o.verbose {
            (
                target.build_id(m.base).map(|b| hex(&b)),
                target.version_string(m.base).map(|v| v.text),
            )
        } else {
            (None, None)
        };
        rows.push(ModuleRow {
            base: m.base,
            size,
            path,
            build_id,
            version_string,
        });
    }
    Modules {
        total_image_size: rows.iter().map(|r| r.size).sum(),
        modules: rows,
        verbose: o.verbose,
    }
}

impl Render for Modules {
    fn render(&self) -> String {
        let mut out = String::new();
        for m in &self.modules {
            out.push_str(&format!("{:016x} {:08x} {}\n", m.base, m.size, m.path));
            if self.verbose {
                if let Some(b) = &m.build_id {
                    out.push_str(&format!("    BuildId: {b}\n"));
                }
                if let Some(v) = &m.version_string {
                    out.push_str(&format!("    Version: @(#)Version {v}\n"));
                }
            }
        }
        out.push_str(&format!("Total image size: {}\n", self.total_image_size));
        out
    }
}
