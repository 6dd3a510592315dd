//! The locker: accepts proposals (deduplicated, in request-id order per origin), groups them
//! into log blocks (several in flight), and once a block and every block before it are durable,
//! applies it, broadcasts it and, once every member applied it, acknowledges it. It retransmits
//! to lagging members and sends snapshots to members without a valid replica.

use std::collections::{BTreeMap, VecDeque};

use super::takeover::Takeover;
use super::wire::{GumMessage, SNAPSHOT_CHUNK_BYTES};
use super::{Committed, Entry, LOG_WRITES_IN_FLIGHT_MAX, OUTBOX_MAX};
use crate::core::db::LogBlockBuilder;
use crate::core::disk_records::BLOCK_SIZE;
use crate::core::message::Body;
use crate::core::node::{Node, Purpose};
use crate::core::{ids, Event, Mutation};

/// Ticks before re-sending commits to a member that made no progress.
const RETRANSMIT_TICKS: u64 = 3;
/// Commits re-sent to one member per retransmission.
const RETRANSMIT_BATCH: usize = 64;
/// Ticks between two snapshot transfers to one member.
const SNAPSHOT_RETRY_TICKS: u64 = 30;
// Bytes of a GUM entry's header inside a log payload (incarnation, request id): the one
// `Entry::to_log` writes.
use super::entry::HEADER_BYTES as ENTRY_HEADER_BYTES;
use crate::core::Dropped;

#[derive(Debug)]
pub(crate) enum Phase {
    /// Succession under way (`takeover.rs`): nothing is sequenced yet.
    TakingOver(Box<Takeover>),
    Ready,
}

/// One log block written and not yet delivered.
#[derive(Debug)]
pub(crate) struct Flight {
    pub entries: Vec<Committed>,
    pub block: Box<[u8; BLOCK_SIZE]>,
    pub durable: bool,
    pub writing: bool,
    /// Applied and broadcast already (only under the `ack-before-log` mutation).
    pub delivered: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    pub applied: u64,
    pub valid: bool,
    pub last_sent_tick: u64,
    pub last_snapshot_tick: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Locker {
    pub phase: Phase,
    pub next_sequence: u64,
    pub next_position: u64,
    pub queue: VecDeque<Entry>,
    /// Highest request id accepted (queued or beyond) per origin, with its incarnation.
    pub accepted: BTreeMap<u8, (u64, u64)>,
    /// Proposals that arrived ahead of their origin's next request id.
    pub early: BTreeMap<(u8, u64, u64), Vec<u8>>,
    pub flights: BTreeMap<u64, Flight>,
    pub progress: BTreeMap<u8, Progress>,
    /// Delivered updates waiting for every member: (sequence, origin, origin's incarnation,
    /// request id) → rejected.
    pub awaiting_ack: BTreeMap<(u64, u8, u64, u64), bool>,
    pub checkpoint_job: Option<super::checkpoint::CheckpointJob>,
}

impl Locker {
    pub fn new(phase: Phase) -> Locker {
        // A locker is born taking over: only `finish_recovery` makes it ready, with its first
        // sequence set above what it recovered. A ready locker built here would number from 0,
        // a sequence no commit may carry (`wire.rs` refuses it).
        debug_assert!(
            matches!(phase, Phase::TakingOver(_)),
            "a locker starts taking over"
        );
        Locker {
            phase,
            next_sequence: 0,
            next_position: 0,
            queue: VecDeque::new(),
            accepted: BTreeMap::new(),
            early: BTreeMap::new(),
            flights: BTreeMap::new(),
            progress: BTreeMap::new(),
            awaiting_ack: BTreeMap::new(),
            checkpoint_job: None,
        }
    }

    pub fn ready(&self) -> bool {
        let ready = matches!(self.phase, Phase::Ready);
        // Sequences start at 1: a ready locker has numbered past what it recovered.
        debug_assert!(
            !ready || self.next_sequence >= 1,
            "a ready locker numbers from 1"
        );
        ready
    }
}

impl Node {
    /// Becoming the locker of a new epoch: continue, or take over.
    pub(crate) fn locker_begin(&mut self, formed: bool, was_locker_before: bool) {
        // Only the locker of the epoch (its lowest member, chosen just before) begins.
        debug_assert_eq!(
            self.gum.locker_id,
            self.me(),
            "only this epoch's locker begins"
        );
        debug_assert!(
            self.membership.members() & crate::core::bit(self.me()) != 0,
            "the locker is a member of its epoch"
        );
        let continuing = was_locker_before
            && self.gum.valid
            && self.gum.locker.as_ref().is_some_and(Locker::ready);
        if continuing {
            // Members' progress starts anew: joiners report, others re-report.
            if let Some(locker) = self.gum.locker.as_mut() {
                locker.progress.clear();
            }
            return;
        }
        self.takeover_begin(formed);
    }

