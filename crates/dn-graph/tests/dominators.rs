//! Dominator tree and retained sizes on hand-built graphs.

mod common;

use common::*;
use dn_graph::{
    Algorithm, Dominators, Edges, HeapGraph, Idom, NodeId, NodesBuilder, Root, RootKind,
};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn dom(g: &HeapGraph) -> Dominators {
    let d = Dominators::compute(g, &AtomicBool::new(false)).unwrap();
    check_against_brute_force(g, &d);
    d
}

/// Compares with brute force when the graph is small.
fn check_against_brute_force(g: &HeapGraph, d: &Dominators) {
    if g.node_count() > 200 {
        return;
    }
    let (live, idoms) = brute_idoms(g);
    let retained = brute_retained(g);
    for x in 0..g.node_count() as NodeId {
        let want = match (live[x as usize], idoms[x as usize]) {
            (false, _) => Idom::Unreachable,
            (true, None) => Idom::Root,
            (true, Some(p)) => Idom::Node(p),
        };
        assert_eq!(d.idom(x), want, "idom of {x}");
        assert_eq!(d.retained(x), retained[x as usize], "retained of {x}");
    }
}

#[test]
fn diamond() {
    // a=0 -> b=1, c=2 -> d=3
    let g = graph(4, &[(0, 1), (0, 2), (1, 3), (2, 3)], &[0]);
    let d = dom(&g);
    assert_eq!(d.idom(0), Idom::Root);
    assert_eq!(d.idom(1), Idom::Node(0));
    assert_eq!(d.idom(2), Idom::Node(0));
    assert_eq!(d.idom(3), Idom::Node(0));
    assert_eq!(d.retained(0), 10 + 11 + 12 + 13);
    assert_eq!(d.retained(1), 11);
    assert_eq!(d.retained(3), 13);
    assert_eq!(d.live_bytes(), 46);
    assert_eq!(d.live_count(), 4);
}

#[test]
fn cycles() {
    // 0 -> 1 -> 2 -> 3 -> 1, 2 -> 4 -> 2
    let g = graph(5, &[(0, 1), (1, 2), (2, 3), (3, 1), (2, 4), (4, 2)], &[0]);
    let d = dom(&g);
    assert_eq!(d.idom(1), Idom::Node(0));
    assert_eq!(d.idom(2), Idom::Node(1));
    assert_eq!(d.idom(3), Idom::Node(2));
    assert_eq!(d.idom(4), Idom::Node(2));
    // A cycle through the roots.
    let g = graph(3, &[(0, 1), (1, 2), (2, 0)], &[0, 2]);
    let d = dom(&g);
    assert_eq!(d.idom(0), Idom::Root);
    assert_eq!(d.idom(1), Idom::Node(0));
    assert_eq!(d.idom(2), Idom::Root);
}

#[test]
fn self_loops_and_duplicate_edges() {
    let g = graph(
        3,
        &[
            (0, 0),
            (0, 1),
            (0, 1),
            (1, 1),
            (1, 2),
            (1, 2),
            (2, 2),
            (0, 2),
        ],
        &[0, 0],
    );
    assert_eq!(g.edges.len(), 6, "duplicates removed, self-loops kept");
    assert_eq!(g.edges.targets(0), &[0, 1, 2]);
    let d = dom(&g);
    assert_eq!(d.idom(1), Idom::Node(0));
    assert_eq!(d.idom(2), Idom::Node(0));
}

#[test]
fn unreachable_nodes_do_not_corrupt() {
    // 3 and 4 are dead; 3 points at live 2 and at dead 4; 4 points at 1.
    let g = graph(5, &[(0, 1), (1, 2), (3, 2), (3, 4), (4, 1), (4, 3)], &[0]);
    let d = dom(&g);
    assert_eq!(d.idom(1), Idom::Node(0));
    assert_eq!(d.idom(2), Idom::Node(1));
    assert_eq!(d.idom(3), Idom::Unreachable);
    assert_eq!(d.idom(4), Idom::Unreachable);
    assert!(!d.is_reachable(3));
    assert_eq!(d.retained(3), 0);
    assert_eq!(d.live_count(), 3);
    assert_eq!(d.live_bytes(), 10 + 11 + 12);
    // No roots at all.
    let g = graph(3, &[(0, 1)], &[]);
    let d = dom(&g);
    assert_eq!(d.live_count(), 0);
    assert_eq!(d.idom(0), Idom::Unreachable);
    // No nodes at all.
    let g = graph(0, &[], &[]);
    assert_eq!(dom(&g).live_bytes(), 0);
}

