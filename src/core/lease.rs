//! Membership leases on the shared disk: this node's own lease, and observation of peers'.
//!
//! **Own lease.** The node rewrites its slot every renew interval; a successful write of a
//! `Member` slot issued at tick `t` makes the lease valid until `t + lease_hold_ticks` by its own
//! clock. Groups are held only while it is valid; at expiry they are stopped first thing on the
//! tick, and the resource monitor's dead-man (`Output::ArmDeadman`) stops them even if the
//! daemon hangs. A node writes a non-`Member` slot only after stopping all its groups.
//!
//! **Peers.** A survivor may bring a lost node's group online only once that node is confirmed
//! stopped: its slot is empty, of another incarnation, not `Member`, or unchanged for
//! `lease_expiry_observed_ticks` (timed from the read that first showed the value to a read
//! issued that long after); or it acknowledged our fence request in its mailbox (fast path).
//! A silent peer whose slot keeps changing is reported partitioned, not dead.

use super::disk_records::{
    self, Acknowledged, FenceAck, FenceRequest, NodeSlot, NodeState, Sealed, BLOCK_SIZE,
};
use super::node::{Node, Purpose, Role};
use crate::core::Dropped;

/// A new lease's first member write: the lease starts from its issue once a mailbox read
/// issued after its completion shows no fence request to obey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaseStart {
    pub write_issue_tick: u64,
    pub write_done_tick: u64,
}

/// This node's own lease and mailbox state.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnLease {
    /// Lease valid while `now < valid_until_tick` (0 = never valid).
    valid_until_tick: u64,
    slot_sequence: u64,
    slot_write_in_flight: bool,
    mailbox_read_in_flight: bool,
    ack_read_in_flight: bool,
    ack_write_in_flight: bool,
    /// A new lease's first member write, waiting for the mailbox.
    start_pending: Option<LeaseStart>,
    /// Highest epoch written in our slot: an epoch is stabilized (by its coordinator, or by a
    /// forming node) only once durable, so a later former reading the slots never reuses it.
    durable_epoch: u64,
    /// Our slot as the previous run left it has been read (epoch and sequence carried on, so
    /// a restart never writes a lower epoch or an old sequence).
    slot_loaded: bool,
    slot_read_in_flight: bool,
    /// A slot write is due (every renew interval), waiting for the disk to be ours.
    slot_write_due: bool,
    start_reads_left: u32,
    /// All start reads so far succeeded (starts true; reset after each attempt).
    start_reads_ok: bool,
    /// Our acknowledgement block has been read at start (its sequence carried on).
    ack_loaded: bool,
    /// The sequence of the acknowledgement block's record (each write takes the next).
    ack_sequence: u64,
    /// The request this incarnation acknowledged last (an identity, FORMAT.md §8).
    last_acked: Option<Acknowledged>,
    /// The newest requester epoch of a fence request this incarnation obeyed: the membership
    /// that fenced us stands on our word that we hold nothing, so we never join a membership
    /// of that epoch or an older one again (`regroup/install.rs`).
    fenced_by_epoch: u64,
    /// When the last renew interval began (`None`: the next tick begins one).
    last_renew_tick: Option<u64>,
}

/// The dead-man switch as last armed (`Output::ArmDeadman`); its field is private to this file.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Deadman {
    /// The tick the last `Output::ArmDeadman` named: no group is held from then on.
    armed_tick: u64,
}

impl Deadman {
    /// True while the armed deadline lies ahead: groups may be held.
    pub(super) fn armed_at(&self, now_ticks: u64) -> bool {
        now_ticks < self.armed_tick
    }

    /// The tick the monitor stops everything at.
    pub(super) fn armed_tick(&self) -> u64 {
        self.armed_tick
    }
}

impl OwnLease {
    pub fn new() -> OwnLease {
        OwnLease {
            start_reads_ok: true,
            ..OwnLease::default()
        }
    }

    pub fn valid(&self, now_ticks: u64) -> bool {
        now_ticks < self.valid_until_tick
    }

