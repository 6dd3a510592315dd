//! The sender and member side of GUM: proposing (and retransmitting until acknowledged),
//! applying commits in sequence order, reporting progress, receiving snapshots, answering a new
//! locker's `Sync`.

use super::replica::{Outcome, Replica};
use super::wire::{GumMessage, SyncReply};
use super::PROPOSAL_BYTES_MAX;
use super::{Committed, IncomingSnapshot, Outgoing, SubmitError, OUTBOX_MAX, PENDING_MAX};
use crate::core::message::Body;
use crate::core::node::{Node, Role};
use crate::core::Dropped;
use crate::core::{bit, Event};

/// Ticks between retransmissions of an unacknowledged proposal.
const PROPOSE_RETRY_TICKS: u64 = 5;

impl Node {
    /// Queues an update for the cluster database; returns its request id. The outcome arrives
    /// as `Event::GumAcknowledged` with that id.
    pub fn submit(&mut self, body: Vec<u8>) -> Result<u64, SubmitError> {
        if body.len() > PROPOSAL_BYTES_MAX {
            return Err(SubmitError::TooLarge);
        }
        if self.gum.outbox.len() >= OUTBOX_MAX {
            return Err(SubmitError::OutboxFull);
        }
        let request_id = self.gum.next_request_id;
        self.gum.next_request_id += 1;
        let reused = self.gum.outbox.insert(
            request_id,
            Outgoing {
                body,
                last_sent_tick: None,
            },
        );
        // Request ids are never reused within an incarnation: the locker deduplicates by them.
        debug_assert!(reused.is_none(), "request id {request_id} reused");
        debug_assert!(self.gum.outbox.len() <= OUTBOX_MAX);
        self.send_proposals();
        Ok(request_id)
    }

    /// True while this node is a stabilized member that GUM may serve.
    pub(crate) fn gum_member(&self) -> bool {
        let member = self.membership.role() == Role::Member
            && self.membership.stabilized()
            && self.regroup.is_none();
        // GUM serves a stabilized epoch that includes this node (its locker is its lowest
        // member, chosen from `members`).
        debug_assert!(
            !member
                || (self.membership.epoch() > 0 && self.membership.members() & bit(self.me()) != 0),
            "a GUM member belongs to a stabilized epoch"
        );
        member
    }

    /// Sends (or re-sends, when due) every unacknowledged proposal to the locker.
    pub(crate) fn send_proposals(&mut self) {
        if !self.gum_member() || self.gum.locker_id == 0 {
            return;
        }
        let now = self.now();
        let due: Vec<u64> = self
            .gum
            .outbox
            .iter()
            .filter(|(_, outgoing)| {
                outgoing
                    .last_sent_tick
                    .is_none_or(|sent| now >= sent + PROPOSE_RETRY_TICKS)
            })
            .map(|(request_id, _)| *request_id)
            .collect();
        // Only ids this incarnation handed out are proposed (the locker orders by them).
        debug_assert!(due
            .iter()
            .all(|request_id| *request_id >= 1 && *request_id < self.gum.next_request_id));
        for request_id in due {
            let Some(outgoing) = self.gum.outbox.get_mut(&request_id) else {
                continue;
            };
            outgoing.last_sent_tick = Some(now);
            let body = outgoing.body.clone();
            let broken_second_locker = self.config().mutation
                == crate::core::Mutation::NoLockerSuccession
                && self.gum.locker.is_some();
            if self.gum.locker_id == self.me() || broken_second_locker {
                let (me, incarnation) = (self.me(), self.config().incarnation);
                self.locker_accept(me, incarnation, request_id, body);
            } else {
                let message = GumMessage::Propose {
                    epoch: self.membership.epoch(),
                    request_id,
                    body,
                };
                let locker = self.gum.locker_id;
                self.send(locker, &Body::Gum(message));
            }
        }
    }

