//! `monitor`: the live screen on a terminal, plain snapshots otherwise.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{event_loop, options, report, stop_flag, target_of, Consumer, Control};
use crate::args::MonitorArgs;
use crate::collect;
use crate::monitor::screen;
use crate::monitor::terminal::{Painter, TerminalGuard};
use crate::sample::Sample;
use crate::store::Store;
use crate::watch::{ChildOutput, Watch};

pub fn monitor(a: &MonitorArgs) -> Result<()> {
    let tty = io::stdout().is_terminal();
    let out = if tty {
        ChildOutput::Discard
    } else {
        ChildOutput::Stderr
    };
    let opts = options(&a.session, out)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    let mut watch = Watch::start(&target, &opts)?;
    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let view = screen::View {
        raw: a.raw,
        deltas: a.show_deltas,
    };
    let outcome = if tty {
        let guard = TerminalGuard::enter().context("cannot set up the terminal")?;
        let mut screen = LiveScreen::new(view, watch.pid);
        let r = event_loop(&mut watch, refresh, a.session.duration, &stop, &mut screen);
        // The last screen of values stays; the cursor goes below it.
        guard.leave(screen.painter.rows());
        r?
    } else {
        let mut plain = PlainSnapshots::new(view, watch.pid);
        event_loop(&mut watch, refresh, a.session.duration, &stop, &mut plain)?
    };
    report(&outcome);
    Ok(())
}

/// The full-screen monitor.
struct LiveScreen {
    store: Store,
    painter: Painter,
    view: screen::View,
    paused: bool,
    keys: bool,
    warning: Option<String>,
    dirty: bool,
    pid: i32,
}

impl LiveScreen {
    fn new(view: screen::View, pid: i32) -> Self {
        LiveScreen {
            store: Store::default(),
            painter: Painter::default(),
            view,
            paused: false,
            keys: io::stdin().is_terminal(),
            warning: None,
            dirty: true,
            pid,
        }
    }

    fn frame(&self, width: usize) -> screen::Frame {
        let status = if self.paused {
            "Paused".to_string()
        } else if self.store.is_empty() {
            "Waiting for initial payload...".to_string()
        } else {
            "Running".to_string()
        };
        let status = format!("{status}   (process {})", self.pid);
        screen::Frame {
            header: screen::header(&status, self.warning.as_deref(), self.view, width),
            body: screen::body(&self.store, self.view, width),
        }
    }

    fn handle_key(&mut self, key: crossterm::event::KeyEvent) -> Control {
        use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
        if key.kind == KeyEventKind::Release {
            return Control::Continue;
        }
        let page = self.painter.page.max(1) as isize;
        let rows = screen::body(&self.store, self.view, 80).len();
        match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Control::Quit
            }
            KeyCode::Char('q') | KeyCode::Char('Q') => return Control::Quit,
            KeyCode::Char('p') | KeyCode::Char('P') => self.paused = true,
            KeyCode::Char('r') | KeyCode::Char('R') => self.paused = false,
            KeyCode::Up => self.painter.scroll_by(-1, rows),
            KeyCode::Down => self.painter.scroll_by(1, rows),
            KeyCode::PageUp => self.painter.scroll_by(-page, rows),
            KeyCode::PageDown => self.painter.scroll_by(page, rows),
            KeyCode::Home => self.painter.scroll_by(-(rows as isize), rows),
            KeyCode::End => self.painter.scroll_by(rows as isize, rows),
            _ => return Control::Continue,
        }
        self.dirty = true;
        Control::Continue
    }
}

impl Consumer for LiveScreen {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        if self.paused {
            return Ok(Control::Continue);
        }
        self.store.apply(switched, samples);
        self.dirty = true;
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        self.warning = Some(match self.warning.take() {
            Some(w) => format!("{w}; {text}"),
            None => format!("Warning: {text}"),
        });
        self.dirty = true;
    }

    fn tick(&mut self) -> Result<Control> {
        use crossterm::event::{self, Event};
        if self.keys && terminal_hung_up() {
            // The terminal is gone (closed window, killed multiplexer): nothing to show on.
            return Ok(Control::Quit);
        }
        while self.keys && event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(k) if self.handle_key(k) == Control::Quit => {
                    return Ok(Control::Quit);
                }
                Event::Resize(_, _) => {
                    self.painter.invalidate();
                    self.dirty = true;
                }
                _ => {}
            }
        }
        let size = crossterm::terminal::size().unwrap_or((80, 24));
        if self.dirty {
            let frame = self.frame(size.0 as usize);
            self.painter.paint(&mut io::stdout().lock(), &frame, size)?;
            self.dirty = false;
        }
        Ok(Control::Continue)
    }
}

/// True when stdin, our terminal, has hung up. crossterm would spin forever reading its EOF.
fn terminal_hung_up() -> bool {
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut fds, 1, 0) };
    if ready <= 0 {
        return false;
    }
    if fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return true;
    }
    let mut pending: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int.
    let r = unsafe { libc::ioctl(0, libc::FIONREAD, &mut pending) };
    // Readable with nothing to read: end of file.
    r == 0 && pending == 0
}

/// stdout is not a terminal: one plain-text snapshot per interval, no escape codes.
struct PlainSnapshots {
    store: Store,
    view: screen::View,
    pid: i32,
    dirty: bool,
    last_sample: Instant,
    width: usize,
}

impl PlainSnapshots {
    fn new(view: screen::View, pid: i32) -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        PlainSnapshots {
            store: Store::default(),
            view,
            pid,
            dirty: false,
            last_sample: Instant::now(),
            width,
        }
    }
}

/// An interval's values arrive within a few ms; a quiet spell this long means it is complete.
const SNAPSHOT_QUIET: Duration = Duration::from_millis(250);

impl Consumer for PlainSnapshots {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        if !samples.is_empty() {
            self.last_sample = Instant::now();
            self.dirty = true;
        }
        self.store.apply(switched, samples);
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }

    fn tick(&mut self) -> Result<Control> {
        if !self.dirty || self.last_sample.elapsed() < SNAPSHOT_QUIET {
            return Ok(Control::Continue);
        }
        self.dirty = false;
        let mut text = format!(
            "{} process {}\n",
            collect::rfc3339(std::time::SystemTime::now()),
            self.pid
        );
        if self.view.deltas {
            text.push_str(screen::column_titles(self.view, self.width).trim_end());
            text.push('\n');
        }
        for l in screen::body(&self.store, self.view, self.width) {
            text.push_str(l.trim_end());
            text.push('\n');
        }
        text.push('\n');
        let mut out = io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => Ok(Control::Continue),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Control::Quit),
            Err(e) => Err(e.into()),
        }
    }
}