    /// The tick the lease is valid until (0 = never valid).
    pub fn valid_until_tick(&self) -> u64 {
        self.valid_until_tick
    }

    /// True while a write of our slot is in flight: other disk steps wait for it.
    pub fn slot_write_in_flight(&self) -> bool {
        self.slot_write_in_flight
    }

    /// Our slot is to be written at the next chance, not at the next renewal.
    pub fn schedule_slot_write(&mut self) {
        self.slot_write_due = true;
    }

    /// True once `epoch` (or a newer one) is durable in our slot.
    pub fn slot_holds_epoch(&self, epoch: u64) -> bool {
        self.durable_epoch >= epoch
    }

    /// True if a membership of `epoch` must not have us: one of that epoch or a newer one
    /// fenced us (see `fenced_by_epoch`).
    pub fn fenced_at_or_after(&self, epoch: u64) -> bool {
        epoch <= self.fenced_by_epoch
    }

    /// Entering a membership: its lease starts with a member write at once, not at the next
    /// renew interval; a lease start pending from before belongs to another membership.
    pub fn enter_membership(&mut self) {
        self.start_pending = None;
        self.last_renew_tick = None;
    }

    /// True if a renew interval begins at `now_ticks`.
    pub fn renewal_due(&self, now_ticks: u64, renew_interval_ticks: u64) -> bool {
        match self.last_renew_tick {
            None => true,
            Some(last) => now_ticks >= last + renew_interval_ticks,
        }
    }

    pub fn renewal_began(&mut self, now_ticks: u64) {
        self.last_renew_tick = Some(now_ticks);
    }

    /// When the last renew interval began (`None` before the first).
    pub fn last_renew_tick(&self) -> Option<u64> {
        self.last_renew_tick
    }

    /// Leaving a membership ends the lease: every membership starts a new one, through the
    /// mailbox check.
    pub fn end(&mut self) {
        self.valid_until_tick = 0;
        self.start_pending = None;
    }

    #[cfg(test)]
    pub(super) fn hold_until(&mut self, valid_until_tick: u64) {
        self.valid_until_tick = valid_until_tick;
    }
}

impl Node {
    /// First thing on every tick: an expired lease stops every group, and ends membership.
    pub(super) fn enforce_own_lease(&mut self) {
        if self.own_lease.valid(self.now()) {
            return;
        }
        self.stop_all_groups();
        // A new member gets its lease with its first member write; it leaves only once a lease
        // it held lapsed, or when no member write succeeded for a whole hold period.
        let member_ticks = self
            .now()
            .saturating_sub(self.membership.member_since_tick());
        let lapsed = self.own_lease.valid_until_tick > self.membership.member_since_tick()
            || member_ticks >= self.timeouts().lease_hold_ticks;
        if self.membership.role() == Role::Member && self.membership.stabilized() && lapsed {
            self.leave("membership lease expired");
        }
    }

    /// Every renew interval: own slot, own mailbox, observed peers.
    pub(super) fn renew_leases(&mut self) {
        let me = self.me();
        let geometry = self.config().geometry;
        if !self.own_lease.slot_loaded && !self.own_lease.slot_read_in_flight {
            // Before our first write: the epochs the previous run left in our slot and in the
            // quorum record (either may be torn by its crash; one crash tears at most one), and
            // those in every other slot. If our crash tore our copy of an epoch, our first
            // write restores it from theirs: otherwise each crash that tears a slot as it is
            // written would remove a copy for good, and a second one, however much later,
            // could remove the last (simulator seed 38993: the two members of epoch 4 tore
            // their slots 470 ticks apart, the first restarting in between with epoch 3).
            let others = self.configured() & !super::bit(me);
            self.own_lease.slot_read_in_flight = true;
            self.own_lease.start_reads_left = 2 + others.count_ones();
            self.disk_read(Purpose::OwnSlotRead, geometry.node_slot_offset(me));
            self.disk_read(Purpose::StartQuorumRead, geometry.quorum_offset());
            for peer in super::ids(others) {
                let offset = geometry.node_slot_offset(peer);
                self.disk_read(Purpose::StartSlotRead { peer }, offset);
            }
        }
        self.own_lease.slot_write_due = true;
        self.try_write_own_slot();
        if !self.own_lease.ack_loaded && !self.own_lease.ack_read_in_flight {
            self.own_lease.ack_read_in_flight = true;
            self.disk_read(Purpose::OwnAckRead, geometry.fence_ack_offset(me));
        }
        if self.own_lease.ack_loaded && !self.own_lease.mailbox_read_in_flight {
            self.own_lease.mailbox_read_in_flight = true;
            let purpose = Purpose::OwnMailboxRead {
                issue_tick: self.now(),
            };
            self.disk_read(purpose, geometry.fence_request_offset(me));
        }
        let peers = self.observer.observed();
        for peer in peers {
            self.renew_observation(peer);
        }
    }

