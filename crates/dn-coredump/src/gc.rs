//! Never in the middle of a GC, told by the runtime itself: an EventPipe session on the
//! runtime provider's GC keyword delivers `GCSuspendEEBegin` (id 9) and `GCRestartEEEnd`
//! (id 3), which bracket every stretch during which the runtime holds managed threads for a
//! collection (a blocking GC whole, a background GC's start and end). The heap is consistent
//! outside those stretches.
//!
//! Events reach us late (the runtime flushes its buffers now and then), so the watch is used
//! twice: before the stop, to wait while a stretch is open as far as we know; after the
//! resume, to decide for sure: stopping the session makes the runtime flush everything it
//! wrote, and a stretch that overlaps our stop window (both on CLOCK_MONOTONIC, the runtime's
//! event clock on Linux) means the copy is discarded and taken again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dn_core::eventpipe::Session;
use serde::Serialize;

use crate::runtime_events::{self, Feed};

const GC_KEYWORD: u64 = 0x1;
const GC_SUSPEND_EE_BEGIN: u32 = 9;
const GC_RESTART_EE_END: u32 = 3;
/// How long stopping the session may take before the check gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// What the dump knows about GCs at the moment of its stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GcCheck {
    /// The runtime's events show no GC suspension during the stop.
    NotInGc,
    /// Every attempt overlapped a GC suspension; the last one was kept.
    InGc,
    /// Not asked for, or no .NET runtime to ask.
    NotChecked,
    /// The runtime's events could not be read (old runtime, session refused, stream broken).
    Unavailable,
}

/// A stretch of GC suspension in CLOCK_MONOTONIC nanoseconds; `end` None while open.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    begin: i128,
    end: Option<i128>,
}

#[derive(Debug, Default)]
struct Seen {
    stretches: Vec<Stretch>,
    broken: bool,
    ended: bool,
}

pub struct GcWatch {
    session: Session,
    seen: Arc<Mutex<Seen>>,
}

/// Now on CLOCK_MONOTONIC, in nanoseconds.
pub fn monotonic_ns() -> i128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
        .unwrap_or(0)
}

impl GcWatch {
    /// Starts the session; `None` when the process has no diagnostics endpoint or refuses.
    pub fn start(pid: i32) -> Option<GcWatch> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink_seen = seen.clone();
        let session = runtime_events::start(pid, GC_KEYWORD, move |feed| {
            let Ok(mut s) = sink_seen.lock() else { return };
            match feed {
                Feed::Event(ev) => note_event(&mut s, ev),
                Feed::End { broken } => {
                    s.ended = true;
                    s.broken |= broken;
                }
            }
        })
        .ok()?;
        Some(GcWatch { session, seen })
    }

    /// Waits up to `max` while the events seen so far show a GC suspension under way.
    /// Returns true if none is (as far as the events tell).
    pub fn wait_quiet(&self, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        loop {
            let open = self
                .seen
                .lock()
                .map(|s| s.stretches.last().is_some_and(|x| x.end.is_none()))
                .unwrap_or(false);
            if !open {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the session (the runtime flushes every event written so far) and tells whether a
    /// GC suspension overlapped `[from, to]` (CLOCK_MONOTONIC ns).
    pub fn verdict(mut self, from: i128, to: i128) -> GcCheck {
        if self.session.stop(STOP_TIMEOUT).is_err() {
            return GcCheck::Unavailable;
        }
        let Ok(s) = self.seen.lock() else {
            return GcCheck::Unavailable;
        };
        if s.broken || !s.ended {
            return GcCheck::Unavailable;
        }
        if overlaps(&s.stretches, from, to) {
            GcCheck::InGc
        } else {
            GcCheck::NotInGc
        }
    }
}

fn note_event(s: &mut Seen, ev: &dn_nettrace::Event) {
    let freq = i128::from(ev.trace.qpc_frequency);
    if freq <= 0 {
        return;
    }
    let ns = i128::from(ev.timestamp).saturating_mul(1_000_000_000) / freq;
    match ev.event_id() {
        GC_SUSPEND_EE_BEGIN => s.stretches.push(Stretch {
            begin: ns,
            end: None,
        }),
        GC_RESTART_EE_END => match s.stretches.last_mut() {
            Some(last) if last.end.is_none() => last.end = Some(ns),
            // The begin came before the session: the stretch started before anything we saw.
            _ => s.stretches.push(Stretch {
                begin: i128::MIN,
                end: Some(ns),
            }),
        },
        _ => {}
    }
}

/// A stretch overlaps `[from, to]`; an open one lasts forever.
fn overlaps(stretches: &[Stretch], from: i128, to: i128) -> bool {
    stretches
        .iter()
        .any(|x| x.begin <= to && x.end.is_none_or(|e| e >= from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rules() {
        let s = |begin, end| Stretch { begin, end };
        assert!(!overlaps(&[], 10, 20));
        assert!(!overlaps(&[s(1, Some(9)), s(21, Some(30))], 10, 20));
        assert!(overlaps(&[s(1, Some(10))], 10, 20));
        assert!(overlaps(&[s(15, Some(16))], 10, 20));
        assert!(overlaps(&[s(5, None)], 10, 20));
        assert!(overlaps(&[s(i128::MIN, Some(12))], 10, 20));
        assert!(!overlaps(&[s(25, None)], 10, 20));
    }
}
