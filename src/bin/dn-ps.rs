//! dn-ps: list the .NET processes this user can see.

use std::process::ExitCode;

use clap::Parser;
use dn_core::ps::{self, DotnetProcess};
use dn_core::render::{self, Align, Table};

/// List .NET processes: pid, name, runtime version, architecture and command line, as each
/// runtime reports it over its diagnostics socket.
#[derive(Parser, Debug)]
#[command(name = "dn-ps", version, about)]
struct Args {
    /// Print a JSON array (one object per process) instead of a table.
    #[arg(long)]
    json: bool,
    /// Never cut long values to fit the terminal.
    #[arg(long, short = 'w')]
    wide: bool,
}

fn main() -> ExitCode {
    if let Some(code) = dn::shell_files::handle_generate::<Args>() {
        return code;
    }
    let args = Args::parse();
    let rows = ps::list_processes();
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("dn-ps: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    if rows.is_empty() {
        println!("No .NET processes were found.");
        return ExitCode::SUCCESS;
    }
    let width = if args.wide {
        None
    } else {
        render::output_width()
    };
    print!("{}", table(&rows).render(width));
    ExitCode::SUCCESS
}

fn table(rows: &[DotnetProcess]) -> Table {
    let with_notes = rows.iter().any(|r| r.reason.is_some());
    let mut t = Table::new()
        .column("PID", Align::Right, false)
        .column("NAME", Align::Left, true)
        .column("RUNTIME", Align::Left, false)
        .column("ARCH", Align::Left, false)
        .column("COMMAND LINE", Align::Left, true);
    if with_notes {
        t = t.column("NOTE", Align::Left, true);
    }
    let dash = || "-".to_string();
    for r in rows {
        let mut cells = vec![
            r.pid.to_string(),
            r.name.clone(),
            r.runtime_version.clone().unwrap_or_else(dash),
            r.arch.clone().unwrap_or_else(dash),
            r.command_line.clone().unwrap_or_else(dash),
        ];
        if with_notes {
            cells.push(r.reason.clone().unwrap_or_default());
        }
        t.row(cells);
    }
    t
}
