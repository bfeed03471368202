//! Node columns, the address index, and edge rows.

use dn_graph::{Edges, GraphError, NodeId, NodesBuilder};

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn builder_errors_are_errors() {
    let mut b = NodesBuilder::with_capacity(4);
    assert_eq!(
        b.push(0x1004, 0, 8),
        Err(GraphError::Unaligned { address: 0x1004 })
    );
    assert_eq!(b.push(0x1000, 0, 8), Ok(0));
    assert_eq!(
        b.push(0x1000, 0, 8),
        Err(GraphError::NotIncreasing {
            previous: 0x1000,
            address: 0x1000
        })
    );
    assert_eq!(
        b.push(0x0ff8, 0, 8),
        Err(GraphError::NotIncreasing {
            previous: 0x1000,
            address: 0x0ff8
        })
    );
    assert_eq!(b.push(0x2000, 0, 8), Ok(1));
    assert_eq!(b.push(0x9000, 0, 8), Ok(2));
    assert_eq!(b.len(), 3);

    let outside = |ranges: &[(u64, u64)]| b.clone().finish(ranges).err();
    // Before the first range, between ranges, after the last.
    assert_eq!(
        outside(&[(0x1008, 0xa000)]),
        Some(GraphError::OutsideRanges { address: 0x1000 })
    );
    assert_eq!(
        outside(&[(0x1000, 0x1800), (0x3000, 0xa000)]),
        Some(GraphError::OutsideRanges { address: 0x2000 })
    );
    assert_eq!(
        outside(&[(0x1000, 0x9000)]),
        Some(GraphError::OutsideRanges { address: 0x9000 })
    );
    assert_eq!(
        outside(&[]),
        Some(GraphError::OutsideRanges { address: 0x1000 })
    );
    assert_eq!(
        outside(&[(0x5000, 0x4000)]),
        Some(GraphError::InvalidRange {
            start: 0x5000,
            end: 0x4000
        })
    );
    assert_eq!(
        outside(&[(0x1000, 0x3000), (0x2000, 0xa000)]),
        Some(GraphError::OverlappingRanges {
            first: 0x1000,
            second: 0x2000
        })
    );
    // Unsorted but valid, with an empty range.
    let nodes = b
        .finish(&[(0x8000, 0xa000), (0x500, 0x500), (0x1000, 0x3000)])
        .unwrap();
    assert_eq!(nodes.id_of(0x9000), Some(2));
    assert_eq!(nodes.id_of(0x1000), Some(0));
    // An empty builder needs no range.
    assert_eq!(NodesBuilder::default().finish(&[]).unwrap().len(), 0);
}

#[test]
fn id_of_is_exact_and_containing_takes_interior_pointers() {
    let mut b = NodesBuilder::with_capacity(4);
    b.push(0x1000, 1, 24).unwrap();
    b.push(0x1018, 2, 0).unwrap(); // empty object
    b.push(0x1020, 3, 40).unwrap();
    b.push(0x2000, 4, 5_000_000_000).unwrap(); // huge, in another range
    let nodes = b
        .finish(&[(0x1000, 0x1100), (0x2000, 0x1_3000_0000)])
        .unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(
        (nodes.address(2), nodes.type_index(2), nodes.size(2)),
        (0x1020, 3, 40)
    );
    assert_eq!(nodes.size(3), 5_000_000_000);
    assert_eq!(nodes.id_of(0x1000), Some(0));
    assert_eq!(nodes.id_of(0x1008), None);
    assert_eq!(nodes.id_of(0x1001), None);
    assert_eq!(nodes.id_of(0x1018), Some(1));
    assert_eq!(nodes.id_of(0x1020), Some(2));
    assert_eq!(nodes.id_of(0x0ff8), None);
    assert_eq!(nodes.id_of(0x1100), None);
    assert_eq!(nodes.id_of(0x2000), Some(3));
    assert_eq!(nodes.containing(0x1000), Some(0));
    assert_eq!(nodes.containing(0x1017), Some(0));
    assert_eq!(nodes.containing(0x1018), Some(1));
    assert_eq!(
        nodes.containing(0x1019),
        None,
        "size 0 covers its start only"
    );
    assert_eq!(nodes.containing(0x1047), Some(2));
    assert_eq!(
        nodes.containing(0x1048),
        None,
        "past the end of the last object"
    );
    assert_eq!(nodes.containing(0x10f8), None);
    assert_eq!(nodes.containing(0x0fff), None);
    assert_eq!(nodes.containing(0x2000 + 4_999_999_999), Some(3));
    assert_eq!(nodes.containing(0x1_3000_0000), None, "outside the ranges");
    assert!(nodes.memory_bytes() > 0);
}

