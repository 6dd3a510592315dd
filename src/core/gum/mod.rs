//! The global update manager (GUM): every change to the cluster database goes through it.
//!
//! **Locker.** The locker of an epoch is its lowest-numbered member (succession in a fixed node
//! order). It alone assigns sequence numbers and writes the log on the shared disk. A sender
//! proposes an update to the locker (`Propose`, retransmitted until acknowledged; idempotent by
//! `(origin, incarnation, request id)`, and committed in request-id order per origin). The
//! locker groups what is queued into one log block (group commit, several blocks in flight),
//! and once a block is durable, and every block before it, it applies the block's updates and
//! broadcasts them (`Commit`). Members apply commits strictly in sequence order and report what
//! they applied (`Applied`). The locker acknowledges an update to its sender (`Ack`) only once
//! it is durable, applied by the locker, and applied by every member: so an acknowledged update
//! survives any set of crashes (it is in the log) and any locker succession (some live member
//! has it).
//!
//! **Succession.** A node that becomes locker without having been the locker of its previous
//! stabilized epoch takes over (`takeover.rs`): (1) every earlier locker that is not a member
//! is confirmed stopped on disk (fenced or lease expired), so no old log write can still land;
//! (2) every member answers `Sync` once it has no log write in flight, with what it applied;
//! (3) it reads the newest checkpoint and the log after what it knows, and adopts every update
//! up to the highest sequence any member applied: a half-done broadcast is completed. Updates
//! logged beyond that were never replicated and never acknowledged; they are discarded, and the
//! new locker reuses their sequence numbers in blocks it appends after them, which is exactly the
//! original system's duplicate rule (FORMAT.md §10: the later of two entries with one number
//! wins). A former (a node forming a cluster alone) adopts the whole log: a partition in time.
//!
//! **Snapshots and checkpoints.** A member too far behind (a joiner, a restarted node) gets a
//! snapshot of the replicated state in chunks. The locker writes a checkpoint of the replicated
//! state into the older checkpoint slot once half the ring is used, so the ring never overwrites
//! an uncovered block (`checkpoint.rs`).
//!
//! **Files.** `wire.rs` (messages), `replica.rs` (the replicated state: database plus the
//! per-origin request table), `member.rs` (sender and member side), `locker.rs` (sequencing, log
//! writes, acknowledgements, retransmission), `takeover.rs` (succession and recovery),
//! `checkpoint.rs`, `entry.rs` (the log encoding of one update).

pub(crate) mod checkpoint;
mod entry;
mod locker;
mod member;
pub mod replica;
pub(crate) mod takeover;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

pub use entry::entry_digest;
pub use entry::Entry;
use locker::Locker;
use replica::Replica;

