//! The live screen: raw mode for as long as the monitor runs (restored on every exit path, panics
//! included), and repainting only the lines that changed. Like dotnet-counters, the monitor draws
//! on the normal screen, so its last values stay in the terminal after it exits.

use std::io::{self, Write};

use crossterm::{cursor, execute, queue, style, terminal};

use super::screen::{cut, Frame};

/// Puts the terminal into raw mode on a cleared screen; restores it when dropped, leaving what
/// was drawn in place.
pub struct TerminalGuard {
    active: bool,
    /// Lines drawn at the top of the screen: the cursor ends up below them.
    rows: u16,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        let guard = TerminalGuard {
            active: true,
            rows: 0,
        };
        execute!(
            io::stdout(),
            terminal::Clear(terminal::ClearType::All),
            cursor::MoveTo(0, 0),
            cursor::Hide
        )?;
        Ok(guard)
    }

    /// Restores the terminal with the cursor on the line after the `rows` drawn lines.
    pub fn leave(mut self, rows: usize) {
        self.rows = u16::try_from(rows).unwrap_or(u16::MAX);
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if self.active {
            let mut out = io::stdout();
            if self.rows > 0 {
                // The last drawn line, then a line feed: scrolls when the screen is full.
                let _ = queue!(out, cursor::MoveTo(0, self.rows - 1), style::Print("\r\n"));
            }
            restore();
            self.active = false;
        }
    }
}

fn restore() {
    let _ = execute!(io::stdout(), cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// A panic must not leave the user's terminal in raw mode: restore first, then report.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Keeps what is on screen and writes only the lines that differ.
#[derive(Default)]
pub struct Painter {
    shown: Vec<String>,
    size: (u16, u16),
    /// First body row on screen.
    pub scroll: usize,
    /// Body rows that fit under the header at the last paint.
    pub page: usize,
}

impl Painter {
    /// Forgets the screen contents (after a resize): the next paint redraws everything.
    pub fn invalidate(&mut self) {
        self.shown.clear();
        self.size = (0, 0);
    }

    /// Lines on screen after the last paint.
    pub fn rows(&self) -> usize {
        self.shown.len()
    }

    pub fn scroll_by(&mut self, delta: isize, body_len: usize) {
        let max = body_len.saturating_sub(self.page);
        self.scroll = (self.scroll as isize + delta).clamp(0, max as isize) as usize;
    }

    pub fn paint(
        &mut self,
        out: &mut impl Write,
        frame: &Frame,
        size: (u16, u16),
    ) -> io::Result<()> {
        let (w, h) = (size.0 as usize, size.1 as usize);
        if size != self.size {
            queue!(out, terminal::Clear(terminal::ClearType::All))?;
            self.shown.clear();
            self.size = size;
        }
        let mut header = frame.header.clone();
        self.page = h.saturating_sub(header.len());
        self.scroll = self.scroll.min(frame.body.len().saturating_sub(self.page));
        if frame.body.len() > self.page && header.len() > 1 {
            let last = (self.scroll + self.page).min(frame.body.len());
            header[1] = format!(
                "{}   (rows {}-{} of {}; Up/Down/PgUp/PgDn to scroll)",
                header[1],
                self.scroll + 1,
                last,
                frame.body.len()
            );
        }
        let visible: Vec<String> = header
            .into_iter()
            .chain(frame.body.iter().skip(self.scroll).take(self.page).cloned())
            .take(h)
            .map(|l| cut(&l, w))
            .collect();
        for (y, line) in visible.iter().enumerate() {
            if self.shown.get(y) != Some(line) {
                queue!(
                    out,
                    cursor::MoveTo(0, y as u16),
                    style::Print(line),
                    terminal::Clear(terminal::ClearType::UntilNewLine)
                )?;
            }
        }
        for y in visible.len()..self.shown.len() {
            queue!(
                out,
                cursor::MoveTo(0, y as u16),
                terminal::Clear(terminal::ClearType::CurrentLine)
            )?;
        }
        self.shown = visible;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[&str]) -> Frame {
        Frame {
            header: vec!["keys".into(), "status".into()],
            body: body.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn moves(out: &[u8]) -> usize {
        String::from_utf8_lossy(out).matches('H').count()
    }

    #[test]
    fn repaints_only_changed_lines() {
        let mut p = Painter::default();
        let mut first = Vec::new();
        p.paint(&mut first, &frame(&["a 1", "b 2", "c 3"]), (40, 10))
            .unwrap();
        assert_eq!(moves(&first), 5);
        let mut second = Vec::new();
        p.paint(&mut second, &frame(&["a 1", "b 9", "c 3"]), (40, 10))
            .unwrap();
        let text = String::from_utf8_lossy(&second);
        assert_eq!(moves(&second), 1, "{text:?}");
        assert!(text.contains("b 9") && !text.contains("a 1") && !text.contains("c 3"));
        let mut same = Vec::new();
        p.paint(&mut same, &frame(&["a 1", "b 9", "c 3"]), (40, 10))
            .unwrap();
        assert!(same.is_empty(), "nothing changed, nothing written");
        // A new size redraws everything.
        let mut resized = Vec::new();
        p.paint(&mut resized, &frame(&["a 1", "b 9", "c 3"]), (30, 10))
            .unwrap();
        assert_eq!(moves(&resized), 5);
    }

    #[test]
    fn scrolls_rows_beyond_the_screen() {
        let mut p = Painter::default();
        let body: Vec<String> = (0..20).map(|i| format!("row {i}")).collect();
        let f = Frame {
            header: vec!["keys".into(), "status".into()],
            body,
        };
        let mut out = Vec::new();
        p.paint(&mut out, &f, (40, 6)).unwrap();
        assert_eq!(p.page, 4);
        assert!(String::from_utf8_lossy(&out).contains("rows 1-4 of 20"));
        p.scroll_by(100, f.body.len());
        let mut out = Vec::new();
        p.paint(&mut out, &f, (40, 6)).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("row 19") && text.contains("rows 17-20 of 20"),
            "{text:?}"
        );
    }
}
