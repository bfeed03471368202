//! Property tests on random small graphs against brute-force definitions.

mod common;

use common::*;
use dn_graph::{Algorithm, Dominators, HeapGraph, Idom, NodeId, Root, RootKind};
use proptest::prelude::*;
use std::sync::atomic::AtomicBool;

/// A random graph: 1-40 nodes, up to 3 edges per node (self-loops and duplicates included),
/// 0-5 root records (duplicates included, some finalizer roots), sizes 0-99, 4 types.
/// Half of them get a backbone chain 0 -> 1 -> ... -> n-1 for deep DFS trees.
fn arb_graph() -> impl Strategy<Value = HeapGraph> {
    (1usize..=40).prop_flat_map(|n| {
        let node = 0..n as NodeId;
        (
            prop::collection::vec((0u64..100, 0u32..4), n),
            prop::collection::vec((node.clone(), node.clone()), 0..=3 * n),
            prop::collection::vec((node, any::<bool>()), 0..=5),
            any::<bool>(),
        )
            .prop_map(move |(cols, mut edges, roots, chain)| {
                if chain {
                    edges.extend((1..n as NodeId).map(|i| (i - 1, i)));
                }
                let sizes: Vec<u64> = cols.iter().map(|c| c.0).collect();
                let types: Vec<u32> = cols.iter().map(|c| c.1).collect();
                let roots: Vec<Root> = roots
                    .iter()
                    .enumerate()
                    .map(|(i, &(node, fin))| Root {
                        node,
                        kind: if fin {
                            RootKind::Finalizer
                        } else {
                            RootKind::Static
                        },
                        tag: i as u32,
                    })
                    .collect();
                graph_full(&sizes, &types, &adjacency(n, &edges), &roots)
            })
    })
}

