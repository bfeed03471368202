//! Finding the `libmscordaccore.so` that matches the runtime in a dump.

use std::path::{Path, PathBuf};

use super::DataTarget;
use crate::dump::{build_id_of_file, hex};

pub const RUNTIME_MODULE: &str = "libcoreclr.so";
pub const DAC_FILE: &str = "libmscordaccore.so";

/// The runtime found in a dump.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeModule {
    /// Path of libcoreclr.so as the dump names it.
    pub path: String,
    pub base: u64,
    /// GNU build id read from the dump's memory (hex), if the ELF header is in the dump.
    pub build_id: Option<String>,
    /// Version taken from the directory name (`.../Microsoft.NETCore.App/<version>/`), if any.
    pub version: Option<String>,
}

/// Finds libcoreclr.so among the target's mapped files.
pub fn runtime_module(target: &dyn DataTarget) -> anyhow::Result<RuntimeModule> {
    let m = target
        .modules()
        .into_iter()
        .find(|m| m.path.rsplit('/').next() == Some(RUNTIME_MODULE))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no .NET runtime in this dump: {} is not among its mapped files (not a .NET \
                 process, or a single-file app, which is not supported yet)",
                RUNTIME_MODULE
            )
        })?;
    let build_id = target.build_id(m.base).map(|b| hex(&b));
    let version = Path::new(&m.path)
        .parent()
        .and_then(|p| p.file_name())
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()));
    Ok(RuntimeModule {
        path: m.path,
        base: m.base,
        build_id,
        version,
    })
}

/// Directories holding installed shared runtimes.
fn installed_runtime_dirs() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(r) = std::env::var_os("DOTNET_ROOT") {
        roots.push(PathBuf::from(r));
    }
    roots.extend(
        [
            "/usr/share/dotnet",
            "/usr/lib/dotnet",
            "/usr/local/share/dotnet",
            "/opt/dotnet",
        ]
        .iter()
        .map(PathBuf::from),
    );
    if let Some(home) = dirs::home_dir() {
        roots.push(home.join(".dotnet"));
    }
    let mut out = Vec::new();
    for r in roots {
        if let Ok(rd) = std::fs::read_dir(r.join("shared/Microsoft.NETCore.App")) {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            v.sort();
            out.extend(v);
        }
    }
    out
}

/// Picks the DAC: `explicit` if given; else the one beside the dump's libcoreclr.so when that
/// file is the same build; else an installed runtime of the same build.
pub fn find_dac(rt: &RuntimeModule, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "DAC {} does not exist", p.display());
        // A DAC of another build misreads the runtime's structures: say so, but do as told.
        let beside = p.parent().map(|d| d.join(RUNTIME_MODULE));
        if let (Some(want), Some(have)) =
            (&rt.build_id, beside.as_deref().and_then(build_id_of_file))
        {
            if *want != hex(&have) {
                eprintln!(
                    "warning: {} is not from the runtime build in this dump ({RUNTIME_MODULE} \
                     build id {} beside it, the dump needs {want}); results may be wrong",
                    p.display(),
                    hex(&have)
                );
            }
        }
        return Ok(p.to_path_buf());
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = Path::new(&rt.path).parent() {
        candidates.push(dir.to_path_buf());
    }
    candidates.extend(installed_runtime_dirs());
    for dir in &candidates {
        let dac = dir.join(DAC_FILE);
        let coreclr = dir.join(RUNTIME_MODULE);
        if !dac.is_file() || !coreclr.is_file() {
            continue;
        }
        match (&rt.build_id, build_id_of_file(&coreclr)) {
            (Some(want), Some(have)) if *want == hex(&have) => return Ok(dac),
            // Without a build id in the dump only the exact path the dump names is trusted.
            (None, _) if coreclr == Path::new(&rt.path) => return Ok(dac),
            _ => {}
        }
    }
    anyhow::bail!(
        "no matching {DAC_FILE} found for the runtime in this dump (.NET {}, {} build id {}); \
         install that runtime or pass --dac PATH",
        rt.version.as_deref().unwrap_or("of unknown version"),
        RUNTIME_MODULE,
        rt.build_id.as_deref().unwrap_or("unknown")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(build_id: Option<&str>) -> RuntimeModule {
        RuntimeModule {
            path: "/nonexistent/shared/Microsoft.NETCore.App/8.0.99/libcoreclr.so".into(),
            base: 0x7f00_0000_0000,
            build_id: build_id.map(String::from),
            version: Some("8.0.99".into()),
        }
    }

    #[test]
    fn no_matching_dac_names_version_and_build_id() {
        let e = find_dac(
            &module(Some("00112233445566778899aabbccddeeff00112233")),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("8.0.99"), "{e}");
        assert!(
            e.contains("00112233445566778899aabbccddeeff00112233"),
            "{e}"
        );
        assert!(e.contains("--dac"), "{e}");
    }

    #[test]
    fn explicit_dac_must_exist() {
        let e = find_dac(
            &module(None),
            Some(Path::new("/nonexistent/libmscordaccore.so")),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
