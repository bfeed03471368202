//! Which runtime a dump holds (from the dump alone) and which `libmscordaccore.so` reads it.
//!
//! The rule: a DAC is only loaded when something ties it to the exact runtime build in the
//! dump, that is to the GNU build id of the dump's `libcoreclr.so`:
//! - in a runtime folder (the one the dump names, a `--symbol-path` folder holding a copy of
//!   one, an installed runtime): the `libcoreclr.so` beside the DAC has that build id;
//! - in a symbol store (a `--symbol-path` folder in that layout, or what a `--symbol-server`
//!   sent): the DAC is filed under that build id's key (see [`super::symstore`]);
//! - a DAC alone in a flat folder: its `@(#)Version` string (file version and commit) equals
//!   the one in the dump's `libcoreclr.so` (the DAC carries no build id of the runtime, but
//!   the same string as the runtime it was built with). When the dump lacks libcoreclr's data
//!   pages (createdump's heap dumps leave them out) there is nothing to compare, and a flat DAC
//!   is refused with that reason.
//!
//! When the dump holds no version string, the version is taken from the DAC once one is tied
//! to the runtime by its build id (never from a forced `--dac`).
//!
//! Anything else is refused and said so; `--dac PATH` loads the given file regardless (with a
//! warning when it is known not to match).

use std::fmt;
use std::path::{Path, PathBuf};

use super::{symstore, DataTarget};
use crate::dump::{build_id_of_file, hex, version_of_file, VersionString};

pub const RUNTIME_MODULE: &str = "libcoreclr.so";
pub const DAC_FILE: &str = "libmscordaccore.so";
/// Folders (':'-separated) searched like `--symbol-path`.
pub const SYMBOL_PATH_ENV: &str = "DN_SYMBOL_PATH";

/// The runtime found in a dump.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeModule {
    /// Path of libcoreclr.so as the dump names it.
    pub path: String,
    pub base: u64,
    /// GNU build id read from the dump's memory (hex), if the ELF header is in the dump.
    pub build_id: Option<String>,
    /// Product version: the runtime folder's name (`.../Microsoft.NETCore.App/<version>/`), else
    /// derived from the version string in the dump.
    pub version: Option<String>,
    /// `@(#)Version` string of the runtime.
    pub version_string: Option<VersionString>,
    /// Where the version string was read.
    pub version_from: Option<VersionFrom>,
}

/// Where the runtime's version string was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionFrom {
    /// libcoreclr's data in the dump itself.
    Dump,
    /// The DAC tied to the runtime by its build id (the dump lacks libcoreclr's data pages).
    MatchedDac,
}

impl RuntimeModule {
    /// Fills in the version from `dac` when the dump held none and `dac` is tied to this
    /// runtime's build.
    pub fn complete_version(&mut self, dac: &FoundDac) {
        if self.version_string.is_some() || !dac.source.tied_to_build() {
            return;
        }
        self.version_string = version_of_file(&dac.path);
        if self.version_string.is_some() {
            self.version_from = Some(VersionFrom::MatchedDac);
        }
        if self.version.is_none() {
            self.version = self
                .version_string
                .as_ref()
                .and_then(|v| v.product_version());
        }
    }
}

/// Finds libcoreclr.so among the target's mapped files, and reads its build id and version
/// string from the target's own memory.
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
    let version_string = target.version_string(m.base);
    let version_from = version_string.as_ref().map(|_| VersionFrom::Dump);
    let folder_version = Path::new(&m.path)
        .parent()
        .and_then(|p| p.file_name())
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()));
    let version = folder_version.or_else(|| version_string.as_ref()?.product_version());
    Ok(RuntimeModule {
        path: m.path,
        base: m.base,
        build_id,
        version,
        version_string,
        version_from,
    })
}

/// Where to look for the DAC, besides the runtime folder the dump names.
#[derive(Debug, Clone, Default)]
pub struct DacSearch {
    /// `--dac PATH`: load this file, matching or not.
    pub explicit: Option<PathBuf>,
    /// `--symbol-path DIR` (and the `DN_SYMBOL_PATH` folders): flat or symbol-store layout.
    pub symbol_paths: Vec<PathBuf>,
    /// `--symbol-server URL`: download from there when nothing local matches.
    pub symbol_server: Option<String>,
    /// Where downloads go (symbol-store layout); the first symbol path if `None`, else the
    /// user's cache folder.
    pub cache: Option<PathBuf>,
    /// Also look in installed runtimes (`DOTNET_ROOT`, `/usr/share/dotnet`, ...).
    pub installed: bool,
}

