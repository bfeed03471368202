//! dn-ps: list the .NET processes this user can see.

use std::process::ExitCode;

use clap::Parser;
use dn_core::ps;
use dn_core::render;

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
    let width = if args.wide {
        None
    } else {
        render::output_width()
    };
    print!("{}", ps::render_listing(&rows, width));
    ExitCode::SUCCESS
}
