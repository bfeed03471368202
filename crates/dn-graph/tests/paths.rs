//! Paths from roots.

mod common;

use common::*;
use dn_graph::{Root, RootKind};
use std::sync::atomic::AtomicBool;

fn root(node: u32, kind: RootKind, tag: u32) -> Root {
    Root { node, kind, tag }
}

#[test]
fn paths_to_every_root_in_roots_order() {
    // 0 -> 1 -> 2 -> 3 -> 4, 1 -> 4; 5 -> 3; 7 -> 8 (does not reach 4); 6 -> 0
    let edges = [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (1, 4),
        (5, 3),
        (7, 8),
        (6, 0),
    ];
    let r = vec![
        root(5, RootKind::Stack, 0),
        root(7, RootKind::Static, 1),
        root(0, RootKind::StrongHandle, 2),
        root(6, RootKind::Finalizer, 3),
        root(0, RootKind::Stack, 4),
    ];
    let g = graph_full(&[8; 9], &[0; 9], &adjacency(9, &edges), &r);
    let preds = g.edges.reverse(9);
    let p = g.paths_to(&preds, 4, &AtomicBool::new(false)).unwrap();
    assert_eq!(
        p,
        vec![
            (0, vec![5, 3, 4]),
            (2, vec![0, 1, 4]),
            (3, vec![6, 0, 1, 4]),
            (4, vec![0, 1, 4]),
        ]
    );
    // The target itself rooted.
    let p = g.paths_to(&preds, 0, &AtomicBool::new(false)).unwrap();
    assert_eq!(p, vec![(2, vec![0]), (3, vec![6, 0]), (4, vec![0])]);
    // Nothing reaches 7's child 8 but 7.
    let p = g.paths_to(&preds, 8, &AtomicBool::new(false)).unwrap();
    assert_eq!(p, vec![(1, vec![7, 8])]);
}

#[test]
fn shortest_root_paths_prefer_non_finalizer_roots() {
    // Finalizer root 0 -> 2 (short); strong root 1 -> 3 -> 2 (longer); 0 -> 4 only from the
    // finalizer root; 5 rooted by both kinds; 6 unreachable.
    let edges = [(0, 2), (1, 3), (3, 2), (0, 4), (5, 2)];
    let r = vec![
        root(0, RootKind::Finalizer, 0),
        root(5, RootKind::Finalizer, 1),
        root(1, RootKind::StrongHandle, 2),
        root(5, RootKind::Stack, 3),
    ];
    let g = graph_full(&[8; 7], &[0; 7], &adjacency(7, &edges), &r);
    let p = g.shortest_root_paths(&[2, 4, 5, 6, 3, 99]);
    assert_eq!(p[0], Some((3, vec![5, 2])));
    assert_eq!(p[1], Some((0, vec![0, 4])));
    assert_eq!(p[2], Some((3, vec![5])));
    assert_eq!(p[3], None);
    assert_eq!(p[4], Some((2, vec![1, 3])));
    assert_eq!(p[5], None);
}

#[test]
fn reachable_matches_roots() {
    let g = graph(6, &[(0, 1), (1, 2), (3, 4), (4, 3), (5, 5)], &[0, 4, 0]);
    let r = g.reachable();
    assert_eq!(r.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(r.count_ones(), 5);
    assert!(!r.contains(5));
}
