//! Builds a synthetic heap-like graph and times graph build, dominators, per-type retained
//! sizes and suspects.
//!
//! `cargo run --release --example bench_dominators -- [N] [near|random]`
//!
//! * `near` (default), allocation order: every object is referenced by one of the 8 objects
//!   allocated just before it; 60% of objects hold one extra reference: 70% to an object
//!   within 1000 of it, 10% anywhere, 20% to one of 1000 popular objects.
//! * `random`: the referencing object is among the previous 1000; 60% of objects hold one
//!   uniformly random extra reference, 30% one to a popular object.
//!
//! Roots: object 0, about one object in 10,000 (strong handles), one in 50,000 (finalizer).
//! Memory figures come from the process status (Linux); the high-water mark is reset after
//! the graph is built when the kernel allows it.

use dn_graph::{suspects, Dominators, Edges, HeapGraph, NodeId, NodesBuilder, Root, RootKind};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const TYPES: u32 = 2000;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn h(i: usize, salt: u64) -> u64 {
    mix(i as u64 ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d))
}

struct Shape {
    n: usize,
    window: usize,
    random: bool,
}

impl Shape {
    /// The object that references `i` (i > 0).
    fn parent(&self, i: usize) -> usize {
        i - 1 - (h(i, 1) as usize % self.window.min(i))
    }

    fn extra(&self, u: usize) -> Option<usize> {
        let n = self.n;
        let popular = |k: u64| (k as usize % 1000) * (n / 1000).max(1) % n;
        let r = h(u, 2) % 100;
        let k = h(u, 3);
        if self.random {
            match r {
                0..60 => Some(k as usize % n),
                60..90 => Some(popular(k)),
                _ => None,
            }
        } else if r < 60 {
            match h(u, 4) % 100 {
                0..70 => Some((u + 1000).saturating_sub(k as usize % 2000).min(n - 1)),
                70..80 => Some(k as usize % n),
                _ => Some(popular(k)),
            }
        } else {
            None
        }
    }

    /// Outgoing references: the objects `u` is the parent of (ascending), then the extra one.
    fn edges(&self, children: &Edges, u: usize, out: &mut Vec<NodeId>) {
        out.extend_from_slice(children.targets(u as NodeId));
        if let Some(t) = self.extra(u) {
            out.push(t as NodeId);
        }
    }
}

fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of this thread in seconds (the machine may be shared: wall time can be longer).
fn thread_cpu() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ns as f64 / 1e9
}

