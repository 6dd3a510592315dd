//! The shared-disk records the core reads and writes, from the `disklayout` crate (the format's
//! authority, `disklayout/FORMAT.md`). The core encodes and decodes whole blocks itself (pure
//! functions); a torn or corrupt block fails its CRC in `decode` and is never trusted.

pub use disklayout::{
    decode, encode, payload_crc32, CheckpointHeader, DuplicateRule, FenceAck, FenceRequest,
    Geometry, Lease, LogBlock, LogReplayer, LogUpdate, NodeSlot, NodeState, QuorumLease, Record,
    ReplayStep, Sealed, Timing, BLOCK_SIZE, LOG_BODY_BYTES_MAX, QUORUM_LEASE_NAME,
};