    /// Whether the locker may write the log now.
    fn locker_may_write(&self) -> bool {
        let may = self.gum_member() && self.own_lease.valid(self.now());
        // Only the locker of the current epoch writes the log (ARCHITECTURE.md): a locker state
        // left behind on a node that is no longer the locker must never pass this gate.
        debug_assert!(
            !may || self.gum.locker.is_none()
                || self.gum.locker_id == self.me()
                || !self.gum_rules_intact(),
            "a node writes the log only as its epoch's locker"
        );
        may
    }

    /// A proposal from `origin` (possibly ourselves).
    pub(crate) fn locker_accept(
        &mut self,
        origin: u8,
        incarnation: u64,
        request_id: u64,
        body: Vec<u8>,
    ) {
        let Some(locker) = self.gum.locker.as_mut() else {
            return;
        };
        if !locker.ready() || request_id == 0 {
            return;
        }
        let replica = &self.gum.replica;
        if let Some(record) = replica.origins.get(&origin) {
            if record.incarnation > incarnation {
                self.count_drop(Dropped::Stale);
                return;
            }
        }
        if let Some(sequence) = replica.committed(origin, incarnation, request_id) {
            // Committed before (its acknowledgement was lost): acknowledge once every member
            // has it.
            let rejected = replica
                .origins
                .get(&origin)
                .is_some_and(|record| record.request_id == request_id && record.rejected);
            locker
                .awaiting_ack
                .insert((sequence, origin, incarnation, request_id), rejected);
            self.locker_acknowledge();
            return;
        }
        let next_committed = replica.next_request(origin, incarnation);
        let expected = match locker.accepted.get(&origin) {
            Some((accepted_incarnation, accepted)) if *accepted_incarnation == incarnation => {
                (*accepted + 1).max(next_committed)
            }
            _ => next_committed,
        };
        if request_id < expected {
            return; // Already queued or in the log.
        }
        if request_id > expected {
            if request_id < expected + OUTBOX_MAX as u64 {
                locker.early.insert((origin, incarnation, request_id), body);
            }
            return;
        }
        // Per-origin order: what is queued now continues exactly where the origin's committed
        // and accepted requests end, never repeats one of them.
        debug_assert!(
            replica.committed(origin, incarnation, request_id).is_none(),
            "a committed request is acknowledged again, never queued again"
        );
        let previously_accepted = locker.accepted.get(&origin).copied();
        let mut next = request_id;
        let mut body = body;
        loop {
            locker.queue.push_back(Entry {
                origin,
                incarnation,
                request_id: next,
                body,
            });
            locker.accepted.insert(origin, (incarnation, next));
            next += 1;
            match locker.early.remove(&(origin, incarnation, next)) {
                Some(early) => body = early,
                None => break,
            }
        }
        debug_assert!(
            previously_accepted.is_none_or(|(accepted_incarnation, accepted)| accepted_incarnation
                != incarnation
                || accepted < request_id),
            "an origin's accepted request ids only grow within one incarnation"
        );
        debug_assert_eq!(
            locker.queue.back().map(|entry| entry.request_id),
            Some(next - 1),
            "the queue ends with the origin's last accepted request"
        );
        self.locker_write();
    }