/// Largest update body a sender may submit (and GUM carries, logs and replays): one update,
/// with its headers, fits one datagram.
///
/// Not to be confused with `db::UPDATE_BYTES_MAX` (4036): that one is the database's bound on
/// an encoded update, set by the disk (one update alone in a log block). This one is GUM's, set
/// by the network (a `Commit` and its headers in one datagram), and is the binding one: the two
/// once had the same name and different values. The asserts below keep them ordered.
pub const PROPOSAL_BYTES_MAX: usize = 1024;
// Every body GUM accepts is one the database could have encoded: GUM never carries an update
// the database would refuse by size alone.
const _: () = assert!(PROPOSAL_BYTES_MAX <= crate::core::db::UPDATE_BYTES_MAX);
// One body behind its GUM entry header fits an empty log block: the locker's group commit
// always takes at least the first queued update, so no block is ever written empty and the
// queue always drains (`locker_write`).
const _: () = assert!(
    entry::HEADER_BYTES + PROPOSAL_BYTES_MAX <= crate::core::disk_records::LOG_BODY_BYTES_MAX
);
// A `Commit` carrying the largest body fits one message, hence one datagram (`wire.rs`).
const _: () = assert!(
    crate::core::message::MESSAGE_HEADER_BYTES + wire::COMMIT_FIXED_BYTES + PROPOSAL_BYTES_MAX
        <= crate::core::message::MESSAGE_SIZE_MAX
);
// A snapshot chunk too.
const _: () = assert!(
    crate::core::message::MESSAGE_HEADER_BYTES
        + wire::SNAPSHOT_CHUNK_FIXED_BYTES
        + wire::SNAPSHOT_CHUNK_BYTES
        <= crate::core::message::MESSAGE_SIZE_MAX
);
// Bodies and chunks travel with a u16 length (`wire.rs`, `put_bytes`).
const _: () = assert!(PROPOSAL_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(wire::SNAPSHOT_CHUNK_BYTES <= u16::MAX as usize);
/// Updates a sender may have proposed and not yet seen acknowledged.
pub const OUTBOX_MAX: usize = 256;
/// Applied updates every node keeps to retransmit to a lagging member (or as a new locker).
pub(crate) const RETAINED_MAX: usize = 4096;
/// Log blocks a locker may have in flight at once (pipelining).
pub(crate) const LOG_WRITES_IN_FLIGHT_MAX: usize = 4;
/// Disk reads a recovering locker keeps in flight while it reads the log.
pub(crate) const RECOVERY_READS_IN_FLIGHT_MAX: u64 = 8;
/// Commits received ahead of the next expected sequence, kept until the gap is filled.
pub(crate) const PENDING_MAX: usize = 8192;
// The pipeline must admit one block, or the locker would never write the log.
const _: () = assert!(LOG_WRITES_IN_FLIGHT_MAX >= 1);

/// Why a submission was refused at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The body is larger than `PROPOSAL_BYTES_MAX`.
    TooLarge,
    /// `OUTBOX_MAX` updates are already waiting for their acknowledgement.
    OutboxFull,
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::TooLarge => {
                write!(formatter, "update larger than {PROPOSAL_BYTES_MAX} bytes")
            }
            SubmitError::OutboxFull => write!(
                formatter,
                "{OUTBOX_MAX} updates already wait for their acknowledgement"
            ),
        }
    }
}

/// An update this node proposed and has not yet seen acknowledged.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub body: Vec<u8>,
    pub last_sent_tick: Option<u64>,
}

/// A snapshot being received in chunks.
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    pub sequence: u64,
    pub position: u64,
    pub total: u32,
    pub chunks: BTreeMap<u32, Vec<u8>>,
}

/// One committed update as the log and the network carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub sequence: u64,
    /// The log position of the block that holds it.
    pub position: u64,
    pub entry: Entry,
}

/// The checkpoint this node knows to be the newest on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckpointKnown {
    pub generation: u64,
    /// 0 for slot A, 1 for slot B; meaningful only when `generation > 0`.
    pub slot: usize,
    pub sequence: u64,
    pub log_position: u64,
}

/// GUM state of one node.
#[derive(Debug)]
pub(crate) struct Gum {
    replica: Replica,
    /// Log position of the block holding our last applied update (a recovery starts there).
    applied_position: u64,
    /// Our replica is authoritative (formed, received a snapshot, or in sync since); a node
    /// that left the membership forgets its replica, since a new locker may have discarded
    /// updates it applied (never acknowledged) and reused their numbers.
    valid: bool,
    pending: BTreeMap<u64, Committed>,
    retained: VecDeque<Committed>,
    outbox: BTreeMap<u64, Outgoing>,
    next_request_id: u64,
    last_applied_report_tick: u64,
    snapshot_in: Option<IncomingSnapshot>,
    /// The locker of the current stabilized epoch.
    locker_id: u8,
    locker: Option<Locker>,
    /// Lockers of earlier epochs not known to be stopped (they may still write the log).
    unresolved: u64,
    /// The locker of our previous stabilized epoch (0 = none).
    last_locker: u8,
    /// Log and checkpoint writes of ours in flight, whatever our role now (a new locker waits
    /// until none is, or until we are confirmed stopped).
    log_writes_in_flight: usize,
    takeover_attempts: u64,
    /// A locker asked us to `Sync` in this epoch; answered once no log write is in flight.
    sync_asked: Option<(u8, u64)>,
    checkpoint: CheckpointKnown,
}

