//! Ctrl-C / SIGTERM / SIGHUP during a dump set a flag; the dump then stops at
//! the next chunk, removes its partial file and resumes the target. A second
//! signal, or one while no dump runs, has the default effect (terminate),
//! which is still safe: the kernel detaches a dead tracer's tracees.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;

struct Flags {
    idle: Arc<AtomicBool>,
    interrupted: Arc<AtomicBool>,
    /// The number of the last signal received (0: none).
    signal: Arc<AtomicUsize>,
    active: Mutex<usize>,
}

static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();
static REGISTER_FAILURES: AtomicUsize = AtomicUsize::new(0);

fn install() -> Option<Flags> {
    let idle = Arc::new(AtomicBool::new(true));
    let interrupted = Arc::new(AtomicBool::new(false));
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Handlers run in registration order.
        let ok = flag::register_conditional_default(sig, idle.clone()).is_ok()
            && flag::register_conditional_default(sig, interrupted.clone()).is_ok()
            && flag::register_usize(sig, signal.clone(), sig as usize).is_ok()
            && flag::register(sig, interrupted.clone()).is_ok();
        if !ok {
            REGISTER_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
    }
    Some(Flags {
        idle,
        interrupted,
        signal,
        active: Mutex::new(0),
    })
}

/// Held for the duration of one dump.
pub struct InterruptGuard {
    flags: Option<&'static Flags>,
}

pub fn guard() -> InterruptGuard {
    let flags = FLAGS.get_or_init(install).as_ref();
    if let Some(f) = flags {
        let mut n = f.active.lock().unwrap_or_else(|e| e.into_inner());
        if *n == 0 {
            f.interrupted.store(false, Ordering::SeqCst);
        }
        *n += 1;
        f.idle.store(false, Ordering::SeqCst);
    }
    InterruptGuard { flags }
}

impl InterruptGuard {
    /// The signal that interrupted the dump, if one did.
    pub fn interrupted(&self) -> Option<i32> {
        let f = self.flags?;
        f.interrupted
            .load(Ordering::SeqCst)
            .then(|| f.signal.load(Ordering::SeqCst) as i32)
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if let Some(f) = self.flags {
            let mut n = f.active.lock().unwrap_or_else(|e| e.into_inner());
            *n -= 1;
            if *n == 0 {
                f.idle.store(true, Ordering::SeqCst);
            }
        }
    }
}