    /// Groups queued proposals into log blocks while the pipeline has room.
    pub(crate) fn locker_write(&mut self) {
        if !self.locker_may_write() {
            return;
        }
        let log_blocks = self.config().geometry.log_blocks();
        let covered_from = self.gum.checkpoint.log_position;
        let cluster_id = self.config().cluster_id;
        let epoch = self.membership.epoch();
        loop {
            let Some(locker) = self.gum.locker.as_mut() else {
                return;
            };
            if !locker.ready()
                || locker.queue.is_empty()
                || locker.flights.len() >= LOG_WRITES_IN_FLIGHT_MAX
                // Never overwrite a block a checkpoint does not cover yet (FORMAT.md §10).
                // (A checkpoint's position is at most COUNTER_MAX: the sum cannot overflow.)
                || locker.next_position >= covered_from + log_blocks
            {
                break;
            }
            // Positions, sequences and epochs come from the disk, at most COUNTER_MAX each;
            // a log that reached the limit (a hostile disk) is not written, and every block's
            // sequences (fewer than BLOCK_SIZE) stay within it.
            let exhausted = !disklayout::is_counter(locker.next_position)
                || !disklayout::is_counter(epoch)
                || locker.next_sequence > disklayout::COUNTER_MAX - BLOCK_SIZE as u64;
            if exhausted {
                self.report_counter_limit(
                    "the log's positions, sequences or epoch reached 2^62-1: not written",
                );
                break;
            }
            let Some(locker) = self.gum.locker.as_mut() else {
                return;
            };
            let position = locker.next_position;
            // A block is written only where a checkpoint already covers what the ring would
            // overwrite (checked above), and never before the newest checkpoint's position: a
            // checkpoint starts only with no block in flight, from the next position on.
            debug_assert!(
                covered_from <= position && position < covered_from + log_blocks,
                "log block {position} outside the uncovered window from {covered_from}"
            );
            let first_sequence = locker.next_sequence;
            let mut entries = Vec::new();
            let mut builder = LogBlockBuilder::new();
            while let Some(entry) = locker.queue.front() {
                let payload_bytes = ENTRY_HEADER_BYTES + entry.body.len();
                if !builder.fits(payload_bytes) {
                    break;
                }
                let Some(entry) = locker.queue.pop_front() else {
                    break;
                };
                let committed = Committed {
                    sequence: locker.next_sequence,
                    position,
                    entry,
                };
                if builder
                    .try_push(committed.entry.to_log(committed.sequence))
                    .is_err()
                {
                    unreachable!("the update fits: checked just above");
                }
                entries.push(committed);
                locker.next_sequence += 1;
            }
            // The first queued update always fits an empty block (`PROPOSAL_BYTES_MAX` is
            // asserted to), so no block is written empty and the queue always drains; its
            // sequences continue the previous block's without a gap.
            debug_assert!(!entries.is_empty(), "a log block holds at least one update");
            debug_assert!(first_sequence >= 1, "sequences start at 1");
            debug_assert_eq!(
                entries.last().map(|committed| committed.sequence + 1),
                Some(locker.next_sequence),
                "a block's sequences are contiguous and end where numbering continues"
            );
            locker.next_position += 1;
            let block = builder
                .encode(cluster_id, position, epoch)
                .expect("a log block is filled only up to its capacity");
            let replaced = locker.flights.insert(
                position,
                Flight {
                    entries,
                    block: block.clone(),
                    durable: false,
                    writing: true,
                    delivered: false,
                },
            );
            // Positions only grow: a position in flight is never written with other updates.
            debug_assert!(replaced.is_none(), "log position {position} written twice");
            debug_assert!(locker.flights.len() <= LOG_WRITES_IN_FLIGHT_MAX);
            self.gum.log_writes_in_flight += 1;
            let offset = self.config().geometry.log_block_offset(position);
            self.disk_write_block(Purpose::GumLogWrite { position }, offset, block);
            if self.config().mutation == Mutation::AckBeforeLog {
                self.deliver_flight(position);
            }
        }
    }

    /// A log write finished.
    pub(crate) fn on_gum_log_written(&mut self, position: u64, ok: bool) {
        // Every completion answers a write this node counted when it issued it.
        debug_assert!(
            self.gum.log_writes_in_flight > 0,
            "a log write completes once"
        );
        self.gum.log_writes_in_flight = self.gum.log_writes_in_flight.saturating_sub(1);
        if let Some(flight) = self
            .gum
            .locker
            .as_mut()
            .and_then(|locker| locker.flights.get_mut(&position))
        {
            // One write per flight at a time: a block is retried only once its write failed,
            // and a takeover starts its flights only once no older write is in flight.
            debug_assert!(
                flight.writing && !flight.durable,
                "no write of {position} was due"
            );
            flight.writing = false;
            flight.durable = ok;
        }
        self.answer_sync();
        self.takeover_progress();
        self.locker_deliver();
        self.locker_retry_writes();
    }

