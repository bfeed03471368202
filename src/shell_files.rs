//! Shell completions and man pages, generated from each tool's own argument definitions so they
//! can never drift from the real options: `dn-ps --generate bash`, `dn-dump --generate man`, …

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// What `--generate` can produce.
pub const KINDS: &[&str] = &["bash", "zsh", "fish", "elvish", "powershell", "man"];

/// Writes completions for `shell`, or the man page for "man", of the tool `T` to `out`.
pub fn generate<T: CommandFactory>(kind: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = T::command();
    let name = cmd.get_name().to_string();
    if kind == "man" {
        clap_mangen::Man::new(cmd).render(out)?;
        return Ok(());
    }
    let shell: Shell = kind.parse().map_err(|_| {
        anyhow::anyhow!("--generate takes one of {}, not {kind:?}", KINDS.join(", "))
    })?;
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Handles `TOOL --generate KIND` before normal argument parsing (so it works for tools whose
/// subcommand is otherwise required). Returns the exit code when it handled the call.
pub fn handle_generate<T: CommandFactory>() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("--generate") {
        return None;
    }
    let Some(kind) = args.next() else {
        eprintln!("--generate takes one of {}", KINDS.join(", "));
        return Some(ExitCode::FAILURE);
    };
    let mut stdout = std::io::stdout().lock();
    match generate::<T>(&kind, &mut stdout) {
        Ok(()) => Some(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("{e}");
            Some(ExitCode::FAILURE)
        }
    }
}
