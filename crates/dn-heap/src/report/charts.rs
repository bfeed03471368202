//! Charts as SVG: per-type growth bars (`--baseline`) and one line chart per counter
//! (`--counters`) with the dumps' times marked.

use std::fmt::Write;

use super::counters::Series;
use super::svg::{esc, f, fit_label};
use crate::diff::{signed, TypeGrowth};
use dn_counters::format::{bytes_per_unit, grouped, human_bytes};

const BAR_WIDTH: f64 = 1200.0;
const ROW: f64 = 20.0;
const NAME_COL: f64 = 440.0;
const BAR_COL: f64 = 380.0;

/// Two diverging bars per type, bytes then count: growth to the right, shrinking to the left.
pub fn growth_bars(rows: &[&TypeGrowth]) -> String {
    let height = ROW * (rows.len() as f64 + 1.0) + 4.0;
    let max_bytes = rows
        .iter()
        .map(|t| t.size_growth().abs())
        .max()
        .unwrap_or(1)
        .max(1);
    let max_count = rows
        .iter()
        .map(|t| t.count_growth().abs())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="growth" viewBox="0 0 {} {}" role="img" aria-label="Growth per type">"#,
        f(BAR_WIDTH),
        f(height)
    );
    let cols = [
        (NAME_COL, "Size B-A (bytes)"),
        (NAME_COL + BAR_COL, "Count B-A"),
    ];
    for (x, head) in cols {
        let _ = write!(
            out,
            r#"<text class="head" x="{}" y="14" text-anchor="middle">{head}</text><line class="axis" x1="{c}" y1="{top}" x2="{c}" y2="{bottom}"/>"#,
            f(x + BAR_COL / 2.0),
            c = f(x + BAR_COL / 2.0),
            top = f(ROW),
            bottom = f(height)
        );
    }
    for (i, t) in rows.iter().enumerate() {
        let y = ROW * (i as f64 + 1.0);
        let name = fit_label(&[&t.name], NAME_COL - 8.0).unwrap_or_default();
        let _ = write!(
            out,
            r#"<g class="row" data-type="{full}"><title>{full}&#10;Count: {ca} -&gt; {cb} ({dc})&#10;Size: {sa} -&gt; {sb} bytes ({ds})</title><text class="name" x="{nx}" y="{ty}" text-anchor="end">{name}</text>"#,
            full = esc(&t.name),
            ca = crate::commands::n0(t.count_a),
            cb = crate::commands::n0(t.count_b),
            dc = signed(t.count_growth()),
            sa = crate::commands::n0(t.size_a),
            sb = crate::commands::n0(t.size_b),
            ds = signed(t.size_growth()),
            nx = f(NAME_COL - 8.0),
            ty = f(y + 14.0),
            name = esc(&name),
        );
        bar(&mut out, NAME_COL, y, t.size_growth(), max_bytes);
        bar(&mut out, NAME_COL + BAR_COL, y, t.count_growth(), max_count);
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

fn bar(out: &mut String, x0: f64, y: f64, v: i128, max: i128) {
    let center = x0 + BAR_COL / 2.0;
    let half = BAR_COL / 2.0 - 70.0;
    let len = half * v.unsigned_abs() as f64 / max.unsigned_abs() as f64;
    let (x, class, tx, anchor) = if v >= 0 {
        (center, "up", center + len + 3.0, "start")
    } else {
        (center - len, "down", center - len - 3.0, "end")
    };
    let _ = write!(
        out,
        r#"<rect class="{class}" x="{}" y="{}" width="{}" height="{}"/><text class="num" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
        f(x),
        f(y + 3.0),
        f(len.max(0.5)),
        f(ROW - 6.0),
        f(tx),
        f(y + 14.0),
        signed(v)
    );
}

const LINE_W: f64 = 560.0;
const LINE_H: f64 = 200.0;
const PAD_L: f64 = 86.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 30.0;
/// Points drawn per chart at most (minimum and maximum of each bucket kept).
const MAX_POINTS: usize = 800;

/// A dump's time on the charts.
#[derive(Debug, Clone)]
pub struct Mark {
    pub label: String,
    pub time_ms: i64,
}

/// One line chart: the counter's values over time, the marks inside the range as dashed lines.
pub fn line_chart(s: &Series, marks: &[Mark]) -> String {
    let pts = downsample(&s.points);
    let (t0, t1) = match (pts.first(), pts.last()) {
        (Some(a), Some(b)) => (a.0, b.0),
        _ => (0, 0),
    };
    let (mut lo, mut hi) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    if pts.is_empty() {
        (lo, hi) = (0.0, 1.0);
    }
    lo = lo.min(0.0);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let span = (t1 - t0).max(1) as f64;
    let (pw, ph) = (LINE_W - PAD_L - PAD_R, LINE_H - PAD_T - PAD_B);
    let x = |t: i64| PAD_L + pw * (t - t0) as f64 / span;
    let y = |v: f64| PAD_T + ph * (1.0 - (v - lo) / (hi - lo));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="line" viewBox="0 0 {} {}" role="img" aria-label="{}">"#,
        f(LINE_W),
        f(LINE_H),
        esc(&s.name)
    );
    let _ = write!(
        out,
        r#"<rect class="plot" x="{}" y="{}" width="{}" height="{}"/>"#,
        f(PAD_L),
        f(PAD_T),
        f(pw),
        f(ph)
    );
    for v in [lo, hi] {
        let _ = write!(
            out,
            r#"<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>"#,
            f(PAD_L - 4.0),
            f(y(v) + 4.0),
            esc(&value_text(v, s.unit.as_deref()))
        );
    }
    for (t, anchor) in [(t0, "start"), (t1, "end")] {
        let _ = write!(
            out,
            r#"<text class="tick" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
            f(x(t)),
            f(LINE_H - 10.0),
            clock(t)
        );
    }
    if pts.len() == 1 {
        let _ = write!(
            out,
            r#"<circle class="series" cx="{}" cy="{}" r="3"/>"#,
            f(PAD_L + pw / 2.0),
            f(y(pts[0].1))
        );
    } else if !pts.is_empty() {
        out.push_str(r#"<polyline class="series" points=""#);
        for p in &pts {
            let _ = write!(out, "{},{} ", f(x(p.0)), f(y(p.1)));
        }
        out.push_str(r#""/>"#);
    }
    for m in marks {
        if pts.len() > 1 && m.time_ms >= t0 && m.time_ms <= t1 {
            let mx = x(m.time_ms);
            let _ = write!(
                out,
                r#"<g class="mark"><title>{label} at {time}</title><line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/><text x="{tx}" y="{ty}">{label}</text></g>"#,
                label = esc(&m.label),
                time = clock(m.time_ms),
                x = f(mx),
                top = f(PAD_T),
                bottom = f(PAD_T + ph),
                tx = f(mx + 3.0),
                ty = f(PAD_T + 12.0),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// `HH:MM:SS` UTC of a time in milliseconds.
pub fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A value with its unit, as `dn-counters` shows it (sizes in KiB, MiB...).
fn value_text(v: f64, unit: Option<&str>) -> String {
    match (unit.and_then(bytes_per_unit), unit) {
        (Some(scale), _) => human_bytes(v * scale),
        (None, Some(u)) if !u.is_empty() => format!("{} {u}", grouped(v)),
        _ => grouped(v),
    }
}

/// At most [`MAX_POINTS`] points: the minimum and maximum of each bucket, in time order.
fn downsample(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let finite: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    if finite.len() <= MAX_POINTS {
        return finite;
    }
    let per = finite.len().div_ceil(MAX_POINTS / 2);
    let mut out = Vec::with_capacity(MAX_POINTS);
    for chunk in finite.chunks(per) {
        let (mut lo, mut hi) = (chunk[0], chunk[0]);
        for &p in chunk {
            if p.1 < lo.1 {
                lo = p;
            }
            if p.1 > hi.1 {
                hi = p;
            }
        }
        if lo.0 <= hi.0 {
            out.extend([lo, hi]);
        } else {
            out.extend([hi, lo]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: Vec<(i64, f64)>) -> Series {
        Series {
            provider: "System.Runtime".into(),
            name: "GC Heap Size".into(),
            tags: String::new(),
            unit: Some("MB".into()),
            points,
        }
    }

    #[test]
    fn marks_only_inside_the_range() {
        let s = series(vec![(1000, 1.0), (2000, 3.0), (3000, 2.0)]);
        let inside = Mark {
            label: "dump".into(),
            time_ms: 2500,
        };
        let outside = Mark {
            label: "baseline".into(),
            time_ms: 9000,
        };
        let svg = line_chart(&s, &[inside, outside]);
        assert_eq!(svg.matches(r#"<g class="mark">"#).count(), 1);
        assert!(svg.contains(">dump</text>"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("2.86 MiB"), "{svg}");
        assert_eq!(value_text(40.5, Some("%")), "40.5 %");
        assert_eq!(value_text(1536.0, Some("By")), "1.50 KiB");
    }

    #[test]
    fn long_series_are_thinned_keeping_peaks() {
        let pts: Vec<(i64, f64)> = (0..100_000)
            .map(|i| (i, if i == 5000 { 99.0 } else { 1.0 }))
            .collect();
        let d = downsample(&pts);
        assert!(d.len() <= MAX_POINTS);
        assert!(d.iter().any(|p| p.1 == 99.0));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0));
        // Empty and single-point series draw without panicking.
        line_chart(&series(vec![]), &[]);
        line_chart(&series(vec![(5, f64::NAN), (6, 2.0)]), &[]);
    }

    #[test]
    fn bars_both_directions() {
        let grew = TypeGrowth {
            name: "App.Leak".into(),
            count_b: 10,
            size_b: 1000,
            ..TypeGrowth::default()
        };
        let shrank = TypeGrowth {
            name: "App.Gone".into(),
            count_a: 4,
            size_a: 400,
            ..TypeGrowth::default()
        };
        let svg = growth_bars(&[&grew, &shrank]);
        assert_eq!(svg.matches(r#"class="up""#).count(), 2);
        assert_eq!(svg.matches(r#"class="down""#).count(), 2);
        assert!(svg.contains("+1,000") && svg.contains("-400"));
    }
}
