//! dn-counters: watch a live .NET process's counters (what `dotnet-counters` does).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if let Some(code) = dn::shell_files::handle_generate::<dn_counters::args::Cli>() {
        return code;
    }
    let cli = dn_counters::args::Cli::parse();
    match dn_counters::run::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dn-counters: {}", dn::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