impl DacSearch {
    /// `--dac` if given, plus the symbol paths of `DN_SYMBOL_PATH` and installed runtimes.
    pub fn with_dac(explicit: Option<&Path>) -> DacSearch {
        DacSearch {
            explicit: explicit.map(Path::to_path_buf),
            symbol_paths: Vec::new(),
            symbol_server: None,
            cache: None,
            installed: true,
        }
        .with_env()
    }

    /// Adds the folders of `DN_SYMBOL_PATH` after the ones given.
    pub fn with_env(self) -> DacSearch {
        self.with_symbol_path_value(std::env::var_os(SYMBOL_PATH_ENV).as_deref())
    }

    /// Adds the folders of a `DN_SYMBOL_PATH`-style value (':'-separated, empty parts skipped).
    pub fn with_symbol_path_value(mut self, value: Option<&std::ffi::OsStr>) -> DacSearch {
        if let Some(v) = value {
            self.symbol_paths
                .extend(std::env::split_paths(v).filter(|p| !p.as_os_str().is_empty()));
        }
        self
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        self.cache
            .clone()
            .or_else(|| self.symbol_paths.first().cloned())
            .or_else(|| dirs::cache_dir().map(|d| d.join("dn").join("symbols")))
    }
}

/// How the DAC was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DacSource {
    /// `--dac PATH`, loaded as told.
    Explicit,
    /// Beside the runtime path the dump names, same libcoreclr build.
    RuntimeFolder,
    /// A symbol-path folder holding a runtime folder's copy (libcoreclr.so of that build beside it).
    SymbolPathRuntime,
    /// A symbol-path folder, alone, with the runtime's version string.
    SymbolPathFlat,
    /// A symbol-path folder in the symbol-store layout, under the runtime's build-id key.
    SymbolStore,
    /// An installed runtime of the same build.
    InstalledRuntime,
    /// Downloaded from `--symbol-server` under the build-id key.
    SymbolServer,
}

impl DacSource {
    /// Found through the runtime's build id (not forced, not by version string alone).
    pub fn tied_to_build(self) -> bool {
        !matches!(self, DacSource::Explicit | DacSource::SymbolPathFlat)
    }
}

impl fmt::Display for DacSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DacSource::Explicit => "given with --dac",
            DacSource::RuntimeFolder => "beside the runtime the dump names",
            DacSource::SymbolPathRuntime => "symbol path, beside a libcoreclr.so of the same build",
            DacSource::SymbolPathFlat => "symbol path, same version string as the runtime",
            DacSource::SymbolStore => "symbol path, symbol-store key of the runtime's build id",
            DacSource::InstalledRuntime => "installed runtime of the same build",
            DacSource::SymbolServer => "downloaded from the symbol server",
        })
    }
}

/// The DAC chosen, how, and what was passed over on the way (said to the user).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundDac {
    pub path: PathBuf,
    pub source: DacSource,
    /// DACs seen but refused, and why; a forced `--dac` that is known not to match.
    pub warnings: Vec<String>,
}

/// Why a candidate DAC was not taken.
enum Verdict {
    Match(DacSource),
    Absent,
    Refused(String),
}

fn describe(v: Option<&VersionString>) -> String {
    v.map_or_else(|| "no version string".to_string(), |v| v.text.clone())
}

