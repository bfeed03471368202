//! Helpers shared by the integration tests: small graph builders and brute-force references.
#![allow(dead_code)]

use dn_graph::{Edges, HeapGraph, NodeId, NodesBuilder, Root, RootKind};

pub const BASE: u64 = 0x1_0000;
pub const STRIDE: u64 = 32;

/// A graph of `n` nodes at `BASE + STRIDE * i`, with sizes, types, adjacency rows and roots.
pub fn graph_full(sizes: &[u64], types: &[u32], adj: &[Vec<NodeId>], roots: &[Root]) -> HeapGraph {
    let n = sizes.len();
    let mut b = NodesBuilder::with_capacity(n);
    for i in 0..n {
        b.push(BASE + STRIDE * i as u64, types[i], sizes[i])
            .unwrap();
    }
    let nodes = b.finish(&[(BASE, BASE + STRIDE * (n as u64 + 1))]).unwrap();
    let edges = Edges::build(n, false, |x, out| out.extend_from_slice(&adj[x as usize]));
    HeapGraph::new(nodes, edges, roots.to_vec()).unwrap()
}

/// Adjacency rows from an edge list.
pub fn adjacency(n: usize, edges: &[(NodeId, NodeId)]) -> Vec<Vec<NodeId>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a as usize].push(b);
    }
    adj
}

/// Strong-handle roots, tag = record index.
pub fn roots(nodes: &[NodeId]) -> Vec<Root> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| Root {
            node,
            kind: RootKind::StrongHandle,
            tag: i as u32,
        })
        .collect()
}

/// `n` nodes of size `10 + i`, type 0, the given edges and strong roots.
pub fn graph(n: usize, edges: &[(NodeId, NodeId)], root_nodes: &[NodeId]) -> HeapGraph {
    let sizes: Vec<u64> = (0..n as u64).map(|i| 10 + i).collect();
    graph_full(
        &sizes,
        &vec![0; n],
        &adjacency(n, edges),
        &roots(root_nodes),
    )
}

/// Nodes reachable from the roots when `removed` is deleted.
pub fn reach_without(g: &HeapGraph, removed: Option<NodeId>) -> Vec<bool> {
    let n = g.node_count();
    let mut seen = vec![false; n];
    let mut stack = Vec::new();
    for r in &g.roots {
        if Some(r.node) != removed && !seen[r.node as usize] {
            seen[r.node as usize] = true;
            stack.push(r.node);
        }
    }
    while let Some(x) = stack.pop() {
        for &t in g.edges.targets(x) {
            if Some(t) != removed && !seen[t as usize] {
                seen[t as usize] = true;
                stack.push(t);
            }
        }
    }
    seen
}

/// Brute-force dominators: `doms[y]` = the nodes other than y whose removal cuts y off.
pub fn brute_dominator_sets(g: &HeapGraph) -> (Vec<bool>, Vec<Vec<NodeId>>) {
    let n = g.node_count();
    let live = reach_without(g, None);
    let mut doms = vec![Vec::new(); n];
    for x in 0..n as NodeId {
        if !live[x as usize] {
            continue;
        }
        let r = reach_without(g, Some(x));
        for y in 0..n {
            if live[y] && !r[y] && y != x as usize {
                doms[y].push(x);
            }
        }
    }
    (live, doms)
}

/// Brute-force idom: None = virtual root (or unreachable, see `live`).
pub fn brute_idoms(g: &HeapGraph) -> (Vec<bool>, Vec<Option<NodeId>>) {
    let (live, doms) = brute_dominator_sets(g);
    let idom = doms
        .iter()
        .map(|d| {
            // The dominator dominated by all the others: the one with the most dominators.
            d.iter().copied().max_by_key(|&x| doms[x as usize].len())
        })
        .collect();
    (live, idom)
}

/// Brute-force retained sizes: bytes that become unreachable when x is removed.
pub fn brute_retained(g: &HeapGraph) -> Vec<u64> {
    let n = g.node_count();
    let live = reach_without(g, None);
    (0..n as NodeId)
        .map(|x| {
            if !live[x as usize] {
                return 0;
            }
            let r = reach_without(g, Some(x));
            (0..n as NodeId)
                .filter(|&y| live[y as usize] && !r[y as usize])
                .map(|y| g.nodes.size(y))
                .sum()
        })
        .collect()
}

/// Forward BFS distances from `src` (u32::MAX = unreachable).
pub fn bfs_dist(g: &HeapGraph, src: NodeId) -> Vec<u32> {
    let mut dist = vec![u32::MAX; g.node_count()];
    dist[src as usize] = 0;
    let mut queue = std::collections::VecDeque::from([src]);
    while let Some(x) = queue.pop_front() {
        for &t in g.edges.targets(x) {
            if dist[t as usize] == u32::MAX {
                dist[t as usize] = dist[x as usize] + 1;
                queue.push_back(t);
            }
        }
    }
    dist
}

/// True if consecutive nodes of `path` are joined by edges.
pub fn is_edge_path(g: &HeapGraph, path: &[NodeId]) -> bool {
    path.windows(2)
        .all(|w| g.edges.targets(w[0]).contains(&w[1]))
}