    /// Writes our slot when due, never while a quorum record I/O is in flight: the slot and the
    /// record are the two durable copies of our epoch, and one crash tears at most one of them.
    pub(super) fn try_write_own_slot(&mut self) {
        let idle = !self.own_lease.slot_write_in_flight && !self.quorum.io_in_flight();
        if !(self.own_lease.slot_loaded && self.own_lease.slot_write_due && idle) {
            return;
        }
        let member = self.membership.role() == Role::Member;
        if !member && self.holding() != 0 {
            // A slot that is not `Member` tells survivors we hold nothing (ARBITRATION.md rule
            // (c)): it waits until every stop is confirmed.
            return;
        }
        self.own_lease.slot_write_due = false;
        let me = self.me();
        let geometry = self.config().geometry;
        // Read from the disk (at most COUNTER_MAX) and + 1 per renewal: 2^62 renewals away
        // from overflowing; a write past COUNTER_MAX is refused (`disk_write`).
        self.own_lease.slot_sequence += 1;
        let hold_ms = self.timeouts().lease_hold_ticks * super::timeout::TICK_MS;
        let slot = Sealed {
            cluster_id: self.config().cluster_id,
            sequence: self.own_lease.slot_sequence,
            record: NodeSlot {
                node_id: me,
                state: if member {
                    NodeState::Member
                } else {
                    NodeState::Joining
                },
                incarnation: self.config().incarnation,
                epoch: self.membership.acked_epoch(),
                members: self.membership.members(),
                realtime_ms: self.now() * super::timeout::TICK_MS,
                lease_valid_ms: if member { hold_ms as u32 } else { 0 },
            },
        };
        self.own_lease.slot_write_in_flight = true;
        let epoch = self.membership.acked_epoch();
        let purpose = Purpose::OwnSlotWrite {
            issue_tick: self.now(),
            member,
            epoch,
        };
        self.disk_write(purpose, geometry.node_slot_offset(me), &slot);
    }

    pub(super) fn on_own_slot_written(
        &mut self,
        ok: bool,
        issue_tick: u64,
        member: bool,
        epoch: u64,
    ) {
        self.own_lease.slot_write_in_flight = false;
        if ok && !member && self.membership.role() != Role::Member {
            self.non_member_slot_written();
        }
        if ok {
            self.own_lease.durable_epoch = self.own_lease.durable_epoch.max(epoch);
            self.acknowledge_when_durable();
        }
        // Only a member write that is still wanted counts: a node that left while the write
        // was in flight must not be revived by it.
        if !(ok && member && self.membership.role() == Role::Member) {
            return;
        }
        if issue_tick < self.own_lease.valid_until_tick {
            // Issued while the lease was valid: the chain of renewals goes on.
            self.extend_lease(issue_tick);
        } else {
            // A new lease: it starts only after a mailbox read issued from now on shows no
            // fence request for us (see `observe.rs` for why).
            if self.own_lease.start_pending.is_none() {
                self.own_lease.start_pending = Some(LeaseStart {
                    write_issue_tick: issue_tick,
                    write_done_tick: self.now(),
                });
            }
            self.read_own_mailbox_now();
        }
    }

