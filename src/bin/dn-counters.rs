//! dn-counters: watch a live .NET process's counters (what `dotnet-counters` does).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if let Some(code) = dn::shell_files::handle_generate::<dn_counters::args::Cli>() {
        return code;
    }
    let cli = match dn_counters::args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return dn_counters::args::usage_error(e),
    };
    match dn_counters::run::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dn-counters: {}", dn::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