/// A DAC in folder `dir`: tied to the runtime by the libcoreclr.so beside it, else (when
/// `flat_by_version`) by its version string.
fn judge_folder(rt: &RuntimeModule, dir: &Path, source: DacSource, flat: bool) -> Verdict {
    let dac = dir.join(DAC_FILE);
    if !dac.is_file() {
        return Verdict::Absent;
    }
    let coreclr = dir.join(RUNTIME_MODULE);
    if coreclr.is_file() {
        let have = build_id_of_file(&coreclr).map(|b| hex(&b));
        return match (&rt.build_id, have) {
            (Some(want), Some(have)) if *want == have => Verdict::Match(source),
            // Without a build id in the dump only the exact path the dump names is trusted.
            (None, _) if coreclr == Path::new(&rt.path) => Verdict::Match(source),
            (want, have) => Verdict::Refused(format!(
                "{} not loaded: the {RUNTIME_MODULE} beside it has build id {}, the dump's has {}",
                dac.display(),
                have.as_deref().unwrap_or("(none)"),
                want.as_deref().unwrap_or("(unknown)")
            )),
        };
    }
    if !flat {
        return Verdict::Absent;
    }
    let theirs = version_of_file(&dac);
    match (&rt.version_string, &theirs) {
        (Some(want), Some(have)) if want.text == have.text => {
            Verdict::Match(DacSource::SymbolPathFlat)
        }
        (None, _) => Verdict::Refused(format!(
            "{} not loaded: nothing ties it to the runtime (the dump holds no version string of {RUNTIME_MODULE}, and no {RUNTIME_MODULE} is beside it); file it under {}",
            dac.display(),
            rt.build_id.as_deref().map_or_else(
                || "the runtime's build id".to_string(),
                |id| dir.join(symstore::dac_key(id)).display().to_string()
            )
        )),
        _ => Verdict::Refused(format!(
            "{} not loaded: it is version {}, the dump's runtime is {}",
            dac.display(),
            describe(theirs.as_ref()),
            describe(rt.version_string.as_ref())
        )),
    }
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

/// A `--dac` the user gave: loaded; a warning when it is known not to match.
fn explicit(rt: &RuntimeModule, p: &Path) -> anyhow::Result<FoundDac> {
    anyhow::ensure!(p.is_file(), "DAC {} does not exist", p.display());
    let mut warnings = Vec::new();
    let beside = p.parent().map(|d| d.join(RUNTIME_MODULE));
    let beside_id = beside
        .as_deref()
        .filter(|b| b.is_file())
        .and_then(build_id_of_file)
        .map(|b| hex(&b));
    let theirs = version_of_file(p);
    let mismatch = match (&rt.build_id, &beside_id, &rt.version_string, &theirs) {
        (Some(want), Some(have), _, _) => (want != have).then(|| {
            format!("the {RUNTIME_MODULE} beside it has build id {have}, the dump's has {want}")
        }),
        (_, _, Some(want), Some(have)) => (want.text != have.text).then(|| {
            format!(
                "it is version {}, the dump's runtime is {}",
                have.text, want.text
            )
        }),
        _ => None,
    };
    if let Some(why) = mismatch {
        warnings.push(format!(
            "{} is loaded because --dac says so, but {why}: results may be wrong",
            p.display()
        ));
    }
    Ok(FoundDac {
        path: p.to_path_buf(),
        source: DacSource::Explicit,
        warnings,
    })
}

/// Picks the DAC for `rt` (see the module documentation for the rule and the order).
pub fn find_dac(rt: &RuntimeModule, search: &DacSearch) -> anyhow::Result<FoundDac> {
    if let Some(p) = &search.explicit {
        return explicit(rt, p);
    }
    let mut warnings: Vec<String> = Vec::new();
    let mut looked: Vec<String> = Vec::new();
    let found = |path: PathBuf, source, warnings: Vec<String>| {
        Ok(FoundDac {
            path,
            source,
            warnings,
        })
    };
    let try_folder = |dir: &Path, source, flat, warnings: &mut Vec<String>| match judge_folder(
        rt, dir, source, flat,
    ) {
        Verdict::Match(s) => Some((dir.join(DAC_FILE), s)),
        Verdict::Absent => None,
        Verdict::Refused(why) => {
            warnings.push(why);
            None
        }
    };

    // 1. Beside the runtime the dump names.
    if let Some(dir) = Path::new(&rt.path).parent() {
        looked.push(dir.display().to_string());
        if let Some((p, s)) = try_folder(dir, DacSource::RuntimeFolder, false, &mut warnings) {
            return found(p, s, warnings);
        }
    }
    // 2. Symbol paths: the store key first (it names the build), then the folder itself.
    for dir in &search.symbol_paths {
        looked.push(format!("symbol path {}", dir.display()));
        if let Some(id) = &rt.build_id {
            let keyed = symstore::dac_in_store(dir, id);
            if keyed.is_file() {
                return found(keyed, DacSource::SymbolStore, warnings);
            }
        }
        if let Some((p, s)) = try_folder(dir, DacSource::SymbolPathRuntime, true, &mut warnings) {
            return found(p, s, warnings);
        }
    }
    // 3. Installed runtimes of the same build.
    if search.installed {
        looked.push("installed runtimes".into());
        for dir in installed_runtime_dirs() {
            if Path::new(&rt.path).parent() == Some(dir.as_path()) {
                continue;
            }
            if let Verdict::Match(s) = judge_folder(rt, &dir, DacSource::InstalledRuntime, false) {
                return found(dir.join(DAC_FILE), s, warnings);
            }
        }
    }
    // 4. The symbol server, when the user allowed it.
    match (&search.symbol_server, &rt.build_id) {
        (Some(server), Some(id)) => {
            looked.push(format!("symbol server {server}"));
            let cache = search
                .cache_dir()
                .ok_or_else(|| anyhow::anyhow!("no folder to download the DAC into"))?;
            match symstore::fetch_dac(server, id, &cache) {
                Ok(p) => return found(p, DacSource::SymbolServer, warnings),
                Err(e) => warnings.push(e.to_string()),
            }
        }
        (Some(server), None) => warnings.push(format!(
            "symbol server {server} not asked: the dump holds no build id of {RUNTIME_MODULE}"
        )),
        (None, _) => looked.push("no symbol server (--symbol-server URL)".into()),
    }

    let mut msg = format!(
        "no matching {DAC_FILE} for the runtime in this dump (.NET {}, {RUNTIME_MODULE} build id \
         {}); looked in: {}",
        rt.version.as_deref().unwrap_or("of unknown version"),
        rt.build_id.as_deref().unwrap_or("unknown"),
        looked.join(", ")
    );
    for w in &warnings {
        msg.push_str("; ");
        msg.push_str(w);
    }
    msg.push_str("; give --symbol-path DIR, --symbol-server URL or --dac PATH");
    anyhow::bail!(msg)
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
            version_string: VersionString::parse("8.0.9926.1 @Commit: abc"),
            version_from: Some(VersionFrom::Dump),
        }
    }

    fn search() -> DacSearch {
        DacSearch {
            installed: false,
            ..DacSearch::default()
        }
    }

    #[test]
    fn no_matching_dac_names_version_build_id_and_places() {
        let e = find_dac(
            &module(Some("00112233445566778899aabbccddeeff00112233")),
            &search(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("8.0.99"), "{e}");
        assert!(
            e.contains("00112233445566778899aabbccddeeff00112233"),
            "{e}"
        );
        assert!(e.contains("/nonexistent/shared"), "{e}");
        assert!(e.contains("no symbol server"), "{e}");
        assert!(e.contains("--dac"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn symbol_path_variable_adds_folders_after_the_given_ones() {
        let mut s = search();
        s.symbol_paths.push(PathBuf::from("/given"));
        let s = s.with_symbol_path_value(Some(std::ffi::OsStr::new("/a::/b")));
        assert_eq!(
            s.symbol_paths,
            [
                PathBuf::from("/given"),
                PathBuf::from("/a"),
                PathBuf::from("/b")
            ]
        );
    }

    #[test]
    fn explicit_dac_must_exist() {
        let mut s = search();
        s.explicit = Some(PathBuf::from("/nonexistent/libmscordaccore.so"));
        let e = find_dac(&module(None), &s).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn flat_dac_with_another_version_string_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(DAC_FILE),
            b"\x7fELF....@(#)Version 8.0.9926.2 @Commit: def\0",
        )
        .unwrap();
        let mut s = search();
        s.symbol_paths.push(dir.path().to_path_buf());
        let e = find_dac(&module(Some("aa")), &s).unwrap_err().to_string();
        assert!(e.contains("not loaded: it is version 8.0.9926.2"), "{e}");
        std::fs::write(
            dir.path().join(DAC_FILE),
            b"\x7fELF....@(#)Version 8.0.9926.1 @Commit: abc\0",
        )
        .unwrap();
        let f = find_dac(&module(Some("aa")), &s).unwrap();
        assert_eq!(f.source, DacSource::SymbolPathFlat);
    }
}
