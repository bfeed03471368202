//! The snapshot as a `.gcdump` file holds it: a type table and a node list (type, size,
//! children, address), one root node. Pseudo nodes (`[.NET Roots]`, `[static vars]`, ...) have
//! address 0 and size 0; a node referenced but never defined has type 0 (`UNDEFINED`).
//!
//! Columns, not structs: about 20 bytes per node and 4 per reference.

/// One entry of the type table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeEntry {
    pub name: String,
    /// The size of the first node given this type (what `dotnet-gcdump report` prints as
    /// "Object Bytes"); 0 for pseudo types.
    pub size: i32,
    /// The module's path, if known.
    pub module: Option<String>,
}

/// Facts about the collection, kept in the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub process_name: Option<String>,
    pub process_id: i32,
    /// `DateTime.Ticks` (100 ns since 0001-01-01), 0 if unknown.
    pub time_ticks: i64,
    pub creation_tool: Option<String>,
    /// A free text log; our collector records lost events here.
    pub collection_log: Option<String>,
}

/// The node graph of a `.gcdump` file.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub types: Vec<TypeEntry>,
    pub node_types: Vec<u32>,
    pub node_sizes: Vec<u32>,
    /// `children[child_offsets[i]..child_offsets[i + 1]]` are node i's children (node
    /// indexes, duplicates kept).
    pub child_offsets: Vec<u32>,
    pub children: Vec<u32>,
    pub addresses: Vec<u64>,
    pub root: u32,
    pub total_size: i64,
    pub is_64bit: bool,
    pub meta: Meta,
}

/// Type index 0: nodes that were referenced but never defined.
pub const UNDEFINED_TYPE: u32 = 0;

impl Snapshot {
    pub fn node_count(&self) -> usize {
        self.node_types.len()
    }

    pub fn children_of(&self, node: u32) -> &[u32] {
        let i = node as usize;
        &self.children[self.child_offsets[i] as usize..self.child_offsets[i + 1] as usize]
    }

    /// True for nodes that are real objects (not pseudo, not undefined).
    pub fn is_object(&self, node: u32) -> bool {
        let i = node as usize;
        self.node_types[i] != UNDEFINED_TYPE && self.addresses[i] != 0
    }

    /// An empty snapshot whose type 0 is `UNDEFINED`.
    pub fn with_undefined_type() -> Snapshot {
        Snapshot {
            types: vec![TypeEntry {
                name: "UNDEFINED".into(),
                size: 0,
                module: None,
            }],
            child_offsets: vec![0],
            is_64bit: true,
            ..Snapshot::default()
        }
    }

    /// Heap bytes held by the columns.
    pub fn memory_bytes(&self) -> usize {
        self.node_types.capacity() * 4
            + self.node_sizes.capacity() * 4
            + self.child_offsets.capacity() * 4
            + self.children.capacity() * 4
            + self.addresses.capacity() * 8
    }
}

/// The signed varint of node records: big-endian groups of 7 bits, high bit = more follow,
/// the first group sign-extended.
pub mod cint {
    /// Bytes `v` takes.
    pub fn len(v: i32) -> usize {
        match v {
            -64..=63 => 1,
            -8192..=8191 => 2,
            -1_048_576..=1_048_575 => 3,
            -134_217_728..=134_217_727 => 4,
            _ => 5,
        }
    }

    pub fn write(out: &mut Vec<u8>, v: i32) {
        let n = len(v);
        for k in (0..n).rev() {
            let group = ((v >> (7 * k)) & 0x7F) as u8;
            out.push(if k > 0 { group | 0x80 } else { group });
        }
    }

    /// Reads one value at `buf[*at..]`; `None` if it runs past the end.
    pub fn read(buf: &[u8], at: &mut usize) -> Option<i32> {
        let first = *buf.get(*at)?;
        *at += 1;
        // Sign-extend the 7 data bits of the first byte.
        let mut v = (((first & 0x7F) as i8) << 1 >> 1) as i32;
        let mut b = first;
        let mut n = 1;
        while b & 0x80 != 0 {
            if n == 5 {
                return None;
            }
            b = *buf.get(*at)?;
            *at += 1;
            n += 1;
            v = v.wrapping_shl(7).wrapping_add(i32::from(b & 0x7F));
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::cint;

    #[test]
    fn cint_matches_the_documented_encodings() {
        for (v, bytes) in [
            (0, vec![0x00]),
            (-1, vec![0x7F]),
            (64, vec![0x80, 0x40]),
            (200, vec![0x81, 0x48]),
        ] {
            let mut out = Vec::new();
            cint::write(&mut out, v);
            assert_eq!(out, bytes, "{v}");
        }
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            -8192,
            1 << 20,
            -(1 << 27),
            i32::MAX,
            i32::MIN,
        ] {
            let mut out = Vec::new();
            cint::write(&mut out, v);
            let mut at = 0;
            assert_eq!(cint::read(&out, &mut at), Some(v), "{v}");
            assert_eq!(at, out.len());
        }
    }
}
