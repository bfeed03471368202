//! Stand-alone `dn-coredump -p PID [-o FILE] [--type T] [--json]`: the same
//! code path as `dn-dump collect`.
//!
//! For tests and development only, not a shipped tool: the crate's tests run
//! it as a child process they can kill mid-dump, and it allows measuring the
//! collector on its own. Users run `dn-dump collect`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "dn-coredump",
    about = "Write an ELF core dump of a live process (ptrace)"
)]
struct Cli {
    #[command(flatten)]
    args: dn_coredump::cli::CollectArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dn_coredump::cli::run(cli.args) {
        eprintln!("error: {e:#}");
        std::process::exit(dn_coredump::exit_code(&e).into());
    }
}
