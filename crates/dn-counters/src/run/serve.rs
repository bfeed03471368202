//! `serve`: the latest values of one process at /metrics.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use super::{event_loop, options, report, stop_flag, target_of, Consumer, Control};
use crate::args::ServeArgs;
use crate::sample::Sample;
use crate::store::Store;
use crate::watch::{ChildOutput, Watch};

pub fn serve(a: &ServeArgs) -> Result<()> {
    let opts = options(&a.session, ChildOutput::Stderr)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    let server = tiny_http::Server::http(&a.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    let addr = server
        .server_addr()
        .to_ip()
        .map(|a| a.to_string())
        .unwrap_or_else(|| a.listen.clone());
    let mut watch = Watch::start(&target, &opts)?;
    let store = Arc::new(Mutex::new(Store::default()));
    let server = Arc::new(server);
    let pid = watch.pid;
    let http = {
        let (store, server) = (store.clone(), server.clone());
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve_http(&server, &store, pid))?
    };
    println!("Serving the counters of process {pid} at http://{addr}/metrics");
    let _ = io::stdout().flush();
    let mut exporter = Exporter {
        store,
        totals: Default::default(),
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

fn serve_http(server: &tiny_http::Server, store: &Mutex<Store>, pid: i32) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let response = if path == "/metrics" {
            let body = store
                .lock()
                .map(|s| crate::prometheus::render(&s, pid))
                .unwrap_or_default();
            let ct = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            )
            .expect("static header");
            tiny_http::Response::from_string(body).with_header(ct)
        } else {
            tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
        };
        let _ = req.respond(response);
    }
}

struct Exporter {
    store: Arc<Mutex<Store>>,
    /// Running totals of per-interval increments, per series.
    totals: std::collections::HashMap<(String, String, String), f64>,
}

impl Consumer for Exporter {
    fn samples(&mut self, samples: Vec<Sample>, switched: &[String]) -> Result<Control> {
        let totals = &mut self.totals;
        let samples = samples.into_iter().map(|mut s| {
            if s.kind == crate::sample::Kind::Rate {
                let key = (s.provider.clone(), s.name.clone(), s.tags_text());
                let total = totals.entry(key).or_default();
                *total += s.value;
                s.value = *total;
                s.kind = crate::sample::Kind::Counter;
            }
            s
        });
        if let Ok(mut st) = self.store.lock() {
            st.apply(switched, samples);
        }
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }
}