    pub(crate) fn on_gum_message(&mut self, from: u8, incarnation: u64, message: GumMessage) {
        // Input drops our own frames: what we tell ourselves as locker or member is a call
        // (`locker_accept`, `locker_on_applied`, `acknowledge_local`), never a message.
        debug_assert_ne!(from, self.me(), "a GUM message from ourselves");
        match message {
            GumMessage::Propose {
                request_id, body, ..
            } => {
                if self.gum.locker.is_some() && self.membership.members() & bit(from) != 0 {
                    self.locker_accept(from, incarnation, request_id, body);
                } else {
                    self.count_drop(Dropped::Unexpected);
                }
            }
            GumMessage::Commit { epoch, committed } => self.on_commit(from, epoch, committed),
            GumMessage::Applied {
                epoch,
                applied,
                valid,
            } => self.locker_on_applied(from, epoch, applied, valid),
            GumMessage::Ack {
                epoch,
                incarnation,
                request_id,
                sequence,
                rejected,
            } => {
                if incarnation == self.config().incarnation {
                    self.on_ack(from, epoch, request_id, sequence, rejected);
                } else {
                    self.count_drop(Dropped::Stale);
                }
            }
            GumMessage::Sync { epoch } => {
                if self.gum_member()
                    && epoch == self.membership.epoch()
                    && from == self.gum.locker_id
                {
                    self.gum.sync_asked = Some((from, epoch));
                    self.answer_sync();
                } else {
                    self.count_drop(Dropped::Stale);
                }
            }
            GumMessage::SyncReply { epoch, reply } => {
                self.takeover_on_sync_reply(from, epoch, reply)
            }
            GumMessage::SnapshotChunk {
                epoch,
                sequence,
                position,
                total,
                offset,
                bytes,
            } => self.on_snapshot_chunk(from, epoch, sequence, position, total, offset, bytes),
        }
    }

    /// Whether `from` speaks as the locker of our current stabilized epoch.
    fn is_from_current_locker(&mut self, from: u8, epoch: u64) -> bool {
        let current =
            self.gum_member() && epoch == self.membership.epoch() && from == self.gum.locker_id;
        if !current {
            self.count_drop(Dropped::Stale);
        }
        // The locker we listen to is a member of our epoch, and not us (we would not send).
        debug_assert!(
            !current
                || (self.membership.members() & bit(from) != 0 && from != self.me())
                || !self.gum_rules_intact(),
            "listening to a locker {from} outside the epoch"
        );
        current
    }

    fn on_commit(&mut self, from: u8, epoch: u64, committed: Committed) {
        if !self.is_from_current_locker(from, epoch) {
            return;
        }
        if committed.sequence > self.gum.replica.sequence && self.gum.pending.len() < PENDING_MAX {
            self.gum.pending.insert(committed.sequence, committed);
        }
        let before = self.gum.replica.sequence;
        self.apply_pending();
        // The reorder buffer is bounded, whatever a locker sends.
        debug_assert!(self.gum.pending.len() <= PENDING_MAX);
        if self.gum.replica.sequence != before {
            self.report_applied();
        }
    }

    /// Applies buffered commits while the next one in sequence is there.
    pub(crate) fn apply_pending(&mut self) {
        if !self.gum.valid {
            return;
        }
        loop {
            let next = self.gum.replica.sequence + 1;
            let Some(committed) = self.gum.pending.remove(&next) else {
                break;
            };
            self.apply_committed(committed);
        }
        let applied = self.gum.replica.sequence;
        self.gum.pending = self.gum.pending.split_off(&(applied + 1));
        // Nothing applicable is left waiting: what is buffered lies beyond a gap.
        debug_assert!(self
            .gum
            .pending
            .keys()
            .next()
            .is_none_or(|first| *first > applied + 1));
    }

    /// Applies one update in order, remembers it for retransmission, and tells the simulator.
    pub(crate) fn apply_committed(&mut self, committed: Committed) {
        // Log positions grow with sequences: an update never comes from a block before the
        // one of the update applied before it (a recovery starts from `applied_position`).
        debug_assert!(
            committed.position >= self.gum.applied_position || !self.gum_rules_intact(),
            "update {} from block {} after block {}",
            committed.sequence,
            committed.position,
            self.gum.applied_position
        );
        let outcome = self.gum.replica.apply(committed.sequence, &committed.entry);
        self.gum.applied_position = committed.position;
        let state_digest = if self.config().digest_every_update {
            self.gum.replica.digest()
        } else {
            0
        };
        self.emit(Event::GumApplied {
            sequence: committed.sequence,
            digest: committed.entry.digest(),
            state_digest,
            rejected: matches!(outcome, Outcome::Rejected(_)),
        });
        self.gum.retain(committed);
    }

