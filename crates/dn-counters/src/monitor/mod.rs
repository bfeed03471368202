//! `monitor`: the live counters screen (or plain snapshots when stdout is not a terminal).

pub mod screen;
pub mod terminal;