    /// True once `epoch` has two durable copies: ours in our slot, and either every other
    /// member's slot (they acknowledged only once it was there) or, for a membership of one,
    /// the quorum record, which such a membership must own. One torn block cannot lose it.
    /// The record's copy counts only once confirmed: a challenger's write based on a read
    /// older than ours can land after ours and carry an older epoch (see `quorum.rs`).
    pub(super) fn epoch_durable(&self, epoch: u64, members: u64) -> bool {
        let own_copy = self.own_lease.durable_epoch >= epoch;
        if members != super::bit(self.me()) {
            return own_copy;
        }
        own_copy && self.quorum_record_confirms(epoch)
    }

    /// True while we own the quorum and the record confirms `epoch` under our ownership.
    pub(super) fn quorum_record_confirms(&self, epoch: u64) -> bool {
        self.quorum.confirms_owned_epoch(epoch, self.now())
    }

    /// Called on every tick while `epoch` of `members` is not yet durable (`epoch_durable`).
    pub(super) fn make_epoch_durable(&mut self, epoch: u64, members: u64) {
        // The record first: our slot write fits inside its confirmation window (the two are
        // never in flight together).
        if members == super::bit(self.me()) {
            self.confirm_quorum_epoch(epoch);
        }
        if self.own_lease.durable_epoch < epoch && !self.own_lease.slot_write_in_flight {
            self.own_lease.slot_write_due = true;
        }
    }

    fn extend_lease(&mut self, write_issue_tick: u64) {
        let until = write_issue_tick + self.timeouts().lease_hold_ticks;
        if until > self.own_lease.valid_until_tick {
            self.own_lease.valid_until_tick = until;
            self.rearm_deadman();
        }
    }

    /// Arms the dead-man at the earliest end of the leases that cover running resources: the
    /// membership lease and every resource lease announced held. Not when that end lies less
    /// than `fence_timeout` ahead: the daemon's monitor restarts exactly that timeout on every
    /// re-arm, which would then outlast a lease. Until the next re-arm the earlier deadline
    /// stands, and `enforce_deadman` holds no group past it.
    pub(super) fn rearm_deadman(&mut self) {
        let deadline = self.deadline_tick();
        let reach = self.now() + self.timeouts().fence_timeout_ticks;
        if deadline == self.deadman.armed_tick || deadline < reach {
            return;
        }
        self.deadman.armed_tick = deadline;
        self.push_output(super::Output::ArmDeadman {
            stop_resources_at_ms: deadline * super::timeout::TICK_MS,
        });
    }

    /// `deadline_tick` in ms of this node's clock, for the simulator's check of rule 5.
    pub fn resources_deadline_ms(&self) -> u64 {
        self.deadline_tick() * super::timeout::TICK_MS
    }

    /// The earliest end of the leases that cover running resources: the membership lease and
    /// every resource lease announced held (ARBITRATION.md rule 5's `D`).
    pub(super) fn deadline_tick(&self) -> u64 {
        self.resource_leases_valid_until_tick()
            .map_or(self.own_lease.valid_until_tick, |until| {
                until.min(self.own_lease.valid_until_tick)
            })
    }

    /// Whether a group may start now: only with its deadline at least the fence timeout ahead
    /// (ARBITRATION.md rule 5). The last ping may have been an idle one, just before: the
    /// monitor's dead-man and a watchdog then run `fence_timeout` from it, which must end
    /// before the leases do, should the node hang or freeze right after the start.
    pub(super) fn may_start_groups(&self) -> bool {
        self.config().mutation == super::Mutation::StartNearDeadline
            || self.deadline_tick() >= self.now() + self.timeouts().fence_timeout_ticks
    }

