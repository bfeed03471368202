//! `eeversion`: the runtime's version (read from the dump, no DAC needed), GC mode, and which
//! DAC reads it.

use serde::Serialize;

use super::{Render, Session};
use crate::dac::{DacSource, VersionFrom};

/// `eeversion`.
#[derive(Debug, Clone, Serialize)]
pub struct EeVersion {
    /// File version from libcoreclr's `@(#)Version` string (`10.0.1226.42308`).
    pub file_version: Option<String>,
    /// The whole version string after `@(#)Version `.
    pub version_string: Option<String>,
    /// Where it was read: the dump, or the DAC matched by build id when the dump lacks
    /// libcoreclr's data pages.
    pub version_from: Option<VersionFrom>,
    pub commit: Option<String>,
    /// Product version (`10.0.12`): the runtime folder's name, else derived from the file version.
    pub product_version: Option<String>,
    /// .NET Core 3.x (file version 4.700.*).
    pub core3: bool,
    pub server_gc: bool,
    pub gc_heaps: usize,
    pub runtime_path: String,
    pub runtime_build_id: Option<String>,
    pub dac_path: String,
    pub dac_source: DacSource,
    /// DACs passed over (and why), or a forced one known not to match.
    pub warnings: Vec<String>,
}

pub fn eeversion(s: &Session) -> EeVersion {
    let rt = &s.runtime;
    let v = rt.module.version_string.as_ref();
    EeVersion {
        file_version: v.map(|v| v.file_version.clone()),
        version_string: v.map(|v| v.text.clone()),
        version_from: rt.module.version_from,
        commit: v.and_then(|v| v.commit.clone()),
        product_version: rt.module.version.clone(),
        core3: v
            .and_then(|v| v.parts())
            .is_some_and(|p| p[0] == 4 && p[1] == 700),
        server_gc: rt.heap.server,
        gc_heaps: rt.heap.heaps.len(),
        runtime_path: rt.module.path.clone(),
        runtime_build_id: rt.module.build_id.clone(),
        dac_path: rt.dac.path().display().to_string(),
        dac_source: rt.dac_found.source,
        warnings: rt.dac_found.warnings.clone(),
    }
}

impl Render for EeVersion {
    fn render(&self) -> String {
        let mut out = String::new();
        match (&self.file_version, &self.version_string) {
            (Some(f), Some(t)) => {
                out.push_str(f);
                if self.core3 {
                    out.push_str(" (3.x runtime)");
                }
                out.push_str(&format!("\n{t}\n"));
            }
            _ => out.push_str(&format!(
                "{} (no version string in the dump: libcoreclr's data is not in it)\n",
                self.product_version.as_deref().unwrap_or("unknown version")
            )),
        }
        if self.server_gc {
            out.push_str(&format!("Server mode with {} gc heaps\n", self.gc_heaps));
        } else {
            out.push_str("Workstation mode\n");
        }
        if let Some(p) = &self.product_version {
            out.push_str(&format!(".NET version:  {p}\n"));
        }
        out.push_str(&format!(
            "Runtime:       {} (build id {})\nDAC:           {} ({})\n",
            self.runtime_path,
            self.runtime_build_id.as_deref().unwrap_or("unknown"),
            self.dac_path,
            self.dac_source
        ));
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}
