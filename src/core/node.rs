//! `Node`: the one state machine the driver steps. Only `step` branches on the input kind.
//! `Node` holds the context every part reads (configuration, timeouts, clock, outputs, drop
//! counters: private here, reached through narrow methods) and one owned part per concern
//! (`Peers`, `Membership`, `Forming`, `Round` and `Regroups`, `Placement`, `Observer`,
//! `Shutdown`, `ResourceLeases`, `Deadman`, the quorum machine `Quorum`, the own lease
//! `OwnLease`, `Gum`), whose fields are private to their files: only the methods there change
//! them.

use std::collections::{BTreeMap, VecDeque};

use super::disk_records::{self, Sealed, BLOCK_SIZE};
use super::gum::Gum;
use super::lease::OwnLease;
use super::membership::Peers;
use super::message::{Body, Message};
use super::quorum::{Identity, Quorum};
use super::regroup::Round;
use super::timeout::{Timeouts, TICK_MS};
use super::{bit, ids, AdminCommand, Config, DropCounters, Event, Input, Output, Status};
use crate::prng::Prng;

/// Bound on queued outputs between two drains; exceeding it is a design bug.
pub(crate) const OUTPUTS_MAX: usize = 64 * 64 * 8;

/// Whether the node belongs to a cluster.
/// How a node's side lives by its quorum ownership (`Node::lives_by_quorum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumReliance {
    /// It forms a cluster: a window of a few ticks.
    Forming,
    /// Its membership relies on the ownership: it may last long.
    Membership,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// No cluster: asks to join; forms after `form_wait_ticks` of hearing no member.
    Searching {
        since_tick: u64,
        form_wait_ticks: u64,
    },
    /// Arbitrating for the quorum to form a cluster.
    Forming,
    /// In a membership (stabilized, or regrouping from one).
    Member,
}

/// Why a disk operation was issued (op id → purpose).
#[derive(Clone, Debug)]
pub(crate) enum Purpose {
    OwnSlotWrite {
        issue_tick: u64,
        member: bool,
        epoch: u64,
    },
    OwnMailboxRead {
        issue_tick: u64,
    },
    OwnSlotRead,
    StartQuorumRead,
    StartSlotRead {
        peer: u8,
    },
    OwnAckRead,
    OwnAckWrite {
        acknowledged: super::disk_records::Acknowledged,
    },
    QuorumRead {
        issue_tick: u64,
    },
    QuorumWrite {
        issue_tick: u64,
    },
    PeerSlotRead {
        peer: u8,
        issue_tick: u64,
    },
    FenceRequestWrite {
        peer: u8,
        request: u64,
    },
    PeerAckRead {
        peer: u8,
    },
    FormSlotRead {
        peer: u8,
        second: bool,
        attempt: u64,
    },
    GumLogWrite {
        position: u64,
    },
    GumRecoveryRead {
        attempt: u64,
        what: super::gum::takeover::RecoveryRead,
    },
    GumCheckpointWrite {
        what: super::gum::checkpoint::CheckpointWrite,
    },
    ResourceLeaseRead {
        acquisition: u64,
        block: u32,
    },
    ResourceLeaseWrite {
        acquisition: u64,
        issue_tick: u64,
    },
}

