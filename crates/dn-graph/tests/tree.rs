//! Dominator-tree views: children, accumulation points, per-type retained sizes.

mod common;

use common::*;
use dn_graph::{Dominators, HeapGraph, NodeId, TypeHistogramRow};
use std::sync::atomic::AtomicBool;

fn dom(g: &HeapGraph) -> Dominators {
    Dominators::compute(g, &AtomicBool::new(false)).unwrap()
}

/// Graph from (size, type) per node, edges, roots.
fn g(nodes: &[(u64, u32)], edges: &[(NodeId, NodeId)], root_nodes: &[NodeId]) -> HeapGraph {
    let sizes: Vec<u64> = nodes.iter().map(|x| x.0).collect();
    let types: Vec<u32> = nodes.iter().map(|x| x.1).collect();
    graph_full(
        &sizes,
        &types,
        &adjacency(nodes.len(), edges),
        &roots(root_nodes),
    )
}

#[test]
fn children_sorted_by_retained_then_id() {
    // 0 -> 1 (5), 2 (7), 3 (5), 4 (9 via 4 -> 5)
    let gr = g(
        &[(1, 0), (5, 0), (7, 0), (5, 0), (4, 0), (5, 0)],
        &[(0, 1), (0, 2), (0, 3), (0, 4), (4, 5)],
        &[0, 3],
    );
    let d = dom(&gr);
    assert_eq!(d.children(Some(0)), vec![4, 2, 1]);
    assert_eq!(d.children(None), vec![0, 3]);
    assert_eq!(d.children(Some(5)), Vec::<NodeId>::new());
}

#[test]
fn accumulation_point_boundary() {
    // retained(child) * 10 == retained(parent) * 7: step in.
    let d = dom(&g(&[(30, 0), (70, 0)], &[(0, 1)], &[0]));
    assert_eq!(d.accumulation_point(0), Some(1));
    // Just below 70%: stop at the parent.
    let d = dom(&g(&[(31, 0), (69, 0)], &[(0, 1)], &[0]));
    assert_eq!(d.accumulation_point(0), Some(0));
    // A leaf is its own point; an unreachable node has none.
    let d = dom(&g(&[(31, 0), (69, 0), (5, 0)], &[(0, 1)], &[0]));
    assert_eq!(d.accumulation_point(1), Some(1));
    assert_eq!(d.accumulation_point(2), None);
}

#[test]
fn accumulation_point_follows_the_biggest_child() {
    // 0 (9) -> 1 (71), 2 (20): 71% -> into 1; 1 -> 3 (40), 4 (31): 40/71 < 70% -> stop at 1.
    let gr = g(
        &[(9, 0), (0, 0), (20, 0), (40, 0), (31, 0)],
        &[(0, 1), (0, 2), (1, 3), (1, 4)],
        &[0],
    );
    let d = dom(&gr);
    assert_eq!(d.retained(1), 71);
    assert_eq!(d.accumulation_point(0), Some(1));
    // Ties between children: the smaller id is taken.
    let gr = g(&[(1, 0), (50, 0), (50, 0)], &[(0, 2), (0, 1)], &[0]);
    let d = dom(&gr);
    assert_eq!(d.accumulation_point(0), Some(0));
    let gr = g(
        &[(1, 0), (90, 0), (90, 0), (1, 0)],
        &[(3, 2), (3, 1), (1, 0)],
        &[3],
    );
    let d = dom(&gr);
    assert_eq!(d.children(Some(3)), vec![1, 2]);
}

fn chain_with_heavy_bottom(len: usize) -> HeapGraph {
    let mut nodes = vec![(1u64, 0u32); len];
    nodes[len - 1].0 = 1_000_000;
    let edges: Vec<(NodeId, NodeId)> = (1..len as NodeId).map(|i| (i - 1, i)).collect();
    g(&nodes, &edges, &[0])
}

#[test]
fn accumulation_point_depth_cap() {
    // 1000 steps reach the leaf: found.
    let d = dom(&chain_with_heavy_bottom(1001));
    assert_eq!(d.accumulation_point(0), Some(1000));
    // The leaf is 1001 steps down: none.
    let d = dom(&chain_with_heavy_bottom(1002));
    assert_eq!(d.accumulation_point(0), None);
    assert_eq!(d.accumulation_point(1), Some(1001));
}

#[test]
fn retained_by_type_counts_nested_instances_once() {
    // 0:T1 -> 1:T2 -> 2:T1 -> 3:T3; 4:T1 separate root; 5:T7 (out of range) under 0.
    let gr = g(
        &[(10, 1), (20, 2), (30, 1), (40, 3), (50, 1), (60, 7)],
        &[(0, 1), (1, 2), (2, 3), (0, 5)],
        &[0, 4],
    );
    let d = dom(&gr);
    let t = d.retained_by_type(&gr, 4);
    assert_eq!(t.len(), 4);
    assert_eq!(t[0].instances, 0);
    assert_eq!(t[1].instances, 3);
    assert_eq!(t[1].shallow_bytes, 90);
    assert_eq!(t[1].min_retained, 160 + 50);
    assert_eq!(t[2].min_retained, 90);
    assert_eq!(t[3].min_retained, 40);
    assert_eq!(t[3].instances, 1);
}

#[test]
fn subtree_histogram_groups_by_type() {
    let gr = g(
        &[(10, 1), (20, 2), (30, 1), (40, 3), (50, 1), (5, 2)],
        &[(0, 1), (1, 2), (2, 3), (0, 5), (4, 0)],
        &[4],
    );
    let d = dom(&gr);
    let h = d.subtree_histogram(&gr, 1);
    assert_eq!(
        h,
        vec![
            TypeHistogramRow {
                type_index: 2,
                count: 1,
                shallow_bytes: 20,
                retained_bytes: 90
            },
            TypeHistogramRow {
                type_index: 1,
                count: 1,
                shallow_bytes: 30,
                retained_bytes: 70
            },
            TypeHistogramRow {
                type_index: 3,
                count: 1,
                shallow_bytes: 40,
                retained_bytes: 40
            },
        ]
    );
    let h = d.subtree_histogram(&gr, 4);
    assert_eq!(
        h[0],
        TypeHistogramRow {
            type_index: 1,
            count: 3,
            shallow_bytes: 90,
            retained_bytes: 155
        }
    );
    assert_eq!(
        h[1],
        TypeHistogramRow {
            type_index: 2,
            count: 2,
            shallow_bytes: 25,
            retained_bytes: 95
        }
    );
    assert_eq!(h.len(), 3);
}
