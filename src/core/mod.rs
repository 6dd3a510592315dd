//! THE PROTOCOL: one deterministic, sans-IO state machine per node.
//!
//! `Node::step(Input)` then drain `Node::poll_output()` until `None` (quinn/foca style). No
//! sockets, files, threads, clocks or OS randomness in here: time arrives as `Input::Tick`
//! readings of the host's monotonic clock (compared in ticks of `TICK_MS`), randomness comes
//! from a seeded `Prng`.
//!
//! **Disk I/O** is requested as whole blocks at byte offsets (`Output::DiskRead/DiskWrite` with
//! an op id, answered by `Input::DiskDone`). The core encodes and decodes the records itself
//! with the `disklayout` codecs (pure functions), so a torn block fails its CRC inside the core
//! and is never trusted. A `DiskWrite` completes only once durable (the driver writes through
//! O_DIRECT/O_DSYNC), so there is no separate flush. Every operation completes or fails within
//! `DISK_IO_LATENCY_MAX_MS` (media assumption, see `disklayout/ARBITRATION.md`).
//!
//! **Files.**
//! - `node.rs`: the `Node` struct (the orchestrator: context, and one owned part per concern,
//!   each a struct whose fields are private to its file), `step`, the tick schedule;
//!   `input.rs`: untrusted input (decode, sender and incarnation checks, dispatch) and the
//!   local invariant assertions.
//! - `membership.rs` + `join.rs`: heartbeats on every network, silence on all networks = lost;
//!   searching, join requests, leaving. `forming.rs` (`Forming`): forming with quorum.
//!   `shutdown.rs` (`Shutdown`): leaving for good.
//! - `regroup.rs` (activate, closing; `Regroups`), `survival.rs` (survival rule, pruning to a
//!   fully connected set), `regroup/install.rs` (pruning result, cleanup 1, cleanup 2,
//!   stabilize).
//! - `quorum.rs` (challenge/defense state machine, pure; tests in `quorum/tests.rs`) +
//!   `arbitration.rs` (its disk I/O); `lease.rs` (own membership lease, mailbox, fencing
//!   answered, the dead-man); `observe.rs` (`Observer`: peers' leases and fence requests, when
//!   a lost node counts as stopped).
//! - `resource_lease.rs` (`ResourceLeases`, + `binding.rs`, `machine.rs`): the lease of every
//!   `filesystem` resource of a group held here, on the shared disk; the driver mounts only
//!   while it is held.
//! - `groups.rs` (the placement rule, group table per epoch), `placement.rs` (`Placement`: the
//!   table, groups held here, the catalog, the start/stop decision), `message.rs` (wire
//!   encoding), `timeout.rs` (every interval in ticks, from a timing validated with the lease
//!   arithmetic in `disklayout/src/timing.rs`), `disk_records.rs`.
//! - `gum/`: the global update manager (locker, log on the shared disk, succession,
//!   checkpoints, snapshots); `db/`: the cluster database it replicates.
//!
//! **Messages** (`message.rs`): `Heartbeat`, `JoinRequest`, `RegroupStatus`, `Install`,
//! `InstallAck`, `Stabilize`, `Halt`, `Leaving`, and `Gum` (the global update manager's own,
//! `gum/wire.rs`), each framed with sender id and incarnation.
//!
//! **Invariants.** Asserted in the core (`input.rs`, per step): a node holds a group only while
//! stabilized, a member, lease-valid, and the group's owner in its table; a stabilized
//! membership includes the node; stabilized epochs only grow while a member. Checked across
//! nodes by `src/sim/checker.rs` after every simulated step: one membership per epoch, full
//! connectivity of decided memberships, one quorum owner, one holder per group, convergence.

mod arbitration;
pub mod catalog;
pub mod db;
pub mod disk_records;
mod forming;
mod groups;
pub mod gum;
mod input;
mod join;
mod lease;
mod membership;
mod membership_state;
pub mod message;
mod node;
mod observe;
mod placement;
mod quorum;
mod regroup;
mod resource_lease;
mod shutdown;
mod survival;
pub mod timeout;

pub use node::{Node, QuorumReliance};
pub use resource_lease::LEASED_RESOURCE_KIND;

use disk_records::{Geometry, Timing, BLOCK_SIZE};

