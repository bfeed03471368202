//! Presenting typed results: plain-text tables for people (JSON comes straight from serde).

pub mod table;

pub use table::{Align, Table};

/// The width to lay text out in: the terminal's when stdout is one, else `$COLUMNS`, else none.
pub fn output_width() -> Option<usize> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        if let Ok((w, _)) = crossterm::terminal::size() {
            return Some(w as usize);
        }
    }
    std::env::var("COLUMNS")
        .ok()?
        .parse()
        .ok()
        .filter(|w| *w > 0)
}
