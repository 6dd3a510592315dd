//! Forming a cluster: a node that heard no member for its form wait challenges for the quorum
//! record while reading every node's disk slot twice (once before the challenge, once after it
//! was won); it forms only if it still owns the record under the same ownership and no slot beat
//! as a `Member` in between (no live cluster exists). The epoch it chooses lies above every
//! epoch seen, and is made durable in its slot and in the record before it stabilizes.
//!
//! `Forming` holds one attempt's reads; its fields are private, `Node` drives it.

use std::collections::BTreeMap;

use super::disk_records::{self, NodeSlot, NodeState};
use super::node::{Node, Purpose, Role};
use super::{bit, groups, ids, Event};
use crate::core::Dropped;

/// One node's slot as one read of a form showed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SlotSeen {
    incarnation: u64,
    sequence: u64,
    /// The slot says `Member`.
    member: bool,
    epoch: u64,
}

/// What both passes of a form's reads showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FormReads {
    /// Some other node's slot changed as a `Member` between the two reads.
    live_cluster: bool,
    /// The highest epoch read in any slot, in either pass.
    epoch_seen: u64,
}

/// The state of this node's form attempts (the reads of the current one, its pending epoch).
#[derive(Clone, Debug, Default)]
pub(super) struct Forming {
    /// Numbers the attempts, so reads of an aborted one are not counted.
    attempt: u64,
    /// The current attempt's reads are the second ones (made under a won quorum).
    second_pass: bool,
    reads_left: u32,
    /// The slots as the first and the second pass read them, by node id.
    first: BTreeMap<u8, SlotSeen>,
    second: BTreeMap<u8, SlotSeen>,
    /// The quorum ownership (`Quorum::ownerships_won`) the second reads were made under.
    ownership: u64,
    /// A formed epoch waiting for the own slot write that makes it durable.
    pending_epoch: Option<u64>,
}

impl Forming {
    /// A new attempt: forgets every read and the pending epoch.
    fn begin(&mut self) {
        self.attempt += 1;
        self.pending_epoch = None;
        self.first.clear();
        self.second.clear();
        self.second_pass = false;
    }

    /// The second pass starts under `ownership`, once per attempt.
    fn start_second_pass(&mut self, ownership: u64) -> bool {
        if self.second_pass {
            return false;
        }
        self.second_pass = true;
        self.ownership = ownership;
        true
    }

    fn is_current(&self, attempt: u64, second: bool) -> bool {
        attempt == self.attempt && second == self.second_pass
    }

    /// Records a current read; true once the second pass has read every slot.
    fn record(&mut self, peer: u8, seen: SlotSeen, second: bool) -> bool {
        assert!(self.is_current(self.attempt, second));
        self.reads_left -= 1;
        if !second {
            self.first.insert(peer, seen);
            return false;
        }
        self.second.insert(peer, seen);
        self.reads_left == 0
    }

    /// What both passes showed; `me` beating is no live cluster.
    fn reads(&self, me: u8) -> FormReads {
        let mut reads = FormReads {
            live_cluster: false,
            epoch_seen: 0,
        };
        for (peer, seen) in &self.second {
            let before = self.first.get(peer).copied().unwrap_or_default();
            let changed =
                (seen.incarnation, seen.sequence) != (before.incarnation, before.sequence);
            reads.live_cluster |= *peer != me && seen.member && changed;
            reads.epoch_seen = reads.epoch_seen.max(seen.epoch).max(before.epoch);
        }
        reads
    }
}

impl Node {
    pub(super) fn begin_forming(&mut self) {
        self.membership.begin_forming();
        self.forming.begin();
        self.quorum.begin_forming();
        self.read_all_slots(false);
    }

    fn read_all_slots(&mut self, second: bool) {
        let configured = self.configured();
        self.forming.reads_left = configured.count_ones();
        let attempt = self.forming.attempt;
        for peer in ids(configured) {
            let offset = self.config().geometry.node_slot_offset(peer);
            self.disk_read(
                Purpose::FormSlotRead {
                    peer,
                    second,
                    attempt,
                },
                offset,
            );
        }
    }

