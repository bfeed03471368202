//! The treemap as SVG (readable without JavaScript: labels and `<title>` tooltips are drawn
//! here), and the escaping and label fitting every drawing shares.

use std::fmt::Write;

use super::model::{NamespaceCells, TreemapModel};
use super::treemap::{squarify, Rect};
use crate::commands::n0;

pub const TREEMAP_WIDTH: f64 = 1200.0;
pub const TREEMAP_HEIGHT: f64 = 640.0;
/// Height of a namespace's title band.
const HEADER: f64 = 16.0;
/// Average glyph width of the 11px sans-serif labels, for fitting text without a browser.
const GLYPH: f64 = 6.4;

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The longest of `candidates` that fits in `width` pixels, else the last one cut with an
/// ellipsis, else nothing (fewer than 3 characters would fit).
pub fn fit_label(candidates: &[&str], width: f64) -> Option<String> {
    let room = ((width - 6.0) / GLYPH).floor();
    if room < 3.0 {
        return None;
    }
    let room = room as usize;
    for c in candidates {
        if c.chars().count() <= room {
            return Some(c.to_string());
        }
    }
    let last = candidates.last()?;
    let cut: String = last.chars().take(room - 1).collect();
    Some(format!("{cut}…"))
}

/// A number with two decimals and no trailing noise, for coordinates.
pub fn f(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r == r.trunc() {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// The type name without its namespace (`List<System.String>` for
/// `System.Collections.Generic.List<System.String>`).
pub fn short_name<'a>(name: &'a str, namespace: &str) -> &'a str {
    name.strip_prefix(namespace)
        .and_then(|r| r.strip_prefix('.'))
        .filter(|r| !r.is_empty())
        .unwrap_or(name)
}

/// The treemap: namespaces (`g.ns`) holding type cells (`g.cell`), areas = retained bytes.
pub fn treemap(m: &TreemapModel) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg id="treemap" viewBox="0 0 {w} {h}" data-full="0 0 {w} {h}" role="img" aria-label="Retained size by namespace and type">"#,
        w = f(TREEMAP_WIDTH),
        h = f(TREEMAP_HEIGHT)
    );
    let weights: Vec<f64> = m.namespaces.iter().map(|n| n.retained as f64).collect();
    let rects = squarify(&weights, Rect::new(0.0, 0.0, TREEMAP_WIDTH, TREEMAP_HEIGHT));
    for (i, (ns, r)) in m.namespaces.iter().zip(rects).enumerate() {
        namespace(&mut out, i, ns, r);
    }
    out.push_str("</svg>");
    out
}

fn namespace(out: &mut String, index: usize, ns: &NamespaceCells, r: Rect) {
    if r.area() <= 0.0 {
        return;
    }
    // Hues spread by the golden angle: neighbours differ.
    let hue = (index as f64 * 137.508) % 360.0;
    let _ = write!(
        out,
        r#"<g class="ns" data-ns="{name}" data-box="{x} {y} {w} {h}"><title>{name}&#10;Retained: {ret} bytes ({n} type cells)</title><rect class="ns-frame" x="{x}" y="{y}" width="{w}" height="{h}" fill="hsl({hue:.0},35%,35%)"/>"#,
        name = esc(&ns.name),
        ret = n0(ns.retained),
        n = ns.types.len(),
        x = f(r.x),
        y = f(r.y),
        w = f(r.w),
        h = f(r.h),
    );
    if let Some(label) = fit_label(&[&ns.name], r.w) {
        if r.h >= HEADER {
            text(out, "ns-label", r.x + 3.0, r.y + 12.0, &label);
        }
    }
    let inner = r.inset(
        1.0,
        if r.h >= HEADER * 2.0 {
            HEADER - 1.0
        } else {
            0.0
        },
    );
    let weights: Vec<f64> = ns.types.iter().map(|t| t.retained as f64).collect();
    for (k, (t, c)) in ns.types.iter().zip(squarify(&weights, inner)).enumerate() {
        let light = 48 + (k % 4) * 7;
        let _ = write!(
            out,
            r#"<g class="cell" data-type="{name}" data-count="{count}" data-shallow="{shallow}" data-retained="{ret}"><title>{name}&#10;Count: {count_n}&#10;Shallow: {shallow_n} bytes&#10;Retained: {ret_n} bytes</title><rect x="{x}" y="{y}" width="{w}" height="{h}" fill="hsl({hue:.0},45%,{light}%)"/>"#,
            name = esc(&t.name),
            count = t.count,
            shallow = t.shallow,
            ret = t.retained,
            count_n = n0(t.count),
            shallow_n = n0(t.shallow),
            ret_n = n0(t.retained),
            x = f(c.x),
            y = f(c.y),
            w = f(c.w.max(0.0)),
            h = f(c.h.max(0.0)),
        );
        if c.h >= 14.0 {
            if let Some(label) = fit_label(&[&t.name, short_name(&t.name, &ns.name)], c.w) {
                text(out, "cell-label", c.x + 3.0, c.y + 12.0, &label);
                if c.h >= 28.0 {
                    if let Some(size) = fit_label(&[&format!("{} bytes", n0(t.retained))], c.w) {
                        text(out, "cell-size", c.x + 3.0, c.y + 25.0, &size);
                    }
                }
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</g>");
}

/// `<text class=CLASS x y>` with `label` escaped.
fn text(out: &mut String, class: &str, x: f64, y: f64, label: &str) {
    let _ = write!(
        out,
        r#"<text class="{class}" x="{}" y="{}">{}</text>"#,
        f(x),
        f(y),
        esc(label)
    );
}

#[cfg(test)]
mod tests {
    use super::super::model::TypeCell;
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("List<A&B> \"x\" 'y'"),
            "List&lt;A&amp;B&gt; &quot;x&quot; &#39;y&#39;"
        );
    }

    #[test]
    fn labels_fit_or_shorten() {
        assert_eq!(
            fit_label(&["System.String", "String"], 200.0).as_deref(),
            Some("System.String")
        );
        assert_eq!(
            fit_label(&["System.String", "String"], 60.0).as_deref(),
            Some("String")
        );
        assert_eq!(
            fit_label(&["System.String"], 40.0).as_deref(),
            Some("Syst…")
        );
        assert_eq!(fit_label(&["System.String"], 10.0), None);
        assert_eq!(
            short_name(
                "System.Collections.Generic.List<System.String>",
                "System.Collections.Generic"
            ),
            "List<System.String>"
        );
    }

    #[test]
    fn one_cell_per_type_and_the_biggest_is_labelled() {
        let cell = |name: &str, retained| TypeCell {
            name: name.into(),
            count: 3,
            shallow: 72,
            retained,
        };
        let m = TreemapModel {
            namespaces: vec![
                NamespaceCells {
                    name: "App".into(),
                    retained: 9000,
                    types: vec![cell("App.Cache", 8000), cell("App.Item", 1000)],
                },
                NamespaceCells {
                    name: "System".into(),
                    retained: 1000,
                    types: vec![cell("System.String<&>", 1000)],
                },
            ],
            cutoff: 10,
            small_types: 0,
            small_retained: 0,
        };
        let svg = treemap(&m);
        assert_eq!(svg.matches(r#"<g class="cell""#).count(), 3);
        assert!(
            svg.contains(r#"class="cell-label" x="4" y="28">App.Cache</text>"#),
            "{svg}"
        );
        assert!(svg.contains("System.String&lt;&amp;&gt;"));
        assert!(svg.contains("Retained: 8,000 bytes"));
    }
}
