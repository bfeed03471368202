//! `dn-dump analyze`: run SOS-style commands against a core dump, from `-c` arguments, a pipe,
//! or an interactive prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::commands::{RunCommand, Session, COMMANDS};
use crate::heap::Runtime;
use crate::snapshot::{is_snapshot, SnapshotSession};

/// Arguments of `analyze`.
#[derive(clap::Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// Core dump to analyze (an ELF core file of a .NET process), or a heap snapshot
    /// (`.gcdump`, from `dn-dump gcdump collect` or dotnet-gcdump).
    #[arg(required_unless_present = "pid")]
    pub dump: Option<PathBuf>,
    /// Analyze a running process instead: its threads are paused (ptrace) while the analysis
    /// lasts and run on afterwards.
    #[arg(long, value_name = "PID", conflicts_with = "dump")]
    pub pid: Option<u32>,
    /// Command to run (repeatable); without a terminal on stdin, exit after running them.
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    pub commands: Vec<String>,
    /// Print one JSON document per command, one per line, instead of text.
    #[arg(long)]
    pub json: bool,
    /// Use this libmscordaccore.so instead of searching for the one matching the dump.
    #[arg(long, value_name = "PATH")]
    pub dac: Option<PathBuf>,
    /// Folder to look for the DAC in, flat or in the symbol-store layout
    /// (libmscordaccore.so/elf-buildid-coreclr-<id>/libmscordaccore.so); repeatable. The
    /// DN_SYMBOL_PATH environment variable adds more (':'-separated).
    #[arg(long = "symbol-path", value_name = "DIR")]
    pub symbol_path: Vec<PathBuf>,
    /// Download the DAC from this symbol server (http:// only) when no local one matches; it
    /// is kept in the first --symbol-path folder (else the user's cache folder).
    #[arg(long = "symbol-server", value_name = "URL")]
    pub symbol_server: Option<String>,
}

impl AnalyzeArgs {
    /// Where to look for the DAC.
    pub fn dac_search(&self) -> crate::dac::DacSearch {
        crate::dac::DacSearch {
            explicit: self.dac.clone(),
            symbol_paths: self.symbol_path.clone(),
            symbol_server: self.symbol_server.clone(),
            cache: None,
            installed: true,
        }
        .with_env()
    }
}

/// The cancel flag of the running session; the Ctrl-C handler sets it.
static CANCEL: OnceLock<Mutex<Option<Arc<AtomicBool>>>> = OnceLock::new();

fn install_ctrlc(flag: Arc<AtomicBool>) {
    let slot = CANCEL.get_or_init(|| Mutex::new(None));
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(flag);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            let slot = CANCEL.get_or_init(|| Mutex::new(None));
            // Cancels the running command only (long commands poll the flag between objects);
            // the prompt reads Ctrl-C itself, so this runs only while a command runs. The
            // session stays: `exit` or Ctrl-D leave it.
            if let Some(f) = slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                f.store(true, Ordering::SeqCst);
            }
        });
    });
}

/// Runs `analyze`. Fails if the dump cannot be opened or, without a prompt, if a command failed.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    run_with(args, interactive, &mut stdin.lock(), &mut stdout)
}

/// `analyze` with its input and output given: `input` supplies commands (one per line) when
/// not `interactive` and no `-c` was given; results go to `out`. With `interactive`, a prompt
/// follows the `-c` commands.
pub fn run_with(
    args: AnalyzeArgs,
    interactive: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if let Some(dump) = args.dump.as_deref().filter(|d| is_snapshot(d)) {
        if !args.json {
            eprintln!("Loading heap snapshot: {} ...", dump.display());
        }
        let session = SnapshotSession::open(dump)?;
        install_ctrlc(session.cancel.clone());
        return drive(&session, &args, interactive, input, out);
    }
    let runtime = match (&args.dump, args.pid) {
        (Some(dump), _) => {
            if !args.json {
                eprintln!("Loading core dump: {} ...", dump.display());
            }
            Runtime::open_core_with(dump, &args.dac_search())?
        }
        (None, Some(pid)) => {
            if !args.json {
                eprintln!("Attaching to process {pid} (paused until the analysis ends) ...");
            }
            Runtime::attach(pid, &args.dac_search())?
        }
        (None, None) => anyhow::bail!("give a core dump file or --pid"),
    };
    if !args.json {
        for w in &runtime.dac_found.warnings {
            eprintln!("warning: {w}");
        }
    }
    let mut session = Session::new(runtime);
    session.progress = !args.json;
    install_ctrlc(session.cancel.clone());
    drive(&session, &args, interactive, input, out)
}