/// One node of the cluster. See the module docs of `core`.
pub struct Node {
    config: Config,
    timeouts: Timeouts,
    prng: Prng,
    now_ticks: u64,
    /// The tick this run began (`None` before its first tick).
    start_tick: Option<u64>,
    outputs: VecDeque<Output>,
    dropped: DropCounters,
    pub(super) peers: Peers,
    /// Where this node stands and the membership it belongs to (`membership_state.rs`).
    pub(super) membership: super::membership_state::Membership,
    pub(super) regroup: Option<Round>,
    /// What lasts across the rounds of a regroup (`regroup.rs`).
    pub(super) regroups: super::regroup::Regroups,
    pub(super) gum: Gum,
    op_next: u64,
    pending: BTreeMap<u64, Purpose>,
    /// Writes refused before they were issued (a counter past `disklayout::COUNTER_MAX`),
    /// answered as failed writes on the next tick.
    refused_writes: Vec<u64>,
    /// `GumTrouble` told that a counter reached its limit (once: every write after it fails).
    counter_limit_reported: bool,
    pub(super) own_lease: OwnLease,
    /// Peers that may still hold groups, observed on disk (`observe.rs`).
    pub(super) observer: super::observe::Observer,
    /// Form attempts: their slot reads and pending epoch (`forming.rs`).
    pub(super) forming: super::forming::Forming,
    pub(super) quorum: Quorum,
    /// The groups: this epoch's table, what is held here, the catalog (`placement.rs`).
    pub(super) placement: super::placement::Placement,
    last_quorum_tick: Option<u64>,
    /// The tick at which we noticed we had been stopped (clock jump); its backlog is stale.
    stalled_at_tick: Option<u64>,
    /// Leaving for good (`shutdown.rs`).
    pub(super) shutdown: super::shutdown::Shutdown,
    /// The leases of the leased resources of the groups held here (`resource_lease.rs`).
    pub(super) resource_leases: super::resource_lease::ResourceLeases,
    /// The dead-man switch as last armed (`lease.rs`).
    pub(super) deadman: super::lease::Deadman,
}

impl Node {
    /// A node that has just started: it will search for a cluster, and form one only with quorum.
    pub fn new(config: Config, seed: u64) -> Node {
        assert!(config.node_id >= 1);
        assert!(usize::from(config.node_id) <= config.networks.len());
        assert!(
            config.networks[usize::from(config.node_id - 1)] > 0,
            "this node is configured"
        );
        assert!(config.incarnation > 0);
        let timeouts = Timeouts::new(&config.timing);
        let quorum = Quorum::new(Identity {
            node_id: config.node_id,
            incarnation: config.incarnation,
            cluster_id: config.cluster_id,
            hold_ticks: timeouts.lease_hold_ticks,
            expiry_observed_ticks: timeouts.lease_expiry_observed_ticks,
            read_age_ticks_max: super::timeout::DISK_IO_LATENCY_MAX_MS / TICK_MS + 1,
            renew_ticks: timeouts.lease_renew_interval_ticks,
            drift_ppm: u64::from(config.timing.clock_drift_ppm_max),
        });
        Node {
            peers: Peers::new(&config.networks),
            timeouts,
            prng: Prng::new(seed),
            now_ticks: 0,
            start_tick: None,
            outputs: VecDeque::new(),
            dropped: DropCounters::default(),
            membership: super::membership_state::Membership::new(),
            regroup: None,
            regroups: Default::default(),
            gum: Gum::new(),
            op_next: 1,
            pending: BTreeMap::new(),
            refused_writes: Vec::new(),
            counter_limit_reported: false,
            own_lease: OwnLease::new(),
            observer: Default::default(),
            forming: Default::default(),
            quorum,
            placement: super::placement::Placement::new(config.builtin_groups),
            last_quorum_tick: None,
            stalled_at_tick: None,
            shutdown: Default::default(),
            resource_leases: Default::default(),
            deadman: Default::default(),
            config,
        }
    }

    /// Processes one input. Never fails: bad input is counted and dropped.
    pub fn step(&mut self, input: Input<'_>) {
        match input {
            Input::Tick { now_ms } => self.on_tick(now_ms / TICK_MS),
            Input::Message { network, payload } => {
                if self.stalled_at_tick == Some(self.now_ticks) {
                    self.dropped.stale += 1;
                } else if self.start_tick.is_some() {
                    self.on_message(network, payload);
                }
            }
            Input::DiskDone { op, result } => self.on_disk_done(op, result.ok()),
            Input::Admin(AdminCommand::Leave) => self.shut_down(),
            Input::GroupStopped { group } => self.on_group_stopped(group),
            Input::GroupFailed { group, refuse_ms } => self.on_group_failed(group, refuse_ms),
            Input::WallClock { unix_s, local_hour } => {
                self.placement.set_wall_clock(unix_s, local_hour);
            }
            Input::PeerConflict { node } => {
                let peer = disklayout::is_node_id(node) && node != self.me();
                if peer && self.configured() & bit(node) != 0 {
                    self.peers.heard_in_conflict(node, self.now_ticks);
                } else {
                    self.dropped.unknown_node += 1;
                }
            }
            Input::Admin(AdminCommand::Submit { update }) => {
                // The caller that needs the request id uses `submit`; a refusal is counted.
                if self.submit(update).is_err() {
                    self.dropped.unexpected += 1;
                }
            }
        }
        assert!(self.outputs.len() <= OUTPUTS_MAX, "output queue overflow");
        self.assert_invariants();
    }