    /// Tells the locker how far we applied.
    pub(crate) fn report_applied(&mut self) {
        if !self.gum_member() || self.gum.locker_id == 0 {
            return;
        }
        self.gum.last_applied_report_tick = self.now();
        let applied = self.gum.replica.sequence;
        let valid = self.gum.valid;
        // A replica that is not authoritative is the empty one: forgotten on leaving, before
        // any snapshot. Reporting progress from anything else would count updates a new locker
        // may have discarded.
        debug_assert!(valid || applied == 0, "an invalid replica at {applied}");
        if self.gum.locker_id == self.me() {
            let me = self.me();
            let epoch = self.membership.epoch();
            self.locker_on_applied(me, epoch, applied, valid);
        } else {
            let message = GumMessage::Applied {
                epoch: self.membership.epoch(),
                applied,
                valid,
            };
            let locker = self.gum.locker_id;
            self.send(locker, &Body::Gum(message));
        }
    }

    fn on_ack(&mut self, from: u8, epoch: u64, request_id: u64, sequence: u64, rejected: bool) {
        if self.is_from_current_locker(from, epoch) {
            // A locker acknowledges its own proposals without a message.
            debug_assert!(self.gum.locker_id != self.me() || !self.gum_rules_intact());
            self.acknowledge_local(request_id, sequence, rejected);
        }
    }

    /// Our proposal `request_id` is acknowledged (by the locker, possibly ourselves).
    pub(crate) fn acknowledge_local(&mut self, request_id: u64, sequence: u64, rejected: bool) {
        if self.gum.outbox.remove(&request_id).is_some() {
            // Removed from the outbox, so this is its only acknowledgement event.
            self.emit(Event::GumAcknowledged {
                request_id,
                sequence,
                rejected,
            });
        }
        // Every waiting proposal is one this incarnation handed out.
        debug_assert!(self
            .gum
            .outbox
            .keys()
            .next_back()
            .is_none_or(|last| *last < self.gum.next_request_id));
    }

    /// Answers a new locker's `Sync` once none of our log writes is in flight.
    pub(crate) fn answer_sync(&mut self) {
        let Some((locker, epoch)) = self.gum.sync_asked else {
            return;
        };
        if self.gum.log_writes_in_flight > 0
            || epoch != self.membership.epoch()
            || !self.gum_member()
        {
            return;
        }
        // Only this epoch's locker asks (`on_gum_message`), and a new epoch forgets the ask.
        debug_assert_eq!(
            locker, self.gum.locker_id,
            "a Sync answered to another locker"
        );
        self.gum.sync_asked = None;
        let reply = GumMessage::SyncReply {
            epoch,
            reply: self.own_sync_reply(),
        };
        self.send(locker, &Body::Gum(reply));
    }