/// Largest number of nodes in a cluster (one bit each in a `u64`).
pub const NODES_MAX: usize = 64;
/// Largest number of networks per node.
pub const NETWORKS_MAX: u8 = 4;

/// A node's static configuration (from the superblock's node table and timing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub node_id: u8,
    pub cluster_id: u64,
    /// Incarnation of this run: strictly greater than any earlier run of this node.
    pub incarnation: u64,
    /// Number of networks of every configured node, indexed by node id - 1; 0 = not configured.
    pub networks: Vec<u8>,
    pub timing: Timing,
    pub geometry: Geometry,
    /// Deliberately broken rules, for checking that the simulator's checkers have teeth.
    pub mutation: Mutation,
    /// Report the replicated state's digest after every applied update (`Event::GumApplied`),
    /// for the simulator's checker. Costs a pass over the database per update: off in
    /// production.
    pub digest_every_update: bool,
    /// Test groups that exist without a catalog entry: slot = home node id, preferred there
    /// (`--test-group` in the daemon; every configured node in the simulator).
    pub builtin_groups: u64,
}

/// A deliberately broken rule (simulator only); `None` in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    None,
    /// A minority partition survives.
    NoMajorityRule,
    /// Survivors pull groups without waiting for the lease expiry or a fence acknowledgement.
    NoLeaseWait,
    /// Regroup keeps nodes that are not fully connected.
    NoPrune,
    /// Messages of an older epoch or round are accepted.
    StaleEpoch,
    /// A new locker does not complete a half-done update: it continues from its own replica.
    GumNoReplay,
    /// The locker applies, broadcasts and acknowledges a batch before its log write is durable.
    AckBeforeLog,
    /// Lockers are not handed over: a former locker keeps sequencing and writing the log, and a
    /// new one starts without waiting for the previous one to be confirmed stopped.
    NoLockerSuccession,
    /// Log replay keeps the earlier of two entries with one sequence number.
    ReplayKeepsDuplicate,
    /// A resource lease challenger claims without waiting the defence window.
    NoResourceLeaseDefence,
    /// A survivor takes an acknowledgement of any request numbered at least as its own for an
    /// answer to its own, whoever asked (the rule before layout version 2).
    FenceAckAnyRequester,
    /// A forming node waits for its epoch to be durable whether or not it still owns the
    /// quorum, then completes under any ownership, even another than the one it read the disk
    /// under (the rule before seed 221631 --nodes 2).
    FormAcrossOwnerships,
    /// A recovering locker leaves its applied position before the blocks it discarded.
    RecoveryKeepsAppliedPosition,
    /// A membership that exactly half of a view formed by the quorum stabilizes without its
    /// epoch confirmed in the quorum record.
    HalfWithoutQuorumEpoch,
    /// A membership that lives by our quorum ownership stays on once the ownership is lost.
    MembershipOutlivesQuorum,
    /// A group given back to a node still stopping it counts as held by that node alone (the
    /// rule before seed 254398 --nodes 2).
    HandBackHeldAlone,
    /// A member acknowledges an install whatever views it was judged against (the rule before
    /// seed 775).
    InstallIgnoresJudgedViews,
    /// An epoch only acknowledged, never seen stabilize, counts as a view of ours against the
    /// quorum record (the rule before seeds 49080282, 49136876, 49179559).
    AcknowledgedEpochIsAView,
    /// A slot showing a newer incarnation confirms the observed peer stopped (the rule before
    /// seed 30124784).
    NewerIncarnationConfirms,
    /// A joiner's status that arrives after the sender joined our membership starts a round as
    /// if it were current (the rule before seed 13363 --nodes 2).
    LateJoinerStatusCounts,
    /// A group starts whatever its dead-man deadline, even less than the fence timeout ahead
    /// (the rule before ARBITRATION.md rule 5).
    StartNearDeadline,
    /// The host pings its monitor (which feeds the watchdog) every quarter of the fence
    /// timeout whatever the node holds, not only when the core re-arms the dead-man.
    WatchdogFeedPastLease,
    /// The simulator's watchdogs run three lease expiries, far past the bound
    /// `Timing::watchdog_timeout_max_ms` (ARBITRATION.md rule 5).
    WatchdogTimeoutTooLong,
}

