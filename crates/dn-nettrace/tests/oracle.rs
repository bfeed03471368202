//! Our events vs TraceEvent's `EventPipeEventSource` (the NettraceOracle program) on every real
//! capture: same count, provider, id, name, version, opcode, thread, timestamp, activity ids,
//! payload size, and the same payload field names and values.
//!
//! Deliberate differences, normalized here:
//! * Names: we report the metadata's name as written. TraceEvent derives display names:
//!   `EventID(<id>)` when the metadata has no name (native runtime events), `EventWriteString`
//!   for a nameless event 0 (sample profiler), and `Foo/Start` / `Foo/Stop` for `FooStart` /
//!   `FooStop` with the Start/Stop opcode.
//! * Order: TraceEvent sorts events by time across threads; we give them in stream order.
//!   Both lists are sorted by (time, thread, provider, id, payload) before comparing.
//! * Number formats: integers vs doubles are compared by value (doubles within 2 ulp, because
//!   serde_json's default parser may round the oracle's text 1 ulp off); DateTime as FILETIME ticks.

mod common;

use std::fs::File;

use dn_nettrace::{EventMetadata, EventReader, Value};
use serde_json::{json, Value as Json};

#[derive(Debug)]
struct Rec {
    provider: String,
    id: i64,
    name: String,
    version: i64,
    opcode: i64,
    ms: f64,
    tid: i64,
    activity: String,
    related: String,
    payload_len: i64,
    fields: Vec<(String, Json)>,
}

impl Rec {
    fn key(&self) -> (f64, i64, String, i64, i64, String) {
        (
            self.ms,
            self.tid,
            self.provider.clone(),
            self.id,
            self.payload_len,
            format!("{:?}", self.fields),
        )
    }
}

/// TraceEvent's display name for an event, from our raw metadata.
fn traceevent_name(md: &EventMetadata) -> String {
    let name = &md.event_name;
    if name.is_empty() {
        return if md.event_id == 0 {
            "EventWriteString".to_string()
        } else {
            format!("EventID({})", md.event_id)
        };
    }
    match (
        md.opcode,
        name.strip_suffix("Start"),
        name.strip_suffix("Stop"),
    ) {
        (Some(1), Some(task), _) => format!("{task}/Start"),
        (Some(2), _, Some(task)) => format!("{task}/Stop"),
        _ => name.clone(),
    }
}

/// Our value in the oracle's JSON conventions.
fn to_oracle_json(v: &Value) -> Json {
    fn float(d: f64) -> Json {
        if d.is_nan() {
            json!("NaN")
        } else if d.is_infinite() {
            json!(if d > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            json!(d)
        }
    }
    match v {
        Value::Bool(b) => json!(b),
        Value::Char(c) => json!(c.to_string()),
        Value::I8(x) => json!(x),
        Value::U8(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::F32(x) => float(f64::from(*x)),
        Value::F64(x) => float(*x),
        Value::Decimal(b) => json!(format!("decimal {b:?}")),
        Value::DateTime(t) => json!({ "filetime": t.0 }),
        Value::Guid(g) => json!(g.to_string()),
        Value::String(s) => json!(s),
        Value::Array(items) => Json::Array(items.iter().map(to_oracle_json).collect()),
        Value::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_oracle_json(v)))
                .collect(),
        ),
    }
}

/// Value equality across number formats (the oracle prints 0.0 as 0).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                // serde_json's default float parsing is not correctly rounded (may be 1 ulp
                // off), so the oracle's text doubles are compared within 2 ulp.
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 4.5e-16 * x.abs().max(y.abs())
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn ours(path: &std::path::Path) -> Vec<Rec> {
    let file = File::open(path).unwrap();
    let mut out = Vec::new();
    for e in EventReader::new(file) {
        let e = e.unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let fields = e
            .decode()
            .unwrap_or_else(|err| panic!("{}: decoding {:?}: {err}", path.display(), e.metadata));
        out.push(Rec {
            provider: e.provider_name().to_string(),
            id: i64::from(e.event_id()),
            name: traceevent_name(&e.metadata),
            version: i64::from(e.metadata.version),
            opcode: i64::from(e.metadata.opcode.unwrap_or(0)),
            ms: e.relative_msec(),
            // TraceEvent's ThreadID is an int.
            tid: i64::from(e.thread_id as i32),
            activity: e.activity_id.to_string(),
            related: e.related_activity_id.to_string(),
            payload_len: e.payload.len() as i64,
            fields: fields
                .iter()
                .map(|(k, v)| (k.clone(), to_oracle_json(v)))
                .collect(),
        });
    }
    out
}