    /// The next thing to do; drain until `None` after every `step`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The epoch of the last stabilized membership (what `status().epoch` says, without
    /// building the whole view: the driver asks on every wakeup).
    pub fn epoch(&self) -> u64 {
        self.membership.epoch()
    }

    /// True while this node's side lives by its quorum ownership: it forms a cluster, or its
    /// membership relies on the ownership (a membership of one, or the holder that let exactly
    /// half survive). A stall here lets another node win the quorum and go on without it, and
    /// the stalled node then resumes with what it knew (the simulator aims pauses at it).
    pub fn lives_by_quorum(&self) -> Option<QuorumReliance> {
        if !self.quorum.owned(self.now_ticks) {
            return None;
        }
        match self.membership.role() {
            Role::Forming => Some(QuorumReliance::Forming),
            Role::Member if self.membership.stabilized() && self.membership.relies_on_quorum() => {
                Some(QuorumReliance::Membership)
            }
            _ => None,
        }
    }

    /// True while this node coordinates a regroup and waits for its install's acknowledgements:
    /// a cut now leaves some members bound to this install while the rest regroup without it
    /// (the simulator aims partitions and pauses at it).
    pub fn awaiting_install_acks(&self) -> bool {
        self.regroup
            .as_ref()
            .is_some_and(|round| round.awaiting_acks())
    }

    /// True while this node is the GUM locker and the log ring holds no free block: nothing is
    /// written until a checkpoint frees some (the simulator aims crashes at it).
    pub fn log_ring_full(&self) -> bool {
        self.gum.log_ring_full(self.config.geometry.log_blocks())
    }

    /// For a ready GUM locker with no log write in flight: how many log blocks before its next
    /// write its replica neither applied nor counts as discarded. Always 0 when the locker is
    /// sound: a checkpoint starts only when none is left (`checkpoint_maybe`), so one left for
    /// good means the ring fills and the log stops (simulator seed 216565 --nodes 2).
    pub fn log_blocks_unaccounted(&self) -> u64 {
        self.gum.log_blocks_unaccounted()
    }

    /// Groups asked offline whose stop is not yet confirmed (`status().stopping_groups`).
    pub fn stopping_groups(&self) -> u64 {
        self.placement.stopping()
    }

    /// A read-only view.
    pub fn status(&self) -> Status {
        Status {
            node_id: self.config.node_id,
            stabilized: self.membership.stabilized(),
            epoch: self.membership.epoch(),
            members: self.membership.members(),
            quorum_owner: self.quorum.owned(self.now_ticks),
            quorum_valid_until_ms: self.quorum_valid_until_ms(),
            lease_valid_until_ms: self.own_lease.valid_until_tick() * TICK_MS,
            regrouping: self.regroup.is_some(),
            online_groups: self.placement.online(),
            stopping_groups: self.placement.stopping(),
            refusing_groups: self.refusing(),
            owners: self
                .placement
                .table()
                .iter()
                .map(|entry| entry.owner)
                .collect(),
            database_version: self.gum.replica().sequence,
            gum: self.gum_status(),
            left_cleanly: self.shutdown.begun()
                && self.shutdown.slot_written()
                && self.placement.holding() == 0
                && self.resource_leases_released(),
            dropped: self.dropped.clone(),
        }
    }

    /// The end of the quorum lease's validity, as `status()` reports it, without building the
    /// whole status (the simulator reads it after every step).
    pub fn quorum_valid_until_ms(&self) -> u64 {
        self.quorum.valid_until_tick() * TICK_MS
    }

