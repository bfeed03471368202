//! Presenting typed results: plain-text tables for people (JSON comes straight from serde).

pub mod table;

pub use table::{Align, Table};

/// Thousands separated by `,` (.NET's `N0` in the invariant culture, SOS's `n0`).
pub fn n0(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn n0_groups_thousands() {
        assert_eq!(super::n0(0), "0");
        assert_eq!(super::n0(999), "999");
        assert_eq!(super::n0(1_389_260), "1,389,260");
    }
}