fn compute(g: &HeapGraph, algorithm: Algorithm) -> Dominators {
    Dominators::compute_with(g, algorithm, &AtomicBool::new(false)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// (1) idom, (2) retained, (3) algorithms agree, (4) reachable, live totals.
    #[test]
    fn dominators_match_brute_force(g in arb_graph()) {
        let n = g.node_count();
        let (live, idoms) = brute_idoms(&g);
        let retained = brute_retained(&g);
        let auto = compute(&g, Algorithm::Auto);
        let others = [compute(&g, Algorithm::SemiNca), compute(&g, Algorithm::SimpleLt)];
        let reach = g.reachable();
        for x in 0..n as NodeId {
            let want = match (live[x as usize], idoms[x as usize]) {
                (false, _) => Idom::Unreachable,
                (true, None) => Idom::Root,
                (true, Some(p)) => Idom::Node(p),
            };
            prop_assert_eq!(auto.idom(x), want, "idom of {}", x);
            for d in &others {
                prop_assert_eq!(d.idom(x), want);
                prop_assert_eq!(d.retained(x), retained[x as usize]);
            }
            prop_assert_eq!(auto.retained(x), retained[x as usize], "retained of {}", x);
            prop_assert_eq!(reach.contains(x), live[x as usize]);
            prop_assert_eq!(auto.is_reachable(x), live[x as usize]);
        }
        let live_bytes: u64 = (0..n as NodeId).filter(|&x| live[x as usize]).map(|x| g.nodes.size(x)).sum();
        prop_assert_eq!(auto.live_bytes(), live_bytes);
        prop_assert_eq!(auto.live_count() as usize, live.iter().filter(|&&l| l).count());
        prop_assert_eq!(reach.count_ones(), live.iter().filter(|&&l| l).count());
    }

    /// (6) retained_by_type and subtree_histogram against the minimum-retained definition.
    #[test]
    fn per_type_retained_matches_definition(g in arb_graph()) {
        let n = g.node_count();
        let (live, doms) = brute_dominator_sets(&g);
        let retained = brute_retained(&g);
        let d = compute(&g, Algorithm::Auto);
        let ty = |x: NodeId| g.nodes.type_index(x);
        // Types 0..3 exist; ask for 3 so type 3 is out of range and ignored.
        let per_type = d.retained_by_type(&g, 3);
        for t in 0..3u32 {
            let members = (0..n as NodeId).filter(|&x| live[x as usize] && ty(x) == t);
            let want: u64 = members.clone()
                .filter(|&x| !doms[x as usize].iter().any(|&a| ty(a) == t))
                .map(|x| retained[x as usize])
                .sum();
            prop_assert_eq!(per_type[t as usize].min_retained, want, "type {}", t);
            prop_assert_eq!(per_type[t as usize].instances, members.clone().count() as u64);
            prop_assert_eq!(per_type[t as usize].shallow_bytes, members.map(|x| g.nodes.size(x)).sum::<u64>());
        }
        // The subtree of one node.
        let s = (0..n as NodeId).find(|&x| live[x as usize]);
        if let Some(s) = s {
            let inside = |x: NodeId| x == s || doms[x as usize].contains(&s);
            for row in d.subtree_histogram(&g, s) {
                let t = row.type_index;
                let members: Vec<NodeId> = (0..n as NodeId).filter(|&x| live[x as usize] && inside(x) && ty(x) == t).collect();
                let want: u64 = members.iter()
                    .filter(|&&x| !doms[x as usize].iter().any(|&a| inside(a) && ty(a) == t))
                    .map(|&x| retained[x as usize])
                    .sum();
                prop_assert_eq!(row.count, members.len() as u64);
                prop_assert_eq!(row.retained_bytes, want);
            }
        }
    }

    /// (5) paths_to: one entry per root record reaching the target, valid and shortest;
    /// shortest_root_paths prefers non-finalizer roots and is shortest.
    #[test]
    fn root_paths_are_valid_and_shortest(g in arb_graph(), pick in any::<prop::sample::Index>()) {
        let n = g.node_count();
        let target = pick.index(n) as NodeId;
        let preds = g.edges.reverse(n);
        let got = g.paths_to(&preds, target, &AtomicBool::new(false)).unwrap();
        let mut expect_roots = Vec::new();
        for (i, r) in g.roots.iter().enumerate() {
            let dist = bfs_dist(&g, r.node)[target as usize];
            if dist != u32::MAX {
                expect_roots.push((i, dist));
            }
        }
        prop_assert_eq!(got.len(), expect_roots.len());
        for ((i, path), (j, dist)) in got.iter().zip(&expect_roots) {
            prop_assert_eq!(i, j);
            prop_assert_eq!(path[0], g.roots[*i].node);
            prop_assert_eq!(*path.last().unwrap(), target);
            prop_assert!(is_edge_path(&g, path));
            prop_assert_eq!(path.len() as u32, dist + 1);
        }

        let all: Vec<NodeId> = (0..n as NodeId).collect();
        let paths = g.shortest_root_paths(&all);
        let min_dist = |fin: bool| -> Vec<u32> {
            let mut best = vec![u32::MAX; n];
            for r in g.roots.iter().filter(|r| r.kind.is_finalizer() == fin) {
                for (b, d) in best.iter_mut().zip(bfs_dist(&g, r.node)) {
                    *b = (*b).min(d);
                }
            }
            best
        };
        let (strong, fin) = (min_dist(false), min_dist(true));
        for y in 0..n {
            let want = if strong[y] != u32::MAX { Some((false, strong[y])) } else if fin[y] != u32::MAX { Some((true, fin[y])) } else { None };
            match (&paths[y], want) {
                (None, None) => {}
                (Some((i, path)), Some((is_fin, dist))) => {
                    let r = g.roots[*i];
                    prop_assert_eq!(r.kind.is_finalizer(), is_fin);
                    prop_assert_eq!(path[0], r.node);
                    prop_assert_eq!(*path.last().unwrap(), y as NodeId);
                    prop_assert!(is_edge_path(&g, path));
                    prop_assert_eq!(path.len() as u32, dist + 1);
                }
                (got, want) => prop_assert!(false, "node {}: {:?} vs {:?}", y, got, want),
            }
        }
    }
}