impl Mutation {
    /// The mutation named on the command line.
    pub fn from_name(name: &str) -> Option<Mutation> {
        match name {
            "none" => Some(Mutation::None),
            "no-majority-rule" => Some(Mutation::NoMajorityRule),
            "no-lease-wait" => Some(Mutation::NoLeaseWait),
            "no-prune" => Some(Mutation::NoPrune),
            "stale-epoch" => Some(Mutation::StaleEpoch),
            "gum-no-replay" => Some(Mutation::GumNoReplay),
            "ack-before-log" => Some(Mutation::AckBeforeLog),
            "no-locker-succession" => Some(Mutation::NoLockerSuccession),
            "replay-keeps-duplicate" => Some(Mutation::ReplayKeepsDuplicate),
            "no-resource-lease-defence" => Some(Mutation::NoResourceLeaseDefence),
            "fence-ack-any-requester" => Some(Mutation::FenceAckAnyRequester),
            "form-across-ownerships" => Some(Mutation::FormAcrossOwnerships),
            "recovery-keeps-applied-position" => Some(Mutation::RecoveryKeepsAppliedPosition),
            "half-without-quorum-epoch" => Some(Mutation::HalfWithoutQuorumEpoch),
            "membership-outlives-quorum" => Some(Mutation::MembershipOutlivesQuorum),
            "hand-back-held-alone" => Some(Mutation::HandBackHeldAlone),
            "install-ignores-judged-views" => Some(Mutation::InstallIgnoresJudgedViews),
            "acknowledged-epoch-is-a-view" => Some(Mutation::AcknowledgedEpochIsAView),
            "newer-incarnation-confirms" => Some(Mutation::NewerIncarnationConfirms),
            "late-joiner-status-counts" => Some(Mutation::LateJoinerStatusCounts),
            "start-near-deadline" => Some(Mutation::StartNearDeadline),
            "watchdog-feed-past-lease" => Some(Mutation::WatchdogFeedPastLease),
            "watchdog-timeout-too-long" => Some(Mutation::WatchdogTimeoutTooLong),
            _ => None,
        }
    }
}

/// Something that happened to the node. Inputs borrow; nothing is retained.
#[derive(Debug)]
pub enum Input<'a> {
    /// The host's monotonic clock (ms). The driver steps a Tick first after every wakeup.
    Tick { now_ms: u64 },
    /// A datagram received on `network` (index 0..). Not yet trusted.
    Message { network: u8, payload: &'a [u8] },
    /// A disk operation finished: the block read, or the error.
    DiskDone {
        op: u64,
        result: Result<&'a [u8; BLOCK_SIZE], DiskError>,
    },
    /// An administrator's command.
    Admin(AdminCommand),
    /// Every resource of `group` is confirmed offline after `Output::Resource { online: false }`
    /// (the driver's monitor saw the processes gone). Until then the node counts as holding it.
    GroupStopped { group: u8 },
    /// This node gave up on `group` (its resources failed beyond their restart threshold, or
    /// cannot start here): stop it, refuse it for `refuse_ms`, and let placement move it.
    GroupFailed { group: u8, refuse_ms: u64 },
    /// The wall clock: unix seconds and the local hour of day (0..=23), for failback windows
    /// and failover thresholds; the driver sends it now and then. The protocol never compares
    /// wall clocks between nodes: only the coordinator of a regroup reads its own.
    WallClock { unix_s: u64, local_hour: u8 },
    /// The driver heard configured node `node` alive but not as one of this cluster: its
    /// frames carry another cluster id under our key (a disk formatted apart, the classic
    /// wrong `--disk`), or keep failing their tag from its table address (another key). Two
    /// such nodes forming alone would each own "the" quorum record of its own disk: while
    /// conflicts keep coming, and for one form wait after the last, this node does not form.
    PeerConflict { node: u8 },
}

/// The disk operation failed; for a write, nothing may be assumed written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskError;

/// Commands from `wolfpack ctl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// Propose an update of the cluster database (`db::Update` encoded); the outcome arrives
    /// as `Event::GumAcknowledged`. Use `Node::submit` to learn the request id.
    Submit { update: Vec<u8> },
    /// Leave the cluster for good (shutdown): stop every group, write a non-member slot, tell
    /// the members, never rejoin in this incarnation. `Status::left_cleanly` says when done.
    Leave,
}