    fn locker_retry_writes(&mut self) {
        if !self.locker_may_write() {
            return;
        }
        let retries: Vec<(u64, Box<[u8; BLOCK_SIZE]>)> = match self.gum.locker.as_mut() {
            Some(locker) => locker
                .flights
                .iter_mut()
                .filter(|(_, flight)| !flight.durable && !flight.writing)
                .map(|(position, flight)| {
                    flight.writing = true;
                    (*position, flight.block.clone())
                })
                .collect(),
            None => return,
        };
        for (position, block) in retries {
            self.gum.log_writes_in_flight += 1;
            let offset = self.config().geometry.log_block_offset(position);
            self.disk_write_block(Purpose::GumLogWrite { position }, offset, block);
        }
        // No block is left behind: each is durable or being written, so delivery cannot stall
        // on a block nobody writes.
        debug_assert!(self.gum.locker.as_ref().is_none_or(|locker| locker
            .flights
            .values()
            .all(|flight| flight.durable || flight.writing)));
    }

    /// Delivers durable blocks in position order.
    fn locker_deliver(&mut self) {
        loop {
            let Some(locker) = self.gum.locker.as_ref() else {
                return;
            };
            let Some((position, flight)) = locker.flights.iter().next() else {
                break;
            };
            if !flight.durable {
                break;
            }
            let position = *position;
            let last_sequence = flight
                .entries
                .last()
                .map_or(0, |committed| committed.sequence);
            if !flight.delivered {
                self.deliver_flight(position);
            }
            // Delivered in position order, once durable: by now this node applied the whole
            // block, so removing the flight forgets nothing not yet applied.
            debug_assert!(
                self.gum.replica.sequence >= last_sequence || !self.gum_rules_intact(),
                "block {position} removed before its updates were applied here"
            );
            if let Some(locker) = self.gum.locker.as_mut() {
                locker.flights.remove(&position);
            }
            self.checkpoint_maybe();
        }
        self.locker_acknowledge();
        self.locker_write();
    }

    /// Applies a block's updates here and broadcasts them.
    fn deliver_flight(&mut self, position: u64) {
        let ack_before_log = self.config().mutation == Mutation::AckBeforeLog;
        let Some(flight) = self
            .gum
            .locker
            .as_mut()
            .and_then(|locker| locker.flights.get_mut(&position))
        else {
            return;
        };
        // An update is applied and broadcast only once durable (the `ack-before-log` mutation
        // breaks exactly this), and only once: a second delivery would broadcast it again.
        debug_assert!(
            flight.durable || ack_before_log,
            "block {position} delivered before it was durable"
        );
        debug_assert!(!flight.delivered, "block {position} delivered twice");
        flight.delivered = true;
        let entries = flight.entries.clone();
        let last_sequence = entries.last().map_or(0, |committed| committed.sequence);
        for committed in entries {
            if committed.sequence != self.gum.replica.sequence + 1 {
                // Out of order can only happen under a mutation; the checker reports it.
                continue;
            }
            let origin = committed.entry.origin;
            let incarnation = committed.entry.incarnation;
            let request_id = committed.entry.request_id;
            let sequence = committed.sequence;
            self.apply_committed(committed.clone());
            let rejected = self
                .gum
                .replica
                .origins
                .get(&origin)
                .is_some_and(|record| record.sequence == sequence && record.rejected);
            if let Some(locker) = self.gum.locker.as_mut() {
                if request_id != 0 {
                    locker
                        .awaiting_ack
                        .insert((sequence, origin, incarnation, request_id), rejected);
                }
            }
            let message = Body::Gum(GumMessage::Commit {
                epoch: self.membership.epoch(),
                committed,
            });
            self.send_all(self.membership.members(), &message);
        }
        let applied = self.gum.replica.sequence;
        // Blocks are delivered in position order, so the block's updates are exactly the next
        // ones: the replica now ends with its last.
        debug_assert!(
            applied == last_sequence || !self.gum_rules_intact(),
            "block {position} ends at {last_sequence}, the replica at {applied}"
        );
        let me = self.me();
        if let Some(progress) = self
            .gum
            .locker
            .as_mut()
            .map(|locker| locker.progress.entry(me).or_default())
        {
            progress.applied = applied;
            progress.valid = true;
        }
        if self.config().mutation == Mutation::AckBeforeLog {
            self.locker_acknowledge();
        }
    }

