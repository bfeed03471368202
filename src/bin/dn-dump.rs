//! dn-dump: capture a .NET process's memory (`collect`) and explain it (`analyze`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dn_core::ipc::dump::{collect_via_runtime, RuntimeDumpType};
use dn_coredump::cli::{default_output_name, CollectArgs};
use dn_coredump::DumpType;

/// Huge pages for the heap graph's big arrays (see `dn_core::hugealloc`).
#[global_allocator]
static ALLOC: dn_core::hugealloc::HugePageAlloc = dn_core::hugealloc::HugePageAlloc;

#[derive(Parser, Debug)]
#[command(
    name = "dn-dump",
    version,
    about = "Capture and analyze dumps of .NET processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write an ELF core of a live process (our own ptrace writer; the target keeps running).
    Collect(Collect),
    /// Open a dump and explain its managed heap with SOS's commands (dumpheap, gcroot, dumpobj...).
    Analyze(dn_heap::cli::AnalyzeArgs),
    /// Compare the managed heaps of two dumps of one process: which types grew (what is leaking).
    Diff(dn_heap::diff::DiffArgs),
    /// Write one self-contained HTML page showing where the memory went (treemap, leak
    /// suspects, dominator tree; growth with --baseline; counter charts with --counters).
    Report(dn_heap::report::ReportArgs),
    /// Heap snapshots over EventPipe, compatible with dotnet-gcdump (no ptrace, no core).
    #[command(subcommand)]
    Gcdump(dn_gcdump::cli::GcdumpCmd),
    /// List the .NET processes that can be dumped (as dn-ps).
    Ps,
}

#[derive(clap::Args, Debug)]
struct Collect {
    #[command(flatten)]
    args: CollectArgs,
    /// Ask the target's runtime to write the dump itself (its createdump, over the diagnostics
    /// socket) instead of using ptrace: for hosts where ptrace is not allowed.
    #[arg(long)]
    via_runtime: bool,
}

fn main() -> ExitCode {
    if let Some(code) = dn::shell_files::handle_generate::<Cli>() {
        return code;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Collect(c) if c.via_runtime => via_runtime(c.args),
        Cmd::Collect(c) => dn_coredump::cli::run(c.args),
        Cmd::Analyze(a) => dn_heap::cli::run(a),
        Cmd::Diff(d) => dn_heap::diff::run(d),
        Cmd::Report(r) => dn_heap::report::run(r),
        Cmd::Gcdump(g) => dn_gcdump::cli::run(g),
        Cmd::Ps => {
            let rows = dn_core::ps::list_processes();
            print!(
                "{}",
                dn_core::ps::render_listing(&rows, dn_core::render::output_width())
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dn-dump: {}", dn::error_line(&e));
            // 128 + signal when a signal interrupted a dump, as shells report it.
            ExitCode::from(dn_coredump::exit_code(&e))
        }
    }
}

fn via_runtime(args: CollectArgs) -> anyhow::Result<()> {
    let kind = match args.dump_type {
        DumpType::Full => RuntimeDumpType::Full,
        DumpType::Heap => RuntimeDumpType::Heap,
        DumpType::Mini => RuntimeDumpType::Mini,
        DumpType::Triage => RuntimeDumpType::Triage,
    };
    let pid = args.pid_or_error()?;
    let output = args.output.unwrap_or_else(default_output_name);
    let summary = collect_via_runtime(pid, &output, kind)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!(
            "Complete: {} ({:.1} MiB) written by the target's runtime in {:.2} s",
            summary.path.display(),
            summary.bytes_written as f64 / (1024.0 * 1024.0),
            summary.seconds
        );
    }
    Ok(())
}
