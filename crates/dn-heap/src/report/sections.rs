//! The page's sections below the summary: suspects with their chains, the dominator tree as
//! nested `<details>`, growth, and counters. HTML only; the drawings come from `svg`/`charts`.

use std::fmt::Write;

use super::charts::{growth_bars, line_chart, Mark};
use super::model::{BoxKind, ChainBox, Growth, Report};
use super::svg::esc;
use crate::commands::{n0, DominatorNode, Suspect, SuspectShape};

pub fn suspects(r: &Report, out: &mut String) {
    let s = &r.suspects;
    let _ = write!(
        out,
        "<section id=\"suspects\"><h2>Leak suspects</h2><p>Live heap: {} bytes. Threshold: {}% ({} bytes).</p>",
        n0(s.live_bytes),
        s.threshold_percent,
        n0((s.live_bytes as f64 * s.threshold_percent / 100.0) as u64)
    );
    if s.suspects.is_empty() {
        out.push_str("<p class=\"none\">No leak suspect was found.</p>");
    }
    for (i, (sus, chain)) in s.suspects.iter().zip(&r.chains).enumerate() {
        suspect(out, i, sus, chain);
    }
    out.push_str("</section>");
}

fn suspect(out: &mut String, i: usize, sus: &Suspect, chain: &[ChainBox]) {
    // The words of `suspects`' text, sizes as "1,234 (5.67%) bytes".
    let _ = write!(
        out,
        "<article class=\"suspect\" data-type=\"{}\"><h3>Problem Suspect {}</h3><p>{} {} {} ({:.2}%) bytes.",
        esc(&sus.type_name),
        i + 1,
        esc(&suspect_title(sus)),
        match sus.kind {
            SuspectShape::Single => "occupies",
            SuspectShape::Group => "occupy",
        },
        n0(sus.retained),
        sus.percent
    );
    if let Some(p) = &sus.accumulation_point {
        let lead = match sus.kind {
            SuspectShape::Single => "The memory is accumulated in one instance of",
            SuspectShape::Group => "The biggest instance accumulates its memory in one instance of",
        };
        let _ = write!(
            out,
            " {lead} \"{}\", which occupies {} ({:.2}%) bytes.",
            esc(&p.type_name),
            n0(p.retained),
            p.percent
        );
        if let Some(o) = &p.owner {
            let _ = write!(
                out,
                " It is the storage of \"{}\" at {:x}.",
                esc(&o.type_name),
                o.address
            );
        }
    }
    out.push_str("</p><h4>Shortest path from a GC root, then what the suspect holds down to the accumulation point</h4><ol class=\"chain\">");
    for b in chain {
        chain_box(out, b);
    }
    out.push_str("</ol>");
    if !sus.accumulated.is_empty() {
        out.push_str("<h4>Accumulated objects by type</h4><table class=\"num\"><thead><tr><th>Count</th><th>Shallow</th><th>Retained</th><th>Type</th></tr></thead><tbody>");
        for a in &sus.accumulated {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"type\">{}</td></tr>",
                n0(a.count),
                n0(a.size),
                n0(a.retained),
                esc(&a.type_name)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</article>");
}

/// How a suspect is described in one line, as `suspects` words it.
fn suspect_title(sus: &Suspect) -> String {
    match sus.kind {
        SuspectShape::Single => format!("One instance of \"{}\"", sus.type_name),
        SuspectShape::Group => format!(
            "{} instances of \"{}\"",
            n0(sus.count.unwrap_or(0)),
            sus.type_name
        ),
    }
}

fn chain_box(out: &mut String, b: &ChainBox) {
    let (class, tag) = match b.kind {
        BoxKind::Root => ("root", "GC root"),
        BoxKind::Object => ("obj", ""),
        BoxKind::Suspect => ("obj suspect-end", "suspect"),
        BoxKind::Dominated => ("obj via", "holds"),
        BoxKind::AccumulationPoint => ("obj accum", "accumulation point"),
    };
    let _ = write!(out, "<li class=\"box {class}\">");
    if !tag.is_empty() {
        let _ = write!(out, "<span class=\"tag\">{tag}</span>");
    }
    let _ = write!(out, "<span class=\"type\">{}</span>", esc(&b.label));
    if let Some(field) = &b.field {
        let what = if b.kind == BoxKind::Root && !field.contains('.') {
            "frame"
        } else {
            "static"
        };
        let _ = write!(out, "<span class=\"field\">{what} {}</span>", esc(field));
    }
    if let Some(a) = b.address {
        let _ = write!(out, "<span class=\"addr\">{a:x}</span>");
    }
    match (b.shallow, b.retained) {
        (Some(s), Some(r)) => {
            let _ = write!(
                out,
                "<span class=\"size\">shallow {} · retained {} bytes</span>",
                n0(s),
                n0(r)
            );
        }
        (None, Some(r)) => {
            let _ = write!(out, "<span class=\"size\">retained {} bytes</span>", n0(r));
        }
        (Some(s), None) => {
            let _ = write!(out, "<span class=\"size\">shallow {} bytes</span>", n0(s));
        }
        (None, None) => {}
    }
    out.push_str("</li>");
}

/// The dominator tree as nested `<details>` (expands without JavaScript), first level open.
pub fn dominators(r: &Report, out: &mut String) {
    out.push_str("<section id=\"dominators\"><h2>Dominator tree</h2><p>Who keeps the memory alive: each object retains what only it keeps alive. Top levels, biggest first.</p><p class=\"tools\"><button type=\"button\" id=\"expand-all\">Expand all</button> <button type=\"button\" id=\"collapse-all\">Collapse all</button></p><div class=\"domtree\"><div class=\"leaf head\"><span>Retained</span><span>%</span><span>Shallow</span><span>Type (address)</span></div>");
    // An explicit stack instead of recursion: nodes to open, "… N more" rows, closing tags.
    enum Item<'a> {
        Open(&'a DominatorNode, usize),
        More(u64),
        Close,
    }
    let mut stack = vec![Item::Open(&r.dominators.root, 0)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Close => out.push_str("</div></details>"),
            Item::More(k) => {
                let _ = write!(out, "<div class=\"leaf more\">… {} more</div>", n0(k));
            }
            Item::Open(n, depth) => {
                let addr = n.address.map(|a| format!(" {a:x}")).unwrap_or_default();
                let has_children = !n.children.is_empty() || n.more_children > 0;
                let head = format!(
                    "<span class=\"ret\">{}</span><span class=\"pct\">{:.2}%</span><span class=\"sh\">{}</span><span class=\"tcell\"><span class=\"type\">{}</span><span class=\"addr\">{}</span></span>",
                    n0(n.retained),
                    n.percent,
                    n0(n.size),
                    esc(&n.type_name),
                    addr
                );
                if !has_children {
                    let _ = write!(
                        out,
                        "<div class=\"leaf\" data-level=\"{depth}\">{head}</div>"
                    );
                    continue;
                }
                let _ = write!(
                    out,
                    "<details data-level=\"{depth}\"{}><summary>{head}</summary><div class=\"kids\">",
                    if depth == 0 { " open" } else { "" }
                );
                stack.push(Item::Close);
                if n.more_children > 0 {
                    // Printed last (the stack pops it after the children).
                    stack.push(Item::More(n.more_children));
                }
                for c in n.children.iter().rev() {
                    stack.push(Item::Open(c, depth + 1));
                }
            }
        }
    }
    out.push_str("</div></section>");
}

pub fn growth(g: &Growth, r: &Report, out: &mut String) {
    let d = &g.diff;
    let _ = write!(
        out,
        "<section id=\"growth\"><h2>Growth since the baseline</h2><p>A: <b>{}</b> (baseline), B: <b>{}</b>. Total: {} -&gt; {} objects, {} -&gt; {} bytes ({}).</p>",
        esc(&g.baseline.name),
        esc(&r.input.name),
        n0(d.total_objects_a),
        n0(d.total_objects_b),
        n0(d.total_bytes_a),
        n0(d.total_bytes_b),
        crate::diff::signed(d.total_bytes_b as i128 - d.total_bytes_a as i128)
    );
    for w in &d.warnings {
        let _ = write!(out, "<p class=\"warning\">Warning: {}</p>", esc(w));
    }
    let top = g.top();
    if top.is_empty() {
        out.push_str("<p class=\"none\">No type changed.</p>");
    } else {
        out.push_str(&growth_bars(&top));
    }
    out.push_str("</section>");
}

pub fn counters(r: &Report, out: &mut String) {
    let mut marks = Vec::new();
    if let Some(t) = r.input.time_ms() {
        marks.push(Mark {
            label: format!("dump {}", r.input.name),
            time_ms: t,
        });
    }
    if let Some(t) = r.growth.as_ref().and_then(|g| g.baseline.time_ms()) {
        marks.push(Mark {
            label: format!(
                "baseline {}",
                r.growth.as_ref().map_or("", |g| &g.baseline.name)
            ),
            time_ms: t,
        });
    }
    out.push_str("<section id=\"counters\"><h2>Counters</h2><p>Times are UTC; dashed lines mark when the dumps were written (their files' times), when inside the range.</p>");
    for (file, data) in &r.counters {
        let _ = write!(out, "<h3>{}</h3><div class=\"charts\">", esc(file));
        if data.series.is_empty() {
            out.push_str("<p class=\"none\">No sample in this file.</p>");
        }
        for s in &data.series {
            let tags = if s.tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", s.tags)
            };
            let _ = write!(
                out,
                "<figure class=\"counter\"><figcaption>{}{} <span class=\"provider\">{}</span></figcaption>{}</figure>",
                esc(&s.name),
                esc(&tags),
                esc(&s.provider),
                line_chart(s, &marks)
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");
}
