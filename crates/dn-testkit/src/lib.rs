//! Test harness for dn: builds the .NET fixture programs under `fixtures/` for several
//! runtimes (cached under `<workspace>/target/dn-fixtures`), starts them as real target
//! processes, and runs the oracle programs that check dn's results.
//!
//! Every test that needs a live .NET process goes through [`Target`].

mod builder;
mod cache;
mod http;
pub mod mutate;
mod oracle;
mod project;
mod runtime;
mod target;
mod tools;

pub use builder::{build, oracle, Built};
pub use oracle::run_oracle;
pub use runtime::{Fixture, Runtime};
pub use target::{StartOptions, Target};
pub use tools::{dotnet_dump_analyze, dotnet_tool, TOOLS_VERSION};

use std::path::PathBuf;

/// The cargo workspace root (the folder holding `fixtures/`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here
        .parent()
        .and_then(|p| p.parent())
        .expect("dn-testkit lives at crates/dn-testkit");
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// The `dotnet` executable. Panics if the SDK is not installed: tests cannot run without it.
pub fn dotnet() -> PathBuf {
    match which::which("dotnet") {
        Ok(p) => p,
        Err(_) => panic!("the .NET SDK (dotnet) is required to run dn's tests: not found on PATH"),
    }
}