    /// A member reports how far it applied.
    pub(crate) fn locker_on_applied(&mut self, from: u8, epoch: u64, applied: u64, valid: bool) {
        if epoch != self.membership.epoch()
            || self.membership.members() & crate::core::bit(from) == 0
        {
            self.count_drop(Dropped::Stale);
            return;
        }
        // Our own report is our replica as it is: the locker counts itself like any member.
        debug_assert!(
            from != self.me() || (applied == self.gum.replica.sequence && valid == self.gum.valid),
            "the locker's report about itself is its replica"
        );
        let Some(locker) = self.gum.locker.as_mut() else {
            return;
        };
        let progress = locker.progress.entry(from).or_default();
        if valid && (!progress.valid || applied > progress.applied) {
            progress.last_sent_tick = 0;
        }
        progress.applied = if valid { applied } else { 0 };
        progress.valid = valid;
        self.locker_acknowledge();
    }

    /// Acknowledges every delivered update every member has applied.
    pub(crate) fn locker_acknowledge(&mut self) {
        let members = self.membership.members();
        let ack_before_log = self.config().mutation == Mutation::AckBeforeLog;
        let Some(locker) = self.gum.locker.as_mut() else {
            return;
        };
        let everyone = ids(members)
            .map(|id| {
                locker
                    .progress
                    .get(&id)
                    .filter(|progress| progress.valid)
                    .map_or(0, |progress| progress.applied)
            })
            .min()
            .unwrap_or(0);
        let floor = if ack_before_log { u64::MAX } else { everyone };
        let later = locker
            .awaiting_ack
            .split_off(&(floor.saturating_add(1), 0, 0, 0));
        let due = std::mem::replace(&mut locker.awaiting_ack, later);
        if cfg!(debug_assertions) && self.gum_rules_intact() {
            self.assert_acknowledgeable(&due);
        }
        for ((sequence, origin, incarnation, request_id), rejected) in due {
            if origin == self.me() {
                if incarnation == self.config().incarnation {
                    self.acknowledge_local(request_id, sequence, rejected);
                }
            } else {
                let ack = GumMessage::Ack {
                    epoch: self.membership.epoch(),
                    incarnation,
                    request_id,
                    sequence,
                    rejected,
                };
                self.send(origin, &Body::Gum(ack));
            }
        }
    }

    /// The local check behind every acknowledgement (ARCHITECTURE.md: "an update is
    /// acknowledged only once durable and applied by every member"), against the state that
    /// records each part, independently of how `locker_acknowledge` chose what is due:
    /// - durable: the locker keeps every block whose write has not completed in `flights`
    ///   (`durable: false`) and removes a block only once it and every block before it are
    ///   durable. Sequences grow with positions, so nothing at or above the first sequence of
    ///   a block not yet durable may be acknowledged; an update in no flight was delivered
    ///   from a durable block, or recovered from the log itself.
    /// - applied here: the locker's replica is past it.
    /// - applied by every member: the locker's record of each member (`progress`) is valid
    ///   and reaches it; a member without a record has applied nothing as far as we know.
    fn assert_acknowledgeable(&self, due: &BTreeMap<(u64, u8, u64, u64), bool>) {
        let Some(locker) = self.gum.locker.as_ref() else {
            return;
        };
        let undurable_from = locker
            .flights
            .values()
            .filter(|flight| !flight.durable)
            .filter_map(|flight| flight.entries.first())
            .map(|committed| committed.sequence)
            .min()
            .unwrap_or(u64::MAX);
        for &(sequence, origin, _, request_id) in due.keys() {
            assert!(
                request_id != 0,
                "a barrier (sequence {sequence}) is never acknowledged"
            );
            assert!(
                sequence < undurable_from,
                "sequence {sequence} of node {origin} acknowledged before its block was durable"
            );
            assert!(
                sequence <= self.gum.replica.sequence,
                "sequence {sequence} acknowledged before the locker applied it"
            );
            for member in ids(self.membership.members()) {
                let applied = locker
                    .progress
                    .get(&member)
                    .filter(|progress| progress.valid)
                    .map(|progress| progress.applied);
                assert!(
                    applied.is_some_and(|applied| applied >= sequence),
                    "sequence {sequence} acknowledged before member {member} applied it \
                     (it reports {applied:?})"
                );
            }
        }
    }

