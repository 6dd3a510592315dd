//! Node glue for the quorum machine (`quorum.rs`) and the per-interval disk schedule.

use super::disk_records::{self, QuorumLease, Sealed, BLOCK_SIZE};
use super::node::{Node, Purpose, Role};
use super::quorum::{QuorumIo, Want};
use super::{bit, ids, Event};

impl Node {
    /// Whether this node should own, defend or challenge for the quorum now.
    fn wants_quorum(&self) -> bool {
        let now = self.now_ticks;
        match self.role {
            Role::Forming => true,
            Role::Searching { .. } => false,
            Role::Member => {
                let closing = self.regroup.is_some() && self.regroup_needs_quorum;
                let leader = ids(self.members).next() == Some(self.me());
                let owner_seen = self
                    .quorum_owner_seen_tick
                    .is_some_and(|tick| now < tick + 3 * self.timeouts.peer_silence_ticks);
                self.quorum.owned(now) || closing || (self.stabilized && leader && !owner_seen)
            }
        }
    }

    /// What this node wants of the quorum record: to own it (`wants_quorum`), or, as the other
    /// member of a membership of two, to watch it (a lone survivor then wins it from a dead
    /// owner a lease expiry after that owner's last write, not after its own challenge).
    fn quorum_want(&self) -> Want {
        if self.wants_quorum() {
            Want::Own
        } else if self.role == Role::Member && self.members.count_ones() == 2 && !self.shutting_down
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
        let member = self.role == Role::Member && self.stabilized;
        let outlives = self.config.mutation == super::Mutation::MembershipOutlivesQuorum;
        if member && !outlives && self.relies_on_quorum && !self.quorum.owned(self.now_ticks) {
            self.relies_on_quorum = false;
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
            .on_interval(want, self.now_ticks, self.acked_epoch);
        if lapsed {
            self.emit(Event::QuorumOwner { owned: false });
        }
        self.issue_quorum_io(io);
    }

    /// Between renew intervals: a challenge step that is due now (see
    /// `Quorum::challenge_io_due`), never while our slot write is in flight.
    pub(super) fn challenge_now_if_due(&mut self) {
        if self.own_lease.slot_write_in_flight {
            return;
        }
        if self
            .quorum
            .challenge_io_due(self.quorum_want(), self.now_ticks)
        {
            self.quorum_tick();
        }
    }

    /// A membership of one waits for `epoch` to be confirmed in the quorum record: renew the
    /// record with it, and read it when the confirmation window ends, without waiting for the
    /// renew interval.
    pub(super) fn confirm_quorum_epoch(&mut self, epoch: u64) {
        if self.own_lease.slot_write_in_flight {
            return;
        }
        let io = self.quorum.epoch_read(self.now_ticks, epoch);
        self.issue_quorum_io(io);
    }

    fn issue_quorum_io(&mut self, io: Option<QuorumIo>) {
        let offset = self.config.geometry.quorum_offset();
        match io {
            None => {}
            Some(QuorumIo::Read) => self.disk_read(
                Purpose::QuorumRead {
                    issue_tick: self.now_ticks,
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
                        issue_tick: self.now_ticks,
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
                self.dropped.disk_records_invalid += 1;
                Err(())
            }
        };
        let owned_before = self.quorum.owned(self.now_ticks);
        let next_epoch = self.next_epoch();
        let (io, lost) = self.quorum.on_read(
            record,
            issue_tick,
            self.now_ticks,
            self.acked_epoch,
            next_epoch,
        );
        if lost {
            self.emit(Event::QuorumOwner { owned: false });
        }
        // A watcher's claim becomes ours on the read that confirms it.
        if !owned_before && self.quorum.owned(self.now_ticks) {
            self.emit(Event::QuorumOwner { owned: true });
            self.forming_won_quorum();
        }
        self.issue_quorum_io(io);
        self.quorum_holder_read_done();
    }

    pub(super) fn on_quorum_written(&mut self, ok: bool, issue_tick: u64) {
        let won = self.quorum.on_write(ok, issue_tick, self.now_ticks);
        if won {
            self.emit(Event::QuorumOwner { owned: true });
            self.forming_won_quorum();
        }
    }

    /// Brings this node's groups online or offline to match the rules.
    pub(super) fn evaluate_groups(&mut self) {
        let now = self.now_ticks;
        let started = self.start_tick.unwrap_or(now);
        // A restarted node waits out its previous run's lease before holding anything.
        let old_run_expired = now >= started + self.timeouts.lease_expiry_observed_ticks;
        let eligible = self.role == Role::Member
            && self.stabilized
            && self.own_lease.valid(now)
            && now < self.deadman_armed_tick
            && old_run_expired;
        let mut desired = 0u64;
        if eligible {
            let refusing = self.refusing();
            for group in ids(self.group_slots() & !refusing) {
                let entry = self.table[usize::from(group - 1)];
                if entry.owner != self.me() {
                    continue;
                }
                if self.online & bit(group) != 0 {
                    // Confirmations are what a start waits for; once online, the group stays
                    // while we own it. (A joiner's confirmation is dropped when it enters the
                    // membership: waiting for it again would bounce every group on every join.)
                    desired |= bit(group);
                    continue;
                }
                let waiting: Vec<u8> = ids(entry.unconfirmed & !bit(self.me())).collect();
                // A member lets a group go by saying so in its heartbeats; a lost node is
                // confirmed stopped on disk. Never observe a member: that path may fence it.
                let (members_waiting, lost_waiting): (Vec<u8>, Vec<u8>) = waiting
                    .into_iter()
                    .partition(|peer| self.members & bit(*peer) != 0);
                for peer in &lost_waiting {
                    self.observe(*peer);
                }
                let skip_wait = self.config.mutation == super::Mutation::NoLeaseWait;
                let released = members_waiting
                    .iter()
                    .all(|peer| self.member_released(*peer, group));
                let stopped = lost_waiting
                    .iter()
                    .all(|peer| self.confirmed_stopped(*peer));
                if skip_wait || (released && stopped) {
                    desired |= bit(group);
                }
            }
        }
        for group in ids(self.online & !desired) {
            self.set_group(group, false);
        }
        // A group still stopping here comes back only once its stop is confirmed: the driver
        // never has a start and a stop of one group in flight at once. And nothing starts
        // during a regroup: our status told the coordinator what we hold, and the table it
        // installs may give a group we do not hold to another member at once.
        if self.regroup.is_some() {
            return;
        }
        for group in ids(desired & !self.online & !self.stopping) {
            self.set_group(group, true);
        }
    }

    fn set_group(&mut self, group: u8, online: bool) {
        if online {
            self.online |= bit(group);
        } else {
            self.online &= !bit(group);
            self.stopping |= bit(group);
        }
        self.outputs
            .push_back(super::Output::Resource { group, online });
    }

    /// Stops every group at once (leaving, lease lost, fenced).
    pub(super) fn stop_all_groups(&mut self) {
        for group in ids(self.online) {
            self.set_group(group, false);
        }
    }
}
