//! dn-counters: watch a live .NET process's counters over EventPipe, as `dotnet-counters` does.
//!
//! - [`spec`]: the `--counters` grammar; [`plan`]: which providers to enable for it.
//! - [`watch`]: attaching (pid, name, diagnostic port, or a command started suspended) and the
//!   session thread; [`decode`]: EventCounters and System.Diagnostics.Metrics events to
//!   [`sample::Sample`]s; [`prefer`]: Meter over EventCounters when a provider has both.
//! - [`monitor`] (screen), [`collect`] (CSV/JSON/JSONL), [`prometheus`] (serve), [`known`] (list).
//! - [`args`] and [`run`]: the command line.

pub mod args;
pub mod collect;
pub mod decode;
pub mod format;
pub mod known;
pub mod labels;
pub mod monitor;
pub mod names;
pub mod output;
pub mod plan;
pub mod prefer;
pub mod prometheus;
pub mod run;
pub mod sample;
pub mod spec;
pub mod store;
pub mod watch;