/// What the node asks its driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `payload` to node `to` on `network` (best effort, may be lost).
    Send {
        to: u8,
        network: u8,
        payload: Vec<u8>,
    },
    /// Read the block at `offset_bytes`; answer with `Input::DiskDone { op }`.
    DiskRead { op: u64, offset_bytes: u64 },
    /// Write the block durably; answer with `Input::DiskDone { op }` (the bytes echo back).
    DiskWrite {
        op: u64,
        offset_bytes: u64,
        block: Box<[u8; BLOCK_SIZE]>,
    },
    /// Bring group `group` (its slot) online or offline, now. An offline is answered by
    /// `Input::GroupStopped` once every resource is confirmed offline.
    Resource { group: u8, online: bool },
    /// Tell the resource monitor: if not re-armed, stop every resource at this local time (no
    /// later than the end of the membership lease and of every resource lease held). Sent
    /// only when that time lies at least `fence_timeout_ms` ahead, so a driver whose dead-man
    /// can only restart that timeout (the daemon pings its monitor) never arms it past a
    /// lease; the core holds no group once the time passes.
    ArmDeadman { stop_resources_at_ms: u64 },
    /// The shared-disk lease of `filesystem` resource `resource` (its catalog name).
    ///
    /// The driver contract: `held: true` means this node holds the lease, and the driver may
    /// now start (mount) the resource; until then it must not, even though its group is
    /// online (`Resource { online: true }` comes first; resources depending on it wait for it
    /// as for any dependency). `held: false` means the lease is lost or given back, and the
    /// driver must stop (unmount) the resource now and not start it again before the next
    /// `held: true`. A lease is given back only after its group's stop is confirmed
    /// (`Input::GroupStopped`), so then the resource is already stopped; a lost lease also
    /// fails the group here (`Event::GroupRefused`). If the driver itself hangs, the dead-man
    /// (`ArmDeadman`, bounded by every held lease) stops the resource in time.
    ResourceLease { resource: String, held: bool },
    /// A state change worth logging.
    Event(Event),
}

/// State changes, for logs and the simulator's checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node stabilized a membership.
    Stabilized { epoch: u64, members: u64 },
    /// This coordinator decided a membership at round `round` (pruning done).
    Decided {
        round: u64,
        epoch: u64,
        members: u64,
        /// The previous membership the survival was judged against.
        basis: u64,
        round_started_ms: u64,
    },
    /// A member went silent on every network.
    PeerSilent { peer: u8 },
    /// This node would form a cluster alone but holds back: `nodes` were heard alive in
    /// another cluster (`Input::PeerConflict`) within the last form wait. Fires once per set.
    FormHeldByConflict { nodes: u64 },
    /// A silent peer still beats on disk: partitioned, not dead.
    PeerPartitioned { peer: u8 },
    /// A peer is confirmed stopped (lease expired on disk, fence acknowledged, not a member):
    /// every run of it up to `incarnation`, the newest this node knows of, holds nothing and
    /// never will again; a newer run is observed afresh (ARBITRATION.md §2, observer).
    PeerStopped {
        peer: u8,
        incarnation: u64,
        how: &'static str,
    },
    /// This node left the membership (partition lost, fenced, lease lost, excluded).
    Left { reason: &'static str },
    /// Quorum lease won or lost.
    QuorumOwner { owned: bool },
    /// GUM applied the update at `sequence` here (`digest`: which update; `state_digest`: the
    /// replicated state after it, 0 unless `Config::digest_every_update`). Not logged by the
    /// daemon: one per update.
    GumApplied {
        sequence: u64,
        digest: u64,
        state_digest: u64,
        rejected: bool,
    },
    /// A proposal of this node is durable and applied by every member.
    GumAcknowledged {
        request_id: u64,
        sequence: u64,
        rejected: bool,
    },
    /// The replica was replaced by a snapshot or a checkpoint at `sequence`.
    GumSnapshotInstalled { sequence: u64, state_digest: u64 },
    /// This node left the membership and forgot its replica (it gets a snapshot on rejoin).
    GumReset,
    /// This node became the locker of `epoch`; `ready` once its takeover finished.
    GumLocker { epoch: u64, ready: bool },
    /// A recovery step worth a log line.
    GumRecovery {
        what: &'static str,
        detail: &'static str,
        value: u64,
    },
    /// A checkpoint landed: the log before `log_position` is truncated.
    GumCheckpoint { sequence: u64, log_position: u64 },
    /// Something needs an operator.
    GumTrouble { what: &'static str },
    /// The catalog (groups and resources) changed in the replica: `Node::catalog` is new.
    /// Comes before any `Output::Resource` for a group it adds.
    CatalogChanged,
    /// This node asks for a regroup because the placement rule now puts a group elsewhere.
    PlacementChanged { group: u8, owner: u8 },
    /// This node refuses `group` after it failed here (`Input::GroupFailed`).
    GroupRefused { group: u8 },
    /// The lease of `resource` cannot be had here, so it is never started (until its group
    /// comes online here again): no resource lease block is free, or its name does not fit.
    ResourceLeaseUnavailable {
        resource: String,
        reason: &'static str,
    },
}

/// Counters of dropped input (bad input is counted, never trusted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    pub undecodable: u64,
    pub unknown_node: u64,
    pub stale: u64,
    pub unexpected: u64,
    pub disk_records_invalid: u64,
}

