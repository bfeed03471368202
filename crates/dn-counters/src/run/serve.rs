//! `serve`: the latest values of one process at /metrics (and the HTTP side of `serve --all`).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use super::{event_loop, options, report, stop_flag, target_of, Consumer, Control};
use crate::args::ServeArgs;
use crate::prometheus::Totals;
use crate::sample::Sample;
use crate::store::Store;
use crate::watch::{ChildOutput, Watch};

pub fn serve(a: &ServeArgs) -> Result<()> {
    let opts = options(&a.session, ChildOutput::Stderr)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    let (server, addr) = listen(&a.listen)?;
    let mut watch = Watch::start(&target, &opts)?;
    let store = Arc::new(Mutex::new(Store::default()));
    let pid = watch.pid;
    let http = {
        let (store, server) = (store.clone(), server.clone());
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                serve_http(&server, || {
                    store
                        .lock()
                        .map(|s| crate::prometheus::render(&s, pid))
                        .unwrap_or_default()
                })
            })?
    };
    println!("Serving the counters of process {pid} at http://{addr}/metrics");
    let _ = io::stdout().flush();
    let mut exporter = Exporter {
        store,
        totals: Totals::default(),
    };
    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let outcome = event_loop(
        &mut watch,
        refresh,
        a.session.duration,
        &stop,
        &mut exporter,
    )?;
    server.unblock();
    let _ = http.join();
    report(&outcome);
    Ok(())
}

/// Answers `/metrics` with what `render` says, 404 elsewhere, until the server is unblocked.
pub(super) fn serve_http(server: &tiny_http::Server, render: impl Fn() -> String) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let response = if path == "/metrics" {
            let ct = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            )
            .expect("static header");
            tiny_http::Response::from_string(render()).with_header(ct)
        } else {
            tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
        };
        let _ = req.respond(response);
    }
}

/// Binds the endpoint before anything else happens (a port in use is an error up front).
pub(super) fn listen(addr: &str) -> Result<(Arc<tiny_http::Server>, String)> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map(|a| a.to_string())
        .unwrap_or_else(|| addr.to_string());
    Ok((Arc::new(server), bound))
}

struct Exporter {
    store: Arc<Mutex<Store>>,
    totals: Totals,
}

impl Consumer for Exporter {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        let samples = self.totals.convert(samples);
        if let Ok(mut st) = self.store.lock() {
            st.apply(switched, samples);
        }
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }
}
