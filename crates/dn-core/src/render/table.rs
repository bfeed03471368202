//! A plain-text table: a header row, aligned columns, and values cut with a visible ellipsis when
//! the table would be wider than the space it has.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone)]
struct Column {
    title: String,
    align: Align,
    /// Whether this column gives up width first when the table is too wide.
    shrinkable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

const GAP: &str = "  ";
const ELLIPSIS: char = '…';
/// A shrinkable column keeps at least this many characters.
const MIN_SHRUNK: usize = 8;

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn column(mut self, title: &str, align: Align, shrinkable: bool) -> Self {
        self.columns.push(Column {
            title: title.to_string(),
            align,
            shrinkable,
        });
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// Renders the table; with `max_width`, shrinkable columns are cut (with `…`) to fit.
    pub fn render(&self, max_width: Option<usize>) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| text_width(&r[i]))
                    .chain(std::iter::once(text_width(&self.columns[i].title)))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        if let Some(max) = max_width {
            let total = |w: &[usize]| w.iter().sum::<usize>() + GAP.len() * n.saturating_sub(1);
            // Shrink the widest shrinkable column first until it fits or nothing can give.
            while total(&widths) > max {
                let Some((i, _)) = widths
                    .iter()
                    .enumerate()
                    .filter(|(i, w)| self.columns[*i].shrinkable && **w > MIN_SHRUNK)
                    .max_by_key(|(_, w)| **w)
                else {
                    break;
                };
                let excess = total(&widths) - max;
                widths[i] = widths[i].saturating_sub(excess).max(MIN_SHRUNK);
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| c.title.clone()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let cut = cut_to(cell, widths[i]);
                let pad = widths[i] - text_width(&cut);
                let last = i + 1 == n;
                match self.columns[i].align {
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(&cut);
                    }
                    Align::Left => {
                        line.push_str(&cut);
                        if !last {
                            line.push_str(&" ".repeat(pad));
                        }
                    }
                }
                if !last {
                    line.push_str(GAP);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn text_width(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `s` to `width` characters, ending with `…` when anything was dropped.
pub fn cut_to(s: &str, width: usize) -> String {
    if text_width(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_cuts_with_an_ellipsis() {
        let mut t = Table::new()
            .column("PID", Align::Right, false)
            .column("NAME", Align::Left, false)
            .column("COMMAND LINE", Align::Left, true);
        t.row(vec![
            "7".into(),
            "app".into(),
            "/usr/bin/dotnet /very/long/path/to/app.dll --flag".into(),
        ]);
        t.row(vec!["12345".into(), "svc".into(), "short".into()]);
        let wide = t.render(None);
        assert_eq!(
            wide,
            "  PID  NAME  COMMAND LINE\n    7  app   /usr/bin/dotnet /very/long/path/to/app.dll --flag\n12345  svc   short\n"
        );
        let narrow = t.render(Some(30));
        for line in narrow.lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
        }
        assert!(narrow.contains("/usr/bin/dotnet …"), "{narrow}");
    }

    #[test]
    fn cut_keeps_short_values() {
        assert_eq!(cut_to("abc", 3), "abc");
        assert_eq!(cut_to("abcd", 3), "ab…");
        assert_eq!(cut_to("abcd", 0), "");
    }
}