#[test]
fn node_rooted_twice() {
    let mut r = roots(&[1, 0, 1]);
    r[2].kind = RootKind::Stack;
    let sizes = [10, 11, 12];
    let g = graph_full(&sizes, &[0; 3], &adjacency(3, &[(0, 2), (1, 2)]), &r);
    let d = dom(&g);
    assert_eq!(d.idom(0), Idom::Root);
    assert_eq!(d.idom(1), Idom::Root);
    assert_eq!(d.idom(2), Idom::Root);
    assert_eq!(d.children(None), vec![2, 1, 0]);
}

#[test]
fn root_referenced_by_another_object() {
    // 0 -> 1 -> 2, and 2 is rooted too: its idom is the virtual root, 1 retains itself only.
    let g = graph(3, &[(0, 1), (1, 2)], &[0, 2]);
    let d = dom(&g);
    assert_eq!(d.idom(2), Idom::Root);
    assert_eq!(d.retained(1), 11);
    assert_eq!(d.retained(0), 21);
    // Same when the DFS reaches the rooted node first through the other object.
    let g = graph(4, &[(0, 1), (1, 2), (2, 3)], &[0, 2]);
    let d = dom(&g);
    assert_eq!(d.idom(2), Idom::Root);
    assert_eq!(d.idom(3), Idom::Node(2));
}

/// A chain 0 -> 1 -> ... -> n-1 rooted at 0, sizes 1.
fn chain(n: usize) -> HeapGraph {
    let mut b = NodesBuilder::with_capacity(n);
    for i in 0..n as u64 {
        b.push(BASE + 16 * i, 0, 1).unwrap();
    }
    let nodes = b.finish(&[(BASE, BASE + 16 * n as u64)]).unwrap();
    let edges = Edges::build(n, true, |x, out| {
        if (x as usize) + 1 < n {
            out.push(x + 1)
        }
    });
    HeapGraph::new(nodes, edges, roots(&[0])).unwrap()
}