    /// At the armed deadline the monitor stops everything (if the daemon hangs): the core
    /// holds nothing from then on either, so both agree on what runs.
    pub(super) fn enforce_deadman(&mut self) {
        if !self.deadman.armed_at(self.now()) {
            self.stop_all_groups();
        }
    }

    pub(super) fn on_start_quorum_read(&mut self, block: Option<&[u8; BLOCK_SIZE]>) {
        if let Some(block) = block {
            if let Ok(Some(sealed)) = disk_records::decode::<disk_records::QuorumLease>(&block[..])
            {
                // Whoever wrote it, an epoch in the record was used: start above it.
                if sealed.cluster_id == self.config().cluster_id {
                    self.membership
                        .acknowledge_epoch(sealed.record.0.owner_epoch);
                }
            }
        }
        self.start_read_done(block.is_some());
    }

    pub(super) fn on_start_slot_read(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        if let Some(block) = block {
            match disk_records::decode::<NodeSlot>(&block[..]) {
                Ok(Some(sealed))
                    if sealed.cluster_id == self.config().cluster_id
                        && sealed.record.node_id == peer =>
                {
                    self.membership.acknowledge_epoch(sealed.record.epoch);
                }
                Ok(_) => {}
                Err(_) => self.count_drop(Dropped::DiskRecordInvalid),
            }
        }
        self.start_read_done(block.is_some());
    }

    /// All start reads done (a failed one is retried at the next interval).
    fn start_read_done(&mut self, ok: bool) {
        self.own_lease.start_reads_left -= 1;
        self.own_lease.start_reads_ok &= ok;
        if self.own_lease.start_reads_left == 0 {
            self.own_lease.slot_read_in_flight = false;
            self.own_lease.slot_loaded = self.own_lease.start_reads_ok;
            self.own_lease.start_reads_ok = true;
        }
    }

    pub(super) fn on_own_slot_read(&mut self, block: Option<&[u8; BLOCK_SIZE]>) {
        let Some(block) = block else {
            self.start_read_done(false);
            return;
        };
        match disk_records::decode::<NodeSlot>(&block[..]) {
            Ok(Some(sealed)) if sealed.cluster_id == self.config().cluster_id => {
                self.own_lease.slot_sequence = self.own_lease.slot_sequence.max(sealed.sequence);
                self.membership.acknowledge_epoch(sealed.record.epoch);
                self.own_lease.durable_epoch =
                    self.own_lease.durable_epoch.max(sealed.record.epoch);
            }
            Ok(_) => {}
            // Torn by a crash mid-write: the previous run's epoch is lost from our slot, but
            // it was also in every member's slot or in the quorum record (read at start too).
            Err(_) => self.count_drop(Dropped::DiskRecordInvalid),
        }
        self.start_read_done(true);
    }

    pub(super) fn on_own_ack_read(&mut self, block: Option<&[u8; BLOCK_SIZE]>) {
        self.own_lease.ack_read_in_flight = false;
        let Some(block) = block else { return };
        match disk_records::decode::<FenceAck>(&block[..]) {
            Ok(Some(sealed)) if sealed.cluster_id == self.config().cluster_id => {
                self.own_lease.ack_sequence = sealed.sequence;
                // Another incarnation's acknowledgements answer requests that are not ours.
                if sealed.record.incarnation == self.config().incarnation {
                    self.own_lease.last_acked = Some(sealed.record.acknowledged);
                }
            }
            Ok(_) => {}
            Err(_) => self.count_drop(Dropped::DiskRecordInvalid),
        }
        self.own_lease.ack_loaded = true;
    }

