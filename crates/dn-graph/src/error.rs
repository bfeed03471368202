//! Error types.

/// Invalid input while building a graph.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// An object address is not a multiple of 8.
    #[error("object address {address:#x} is not 8-byte aligned")]
    Unaligned {
        /// The offending address.
        address: u64,
    },
    /// Addresses must be pushed in strictly increasing order.
    #[error("object address {address:#x} does not follow the previous address {previous:#x}")]
    NotIncreasing {
        /// The address pushed before.
        previous: u64,
        /// The offending address.
        address: u64,
    },
    /// More objects than [`crate::MAX_NODES`].
    #[error("too many objects: at most {limit} are supported")]
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
    /// A heap range whose end is below its start.
    #[error("heap range [{start:#x}, {end:#x}) is inverted")]
    InvalidRange {
        /// Range start.
        start: u64,
        /// Range end.
        end: u64,
    },
    /// Two heap ranges overlap.
    #[error("heap ranges starting at {first:#x} and {second:#x} overlap")]
    OverlappingRanges {
        /// Start of the lower range.
        first: u64,
        /// Start of the range that begins inside it.
        second: u64,
    },
    /// An object lies outside every heap range.
    #[error("object address {address:#x} is outside every heap range")]
    OutsideRanges {
        /// The offending address.
        address: u64,
    },
    /// The edge table does not have one row per node.
    #[error("edge table has {edges} rows for {nodes} objects")]
    NodeCountMismatch {
        /// Number of nodes.
        nodes: usize,
        /// Number of rows in the edge table.
        edges: usize,
    },
    /// A root record names a node that does not exist.
    #[error("root record {index} names object {node}, but there are only {nodes} objects")]
    RootOutOfRange {
        /// Index of the root record.
        index: usize,
        /// The node it names.
        node: u32,
        /// Number of nodes.
        nodes: usize,
    },
}

/// A long computation stopped because its cancel flag was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Counts work steps and checks a cancel flag every 64K of them.
pub(crate) struct CancelCheck<'a> {
    flag: &'a std::sync::atomic::AtomicBool,
    budget: u32,
}

impl<'a> CancelCheck<'a> {
    const EVERY: u32 = 1 << 16;

    pub(crate) fn new(flag: &'a std::sync::atomic::AtomicBool) -> Self {
        CancelCheck {
            flag,
            budget: Self::EVERY,
        }
    }

    /// Counts one step; every 64K steps, fails if the flag is set.
    #[inline]
    pub(crate) fn step(&mut self) -> Result<(), Cancelled> {
        self.budget -= 1;
        if self.budget == 0 {
            self.budget = Self::EVERY;
            self.now()?;
        }
        Ok(())
    }

    /// Fails if the flag is set.
    pub(crate) fn now(&self) -> Result<(), Cancelled> {
        if self.flag.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}
