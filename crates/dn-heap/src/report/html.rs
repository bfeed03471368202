//! The page: one HTML file with its style and a little script inline (no network, no external
//! font), the summary and treemap sections, and the other sections in order.

use std::fmt::Write;

use super::model::{Report, Summary};
use super::sections;
use super::svg::{esc, treemap};
use crate::commands::n0;

const STYLE: &str = r#"
:root{color-scheme:light;--fg:#1d2330;--mute:#5b6475;--line:#d5d9e0;--bg:#fff;--soft:#f4f6f9;--up:#c0392b;--down:#2e8b57}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1240px;padding:16px 20px 40px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:12px 0 4px;color:var(--mute)}
.sub{color:var(--mute);margin:0 0 8px}
nav a{margin-right:14px;color:#2457a6}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.facts dt{color:var(--mute)}dl.facts dd{margin:0;font-variant-numeric:tabular-nums}
table.num{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0}
table.num th,table.num td{padding:2px 10px;border-bottom:1px solid var(--line);text-align:right}
table.num td.type,table.num th:last-child{text-align:left}
.warning{color:#8a4b00;background:#fff6e5;border-left:3px solid #e0a030;padding:4px 8px;margin:4px 0}
.none{color:var(--mute);font-style:italic}
#treemap{width:100%;height:auto;display:block;border:1px solid var(--line);background:#333}
#treemap text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:#fff;pointer-events:none}
#treemap .ns-label{font-weight:600}
#treemap .cell-size{fill:#eef}
#treemap .cell rect{stroke:#222;stroke-width:.5}
#treemap .cell:hover rect{stroke:#fff;stroke-width:2}
#treemap .ns{cursor:zoom-in}
#treemap.zoomed .ns{cursor:zoom-out}
.tools{margin:6px 0}
ol.chain{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;align-items:stretch;gap:6px 26px}
ol.chain li.box{position:relative;border:1px solid var(--line);border-radius:6px;padding:4px 8px;background:var(--soft);max-width:380px;display:flex;flex-direction:column}
ol.chain li.box+li.box::before{content:"→";position:absolute;left:-20px;top:50%;transform:translateY(-50%);color:var(--mute)}
ol.chain li.root{background:#eef3fb;border-color:#9db4dc}
ol.chain li.accum{background:#fdecea;border:2px solid var(--up)}
ol.chain li.suspect-end{border-color:#777}
ol.chain .tag{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute)}
ol.chain li.accum .tag{color:var(--up);font-weight:700}
ol.chain .type{font-weight:600;word-break:break-all}
ol.chain .field,ol.chain .addr,ol.chain .size{font-size:12px;color:var(--mute);word-break:break-all}
article.suspect{border:1px solid var(--line);border-radius:8px;padding:4px 14px 10px;margin:10px 0}
.domtree{font-variant-numeric:tabular-nums;font-size:13px}
.domtree details>.kids{margin-left:22px}
.domtree summary,.domtree .leaf{display:grid;grid-template-columns:14px 110px 64px 90px 1fr;gap:8px;padding:1px 0;list-style:none;cursor:default}
.domtree summary{cursor:pointer}.domtree summary::-webkit-details-marker{display:none}
.domtree summary::before{content:"\25B8";color:var(--mute)}.domtree details[open]>summary::before{content:"\25BE"}
.domtree .leaf::before{content:""}
.domtree .more{display:block;color:var(--mute)}
.domtree .ret,.domtree .pct,.domtree .sh{text-align:right}
.domtree .tcell{word-break:break-all}.domtree .addr{color:var(--mute)}
.domtree .head{font-weight:600;color:var(--mute)}.domtree .head span{text-align:right}.domtree .head span:last-child{text-align:left}
svg.growth{width:100%;height:auto;font:11px system-ui,"DejaVu Sans",sans-serif}
svg.growth .up{fill:var(--up)}svg.growth .down{fill:var(--down)}
svg.growth .axis{stroke:#999}svg.growth .head{font-weight:600}
svg.growth .row:hover{background:#eee}svg.growth .row:hover .name{font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure.counter{margin:0;width:560px;max-width:100%}
figure.counter figcaption{font-weight:600;font-size:13px}
figure.counter .provider{font-weight:400;color:var(--mute)}
svg.line{width:100%;height:auto;font:11px system-ui,"DejaVu Sans",sans-serif}
svg.line .plot{fill:var(--soft);stroke:var(--line)}
svg.line .series{fill:none;stroke:#2457a6;stroke-width:1.5}
svg.line circle.series{fill:#2457a6}
svg.line .mark line{stroke:var(--up);stroke-dasharray:4 3}
svg.line .mark text{fill:var(--up)}
svg.line .tick{fill:var(--mute)}
footer{margin-top:30px;color:var(--mute);font-size:12px}
"#;

/// Zoom on a namespace, labels that do not fit hidden once the browser has measured them, and
/// the dominator tree's expand/collapse buttons. Reading works without it.
const SCRIPT: &str = r#"
(function(){
  var svg=document.getElementById('treemap');
  function fit(){
    if(!svg)return;
    var cells=svg.querySelectorAll('.cell');
    for(var i=0;i<cells.length;i++){
      var r=cells[i].querySelector('rect');var w=parseFloat(r.getAttribute('width'));
      var ts=cells[i].querySelectorAll('text');
      for(var k=0;k<ts.length;k++){
        var t=ts[k];t.removeAttribute('display');
        if(t.getComputedTextLength()>w-4){t.setAttribute('display','none');}
      }
    }
  }
  if(svg){
    var btn=document.getElementById('zoom-out');
    svg.addEventListener('click',function(e){
      var g=e.target.closest?e.target.closest('.ns'):null;
      if(svg.classList.contains('zoomed')||!g){
        svg.setAttribute('viewBox',svg.getAttribute('data-full'));svg.classList.remove('zoomed');
        if(btn)btn.hidden=true;return;
      }
      svg.setAttribute('viewBox',g.getAttribute('data-box'));svg.classList.add('zoomed');
      if(btn)btn.hidden=false;
    });
    if(btn)btn.addEventListener('click',function(){
      svg.setAttribute('viewBox',svg.getAttribute('data-full'));svg.classList.remove('zoomed');btn.hidden=true;
    });
    fit();
  }
  function all(open){
    var d=document.querySelectorAll('.domtree details');
    for(var i=0;i<d.length;i++){d[i].open=open;}
  }
  var ea=document.getElementById('expand-all'),ca=document.getElementById('collapse-all');
  if(ea)ea.addEventListener('click',function(){all(true);});
  if(ca)ca.addEventListener('click',function(){all(false);});
  document.documentElement.setAttribute('data-script','ran');
})();
"#;

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>dn-dump report: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.input.name)
    );
    let _ = write!(
        out,
        "<header><h1>Where the memory went: {}</h1><nav><a href=\"#summary\">Summary</a><a href=\"#treemap-section\">Treemap</a><a href=\"#suspects\">Leak suspects</a><a href=\"#dominators\">Dominator tree</a>{}{}</nav></header>",
        esc(&r.input.name),
        if r.growth.is_some() { "<a href=\"#growth\">Growth</a>" } else { "" },
        if r.counters.is_empty() { "" } else { "<a href=\"#counters\">Counters</a>" },
    );
    summary(r, &r.summary, &mut out);
    treemap_section(r, &mut out);
    sections::suspects(r, &mut out);
    sections::dominators(r, &mut out);
    if let Some(g) = &r.growth {
        sections::growth(g, r, &mut out);
    }
    if !r.counters.is_empty() {
        sections::counters(r, &mut out);
    }
    let _ = write!(
        out,
        "<footer>Written by dn-dump {} report. Sizes are in bytes, as the command line shows them.</footer><script>{SCRIPT}</script></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn summary(r: &Report, s: &Summary, out: &mut String) {
    out.push_str("<section id=\"summary\"><h2>Summary</h2><dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    fact("Dump", esc(&r.input.name));
    if let Some(t) = r.input.time {
        let t: chrono::DateTime<chrono::Utc> = t.into();
        fact(
            "Written",
            format!("{} UTC (the file's time)", t.format("%Y-%m-%d %H:%M:%S")),
        );
    }
    if let Some(pid) = r.input.pid {
        fact("Process id", pid.to_string());
    }
    fact(
        "Runtime",
        esc(&format!(
            "{} ({})",
            s.runtime_version.as_deref().unwrap_or("version unknown"),
            s.runtime_path
        )),
    );
    fact(
        "GC",
        format!(
            "{}, {}, {} heap{}",
            if s.server_gc { "server" } else { "workstation" },
            if s.regions { "regions" } else { "segments" },
            s.heap_count,
            if s.heap_count == 1 { "" } else { "s" }
        ),
    );
    fact(
        "Objects",
        format!(
            "<span data-k=\"total_objects\">{}</span>",
            n0(s.total_objects)
        ),
    );
    fact(
        "Total",
        format!(
            "<span data-k=\"total_bytes\">{}</span> bytes",
            n0(s.total_bytes)
        ),
    );
    fact(
        "Live",
        format!(
            "<span data-k=\"live_bytes\">{}</span> bytes (reachable from a GC root)",
            n0(s.live_bytes)
        ),
    );
    fact(
        "Dead",
        format!(
            "<span data-k=\"dead_bytes\">{}</span> bytes in {} objects (unreachable, not yet collected)",
            n0(s.dead_bytes),
            n0(s.dead_objects)
        ),
    );
    out.push_str("</dl><h3>GC heap by generation</h3><table class=\"num\"><thead><tr><th>Kind</th><th>Size</th></tr></thead><tbody>");
    for (kind, size) in &s.generations {
        let _ = write!(
            out,
            "<tr><td class=\"type\">{}</td><td data-k=\"gen-{}\">{}</td></tr>",
            esc(kind),
            esc(kind),
            n0(*size)
        );
    }
    out.push_str("</tbody></table>");
    for w in &s.warnings {
        let _ = write!(out, "<p class=\"warning\">Warning: {}</p>", esc(w));
    }
    out.push_str("</section>");
}

fn treemap_section(r: &Report, out: &mut String) {
    let m = &r.treemap;
    let cells: usize = m.namespaces.iter().map(|n| n.types.len()).sum();
    let _ = write!(
        out,
        "<section id=\"treemap-section\"><h2>Retained size by namespace and type</h2><p class=\"sub\">Area = a type's retained size (<code>dumpheap -stat -retained</code>). A type's retained size includes the objects of other types it alone keeps alive, so the map compares types; it does not partition the heap. Hover a cell for its numbers; click a namespace to zoom, click again to come back. <button type=\"button\" id=\"zoom-out\" hidden>Show all</button></p><p class=\"sub\" id=\"treemap-legend\" data-cells=\"{cells}\" data-cutoff=\"{}\">{cells} types retaining at least {} bytes (0.1% of the live heap) have a cell; {} smaller types retaining {} bytes together are left out.</p>{}",
        m.cutoff,
        n0(m.cutoff),
        n0(m.small_types),
        n0(m.small_retained),
        treemap(m)
    );
    out.push_str("</section>");
}