    pub(super) fn on_own_mailbox(&mut self, block: Option<&[u8; BLOCK_SIZE]>, issue_tick: u64) {
        self.own_lease.mailbox_read_in_flight = false;
        let Some(block) = block else { return };
        let request = match disk_records::decode::<FenceRequest>(&block[..]) {
            Ok(Some(sealed)) => sealed,
            Ok(None) => {
                self.start_pending_lease(issue_tick);
                return;
            }
            Err(_) => {
                // Torn by a requester that crashed mid-write: no request stands (the next
                // requester rewrites the block).
                self.count_drop(Dropped::DiskRecordInvalid);
                self.start_pending_lease(issue_tick);
                return;
            }
        };
        let for_me = request.cluster_id == self.config().cluster_id
            && request.record.target == self.me()
            && request.record.target_incarnation == self.config().incarnation;
        let identity = Acknowledged::Request {
            requester: request.record.requester,
            requester_incarnation: request.record.requester_incarnation,
            sequence: request.sequence,
        };
        if !for_me || self.own_lease.last_acked == Some(identity) {
            self.start_pending_lease(issue_tick);
            return;
        }
        // A survivor fences only nodes outside its membership, so a request from an epoch not
        // newer than the one we are a member of is stale (written before we rejoined): ignore.
        if self.membership.stabilized() && request.record.requester_epoch <= self.membership.epoch()
        {
            self.start_pending_lease(issue_tick);
            return;
        }
        if self.own_lease.ack_write_in_flight {
            return;
        }
        // Fenced: stop everything first, then say so. From now on no install of the
        // requester's epoch or an older one is joined (`regroup/install.rs`): simulator seed 35871725,
        // node 2 obeyed epoch 8's fence while its acknowledged install of epoch 7 was pending,
        // then stabilized epoch 7 and took the groups epoch 8's members held. A round towards
        // a newer epoch goes on: that is how a fenced node rejoins.
        self.own_lease.fenced_by_epoch = self
            .own_lease
            .fenced_by_epoch
            .max(request.record.requester_epoch);
        match self.membership.role() {
            Role::Member => self.leave("fenced by a survivor"),
            Role::Forming => self.abort_forming(),
            Role::Searching { .. } => {}
        }
        assert_eq!(self.placement.online(), 0);
        if self.placement.stopping() != 0 {
            // The acknowledgement says "resources stopped": it waits for the confirmation; the
            // next renewal reads the mailbox again.
            return;
        }
        // As the slot's: from the disk, at most COUNTER_MAX, + 1 per acknowledgement.
        self.own_lease.ack_sequence += 1;
        let ack = Sealed {
            cluster_id: self.config().cluster_id,
            sequence: self.own_lease.ack_sequence,
            record: FenceAck {
                node_id: self.me(),
                incarnation: self.config().incarnation,
                acknowledged: identity,
                resources_stopped: true,
            },
        };
        self.own_lease.ack_write_in_flight = true;
        let offset = self.config().geometry.fence_ack_offset(self.me());
        self.disk_write(
            Purpose::OwnAckWrite {
                acknowledged: identity,
            },
            offset,
            &ack,
        );
    }

    /// A mailbox read issued after the new lease's first write completed found no request
    /// to obey: the lease starts, from that write's issue.
    fn start_pending_lease(&mut self, read_issue_tick: u64) {
        let Some(LeaseStart {
            write_issue_tick,
            write_done_tick,
        }) = self.own_lease.start_pending
        else {
            return;
        };
        if self.membership.role() != Role::Member {
            return;
        }
        if read_issue_tick < write_done_tick {
            // This read may predate a fence request that landed before our write: read again.
            self.read_own_mailbox_now();
            return;
        }
        self.own_lease.start_pending = None;
        self.extend_lease(write_issue_tick);
    }

    fn read_own_mailbox_now(&mut self) {
        if self.own_lease.mailbox_read_in_flight || !self.own_lease.ack_loaded {
            return;
        }
        self.own_lease.mailbox_read_in_flight = true;
        let purpose = Purpose::OwnMailboxRead {
            issue_tick: self.now(),
        };
        let offset = self.config().geometry.fence_request_offset(self.me());
        self.disk_read(purpose, offset);
    }

    pub(super) fn on_own_ack_written(&mut self, ok: bool, acknowledged: Acknowledged) {
        self.own_lease.ack_write_in_flight = false;
        if ok {
            self.own_lease.last_acked = Some(acknowledged);
        }
    }
}
