//! Per-object columns: address, type index, size (12 bytes per object), and the address index.

use crate::addresses::Addresses;
use crate::index::{normalize_ranges, AddressIndex};
use crate::{GraphError, NodeId, MAX_NODES};

/// Sizes at or above this are kept in the side table.
const BIG: u32 = u32::MAX;

/// Collects objects in increasing address order; ids are dense, in push order.
#[derive(Clone, Debug, Default)]
pub struct NodesBuilder {
    addresses: Addresses,
    types: Vec<u32>,
    sizes: Vec<u32>,
    big_sizes: Vec<(NodeId, u64)>,
}

impl NodesBuilder {
    /// A builder with room for `n` objects.
    pub fn with_capacity(n: usize) -> Self {
        NodesBuilder {
            addresses: Addresses::with_capacity(n),
            types: Vec::with_capacity(n),
            sizes: Vec::with_capacity(n),
            big_sizes: Vec::new(),
        }
    }

    /// Adds an object and returns its id. The address must be 8-aligned and strictly greater
    /// than the previous one.
    pub fn push(&mut self, address: u64, type_index: u32, size: u64) -> Result<NodeId, GraphError> {
        if address % 8 != 0 {
            return Err(GraphError::Unaligned { address });
        }
        if let Some(previous) = self.addresses.last() {
            if address <= previous {
                return Err(GraphError::NotIncreasing { previous, address });
            }
        }
        let id = self.addresses.len();
        if id >= MAX_NODES {
            return Err(GraphError::TooManyNodes { limit: MAX_NODES });
        }
        self.addresses.push(address);
        self.types.push(type_index);
        if size >= u64::from(BIG) {
            self.sizes.push(BIG);
            self.big_sizes.push((id as NodeId, size));
        } else {
            self.sizes.push(size as u32);
        }
        Ok(id as NodeId)
    }

    /// Number of objects pushed.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// True if nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.addresses.len() == 0
    }

    /// Builds the address index. `ranges` are the heap's `[start, end)` regions, in any order,
    /// not overlapping (empty ones are ignored); every pushed address must lie in one of them.
    pub fn finish(self, ranges: &[(u64, u64)]) -> Result<Nodes, GraphError> {
        let ranges = normalize_ranges(ranges)?;
        let index = AddressIndex::build(&self.addresses, &ranges)?;
        let mut nodes = Nodes {
            addresses: self.addresses,
            types: self.types,
            sizes: self.sizes,
            big_sizes: self.big_sizes,
            index,
        };
        nodes.addresses.shrink_to_fit();
        nodes.types.shrink_to_fit();
        nodes.sizes.shrink_to_fit();
        Ok(nodes)
    }
}

/// The objects of a heap: address, type index and size per dense id, and an address index.
/// Accessors panic on an id out of range, like slice indexing.
#[derive(Clone, Debug, Default)]
pub struct Nodes {
    addresses: Addresses,
    types: Vec<u32>,
    sizes: Vec<u32>,
    big_sizes: Vec<(NodeId, u64)>,
    index: AddressIndex,
}

impl Nodes {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// True if there are no objects.
    pub fn is_empty(&self) -> bool {
        self.addresses.len() == 0
    }

    /// Start address of `id`.
    #[inline]
    pub fn address(&self, id: NodeId) -> u64 {
        self.addresses.get(id)
    }

    /// Type index of `id`, as given by the caller.
    #[inline]
    pub fn type_index(&self, id: NodeId) -> u32 {
        self.types[id as usize]
    }

    /// Size in bytes of `id`.
    #[inline]
    pub fn size(&self, id: NodeId) -> u64 {
        let s = self.sizes[id as usize];
        if s != BIG {
            return u64::from(s);
        }
        match self.big_sizes.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(k) => self.big_sizes[k].1,
            Err(_) => u64::from(s),
        }
    }

    /// The object starting exactly at `address` (no interior pointers).
    #[inline]
    pub fn id_of(&self, address: u64) -> Option<NodeId> {
        self.index.exact(&self.addresses, address)
    }

    /// The object whose `[address, address + size)` contains `address` (an object of size 0
    /// contains its own start address).
    pub fn containing(&self, address: u64) -> Option<NodeId> {
        let id = self.index.floor(&self.addresses, address)?;
        let off = address - self.address(id);
        (off < self.size(id).max(1)).then_some(id)
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.addresses.memory_bytes()
            + self.types.capacity() * 4
            + self.sizes.capacity() * 4
            + self.big_sizes.capacity() * 16
            + self.index.memory_bytes()
    }
}