/// Minor page faults of the process so far.
fn minor_faults() -> u64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Field 10 (minflt), counted after the parenthesised command name.
    let rest = text.rsplit(')').next().unwrap_or("");
    rest.split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let random = args.get(2).is_some_and(|a| a == "random");
    let shape = Shape {
        n,
        window: if random { 1000 } else { 8 },
        random,
    };
    let per = |b: u64| b as f64 / n as f64;

    let t = Instant::now();
    let mut b = NodesBuilder::with_capacity(n);
    let mut ranges = Vec::new();
    let mut region_start = 0x7f00_0000_0000u64;
    let mut addr = region_start;
    for i in 0..n {
        let k = h(i, 5);
        let size = if k % 100 == 0 {
            8 * (8 + k % 4000)
        } else {
            24 + 8 * (k % 8)
        };
        b.push(addr, (k >> 32) as u32 % TYPES, size).unwrap();
        addr += size;
        if addr - region_start > 64 << 20 {
            ranges.push((region_start, addr));
            region_start = (addr + (1 << 24)) & !0xff_ffff;
            addr = region_start;
        }
    }
    ranges.push((region_start, addr.max(region_start + 8)));
    let nodes = b.finish(&ranges).unwrap();
    let t_nodes = t.elapsed();

    let t = Instant::now();
    let children = Edges::build(n, true, |i, out| {
        if i > 0 {
            out.push(shape.parent(i as usize) as NodeId)
        }
    })
    .reverse(n);
    let edges = Edges::build(n, true, |u, out| shape.edges(&children, u as usize, out));
    drop(children);
    let t_edges = t.elapsed();
    let mut roots = vec![Root {
        node: 0,
        kind: RootKind::Static,
        tag: 0,
    }];
    for i in 1..n {
        let k = h(i, 6);
        if k % 10_000 == 0 {
            roots.push(Root {
                node: i as NodeId,
                kind: RootKind::StrongHandle,
                tag: roots.len() as u32,
            });
        } else if k % 50_000 == 1 {
            roots.push(Root {
                node: i as NodeId,
                kind: RootKind::Finalizer,
                tag: roots.len() as u32,
            });
        }
    }
    let m = edges.len();
    let g = HeapGraph::new(nodes, edges, roots).unwrap();
    let graph_bytes = g.memory_bytes() as u64;
    println!(
        "graph: n = {n}, m = {m} ({:.2}/node), {} roots, {} regions, shape {}",
        m as f64 / n as f64,
        g.roots.len(),
        ranges.len(),
        if random { "random" } else { "near" }
    );
    println!(
        "  nodes {:.2} s, edges (parallel, with the generator) {:.2} s; nodes {:.1} B/node, edges {:.1} B/node, total {:.1} B/node",
        t_nodes.as_secs_f64(),
        t_edges.as_secs_f64(),
        per(g.nodes.memory_bytes() as u64),
        per(g.edges.memory_bytes() as u64),
        per(graph_bytes)
    );
    let anon_graph = status("RssAnon:");
    println!(
        "  RssAnon after build {} ({:.1} B/node); estimate_bytes(n, m) = {:.1} B/node",
        mb(anon_graph),
        per(anon_graph),
        per(HeapGraph::estimate_bytes(n, m))
    );

    let peak_reset = reset_peak();
    let repeats: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
    for _ in 1..repeats {
        let (t, cpu, faults) = (Instant::now(), thread_cpu(), minor_faults());
        let d = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
        let s = d.stats();
        println!(
            "  run: {:.2} s wall, {:.2} s CPU, {} page faults; dfs {:.2} semi {:.2} idom {:.2} retained {:.2}",
            t.elapsed().as_secs_f64(),
            thread_cpu() - cpu,
            minor_faults() - faults,
            s.dfs.as_secs_f64(),
            s.semi.as_secs_f64(),
            s.idom.as_secs_f64(),
            s.retained.as_secs_f64()
        );
    }
    let t = Instant::now();
    let cpu = thread_cpu();
    let faults = minor_faults();
    let dom = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
    let cpu = thread_cpu() - cpu;
    let faults = minor_faults() - faults;
    let t_dom = t.elapsed();
    let s = dom.stats();
    println!(
        "dominators: {:.2} s wall, {cpu:.2} s CPU = {:.1} M reachable nodes per CPU second, {faults} page faults ({:?}, fell back: {}, climb steps {:.2}/node, backward edges {:.2}/node)",
        t_dom.as_secs_f64(),
        dom.live_count() as f64 / cpu / 1e6,
        s.algorithm,
        s.fell_back,
        s.climb_steps as f64 / n as f64,
        s.backward_edges as f64 / n as f64
    );
    println!(
        "  wall: dfs+preds {:.2} s, semi {:.2} s, idom {:.2} s, retained {:.2} s; live {} objects, {}",
        s.dfs.as_secs_f64(),
        s.semi.as_secs_f64(),
        s.idom.as_secs_f64(),
        s.retained.as_secs_f64(),
        dom.live_count(),
        mb(dom.live_bytes())
    );
    let hwm = status("VmHWM:");
    println!(
        "  peak RSS (VmHWM{}) {} = {:.1} B/node; dominators kept {:.1} B/node",
        if peak_reset {
            ", reset after the graph build"
        } else {
            ", whole run"
        },
        mb(hwm),
        per(hwm),
        per(dom.memory_bytes() as u64)
    );

    // Calibration: a bare DFS (number on first visit, (node, cursor) stack) over the same
    // rows, fresh arrays, no other work: what this machine's memory allows right now.
    let (t, cpu) = (Instant::now(), thread_cpu());
    let mut pre = vec![u32::MAX; n];
    let mut count = 0u32;
    let mut stack: Vec<(NodeId, u32)> = Vec::new();
    for r in &g.roots {
        if pre[r.node as usize] != u32::MAX {
            continue;
        }
        pre[r.node as usize] = count;
        count += 1;
        stack.push((r.node, 0));
        while let Some(top) = stack.last_mut() {
            let row = g.edges.targets(top.0);
            if let Some(&t) = row.get(top.1 as usize) {
                top.1 += 1;
                if pre[t as usize] == u32::MAX {
                    pre[t as usize] = count;
                    count += 1;
                    stack.push((t, 0));
                }
            } else {
                stack.pop();
            }
        }
    }
    drop(pre);
    println!(
        "bare DFS (calibration): {:.2} s wall, {:.2} s CPU for {count} nodes",
        t.elapsed().as_secs_f64(),
        thread_cpu() - cpu
    );

    let t = Instant::now();
    let per_type = dom.retained_by_type(&g, TYPES as usize);
    let t_types = t.elapsed();
    let t = Instant::now();
    let found = suspects(&g, &dom, 10.0);
    let t_suspects = t.elapsed();
    let t = Instant::now();
    let top = dom.children(None);
    let point = top.first().and_then(|&x| dom.accumulation_point(x));
    let t_point = t.elapsed();
    println!(
        "retained_by_type {:.2} s (biggest type {}), suspects {:.3} s ({} found), top-level {} + accumulation point {:.3} s ({point:?})",
        t_types.as_secs_f64(),
        mb(per_type.iter().map(|t| t.min_retained).max().unwrap_or(0)),
        t_suspects.as_secs_f64(),
        found.len(),
        top.len(),
        t_point.as_secs_f64(),
    );
    let preds_t = Instant::now();
    let preds = g.edges.reverse(n);
    let t_rev = preds_t.elapsed();
    let t = Instant::now();
    let target = (n / 2) as NodeId;
    let paths = g.paths_to(&preds, target, &AtomicBool::new(false)).unwrap();
    println!(
        "reverse CSR {:.2} s, paths_to({target}) {:.3} s ({} paths, first length {})",
        t_rev.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        paths.len(),
        paths.first().map_or(0, |p| p.1.len())
    );
    println!("VmHWM whole run {}", mb(status("VmHWM:")));
}