    pub(super) fn abort_forming(&mut self) {
        self.quorum.release();
        self.forming.pending_epoch = None;
        // Back off longer than a challenge lasts, so the winner's challenge can complete.
        let wait = self.timeouts().lease_expiry_observed_ticks
            + self.timeouts().form_wait_ticks
            + self.random_below(2 * self.timeouts().form_wait_ticks.max(1));
        self.membership.search(self.now(), wait);
    }

    /// Called when the quorum challenge of a forming node is won.
    pub(super) fn forming_won_quorum(&mut self) {
        if self.membership.role() == Role::Forming
            && self.forming.start_second_pass(self.quorum.ownerships_won())
        {
            self.read_all_slots(true);
        }
    }

    pub(super) fn on_form_slot(
        &mut self,
        peer: u8,
        second: bool,
        attempt: u64,
        block: Option<&[u8; disk_records::BLOCK_SIZE]>,
    ) {
        // Reads of an earlier (aborted) attempt or pass are not counted.
        if self.membership.role() != Role::Forming || !self.forming.is_current(attempt, second) {
            return;
        }
        let seen = match block.map(|block| disk_records::decode::<NodeSlot>(&block[..])) {
            Some(Ok(Some(sealed))) if sealed.cluster_id == self.config().cluster_id => SlotSeen {
                incarnation: sealed.record.incarnation,
                sequence: sealed.sequence,
                member: sealed.record.state == NodeState::Member,
                epoch: sealed.record.epoch,
            },
            Some(Err(_)) => {
                self.count_drop(Dropped::DiskRecordInvalid);
                SlotSeen::default()
            }
            _ => SlotSeen::default(),
        };
        if self.forming.record(peer, seen, second) {
            self.finish_forming();
        }
    }

    /// True while the ownership the form's second reads were made under lasts. A form whose
    /// ownership lapsed starts over: while it did not own, another partition may have owned,
    /// stabilized an epoch above the one this form chose, and committed updates under it
    /// (simulator seed 221631 --nodes 2: a node paused mid-form won the record back and
    /// stabilized epoch 1 after another had stabilized epoch 2 alone).
    fn form_ownership_unbroken(&self) -> bool {
        let across = self.config().mutation == super::Mutation::FormAcrossOwnerships;
        self.quorum.owned(self.now())
            && (across || self.quorum.ownerships_won() == self.forming.ownership)
    }

    fn finish_forming(&mut self) {
        let reads = self.forming.reads(self.me());
        if reads.live_cluster || !self.form_ownership_unbroken() {
            self.abort_forming();
            return;
        }
        // Epochs from the disk are at most COUNTER_MAX (disklayout): + 1 cannot overflow.
        let epoch = reads
            .epoch_seen
            .max(self.quorum.owner_epoch_seen())
            .max(self.membership.acked_epoch())
            .max(self.membership.epoch())
            + 1;
        // Make the epoch durable in our slot before stabilizing it (see `OwnLease`).
        self.membership.acknowledge_forming_epoch(epoch);
        self.forming.pending_epoch = Some(epoch);
        self.own_lease.schedule_slot_write();
    }

    /// Completes a form once its epoch is durable (still owning the quorum).
    pub(super) fn complete_forming(&mut self) {
        let Some(epoch) = self.forming.pending_epoch else {
            return;
        };
        let across = self.config().mutation == super::Mutation::FormAcrossOwnerships;
        if !across && !self.form_ownership_unbroken() {
            self.abort_forming();
            return;
        }
        if !self.epoch_durable(epoch, bit(self.me())) {
            self.make_epoch_durable(epoch, bit(self.me()));
            return;
        }
        self.forming.pending_epoch = None;
        let me = self.me();
        // Every other node is a possible holder of every group: confirm each anew.
        self.observer.forget_all();
        self.became_member();
        let configured = self.configured();
        self.membership.formed(epoch, me, configured);
        let table = groups::formed(
            self.placement.policies(),
            self.configured(),
            me,
            self.refusing(),
        );
        self.placement.install_table(table);
        self.emit(Event::Stabilized {
            epoch,
            members: bit(me),
        });
        self.gum_on_stabilized(true);
    }
}
