//! Publishes fixtures and oracles with the .NET SDK into the shared build cache.

use crate::cache::{self, EntryLock};
use crate::runtime::{Fixture, Runtime};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

/// A published fixture, ready to launch.
#[derive(Clone, Debug)]
pub struct Built {
    /// The cache entry folder (holds `src/`, `out/`, `build.log`).
    pub dir: PathBuf,
    /// Program to execute: the apphost of a self-contained build, or `dotnet`.
    pub program: PathBuf,
    /// Arguments that make up the launch command with `program` (the dll for `dotnet`).
    pub args: Vec<OsString>,
    /// Folder holding the runtime the target runs on: `libcoreclr.so`, `libmscordaccore.so`, `createdump`.
    pub runtime_dir: PathBuf,
}

impl Built {
    /// The publish output folder.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("out")
    }
}

/// What one cached publish needs.
struct PublishJob<'a> {
    /// Cache entry name, e.g. "ConsoleTarget-net8".
    key: String,
    /// Folder with the sources to copy.
    src_dir: &'a Path,
    /// A generated project file (name, text); `None` to use the one among the sources.
    generated_project: Option<(String, String)>,
    /// Project file name inside the copied sources.
    project_file: String,
    /// Extra `dotnet publish` arguments.
    extra_args: Vec<&'a str>,
}

/// Builds `fixture` for `rt` (or reuses the cached build) and describes how to launch it.
pub fn build(fixture: Fixture, rt: Runtime) -> Result<Built> {
    if !fixture.supports(rt) {
        bail!(
            "{} cannot be built for {}: the package feed serves no ASP.NET Core {} runtime pack",
            fixture.name(),
            rt.label(),
            rt.label()
        );
    }
    let src_dir = crate::workspace_root()
        .join("fixtures")
        .join(fixture.name());
    let project_file = format!("{}.csproj", fixture.name());
    let job = PublishJob {
        key: format!("{}-{}", fixture.name(), rt.label()),
        src_dir: &src_dir,
        generated_project: Some((project_file.clone(), crate::project::csproj(fixture, rt))),
        project_file,
        extra_args: Vec::new(),
    };
    let dir = publish_cached(&job)
        .with_context(|| format!("building fixture {} for {}", fixture.name(), rt.label()))?;
    let out = dir.join("out");
    if rt.self_contained() {
        Ok(Built {
            program: out.join(fixture.name()),
            args: Vec::new(),
            runtime_dir: out.clone(),
            dir,
        })
    } else {
        Ok(Built {
            program: crate::dotnet(),
            args: vec![out.join(format!("{}.dll", fixture.name())).into_os_string()],
            runtime_dir: shared_runtime_dir(rt.major())?,
            dir,
        })
    }
}

/// Builds `fixtures/oracles/<name>/<name>.csproj` framework-dependent and returns its dll.
pub fn oracle(name: &str) -> Result<PathBuf> {
    let src_dir = crate::workspace_root()
        .join("fixtures")
        .join("oracles")
        .join(name);
    let project_file = format!("{name}.csproj");
    if !src_dir.join(&project_file).is_file() {
        bail!(
            "no oracle project {}",
            src_dir.join(&project_file).display()
        );
    }
    let job = PublishJob {
        key: format!("oracle-{name}"),
        src_dir: &src_dir,
        generated_project: None,
        project_file,
        extra_args: vec!["-p:UseAppHost=false"],
    };
    let dir = publish_cached(&job).with_context(|| format!("building oracle {name}"))?;
    Ok(dir.join("out").join(format!("{name}.dll")))
}