    /// What this node tells a new locker about itself.
    pub(crate) fn own_sync_reply(&self) -> SyncReply {
        // We never wait for ourselves to be confirmed stopped; nor do we name a member.
        debug_assert!(
            self.gum.unresolved & bit(self.me()) == 0
                && (!self.gum_member() || self.gum.unresolved & self.membership.members() == 0),
            "unresolved lockers {:#x} include a member",
            self.gum.unresolved
        );
        SyncReply {
            applied: self.gum.replica.sequence,
            valid: self.gum.valid,
            unresolved: self.gum.unresolved,
            last_locker: self.gum.last_locker,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_snapshot_chunk(
        &mut self,
        from: u8,
        epoch: u64,
        sequence: u64,
        position: u64,
        total: u32,
        offset: u32,
        bytes: Vec<u8>,
    ) {
        if !self.is_from_current_locker(from, epoch) {
            return;
        }
        if self.gum.valid && sequence <= self.gum.replica.sequence {
            return;
        }
        let fresh = self
            .gum
            .snapshot_in
            .as_ref()
            .is_none_or(|incoming| incoming.sequence != sequence || incoming.total != total);
        if fresh {
            self.gum.snapshot_in = Some(IncomingSnapshot {
                sequence,
                position,
                total,
                chunks: Default::default(),
            });
        }
        let Some(incoming) = self.gum.snapshot_in.as_mut() else {
            return;
        };
        incoming.chunks.insert(offset, bytes);
        let received: usize = incoming.chunks.values().map(Vec::len).sum();
        if received < total as usize {
            return;
        }
        let Some(incoming) = self.gum.snapshot_in.take() else {
            return;
        };
        let mut assembled = Vec::with_capacity(total as usize);
        for (offset, chunk) in incoming.chunks {
            if offset as usize != assembled.len() {
                self.count_drop(Dropped::Unexpected);
                return;
            }
            assembled.extend_from_slice(&chunk);
        }
        // Chunks are checked to end within `total` (`wire.rs`) and were assembled without a
        // gap or overlap, so they make exactly `total` bytes.
        debug_assert_eq!(assembled.len(), total as usize);
        match Replica::from_snapshot(&assembled) {
            Ok(replica) if replica.sequence == sequence => {
                self.gum.replica = replica;
                self.gum.valid = true;
                self.gum.applied_position = incoming.position;
                self.gum.retained.clear();
                self.gum.pending = self.gum.pending.split_off(&(sequence + 1));
                self.emit(Event::GumSnapshotInstalled {
                    sequence,
                    state_digest: self.gum.replica.digest(),
                });
                self.apply_pending();
                self.report_applied();
            }
            _ => self.count_drop(Dropped::Unexpected),
        }
    }

    /// Every tick: retransmit proposals, report progress now and then, drive the locker.
    pub(crate) fn gum_tick(&mut self) {
        // Only this epoch's locker (once known) keeps locker state: a node that stops being
        // the locker drops it, so it can neither sequence nor write.
        debug_assert!(
            self.gum.locker.is_none()
                || self.gum.locker_id == self.me()
                || !self.gum_rules_intact(),
            "node {} keeps locker state while {} is the locker",
            self.me(),
            self.gum.locker_id
        );
        if self.gum_member() {
            self.send_proposals();
            if self.now()
                >= self.gum.last_applied_report_tick + self.timeouts().heartbeat_interval_ticks
            {
                self.report_applied();
            }
        }
        self.locker_tick();
    }

    /// A new stabilized epoch: who is the locker, and whether we must take over.
    pub(crate) fn gum_on_stabilized(&mut self, formed: bool) {
        let locker = crate::core::ids(self.membership.members())
            .next()
            .unwrap_or(0);
        let was_locker_before = self.gum.locker_id == self.me() && self.gum.locker.is_some();
        if self.gum.locker_id != 0 && self.gum.locker_id != locker {
            // The previous locker is not this epoch's: until a takeover confirms it stopped,
            // it may still write the log.
            if self.membership.members() & bit(self.gum.locker_id) == 0 {
                self.gum.unresolved |= bit(self.gum.locker_id);
            }
        }
        self.gum.last_locker = self.gum.locker_id;
        self.gum.locker_id = locker;
        self.gum.sync_asked = None;
        // Commits buffered from an earlier epoch's locker may be superseded by a takeover.
        self.gum.pending.clear();
        self.gum.snapshot_in = None;
        self.gum.unresolved &= !self.membership.members();
        if formed {
            // Forming read every slot twice around a lease expiry: no other node holds a
            // valid lease, so no earlier locker can still write.
            self.gum.unresolved = 0;
        }
        let keeps_sequencing = self.config().mutation == crate::core::Mutation::NoLockerSuccession
            && self
                .gum
                .locker
                .as_ref()
                .is_some_and(|locker| locker.ready());
        if locker == self.me() {
            self.locker_begin(formed, was_locker_before);
        } else if !keeps_sequencing {
            self.gum.locker = None;
        }
        // The locker of the epoch, and only it, holds locker state from now on.
        debug_assert!(
            self.gum.locker.is_some() == (locker == self.me()) || !self.gum_rules_intact(),
            "locker state on node {} while {locker} is the locker",
            self.me()
        );
        // Proposals in flight go to the new locker at once.
        for outgoing in self.gum.outbox.values_mut() {
            outgoing.last_sent_tick = None;
        }
        self.report_applied();
        self.send_proposals();
    }

    /// We left the membership: a later locker may discard what we applied beyond what others
    /// have (never acknowledged) and reuse those numbers, so our replica is no longer trusted.
    pub(crate) fn gum_on_left(&mut self) {
        // Forgotten only once out of the membership: no locker may count on us any longer.
        debug_assert!(
            !self.gum_member() && self.membership.members() == 0,
            "forgetting as a member"
        );
        self.gum.locker = None;
        self.gum.valid = false;
        self.gum.pending.clear();
        self.gum.retained.clear();
        self.gum.snapshot_in = None;
        self.gum.sync_asked = None;
        self.gum.replica = Replica::default();
        self.gum.applied_position = 0;
        self.emit(Event::GumReset);
    }
}