/// Runs the `-c` commands, then the piped ones or the prompt.
fn drive(
    session: &dyn RunCommand,
    args: &AnalyzeArgs,
    interactive: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut failures = 0usize;
    for c in &args.commands {
        if is_exit(c) {
            return finish(failures);
        }
        if !run_one(session, c, args.json, out) {
            failures += 1;
        }
    }
    if !args.commands.is_empty() && !interactive {
        return finish(failures);
    }
    if !interactive {
        // Commands piped on stdin, one per line.
        for line in input.lines() {
            let line = line?;
            if is_exit(&line) {
                break;
            }
            if !line.trim().is_empty() && !run_one(session, &line, args.json, out) {
                failures += 1;
            }
        }
        return finish(failures);
    }
    repl(session, args.json, out)
}

fn finish(failures: usize) -> anyhow::Result<()> {
    if failures > 0 {
        anyhow::bail!("{failures} command(s) failed");
    }
    Ok(())
}

fn is_exit(line: &str) -> bool {
    matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "exit" | "quit" | "q"
    )
}

/// Runs one command and prints its result; false if it failed.
fn run_one(session: &dyn RunCommand, line: &str, json: bool, out: &mut dyn Write) -> bool {
    let result = session.run_command(line);
    match result {
        Ok(Some(o)) => {
            let text = if json { o.to_json_line() } else { o.to_text() };
            let _ = writeln!(out, "{}", text.trim_end_matches('\n'));
            let _ = out.flush();
            true
        }
        Ok(None) => true,
        Err(e) => {
            if json {
                let doc = serde_json::json!({ "command": line.trim(), "error": format!("{e:#}") });
                let _ = writeln!(out, "{doc}");
                let _ = out.flush();
            } else {
                eprintln!("Error: {e:#}");
            }
            false
        }
    }
}

fn history_file() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("dn");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("dn-dump.history"))
}

fn repl(session: &dyn RunCommand, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if !json {
        writeln!(
            out,
            "Ready to process analysis commands. Type 'help' to list available commands.\nType 'quit' or 'exit' to exit the session."
        )?;
    }
    let mut ed: rustyline::Editor<CommandHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    ed.set_helper(Some(CommandHelper));
    let history = history_file();
    if let Some(h) = &history {
        let _ = ed.load_history(h);
    }
    loop {
        match ed.readline("> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = ed.add_history_entry(line.as_str());
                if is_exit(&line) {
                    break;
                }
                run_one(session, &line, json, out);
            }
            // Ctrl-C at the prompt clears the line (and says how to leave); Ctrl-D leaves.
            Err(ReadlineError::Interrupted) => {
                eprintln!("(type 'exit' or press Ctrl-D to quit)");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = ed.save_history(h);
    }
    Ok(())
}

/// Completes command names at the start of the line.
struct CommandHelper;

impl Completer for CommandHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        if head.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let lower = head.to_ascii_lowercase();
        let names = COMMANDS
            .iter()
            .map(|c| c.0)
            .filter(|n| n.starts_with(&lower))
            .map(String::from)
            .collect();
        Ok((0, names))
    }
}

impl Hinter for CommandHelper {
    type Hint = String;
}

impl Highlighter for CommandHelper {}

impl Validator for CommandHelper {}

impl Helper for CommandHelper {}