fn check_chain(n: usize) {
    let g = chain(n);
    let t = Instant::now();
    let d = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
    eprintln!("chain {n}: {:?} ({:?})", t.elapsed(), d.stats());
    assert_eq!(d.retained(0), n as u64);
    assert_eq!(d.retained(n as NodeId / 2), (n - n / 2) as u64);
    assert_eq!(d.idom(n as NodeId - 1), Idom::Node(n as NodeId - 2));
    assert_eq!(d.accumulation_point(0), None, "deeper than 1000 steps");
    let per_type = d.retained_by_type(&g, 1);
    assert_eq!(per_type[0].min_retained, n as u64);
    assert_eq!(per_type[0].instances, n as u64);
    let preds = g.edges.reverse(n);
    let paths = g
        .paths_to(&preds, n as NodeId - 1, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(paths[0].1.len(), n);
    assert_eq!(g.reachable().count_ones(), n);
}

#[test]
fn chain_of_a_million() {
    check_chain(1_000_000);
}

/// A 10^7-deep chain: nothing may recurse. The workspace builds dn-graph optimized even in
/// test builds (Cargo.toml), so this takes about a second.
#[test]
fn chain_of_ten_million() {
    check_chain(10_000_000);
}

/// Chain 0 -> 1 -> ... -> len-1, the bottom referencing k extra objects, which are also
/// referenced from `also` (None: rooted directly).
fn deep_chain_with_shared_tail(len: usize, k: usize, also: Option<NodeId>) -> HeapGraph {
    let n = len + k;
    let mut r = vec![0];
    if also.is_none() {
        r.extend(len as NodeId..n as NodeId);
    }
    let sizes = vec![8u64; n];
    let mut adj = vec![Vec::new(); n];
    for (i, row) in adj.iter_mut().enumerate().take(len - 1) {
        row.push(i as NodeId + 1);
    }
    adj[len - 1].extend(len as NodeId..n as NodeId);
    if let Some(a) = also {
        adj[a as usize].extend(len as NodeId..n as NodeId);
    }
    graph_full(&sizes, &vec![0; n], &adj, &roots(&r))
}

#[test]
fn semi_nca_quadratic_shapes_finish_fast() {
    let (len, k) = (20_000, 10_000);
    for also in [None, Some(0), Some(1)] {
        let g = deep_chain_with_shared_tail(len, k, also);
        let t = Instant::now();
        let d = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
        let took = t.elapsed();
        eprintln!("also {also:?}: {took:?} {:?}", d.stats());
        assert!(took.as_secs_f64() < 2.0, "{took:?}");
        for x in len..len + k {
            let want = match also {
                None => Idom::Root,
                Some(a) => Idom::Node(a),
            };
            assert_eq!(d.idom(x as NodeId), want);
        }
        assert_eq!(d.retained(len as NodeId - 1), 8);
        if also == Some(1) {
            assert!(d.stats().fell_back, "SEMI-NCA should have given up");
            assert_eq!(d.stats().algorithm, Algorithm::SimpleLt);
        }
        let slt = Dominators::compute_with(&g, Algorithm::SimpleLt, &AtomicBool::new(false));
        let slt = slt.unwrap();
        for x in 0..g.node_count() as NodeId {
            assert_eq!(slt.idom(x), d.idom(x));
            assert_eq!(slt.retained(x), d.retained(x));
        }
    }
}

#[test]
fn cancellation() {
    let g = chain(300_000);
    let r = Dominators::compute(&g, &AtomicBool::new(true));
    assert!(r.is_err());
    let preds = g.edges.reverse(g.node_count());
    assert!(g.paths_to(&preds, 299_999, &AtomicBool::new(true)).is_err());
}

#[test]
fn all_algorithms_agree_on_a_mesh() {
    // A grid with back edges and several roots, compared with brute force.
    let w = 9;
    let n = w * w;
    let mut e = Vec::new();
    for i in 0..n {
        if i % w + 1 < w {
            e.push((i as NodeId, i as NodeId + 1));
        }
        if i + w < n {
            e.push((i as NodeId, (i + w) as NodeId));
        }
        if i % 7 == 3 && i > 10 {
            e.push((i as NodeId, (i - 10) as NodeId));
        }
    }
    let g = graph(n, &e, &[0, 40, 77]);
    for algorithm in [Algorithm::Auto, Algorithm::SemiNca, Algorithm::SimpleLt] {
        let d = Dominators::compute_with(&g, algorithm, &AtomicBool::new(false)).unwrap();
        check_against_brute_force(&g, &d);
    }
}

#[test]
fn large_objects_retained_in_u64() {
    let sizes = [5_000_000_000u64, 6_000_000_000, 7];
    let g = graph_full(
        &sizes,
        &[0; 3],
        &adjacency(3, &[(0, 1), (1, 2)]),
        &roots(&[0]),
    );
    let d = dom(&g);
    assert_eq!(g.nodes.size(1), 6_000_000_000);
    assert_eq!(d.retained(0), 11_000_000_007);
    assert_eq!(d.live_bytes(), 11_000_000_007);
}

#[test]
fn graph_new_checks_parts() {
    let mut b = NodesBuilder::with_capacity(2);
    b.push(BASE, 0, 8).unwrap();
    b.push(BASE + 8, 0, 8).unwrap();
    let nodes = b.finish(&[(BASE, BASE + 64)]).unwrap();
    let edges3 = Edges::build(3, false, |_, _| {});
    assert!(HeapGraph::new(nodes.clone(), edges3, vec![]).is_err());
    let edges = Edges::build(2, false, |_, _| {});
    let bad = vec![Root {
        node: 2,
        kind: RootKind::Static,
        tag: 0,
    }];
    assert!(HeapGraph::new(nodes.clone(), edges.clone(), bad).is_err());
    assert!(HeapGraph::new(nodes, edges, roots(&[1])).is_ok());
}