fn theirs(path: &std::path::Path) -> Vec<Rec> {
    let out = dn_testkit::run_oracle("NettraceOracle", &[path.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("NettraceOracle on {}: {e:#}", path.display()));
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let j: Json =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("oracle line {l}: {e}"));
            let s = |k: &str| {
                j[k].as_str()
                    .unwrap_or_else(|| panic!("oracle {k} in {l}"))
                    .to_string()
            };
            let n = |k: &str| j[k].as_i64().unwrap_or_else(|| panic!("oracle {k} in {l}"));
            Rec {
                provider: s("provider"),
                id: n("id"),
                name: s("name"),
                version: n("version"),
                opcode: n("opcode"),
                ms: j["ms"].as_f64().unwrap(),
                tid: n("tid"),
                activity: s("activity"),
                related: s("related_activity"),
                payload_len: n("payload_len"),
                fields: j["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_str().unwrap().to_string(), p[1].clone()))
                    .collect(),
            }
        })
        .collect()
}

fn sort(v: &mut [Rec]) {
    v.sort_by(|a, b| a.key().partial_cmp(&b.key()).unwrap());
}

fn differences(a: &Rec, b: &Rec) -> Vec<String> {
    let mut d = Vec::new();
    let mut check = |what: &str, ok: bool| {
        if !ok {
            d.push(what.to_string());
        }
    };
    check("provider", a.provider == b.provider);
    check("id", a.id == b.id);
    check("name", a.name == b.name);
    check("version", a.version == b.version);
    check("opcode", a.opcode == b.opcode);
    check("time", (a.ms - b.ms).abs() <= 1e-6 * a.ms.abs().max(1.0));
    check("thread", a.tid == b.tid);
    check("activity", a.activity == b.activity);
    check("related activity", a.related == b.related);
    check("payload length", a.payload_len == b.payload_len);
    check(
        "field names",
        a.fields
            .iter()
            .map(|f| &f.0)
            .eq(b.fields.iter().map(|f| &f.0)),
    );
    check(
        "field values",
        a.fields.len() == b.fields.len()
            && a.fields
                .iter()
                .zip(&b.fields)
                .all(|(x, y)| same(&x.1, &y.1)),
    );
    d
}

#[test]
fn every_capture_matches_traceevent() {
    let mut total = 0;
    let mut with_fields = 0;
    // More captures can be checked ad hoc: NETTRACE_EXTRA_CAPTURES=a.nettrace:b.nettrace
    let extra = std::env::var("NETTRACE_EXTRA_CAPTURES").unwrap_or_default();
    let extra = extra
        .split(':')
        .filter(|s| !s.is_empty())
        .map(std::path::PathBuf::from);
    for path in common::captures().into_iter().chain(extra) {
        let mut a = ours(&path);
        let mut b = theirs(&path);
        assert!(!a.is_empty(), "{}: no events", path.display());
        assert_eq!(
            a.len(),
            b.len(),
            "{}: event count (ours vs TraceEvent)",
            path.display()
        );
        sort(&mut a);
        sort(&mut b);
        let mut bad = Vec::new();
        for (x, y) in a.iter().zip(&b) {
            let d = differences(x, y);
            if !d.is_empty() {
                bad.push(format!("{d:?}\n  ours:       {x:?}\n  TraceEvent: {y:?}"));
            }
        }
        assert!(
            bad.is_empty(),
            "{}: {} of {} events differ; first ones:\n{}",
            path.display(),
            bad.len(),
            a.len(),
            bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
        );
        total += a.len();
        with_fields += a.iter().filter(|r| !r.fields.is_empty()).count();
    }
    // The comparison must have covered decoded payloads, not only headers.
    assert!(
        with_fields > 300,
        "only {with_fields} of {total} events had fields"
    );
}
