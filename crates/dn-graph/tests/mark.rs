//! The mark pass against a plain serial search, on random graphs and on shapes that exercise
//! its work sharing (a long chain, a wide fan-out).

use dn_graph::{mark_reachable, Cancelled, NodeId};
use proptest::prelude::*;
use std::sync::atomic::AtomicBool;

/// Serial reachability over an adjacency list (the reference).
fn reference(adj: &[Vec<NodeId>], roots: &[NodeId]) -> Vec<bool> {
    let mut seen = vec![false; adj.len()];
    let mut stack = Vec::new();
    for &r in roots {
        if (r as usize) < adj.len() && !seen[r as usize] {
            seen[r as usize] = true;
            stack.push(r);
        }
        while let Some(x) = stack.pop() {
            for &t in &adj[x as usize] {
                if (t as usize) < adj.len() && !seen[t as usize] {
                    seen[t as usize] = true;
                    stack.push(t);
                }
            }
        }
    }
    seen
}

fn mark(adj: &[Vec<NodeId>], roots: &[NodeId]) -> Vec<bool> {
    let calls: Vec<std::sync::atomic::AtomicU32> = (0..adj.len())
        .map(|_| std::sync::atomic::AtomicU32::new(0))
        .collect();
    let set = mark_reachable(
        adj.len(),
        roots,
        |x, out| {
            calls[x as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.extend_from_slice(&adj[x as usize]);
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(set.len(), adj.len());
    let live: Vec<bool> = (0..adj.len() as NodeId).map(|i| set.contains(i)).collect();
    // Successors are asked for exactly once per reached node, never for another.
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(
            c.load(std::sync::atomic::Ordering::Relaxed),
            u32::from(live[i])
        );
    }
    assert_eq!(set.count_ones(), live.iter().filter(|&&b| b).count());
    live
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// 1-300 nodes, up to 4 edges per node (self-loops, duplicates and ids out of range
    /// included), 0-8 roots (duplicates and out-of-range ids included).
    #[test]
    fn mark_equals_serial_search(
        (adj, roots) in (1usize..=300).prop_flat_map(|n| (
            prop::collection::vec(prop::collection::vec(0..n as NodeId + 2, 0..=4), n),
            prop::collection::vec(0..n as NodeId + 1, 0..=8),
        ))
    ) {
        prop_assert_eq!(mark(&adj, &roots), reference(&adj, &roots));
    }
}

#[test]
fn a_chain_of_a_million() {
    let n = 1_000_000usize;
    let adj: Vec<Vec<NodeId>> = (0..n)
        .map(|i| {
            if i + 1 < n {
                vec![i as NodeId + 1]
            } else {
                vec![]
            }
        })
        .collect();
    assert!(mark(&adj, &[0]).iter().all(|&b| b));
    let from_middle = mark(&adj, &[500_000]);
    assert_eq!(from_middle.iter().filter(|&&b| b).count(), 500_000);
    assert!(!from_middle[499_999] && from_middle[500_000]);
}

#[test]
fn a_wide_fan_out_with_shared_tails() {
    // Node 0 -> 1..=200_000, each of those -> a shared tail of 1000 nodes and a private leaf.
    let fan = 200_000usize;
    let tail = 1000usize;
    let n = 1 + fan + tail + fan + 10;
    let mut adj: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    adj[0] = (1..=fan as NodeId).collect();
    let tail0 = (1 + fan) as NodeId;
    for (i, row) in adj.iter_mut().enumerate().take(fan + 1).skip(1) {
        *row = vec![tail0, (fan + tail + i) as NodeId];
    }
    for k in 0..tail - 1 {
        adj[1 + fan + k] = vec![tail0 + k as NodeId + 1];
    }
    let live = mark(&adj, &[0, 0, 3]);
    assert_eq!(live, reference(&adj, &[0]));
    assert_eq!(live.iter().filter(|&&b| b).count(), n - 10);
}

#[test]
fn a_set_cancel_flag_stops_it() {
    let adj: Vec<Vec<NodeId>> = (0..200_000).map(|i| vec![(i + 1) % 200_000]).collect();
    let r = mark_reachable(
        adj.len(),
        &[0],
        |x, out| out.extend_from_slice(&adj[x as usize]),
        &AtomicBool::new(true),
    );
    assert_eq!(r, Err(Cancelled));
}
