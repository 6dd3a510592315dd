//! The shared-disk records the core reads and writes, from the `disklayout` crate (the format's
//! authority, `disklayout/FORMAT.md`). The core encodes and decodes whole blocks itself (pure
//! functions); a torn or corrupt block fails its CRC in `decode` and is never trusted.

pub use disklayout::{
    decode, encode, payload_crc32, Acknowledged, CheckpointHeader, DuplicateRule, FenceAck,
    FenceRequest, Geometry, Lease, LogBlock, LogReplayer, LogUpdate, NodeSlot, NodeState,
    QuorumLease, Record, ReplayStep, ResourceLease, Sealed, Timing, BLOCK_SIZE, COUNTER_MAX,
    LEASE_NAME_BYTES_MAX, LOG_BODY_BYTES_MAX, QUORUM_LEASE_NAME,
};

/// A block whose record failed its check (torn by a crash mid-write, or corrupt): never trusted,
/// and never taken for an empty block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unreadable;

/// A lease record as a read found it: `Ok(None)` for an empty block.
pub(crate) type LeaseRead = Result<Option<Sealed<Lease>>, Unreadable>;