    /// GUM's part of the status.
    pub fn gum_status(&self) -> super::gum::GumStatus {
        self.gum.status()
    }

    /// Digest of the replicated state (one pass over the database: for checks, not hot paths).
    pub fn replica_digest(&self) -> u64 {
        self.gum.replica().digest()
    }

    /// The replicated cluster database (reads are local).
    pub fn database(&self) -> &super::db::Database {
        &self.gum.replica().database
    }

    /// The tick this run began (`None` before its first tick).
    pub(super) fn start_tick(&self) -> Option<u64> {
        self.start_tick
    }

    #[cfg(test)]
    pub(super) fn started_at(&mut self, start_tick: u64) {
        self.start_tick = Some(start_tick);
    }

    /// The configured nodes, as a bitmap.
    pub(super) fn configured(&self) -> u64 {
        let mut configured = 0;
        for (index, networks) in self.config.networks.iter().enumerate() {
            if *networks > 0 {
                configured |= 1u64 << index;
            }
        }
        configured
    }

    pub(crate) fn me(&self) -> u8 {
        self.config.node_id
    }

    /// The clock, in ticks, as of the input being stepped.
    pub(super) fn now(&self) -> u64 {
        self.now_ticks
    }

    /// Scripted unit tests step one part without `step`'s tick.
    #[cfg(test)]
    pub(super) fn set_clock(&mut self, now_ticks: u64) {
        self.now_ticks = now_ticks;
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// A pseudo-random number below `bound` (> 0), from this node's seeded generator.
    pub(super) fn random_below(&mut self, bound: u64) -> u64 {
        self.prng.below(bound)
    }

    pub(super) fn push_output(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    pub(super) fn count_drop(&mut self, why: super::Dropped) {
        self.dropped.count(why);
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Sends `body` to `to` on every network both nodes have.
    pub(crate) fn send(&mut self, to: u8, body: &Body) {
        assert_ne!(to, self.me());
        self.send_all(bit(to), body);
    }

    /// Sends `body` to every node of `targets` but this one, on every network it shares with
    /// each. The message does not name its receiver, so it is encoded once for all of them.
    pub(crate) fn send_all(&mut self, targets: u64, body: &Body) {
        let mut payload = None;
        for to in ids(targets & !bit(self.me())) {
            let shared = self.config.networks[usize::from(to - 1)]
                .min(self.config.networks[usize::from(self.me() - 1)]);
            if shared == 0 {
                continue;
            }
            let payload = payload.get_or_insert_with(|| {
                Message {
                    from: self.me(),
                    incarnation: self.config.incarnation,
                    body: body.clone(),
                }
                .encode()
            });
            for network in 0..shared {
                self.outputs.push_back(Output::Send {
                    to,
                    network,
                    payload: payload.clone(),
                });
            }
        }
    }

    /// Why disk operation `op` was issued, once: `None` for an op not ours (a completion from
    /// before a restart of the driver) or already answered.
    pub(super) fn take_purpose(&mut self, op: u64) -> Option<Purpose> {
        self.pending.remove(&op)
    }

    /// Why pending disk operation `op` was issued (scripted tests read it without answering).
    #[cfg(test)]
    pub(super) fn pending_purpose(&self, op: u64) -> Option<Purpose> {
        self.pending.get(&op).cloned()
    }

    pub(crate) fn disk_read(&mut self, purpose: Purpose, offset_bytes: u64) {
        let op = self.op_next;
        self.op_next += 1;
        self.pending.insert(op, purpose);
        self.outputs
            .push_back(Output::DiskRead { op, offset_bytes });
    }

    /// Writes a raw block (log blocks, checkpoint payload) encoded by the caller.
    pub(crate) fn disk_write_block(
        &mut self,
        purpose: Purpose,
        offset_bytes: u64,
        block: Box<[u8; BLOCK_SIZE]>,
    ) {
        let op = self.op_next;
        self.op_next += 1;
        self.pending.insert(op, purpose);
        self.outputs.push_back(Output::DiskWrite {
            op,
            offset_bytes,
            block,
        });
    }

    pub(crate) fn disk_write<R: disk_records::Record>(
        &mut self,
        purpose: Purpose,
        offset_bytes: u64,
        sealed: &Sealed<R>,
    ) {
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        if disk_records::encode(sealed, &mut block).is_err() {
            // Core records always fit a block; only a counter can be refused: one more than a
            // record read at COUNTER_MAX (a hostile disk). Nothing is written, and the write
            // fails like a disk error, which every writer handles (issue 16).
            let op = self.op_next;
            self.op_next += 1;
            self.pending.insert(op, purpose);
            self.refused_writes.push(op);
            self.report_counter_limit("a disk record's counter would pass 2^62-1: not written");
            return;
        }
        // Pair assertion: what we write decodes to what we meant.
        assert!(matches!(disk_records::decode::<R>(&block[..]), Ok(Some(_))));
        self.disk_write_block(purpose, offset_bytes, block);
    }

    /// Tells the operator, once, that a counter from the disk reached `COUNTER_MAX` (a hostile
    /// or corrupt disk: counting from 0 it takes millennia), so writes are refused.
    pub(crate) fn report_counter_limit(&mut self, what: &'static str) {
        if !self.counter_limit_reported {
            self.counter_limit_reported = true;
            self.emit(Event::GumTrouble { what });
        }
    }

    fn on_tick(&mut self, now_ticks: u64) {
        // A clock reading from the past (should not happen with a monotonic clock): ignore it.
        if now_ticks < self.now_ticks {
            return;
        }
        let jumped = self.start_tick.is_some()
            && now_ticks > self.now_ticks + self.timeouts.peer_silence_ticks;
        self.now_ticks = now_ticks;
        if jumped {
            // Datagrams queued while we were stopped are older than our silence window: they
            // would make long-gone peers look alive. Drop what arrives before the next tick.
            self.stalled_at_tick = Some(now_ticks);
        }
        if jumped && self.regroup.is_some() {
            // We were stopped (paused, starved) longer than peers wait for us: whatever the
            // round decided went on without us; its late messages must not be acted upon.
            if self.membership.role() == Role::Member {
                self.leave("stalled during a regroup");
            } else {
                self.regroup = None;
            }
        }
        if self.start_tick.is_none() {
            self.start(now_ticks);
        }
        for op in std::mem::take(&mut self.refused_writes) {
            self.on_disk_done(op, None);
        }
        self.enforce_own_lease();
        self.enforce_quorum_reliance();
        self.expire_resource_leases();
        self.enforce_deadman();
        self.membership_tick();
        self.regroup_tick();
        self.search_tick();
        if self
            .own_lease
            .renewal_due(now_ticks, self.timeouts.lease_renew_interval_ticks)
        {
            self.own_lease.renewal_began(now_ticks);
            self.renew_tick();
        }
        let half_interval = self.timeouts.lease_renew_interval_ticks / 2;
        let quorum_due = match (self.last_quorum_tick, self.own_lease.last_renew_tick()) {
            (Some(last), _) => now_ticks >= last + self.timeouts.lease_renew_interval_ticks,
            (None, Some(renewed)) => now_ticks >= renewed + half_interval,
            (None, None) => false,
        };
        if quorum_due && !self.own_lease.slot_write_in_flight() {
            self.last_quorum_tick = Some(now_ticks);
            self.quorum_tick();
        } else {
            self.challenge_now_if_due();
        }
        self.try_write_own_slot();
        self.refresh_catalog();
        self.evaluate_groups();
        self.reconcile_resource_leases();
        self.placement_check();
        self.gum_tick();
    }

    fn start(&mut self, now_ticks: u64) {
        self.start_tick = Some(now_ticks);
        let jitter = self.prng.below(self.timeouts.form_wait_ticks.max(1));
        self.membership
            .search(now_ticks, self.timeouts.form_wait_ticks + jitter);
        let offset = self.config.geometry.fence_ack_offset(self.me());
        self.disk_read(Purpose::OwnAckRead, offset);
    }
}
