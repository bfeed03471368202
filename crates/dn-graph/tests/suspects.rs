//! MAT leak suspects.

mod common;

use common::*;
use dn_graph::{suspects, Dominators, HeapGraph, NodeId, Suspect, SuspectKind, MAX_GROUP_MEMBERS};
use std::sync::atomic::AtomicBool;

/// Every node a rooted leaf.
fn leaves(nodes: &[(u64, u32)]) -> HeapGraph {
    let sizes: Vec<u64> = nodes.iter().map(|x| x.0).collect();
    let types: Vec<u32> = nodes.iter().map(|x| x.1).collect();
    let all: Vec<NodeId> = (0..nodes.len() as NodeId).collect();
    graph_full(&sizes, &types, &vec![Vec::new(); nodes.len()], &roots(&all))
}

fn single(node: NodeId, retained: u64) -> Suspect {
    Suspect {
        kind: SuspectKind::Single { node },
        retained,
    }
}

fn group(type_index: u32, members: Vec<NodeId>, retained: u64) -> Suspect {
    let count = members.len() as u64;
    Suspect {
        kind: SuspectKind::Group {
            type_index,
            count,
            members,
        },
        retained,
    }
}

#[test]
fn singles_groups_strict_threshold_and_ties() {
    let g = leaves(&[
        (200, 5), // single
        (100, 7), // exactly the threshold: not single, joins group 7
        (60, 7),
        (50, 8), // group 8 sums to exactly the threshold: not a suspect
        (50, 8),
        (160, 9), // single, ties with group 7
        (95, 11),
        (95, 11),
        (95, 11),
        (95, 11),
    ]);
    let d = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
    assert_eq!(d.live_bytes(), 1000);
    assert_eq!(
        suspects(&g, &d, 10.0),
        vec![
            group(11, vec![6, 7, 8, 9], 380),
            single(0, 200),
            single(5, 160),
            group(7, vec![1, 2], 160),
        ]
    );
    // 20%: threshold 200, nothing is strictly above it but type 11.
    assert_eq!(
        suspects(&g, &d, 20.0),
        vec![group(11, vec![6, 7, 8, 9], 380)]
    );
    // 15.95%: threshold 159 (rounded down).
    assert_eq!(suspects(&g, &d, 15.95).len(), 4);
    assert_eq!(suspects(&g, &d, 16.0).len(), 2);
    assert!(suspects(&g, &d, 50.0).is_empty());
}

#[test]
fn suspects_use_top_level_dominators_only() {
    // 0 -> 1 -> 2 retains everything; 3 is a small separate root.
    let sizes = [10, 500, 400, 90];
    let g = graph_full(
        &sizes,
        &[1, 2, 3, 4],
        &adjacency(4, &[(0, 1), (1, 2)]),
        &roots(&[0, 3]),
    );
    let d = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
    assert_eq!(suspects(&g, &d, 10.0), vec![single(0, 910)]);
}

#[test]
fn group_members_are_capped_and_sorted() {
    let n = MAX_GROUP_MEMBERS + 500;
    let nodes: Vec<(u64, u32)> = (0..n).map(|i| (8 + (i % 13) as u64, 3)).collect();
    let g = leaves(&nodes);
    let d = Dominators::compute(&g, &AtomicBool::new(false)).unwrap();
    let s = suspects(&g, &d, 10.0);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].retained, d.live_bytes());
    let SuspectKind::Group {
        type_index,
        count,
        members,
    } = &s[0].kind
    else {
        panic!()
    };
    assert_eq!((*type_index, *count as usize), (3, n));
    assert_eq!(members.len(), MAX_GROUP_MEMBERS);
    assert!(members.windows(2).all(|w| {
        let (a, b) = (d.retained(w[0]), d.retained(w[1]));
        a > b || (a == b && w[0] < w[1])
    }));
    assert_eq!(d.retained(members[0]), 20);
}
