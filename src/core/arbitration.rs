//! Node glue for the quorum machine (`quorum.rs`): what this node wants of the record, and the
//! per-interval disk schedule of its reads and writes. (Group placement is `placement.rs`.)

use super::disk_records::{self, QuorumLease, Sealed, Unreadable, BLOCK_SIZE};
use super::node::{Node, Purpose, Role};
use super::quorum::{QuorumIo, Want};
use super::{ids, Event};
use crate::core::Dropped;

impl Node {
    /// Whether this node should own, defend or challenge for the quorum now.
    fn wants_quorum(&self) -> bool {
        let now = self.now();
        match self.membership.role() {
            Role::Forming => true,
            Role::Searching { .. } => false,
            Role::Member => {
                let closing = self.regroup.is_some() && self.regroups.needs_quorum();
                let leader = ids(self.membership.members()).next() == Some(self.me());
                let owner_seen = self
                    .membership
                    .quorum_owner_heard_within(now, 3 * self.timeouts().peer_silence_ticks);
                self.quorum.owned(now)
                    || closing
                    || (self.membership.stabilized() && leader && !owner_seen)
            }
        }
    }

    /// What this node wants of the quorum record: to own it (`wants_quorum`), or, as the other
    /// member of a membership of two, to watch it (a lone survivor then wins it from a dead
    /// owner a lease expiry after that owner's last write, not after its own challenge).
    fn quorum_want(&self) -> Want {
        if self.wants_quorum() {
            Want::Own
        } else if self.membership.role() == Role::Member
            && self.membership.members().count_ones() == 2
            && !self.shutdown.begun()
        {
            Want::Watch
        } else {
            Want::Nothing
        }
    }

    /// A membership that lives by our quorum ownership ends when the ownership does (it lapsed
    /// while we were stalled, or a challenger took it): without it, this side has no right to
    /// survive, and a node that won the record may form meanwhile. Staying on, a membership of
    /// one kept challenging the new owner, whose form then never confirmed its epoch: neither
    /// side progressed (simulator seed 123741, a membership of one paused past its ownership).
    /// Leaving stops our groups, and our members regroup without us.
    pub(super) fn enforce_quorum_reliance(&mut self) {
        let member = self.membership.role() == Role::Member && self.membership.stabilized();
        let outlives = self.config().mutation == super::Mutation::MembershipOutlivesQuorum;
        if member
            && !outlives
            && self.membership.relies_on_quorum()
            && !self.quorum.owned(self.now())
        {
            self.membership.stop_relying_on_quorum();
            self.leave("quorum ownership lost");
        }
    }

    /// Every renew interval: leases, then the quorum record.
    pub(super) fn renew_tick(&mut self) {
        self.renew_leases();
        self.resource_lease_tick();
    }

    /// Every renew interval, half an interval after the slot: the slot and the quorum record
    /// (the two durable copies of the epoch) are never in flight together, so one crash tears
    /// at most one of them.
    pub(super) fn quorum_tick(&mut self) {
        let want = self.quorum_want();
        let (io, lapsed) = self
            .quorum
            .on_interval(want, self.now(), self.membership.acked_epoch());
        if lapsed {
            self.emit(Event::QuorumOwner { owned: false });
        }
        self.issue_quorum_io(io);
    }

    /// Between renew intervals: a challenge step that is due now (see
    /// `Quorum::challenge_io_due`), never while our slot write is in flight.
    pub(super) fn challenge_now_if_due(&mut self) {
        if self.own_lease.slot_write_in_flight() {
            return;
        }
        if self.quorum.challenge_io_due(self.quorum_want(), self.now()) {
            self.quorum_tick();
        }
    }

    /// A membership of one waits for `epoch` to be confirmed in the quorum record: renew the
    /// record with it, and read it when the confirmation window ends, without waiting for the
    /// renew interval.
    pub(super) fn confirm_quorum_epoch(&mut self, epoch: u64) {
        if self.own_lease.slot_write_in_flight() {
            return;
        }
        let io = self.quorum.epoch_read(self.now(), epoch);
        self.issue_quorum_io(io);
    }

    fn issue_quorum_io(&mut self, io: Option<QuorumIo>) {
        let offset = self.config().geometry.quorum_offset();
        match io {
            None => {}
            Some(QuorumIo::Read) => self.disk_read(
                Purpose::QuorumRead {
                    issue_tick: self.now(),
                },
                offset,
            ),
            Some(QuorumIo::Write(sealed)) => {
                let sealed = Sealed {
                    cluster_id: sealed.cluster_id,
                    sequence: sealed.sequence,
                    record: QuorumLease(sealed.record),
                };
                self.disk_write(
                    Purpose::QuorumWrite {
                        issue_tick: self.now(),
                    },
                    offset,
                    &sealed,
                )
            }
        }
    }

    pub(super) fn on_quorum_read(&mut self, block: Option<&[u8; BLOCK_SIZE]>, issue_tick: u64) {
        let Some(block) = block else {
            self.quorum.on_read_error();
            return;
        };
        let record = match disk_records::decode::<QuorumLease>(&block[..]) {
            Ok(record) => Ok(record.map(|sealed| Sealed {
                cluster_id: sealed.cluster_id,
                sequence: sealed.sequence,
                record: sealed.record.0,
            })),
            Err(_) => {
                self.count_drop(Dropped::DiskRecordInvalid);
                Err(Unreadable)
            }
        };
        let owned_before = self.quorum.owned(self.now());
        let next_epoch = self.next_epoch();
        let (io, lost) = self.quorum.on_read(
            record,
            issue_tick,
            self.now(),
            self.membership.acked_epoch(),
            next_epoch,
        );
        if lost {
            self.emit(Event::QuorumOwner { owned: false });
        }
        // A watcher's claim becomes ours on the read that confirms it.
        if !owned_before && self.quorum.owned(self.now()) {
            self.emit(Event::QuorumOwner { owned: true });
            self.forming_won_quorum();
        }
        self.issue_quorum_io(io);
        self.quorum_holder_read_done();
    }

    pub(super) fn on_quorum_written(&mut self, ok: bool, issue_tick: u64) {
        let won = self.quorum.on_write(ok, issue_tick, self.now());
        if won {
            self.emit(Event::QuorumOwner { owned: true });
            self.forming_won_quorum();
        }
    }
}