/// Many regions, dense and sparse, some 40 GiB apart (addresses are kept as 32-bit slot
/// offsets within spans of 32 GiB), against a brute-force reference.
#[test]
fn address_index_matches_brute_force() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut addrs = Vec::new();
    let mut sizes = Vec::new();
    let mut ranges = Vec::new();
    let mut start = 0x10_0000u64;
    for region in 0..12 {
        let dense = region % 3 != 2;
        let mut a = start + 8 * (rng.next() % 4);
        let count = if dense {
            3000 + rng.next() % 3000
        } else {
            1 + rng.next() % 40
        };
        for _ in 0..count {
            let size = if dense {
                8 * (2 + rng.next() % 30)
            } else {
                8 * (10_000 + rng.next() % 100_000)
            };
            addrs.push(a);
            sizes.push(size);
            a += size
                + if rng.next() % 5 == 0 {
                    8 * (rng.next() % 50)
                } else {
                    0
                };
        }
        let end = a + 8 * (rng.next() % 100);
        ranges.push((start, end));
        start = end + 0x1000 * (rng.next() % 3) + if region % 4 == 3 { 40 << 30 } else { 0 };
    }
    ranges.reverse();
    let mut b = NodesBuilder::with_capacity(addrs.len());
    for (i, (&a, &s)) in addrs.iter().zip(&sizes).enumerate() {
        assert_eq!(b.push(a, 0, s), Ok(i as NodeId));
    }
    let nodes = b.finish(&ranges).unwrap();
    let in_range = |x: u64| ranges.iter().any(|&(s, e)| s <= x && x < e);
    let containing = |x: u64| -> Option<NodeId> {
        let k = addrs.partition_point(|&a| a <= x).checked_sub(1)?;
        (in_range(x) && x < addrs[k] + sizes[k].max(1)).then_some(k as NodeId)
    };
    for (i, &a) in addrs.iter().enumerate() {
        assert_eq!(nodes.id_of(a), Some(i as NodeId));
        assert_eq!(
            nodes.id_of(a + 8),
            addrs
                .get(i + 1)
                .filter(|&&b| b == a + 8)
                .map(|_| i as NodeId + 1)
        );
        assert_eq!(nodes.id_of(a + 4), None);
        assert_eq!(nodes.containing(a + sizes[i] - 1), Some(i as NodeId));
    }
    for _ in 0..200_000 {
        let (lo, hi) = ranges[(rng.next() % ranges.len() as u64) as usize];
        let (lo, hi) = (lo - 0x100, hi + 0x100);
        let x = lo + rng.next() % (hi - lo);
        assert_eq!(nodes.containing(x), containing(x), "containing {x:#x}");
        let exact = addrs.binary_search(&x).ok().map(|k| k as NodeId);
        assert_eq!(nodes.id_of(x), exact, "id_of {x:#x}");
    }
}

#[test]
fn edges_dedup_keep_first_and_drop_out_of_range() {
    let e = Edges::build(3, false, |x, out| match x {
        0 => out.extend_from_slice(&[2, 1, 2, 0, 1, 7, 0]),
        1 => out.extend((0..40).map(|i| [2, 1, 0][i % 3])),
        _ => {}
    });
    assert_eq!(e.targets(0), &[2, 1, 0]);
    assert_eq!(e.targets(1), &[2, 1, 0]);
    assert_eq!(e.targets(2), &[] as &[NodeId]);
    assert_eq!((e.len(), e.node_count()), (6, 3));
    let r = e.reverse(3);
    assert_eq!(r.targets(0), &[0, 1]);
    assert_eq!(r.targets(2), &[0, 1]);
    assert_eq!(r.len(), 6);
}

#[test]
fn parallel_build_equals_serial() {
    // 39 chunks of 65536 nodes: several groups of parallel chunks on up to 8 threads.
    let n = 2_500_000;
    let f = |x: NodeId, out: &mut Vec<NodeId>| {
        let mut r = Rng(u64::from(x) * 2654435761 + 1);
        for _ in 0..(r.next() % 5) {
            out.push((r.next() % n as u64) as NodeId);
        }
        if x % 1000 == 0 {
            out.extend((0..100).map(|i| (x + i * 7) % n as NodeId));
        }
    };
    let a = Edges::build(n, false, f);
    let b = Edges::build(n, true, f);
    assert_eq!(a.len(), b.len());
    for x in 0..n as NodeId {
        assert_eq!(a.targets(x), b.targets(x));
    }
    let r = a.reverse(n);
    assert_eq!(r.len(), a.len());
    for x in (0..n as NodeId).step_by(997) {
        for &t in a.targets(x) {
            assert!(r.targets(t).contains(&x));
        }
        assert!(r.targets(x).windows(2).all(|w| w[0] < w[1]));
    }
}
