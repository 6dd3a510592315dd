//! The shared-disk records the core reads and writes, from the `disklayout` crate (the format's
//! authority, `disklayout/FORMAT.md`). The core encodes and decodes whole blocks itself (pure
//! functions); a torn or corrupt block fails its CRC in `decode` and is never trusted.

pub use disklayout::{
    decode, encode, FenceAck, FenceRequest, Geometry, Lease, NodeSlot, NodeState, QuorumLease,
    Record, Sealed, Timing, BLOCK_SIZE, QUORUM_LEASE_NAME,
};
