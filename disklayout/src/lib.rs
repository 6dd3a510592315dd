//! The wolfpack shared-disk format: record codecs and geometry, and nothing that does I/O.
//!
//! `FORMAT.md` beside this crate is the specification; every type here follows one of its
//! sections. Callers read and write whole blocks of [`BLOCK_SIZE`] bytes and use [`encode`] and
//! [`decode`] to turn them into records.
//!
//! **Invariants.** Decoding any byte string returns a value or a [`DecodeError`], never panics.
//! A decoded record passed its CRC, its reserved bytes and padding were zero, and every field is
//! in range. Encoding then decoding gives the same record back.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checkpoint;
mod envelope;
mod error;
mod fence;
mod fields;
mod geometry;
mod image;
pub mod inspect;
mod lease;
mod log;
mod node_entry;
mod node_slot;
mod superblock;
pub mod timing;

pub use checkpoint::{payload_crc32, CheckpointHeader, CHECKPOINT_PAYLOAD_BYTES_MAX};
pub use envelope::{decode, encode, Header, Record, Sealed};
pub use error::{DecodeError, EncodeError, GeometryError};
pub use fence::{Acknowledged, FenceAck, FenceRequest};
pub use geometry::{Geometry, Region, RegionKind};
pub use image::format_blocks;
pub use lease::{Lease, QuorumLease, ResourceLease, LEASE_NAME_BYTES_MAX, QUORUM_LEASE_NAME};
pub use log::{
    replay_log, DuplicateRule, LogBlock, LogEnd, LogReplay, LogReplayer, LogUpdate, ReplayStep,
    LOG_BODY_BYTES_MAX,
};
pub use node_entry::{NodeEntry, ADDRESSES_MAX, NODE_NAME_BYTES_MAX};
pub use node_slot::{NodeSlot, NodeState};
pub use superblock::{Superblock, WatchdogPolicy, CLUSTER_NAME_BYTES_MAX};
pub use timing::Timing;

/// Every read and write is a whole number of blocks of this size at an aligned offset.
pub const BLOCK_SIZE: usize = 4096;
/// The bytes of the record header that starts every non-empty block.
pub const HEADER_SIZE: usize = 32;
/// The most bytes a record body can have.
pub const BODY_BYTES_MAX: usize = BLOCK_SIZE - HEADER_SIZE;
/// Control records must fit in one 512-byte sector to be written atomically (FORMAT.md §1).
pub const ATOMIC_SECTOR_SIZE: usize = 512;
/// The layout version this crate reads and writes.
pub const LAYOUT_VERSION: u16 = 3;
/// Node ids run from 1 to this.
pub const NODE_ID_MAX: u8 = 64;
/// The largest epoch, sequence, incarnation, round or log position that a disk record or a
/// datagram may carry (FORMAT.md §3). Counting a million a second it lasts 146,000 years, and
/// it leaves room above it: a decoded counter plus one, or plus a window, never overflows, so
/// no value a peer or the disk can hold turns arithmetic into an abort.
pub const COUNTER_MAX: u64 = (1 << 62) - 1;

/// Checks that `value` is a counter a record or datagram may carry (at most `COUNTER_MAX`).
pub fn is_counter(value: u64) -> bool {
    value <= COUNTER_MAX
}
/// One block of the disk.
pub type Block = [u8; BLOCK_SIZE];

/// Checks that `node_id` names a node (1..=64).
pub fn is_node_id(node_id: u8) -> bool {
    (1..=NODE_ID_MAX).contains(&node_id)
}