/// The shared framework folder of the newest installed `major.x` runtime beside `dotnet`.
fn shared_runtime_dir(major: u32) -> Result<PathBuf> {
    let dotnet = crate::dotnet();
    let real = fs::canonicalize(&dotnet).unwrap_or(dotnet);
    let shared = real
        .parent()
        .context("dotnet has no parent folder")?
        .join("shared")
        .join("Microsoft.NETCore.App");
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir(&shared).with_context(|| format!("reading {}", shared.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Stable versions only: "10.0.12", not "10.0.0-preview.1".
        let parts: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
        if let Some(parts) = parts {
            if parts.first() == Some(&major) && best.as_ref().is_none_or(|(b, _)| parts > *b) {
                best = Some((parts, entry.path()));
            }
        }
    }
    match best {
        Some((_, path)) => Ok(path),
        None => bail!("no .NET {major} runtime in {}", shared.display()),
    }
}

/// Builds that already failed in this process: not retried, so a broken build costs its time
/// once per test binary rather than once per test.
static FAILED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn publish_cached(job: &PublishJob) -> Result<PathBuf> {
    if let Some((_, why)) = FAILED.lock().unwrap().iter().find(|(k, _)| *k == job.key) {
        bail!("{why} (failed earlier in this test run)");
    }
    let result = publish_or_reuse(job);
    if let Err(e) = &result {
        FAILED
            .lock()
            .unwrap()
            .push((job.key.clone(), format!("{e:#}")));
    }
    result
}

fn publish_or_reuse(job: &PublishJob) -> Result<PathBuf> {
    let root = cache::cache_root();
    let _lock: EntryLock = cache::lock_entry(&root, &job.key)?;
    let dir = root.join(&job.key);
    let mut files = cache::source_files(job.src_dir)?;
    if job.generated_project.is_some() {
        // The hand-run project in the fixture folder is replaced by the generated one.
        files.retain(|f| f.extension().is_none_or(|e| e != "csproj"));
    }
    let mut extra: Vec<&str> = job.extra_args.clone();
    if let Some((_, text)) = &job.generated_project {
        extra.push(text);
    }
    let hash = cache::hash_inputs(job.src_dir, &files, &extra)?;
    let stamp = dir.join("stamp");
    let out = dir.join("out");
    if out.is_dir() && fs::read_to_string(&stamp).ok().as_deref() == Some(hash.as_str()) {
        return Ok(dir);
    }

    let _ = fs::remove_file(&stamp);
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let src = dir.join("src");
    refresh_sources(job, &files, &src)?;

    let log_path = dir.join("build.log");
    let log = fs::File::create(&log_path)?;
    let started = Instant::now();
    let status = Command::new(crate::dotnet())
        .arg("publish")
        .arg(src.join(&job.project_file))
        .args(["-c", "Release", "-o"])
        .arg(&out)
        .args([
            "--nologo",
            "-nodeReuse:false",
            "-p:UseSharedCompilation=false",
        ])
        .args(&job.extra_args)
        .envs(build_env())
        .current_dir(&src)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running dotnet publish")?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "dotnet publish failed ({status}) after {seconds:.1} s; log {}:\n{}",
            log_path.display(),
            log_excerpt(&log_path)
        );
    }
    make_world_readable(&dir)?;
    fs::write(dir.join("build-seconds"), format!("{seconds:.1}\n"))?;
    fs::write(&stamp, &hash)?;
    eprintln!("dn-testkit: built {} in {seconds:.1} s", job.key);
    Ok(dir)
}

/// Environment for the SDK: quiet, no telemetry, no long-lived build servers left running
/// (they are .NET processes too and would show up in process listings under test).
pub(crate) fn build_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("DOTNET_CLI_TELEMETRY_OPTOUT", "1"),
        ("DOTNET_NOLOGO", "1"),
        ("DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1"),
        ("DOTNET_CLI_USE_MSBUILD_SERVER", "0"),
        ("MSBUILDDISABLENODEREUSE", "1"),
        ("DOTNET_GENERATE_ASPNET_CERTIFICATE", "false"),
    ]
}

/// Replaces the copied sources, keeping `obj/` so restores stay incremental.
fn refresh_sources(job: &PublishJob, files: &[PathBuf], src: &Path) -> Result<()> {
    fs::create_dir_all(src)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        if entry.file_name() == "obj" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    for rel in files {
        let to = src.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(job.src_dir.join(rel), &to)
            .with_context(|| format!("copying {}", job.src_dir.join(rel).display()))?;
    }
    if let Some((name, text)) = &job.generated_project {
        fs::write(src.join(name), text)?;
    }
    Ok(())
}

/// The lines of a build log that say what went wrong (errors first, else the tail).
fn log_excerpt(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("error")).collect();
    let lines: Vec<&str> = if errors.is_empty() {
        text.lines().collect()
    } else {
        errors
    };
    let start = lines.len().saturating_sub(20);
    lines[start..].join("\n")
}

/// Targets may run as another user: let everyone read the build and run its programs.
fn make_world_readable(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let wanted = if meta.is_dir() || mode & 0o100 != 0 {
        mode | 0o555
    } else {
        mode | 0o444
    };
    if wanted != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(wanted))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            make_world_readable(&entry?.path())?;
        }
    }
    Ok(())
}
