//! dn-counters: watch a live .NET process's counters (what `dotnet-counters` does).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dn_counters::args::Cli::parse();
    match dn_counters::run::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dn-counters: {e:#}");
            ExitCode::FAILURE
        }
    }
}