    /// Every tick: takeover steps, writes, retransmissions, snapshots, checkpoints.
    pub(crate) fn locker_tick(&mut self) {
        if self.gum.locker.is_none() {
            return;
        }
        self.takeover_progress();
        if !self.gum.locker.as_ref().is_some_and(Locker::ready) || !self.gum_member() {
            return;
        }
        // A ready locker serves from an authoritative replica: it recovered one, and leaving
        // the membership drops the locker along with the replica.
        debug_assert!(self.gum.valid, "a ready locker has a valid replica");
        self.locker_retry_writes();
        self.locker_write();
        self.locker_retransmit();
        self.checkpoint_maybe();
    }

    fn locker_retransmit(&mut self) {
        let now = self.now();
        let applied = self.gum.replica.sequence;
        let me = self.me();
        let lagging: Vec<(u8, Progress)> = match self.gum.locker.as_ref() {
            Some(locker) => ids(self.membership.members())
                .filter(|id| *id != me)
                .map(|id| (id, locker.progress.get(&id).copied().unwrap_or_default()))
                .filter(|(_, progress)| !progress.valid || progress.applied < applied)
                .filter(|(_, progress)| now >= progress.last_sent_tick + RETRANSMIT_TICKS)
                .collect(),
            None => return,
        };
        for (member, progress) in lagging {
            let from_retained: Option<Vec<Committed>> = if progress.valid {
                self.gum
                    .retained_from(progress.applied + 1)
                    .map(|iter| iter.take(RETRANSMIT_BATCH).cloned().collect())
            } else {
                None
            };
            if let Some(locker) = self.gum.locker.as_mut() {
                if let Some(entry) = locker.progress.get_mut(&member) {
                    entry.last_sent_tick = now;
                }
            }
            match from_retained {
                Some(batch) => {
                    // What is retained is contiguous: the batch starts right after what the
                    // member applied and never goes past what we applied.
                    debug_assert!(
                        batch.iter().enumerate().all(|(index, committed)| {
                            committed.sequence == progress.applied + 1 + index as u64
                                && committed.sequence <= applied
                        }),
                        "retransmission to {member} is not the next contiguous updates"
                    );
                    for committed in batch {
                        let message = Body::Gum(GumMessage::Commit {
                            epoch: self.membership.epoch(),
                            committed,
                        });
                        self.send(member, &message);
                    }
                }
                None => self.send_snapshot(member, progress),
            }
        }
    }

    fn send_snapshot(&mut self, member: u8, progress: Progress) {
        let now = self.now();
        if progress
            .last_snapshot_tick
            .is_some_and(|sent| now < sent + SNAPSHOT_RETRY_TICKS)
        {
            return;
        }
        if let Some(entry) = self
            .gum
            .locker
            .as_mut()
            .and_then(|locker| locker.progress.get_mut(&member))
        {
            entry.last_snapshot_tick = Some(now);
        } else if let Some(locker) = self.gum.locker.as_mut() {
            locker.progress.insert(
                member,
                Progress {
                    last_snapshot_tick: Some(now),
                    last_sent_tick: now,
                    ..Progress::default()
                },
            );
        }
        // A snapshot is a copy of an authoritative replica only (the locker is ready).
        debug_assert!(
            self.gum.valid,
            "snapshot of a replica that is not authoritative"
        );
        let bytes = self.gum.replica.snapshot_bytes();
        let Ok(total) = u32::try_from(bytes.len()) else {
            self.emit(Event::GumTrouble {
                what: "snapshot larger than 4 GiB",
            });
            return;
        };
        for (index, chunk) in bytes.chunks(SNAPSHOT_CHUNK_BYTES).enumerate() {
            let message = Body::Gum(GumMessage::SnapshotChunk {
                epoch: self.membership.epoch(),
                sequence: self.gum.replica.sequence,
                position: self.gum.applied_position,
                total,
                offset: (index * SNAPSHOT_CHUNK_BYTES) as u32,
                bytes: chunk.to_vec(),
            });
            self.send(member, &message);
        }
    }
}
