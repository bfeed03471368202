//! A hand-built heap through the converter, the writer, the reader and the graph view.

use dn_gcdump::builder::RawHeap;
use dn_gcdump::convert::to_snapshot;
use dn_gcdump::events::{RootEdgeKind, RootRec, StaticRec, TypeRec};
use dn_gcdump::snapshot::Meta;
use dn_graph::RootKind;

fn heap() -> RawHeap {
    let mut h = RawHeap::default();
    h.pointer_size = 8;
    for (id, name) in [(0x100, "App.Node"), (0x200, "System.Byte[]")] {
        h.types.insert(
            id,
            TypeRec {
                type_id: id,
                module_id: 0x1,
                name_token: 0x0200_0001,
                flags: 0,
                name: name.into(),
            },
        );
    }
    h.modules.insert(0x1, "/x/App.dll".into());
    // Stream order is not address order; the big array gets a bucket type of its own.
    let nodes = [
        (
            0x7f00_0000_1000u64,
            32u32,
            0x100u64,
            vec![0x7f00_0000_0800u64, 0x7f00_0000_2000],
        ),
        (0x7f00_0000_0800, 32, 0x100, vec![0x5000]), // 0x5000 is never defined
        (0x7f00_0000_2000, 5000, 0x200, vec![]),
    ];
    for (addr, size, ty, edges) in nodes {
        let slot = h.slot_of(ty);
        h.addr.push(addr);
        h.size.push(size);
        h.slot.push(slot);
        h.announce_edges(edges.len() as u64);
        for e in edges {
            h.edges_hi.push((h.edges_lo.len() as u64, (e >> 32) as u32));
            h.edges_lo.push(e as u32);
        }
    }
    h.roots.push(RootRec {
        address: 0x7f00_0000_1000,
        kind: RootEdgeKind::Stack,
        flags: 0,
    });
    h.roots.push(RootRec {
        address: 0x7f00_0000_2000,
        kind: RootEdgeKind::Handle,
        flags: 1,
    });
    h.statics.push(StaticRec {
        object: 0x7f00_0000_0800,
        type_id: 0x100,
        thread_local: false,
        field: "s_head".into(),
    });
    h
}

#[test]
fn a_heap_survives_the_file_and_becomes_a_graph() {
    let (snap, balance) = to_snapshot(heap(), Meta::default()).unwrap();
    assert_eq!((balance.missing_edges, balance.extra_edges), (0, 0));
    let mut bytes = Vec::new();
    dn_gcdump::write_gcdump(&snap, &mut bytes).unwrap();
    let back = dn_gcdump::read_gcdump(&bytes).unwrap();
    assert_eq!(back.node_types, snap.node_types);
    assert_eq!(back.children, snap.children);
    assert_eq!(back.addresses, snap.addresses);
    assert_eq!(back.types, snap.types);

    let r = dn_gcdump::report::report(&back);
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|r| (r.type_name.as_str(), r.count, r.total_bytes))
        .collect();
    assert_eq!(
        rows,
        [("System.Byte[] (Bytes > 1K)", 1, 5000), ("App.Node", 2, 64)]
    );
    assert_eq!(r.rows[1].module.as_deref(), Some("App.dll"));
    let (_, hist) = dn_gcdump::read::read_histogram(&bytes).unwrap();
    assert_eq!(dn_gcdump::report::report_of(&back, &hist).rows, r.rows);

    let g = dn_gcdump::to_heap_graph(&back).unwrap();
    assert_eq!(g.graph.node_count(), 3);
    let addr = |id| g.graph.nodes.address(id);
    let mut roots: Vec<_> = g
        .graph
        .roots
        .iter()
        .map(|r| (addr(r.node), r.kind))
        .collect();
    roots.sort_by_key(|r| r.0);
    assert_eq!(
        roots,
        [
            (0x7f00_0000_0800, RootKind::Static),
            (0x7f00_0000_1000, RootKind::Stack),
            (0x7f00_0000_2000, RootKind::PinnedHandle),
        ]
    );
    // Node 0x1000 references 0x800 and 0x2000 (ids 0 and 2 in address order).
    assert_eq!(g.graph.edges.targets(1), &[0, 2]);
}

#[test]
fn every_cut_of_a_file_is_one_error() {
    let (snap, _) = to_snapshot(heap(), Meta::default()).unwrap();
    let mut bytes = Vec::new();
    dn_gcdump::write_gcdump(&snap, &mut bytes).unwrap();
    for cut in 0..bytes.len() {
        let e = dn_gcdump::read_gcdump(&bytes[..cut])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("offset") || e.contains("not a .gcdump"),
            "{cut}: {e}"
        );
    }
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            let _ = dn_gcdump::read_gcdump(&b);
            let _ = dn_gcdump::read::read_histogram(&b);
        }
    }
}
