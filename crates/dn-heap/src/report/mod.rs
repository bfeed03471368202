//! `dn-dump report`: one self-contained HTML page showing where the memory went.
//!
//! * [`model`] runs the commands (`suspects`, `dominators`, `dumpheap -stat`, `eeheap`, `diff`)
//!   and gathers their results: the page's numbers are the `--json` numbers.
//! * [`treemap`] is the squarified layout; [`svg`] and [`charts`] draw; [`html`] and
//!   [`sections`] write the page.
//! * [`counters`] reads `dn-counters collect` files; [`output`] checks the inputs and writes
//!   the page whole or not at all.

pub mod charts;
pub mod counters;
pub mod html;
pub mod model;
pub mod output;
pub mod sections;
pub mod svg;
pub mod treemap;

use std::path::PathBuf;

use anyhow::Context;

use crate::commands::Session;
use crate::heap::Runtime;

/// `dn-dump report` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The core dump to explain.
    pub input: PathBuf,
    /// An earlier core dump of the same process: adds what grew, per type.
    #[arg(long, value_name = "OTHER")]
    pub baseline: Option<PathBuf>,
    /// Files written by `dn-counters collect` (csv, json or jsonl): one chart per counter.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub counters: Vec<PathBuf>,
    /// Where to write the page.
    #[arg(short, long, value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
    /// Open the page in the desktop's browser once written (xdg-open).
    #[arg(long)]
    pub open: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Use this libmscordaccore.so instead of searching for the one matching the dump.
    #[arg(long, value_name = "PATH")]
    pub dac: Option<PathBuf>,
}

/// Runs `dn-dump report`: every input checked first, then the commands, then the page.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    output::check_input(&args.input, "INPUT")?;
    if let Some(b) = &args.baseline {
        output::check_input(b, "--baseline")?;
    }
    output::check_output(&args.output, args.force)?;
    let mut counters = Vec::new();
    for c in &args.counters {
        let name = c
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| c.display().to_string());
        counters.push((name, counters::read(c)?));
    }
    let page = render(&args, counters)?;
    output::write_atomically(&args.output, page.as_bytes(), args.force)?;
    eprintln!(
        "Wrote {} ({:.1} KiB)",
        args.output.display(),
        page.len() as f64 / 1024.0
    );
    if args.open {
        open(&args.output);
    }
    Ok(())
}

/// The page for `args` (inputs already checked).
pub fn render(
    args: &ReportArgs,
    counters: Vec<(String, counters::CountersFile)>,
) -> anyhow::Result<String> {
    let open = |p: &std::path::Path| -> anyhow::Result<Session> {
        let rt = Runtime::open_core_with_heap(p, args.dac.as_deref())
            .with_context(|| format!("cannot read {}", p.display()))?;
        let mut s = Session::new(rt);
        s.progress = true;
        Ok(s)
    };
    let session = open(&args.input)?;
    let baseline = match &args.baseline {
        Some(b) => Some((open(b)?, b.as_path())),
        None => None,
    };
    let report = model::build(
        &session,
        &args.input,
        baseline.as_ref().map(|(s, p)| (s, *p)),
        counters,
    )?;
    Ok(html::page(&report))
}

fn open(path: &std::path::Path) {
    match std::process::Command::new("xdg-open").arg(path).status() {
        Ok(s) if s.success() => {}
        _ => eprintln!(
            "Warning: could not open {} (xdg-open failed): open it in a browser",
            path.display()
        ),
    }
}
