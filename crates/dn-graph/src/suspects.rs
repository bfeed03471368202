//! MAT's leak suspects (FindLeaksQuery), from the top-level dominators.

use crate::{Dominators, HeapGraph, NodeId};
use rustc_hash::FxHashMap;

/// At most this many members are listed for a group suspect (for path sampling).
pub const MAX_GROUP_MEMBERS: usize = 10_000;

/// What a suspect is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum SuspectKind {
    /// One top-level dominator retaining more than the threshold.
    Single {
        /// The object.
        node: NodeId,
    },
    /// The top-level dominators of one type (singles excluded), together over the threshold.
    Group {
        /// Their type.
        type_index: u32,
        /// How many there are.
        count: u64,
        /// The biggest of them (retained size descending, ties by id), at most
        /// [`MAX_GROUP_MEMBERS`].
        members: Vec<NodeId>,
    },
}

/// A leak suspect and the bytes it retains.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Suspect {
    /// What it is.
    pub kind: SuspectKind,
    /// Retained bytes (for a group, the sum over its members: top-level dominators retain
    /// disjoint sets).
    pub retained: u64,
}

/// `percent * live / 100`, rounded down, exact for percentages with up to 6 decimals.
fn threshold(live: u64, percent: f64) -> u64 {
    if percent.is_nan() || percent <= 0.0 {
        return 0;
    }
    let micro = (percent.min(1e12) * 1e6).round() as u128;
    (u128::from(live) * micro / 100_000_000).min(u128::from(u64::MAX)) as u64
}

/// MAT's leak suspects. threshold = `threshold_percent` × live bytes / 100 (integer; MAT's
/// report uses 10). Single suspects: top-level dominators retaining strictly more than the
/// threshold. Group suspects: the other top-level dominators histogrammed by type, each type's
/// retained size being the sum over its instances; every type whose sum is strictly above the
/// threshold. Sorted by retained size descending; ties: singles before groups, then type
/// index, then id.
pub fn suspects(graph: &HeapGraph, dom: &Dominators, threshold_percent: f64) -> Vec<Suspect> {
    let limit = threshold(dom.live_bytes(), threshold_percent);
    let top = dom.top_level();
    let mut out = Vec::new();
    let mut groups: FxHashMap<u32, (u64, u64)> = FxHashMap::default();
    for &x in top {
        let retained = dom.retained(x);
        if retained > limit {
            out.push(Suspect {
                kind: SuspectKind::Single { node: x },
                retained,
            });
        } else {
            let g = groups.entry(graph.nodes.type_index(x)).or_default();
            g.0 += retained;
            g.1 += 1;
        }
    }
    groups.retain(|_, g| g.0 > limit);
    if !groups.is_empty() {
        let mut members: FxHashMap<u32, Vec<NodeId>> = FxHashMap::default();
        for &x in top {
            let t = graph.nodes.type_index(x);
            if dom.retained(x) <= limit && groups.contains_key(&t) {
                members.entry(t).or_default().push(x);
            }
        }
        for (type_index, (retained, count)) in groups {
            let mut m = members.remove(&type_index).unwrap_or_default();
            m.sort_unstable_by(|&a, &b| {
                dom.retained(b)
                    .cmp(&dom.retained(a))
                    .then_with(|| a.cmp(&b))
            });
            m.truncate(MAX_GROUP_MEMBERS);
            m.shrink_to_fit();
            out.push(Suspect {
                kind: SuspectKind::Group {
                    type_index,
                    count,
                    members: m,
                },
                retained,
            });
        }
    }
    let key = |s: &Suspect| match &s.kind {
        SuspectKind::Single { node } => (
            std::cmp::Reverse(s.retained),
            0u8,
            graph.nodes.type_index(*node),
            *node,
        ),
        SuspectKind::Group { type_index, .. } => {
            (std::cmp::Reverse(s.retained), 1u8, *type_index, 0)
        }
    };
    out.sort_unstable_by_key(key);
    out
}

#[cfg(test)]
mod tests {
    use super::threshold;

    #[test]
    fn threshold_is_integer_and_exact() {
        assert_eq!(threshold(1000, 10.0), 100);
        assert_eq!(threshold(999, 10.0), 99);
        assert_eq!(threshold(1000, 12.5), 125);
        assert_eq!(threshold(1000, 0.0), 0);
        assert_eq!(threshold(1000, -3.0), 0);
        assert_eq!(threshold(1000, f64::NAN), 0);
        assert_eq!(threshold(u64::MAX, 100.0), u64::MAX);
        assert_eq!(threshold(u64::MAX, 200.0), u64::MAX);
    }
}
