//! Shared glue of the three dn binaries (the logic lives in the crates under `crates/`).

pub mod shell_files;