/// Why a message or disk record was dropped: one counter of `DropCounters` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    Undecodable,
    UnknownNode,
    Stale,
    Unexpected,
    DiskRecordInvalid,
}

impl DropCounters {
    pub(crate) fn count(&mut self, why: Dropped) {
        let counter = match why {
            Dropped::Undecodable => &mut self.undecodable,
            Dropped::UnknownNode => &mut self.unknown_node,
            Dropped::Stale => &mut self.stale,
            Dropped::Unexpected => &mut self.unexpected,
            Dropped::DiskRecordInvalid => &mut self.disk_records_invalid,
        };
        *counter += 1;
    }
}

/// A read-only view for the CLI and the simulator's checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub node_id: u8,
    pub stabilized: bool,
    pub epoch: u64,
    pub members: u64,
    pub quorum_owner: bool,
    /// Local clock time until which the quorum lease is held (0 = not held).
    pub quorum_valid_until_ms: u64,
    /// Local clock time until which the membership lease is held (0 = never held).
    pub lease_valid_until_ms: u64,
    /// In a regroup round (or joining one).
    pub regrouping: bool,
    pub online_groups: u64,
    /// Groups asked offline whose stop is not yet confirmed (`Input::GroupStopped`).
    pub stopping_groups: u64,
    /// Groups refused here after they failed (`Input::GroupFailed`).
    pub refusing_groups: u64,
    /// Per slot - 1: the owner in this epoch's table (0 = none).
    pub owners: Vec<u8>,
    /// Sequence of the last update applied to the cluster database here.
    pub database_version: u64,
    pub gum: gum::GumStatus,
    /// After `AdminCommand::Leave`: every group stopped and the non-member slot durable, so
    /// the survivors can confirm this node stopped at once. The driver may exit then.
    pub left_cleanly: bool,
    pub dropped: DropCounters,
}

/// The bit of node `id` in a membership bitmap.
pub fn bit(id: u8) -> u64 {
    assert!(id >= 1);
    assert!(usize::from(id) <= NODES_MAX);
    1u64 << (id - 1)
}

/// The node ids in a bitmap, ascending. Walks the set bits only: membership bitmaps are
/// iterated on every tick, and most of their 64 bits are clear.
pub fn ids(bitmap: u64) -> impl Iterator<Item = u8> {
    const _: () = assert!(NODES_MAX == u64::BITS as usize, "every bit is a node id");
    let mut rest = bitmap;
    std::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        let id = rest.trailing_zeros() as u8 + 1;
        rest &= rest - 1;
        Some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lists_the_set_bits_ascending() {
        assert_eq!(ids(0).count(), 0);
        assert_eq!(ids(0b1010_0001).collect::<Vec<_>>(), vec![1, 6, 8]);
        assert_eq!(
            ids(u64::MAX).collect::<Vec<_>>(),
            (1..=64).collect::<Vec<u8>>()
        );
        assert_eq!(ids(1 << 63).collect::<Vec<_>>(), vec![64]);
    }
}