impl Gum {
    pub fn new() -> Gum {
        Gum {
            replica: Replica::default(),
            applied_position: 0,
            valid: false,
            pending: BTreeMap::new(),
            retained: VecDeque::new(),
            outbox: BTreeMap::new(),
            next_request_id: 1,
            last_applied_report_tick: 0,
            snapshot_in: None,
            locker_id: 0,
            locker: None,
            unresolved: 0,
            last_locker: 0,
            log_writes_in_flight: 0,
            takeover_attempts: 0,
            sync_asked: None,
            checkpoint: CheckpointKnown::default(),
        }
    }

    /// Our replica is authoritative (see the field).
    pub fn valid(&self) -> bool {
        self.valid
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// True while this node is the locker and the log ring of `log_blocks` holds no free block.
    pub fn log_ring_full(&self, log_blocks: u64) -> bool {
        self.locker
            .as_ref()
            .is_some_and(|locker| locker.next_position >= self.checkpoint.log_position + log_blocks)
    }

    /// See `Node::log_blocks_unaccounted`.
    pub fn log_blocks_unaccounted(&self) -> u64 {
        match self.locker.as_ref() {
            Some(locker) if locker.ready() && locker.flights.is_empty() => locker
                .next_position
                .saturating_sub(self.applied_position + 1),
            _ => 0,
        }
    }

    pub fn status(&self) -> GumStatus {
        GumStatus {
            applied: self.replica.sequence,
            valid: self.valid,
            locker: self.locker_id,
            locker_ready: self.locker.as_ref().is_some_and(|locker| locker.ready()),
            outbox: self.outbox.len(),
        }
    }

    /// Remembers an applied update for retransmission.
    pub fn retain(&mut self, committed: Committed) {
        // What is retained is contiguous (`retained_from` indexes by sequence difference).
        debug_assert!(self
            .retained
            .back()
            .is_none_or(|last| last.sequence + 1 == committed.sequence));
        if self.retained.len() == RETAINED_MAX {
            self.retained.pop_front();
        }
        self.retained.push_back(committed);
    }

    /// The retained updates from `sequence` on, if we still have `sequence`.
    pub fn retained_from(&self, sequence: u64) -> Option<impl Iterator<Item = &Committed>> {
        let first = self.retained.front()?.sequence;
        if sequence < first || sequence > self.replica.sequence {
            return None;
        }
        // Retained updates end at the replica's last: the index lands on `sequence` itself.
        debug_assert!(self
            .retained
            .get((sequence - first) as usize)
            .is_some_and(|committed| committed.sequence == sequence));
        Some(self.retained.iter().skip((sequence - first) as usize))
    }
}

impl crate::core::node::Node {
    /// Whether GUM runs unmutated. The assertions of invariants that span nodes or rely on the
    /// succession rules hold only then: a mutation breaks one on purpose, for the simulator's
    /// checker (not a local assertion) to catch.
    pub(crate) fn gum_rules_intact(&self) -> bool {
        self.config().mutation == crate::core::Mutation::None
    }
}

/// GUM-related view for the CLI and the simulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GumStatus {
    /// Sequence of the last applied update.
    pub applied: u64,
    /// Our replica is authoritative (not waiting for a snapshot after a leave or restart).
    pub valid: bool,
    /// The locker of the current epoch (0 = none).
    pub locker: u8,
    /// This node is the locker and accepts updates.
    pub locker_ready: bool,
    /// Updates proposed here and not yet acknowledged.
    pub outbox: usize,
}
