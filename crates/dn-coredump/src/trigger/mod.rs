//! `dn-dump collect --when …`: dumps taken when a condition over the target's counters holds.

pub mod exceptions;
pub mod rule;
pub mod run;

pub use rule::{parse_when, Rule};
pub use run::{run, Firing, TriggerError, TriggerOptions};
