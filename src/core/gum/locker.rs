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
        matches!(self.phase, Phase::Ready)
    }
}

impl Node {
    /// Becoming the locker of a new epoch: continue, or take over.
    pub(crate) fn locker_begin(&mut self, formed: bool, was_locker_before: bool) {
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
        self.gum_member() && self.own_lease.valid(self.now_ticks)
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
                self.dropped.stale += 1;
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
        self.locker_write();
    }

    /// Groups queued proposals into log blocks while the pipeline has room.
    pub(crate) fn locker_write(&mut self) {
        if !self.locker_may_write() {
            return;
        }
        let log_blocks = self.config.geometry.log_blocks();
        let covered_from = self.gum.checkpoint.log_position;
        let cluster_id = self.config.cluster_id;
        let epoch = self.epoch;
        loop {
            let Some(locker) = self.gum.locker.as_mut() else {
                return;
            };
            if !locker.ready()
                || locker.queue.is_empty()
                || locker.flights.len() >= LOG_WRITES_IN_FLIGHT_MAX
                // Never overwrite a block a checkpoint does not cover yet (FORMAT.md §10).
                || locker.next_position >= covered_from + log_blocks
            {
                break;
            }
            let position = locker.next_position;
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
            locker.next_position += 1;
            let block = builder
                .encode(cluster_id, position, epoch)
                .expect("a log block is filled only up to its capacity");
            locker.flights.insert(
                position,
                Flight {
                    entries,
                    block: block.clone(),
                    durable: false,
                    writing: true,
                    delivered: false,
                },
            );
            self.gum.log_writes_in_flight += 1;
            let offset = self.config.geometry.log_block_offset(position);
            self.disk_write_block(Purpose::GumLogWrite { position }, offset, block);
            if self.config.mutation == Mutation::AckBeforeLog {
                self.deliver_flight(position);
            }
        }
    }

    /// A log write finished.
    pub(crate) fn on_gum_log_written(&mut self, position: u64, ok: bool) {
        self.gum.log_writes_in_flight = self.gum.log_writes_in_flight.saturating_sub(1);
        if let Some(flight) = self
            .gum
            .locker
            .as_mut()
            .and_then(|locker| locker.flights.get_mut(&position))
        {
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
            let offset = self.config.geometry.log_block_offset(position);
            self.disk_write_block(Purpose::GumLogWrite { position }, offset, block);
        }
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
            if !flight.delivered {
                self.deliver_flight(position);
            }
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
        let Some(flight) = self
            .gum
            .locker
            .as_mut()
            .and_then(|locker| locker.flights.get_mut(&position))
        else {
            return;
        };
        flight.delivered = true;
        let entries = flight.entries.clone();
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
                epoch: self.epoch,
                committed,
            });
            self.send_all(self.members, &message);
        }
        let applied = self.gum.replica.sequence;
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
        if self.config.mutation == Mutation::AckBeforeLog {
            self.locker_acknowledge();
        }
    }

    /// A member reports how far it applied.
    pub(crate) fn locker_on_applied(&mut self, from: u8, epoch: u64, applied: u64, valid: bool) {
        if epoch != self.epoch || self.members & crate::core::bit(from) == 0 {
            self.dropped.stale += 1;
            return;
        }
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
        let members = self.members;
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
        let floor = if self.config.mutation == Mutation::AckBeforeLog {
            u64::MAX
        } else {
            everyone
        };
        let later = locker
            .awaiting_ack
            .split_off(&(floor.saturating_add(1), 0, 0, 0));
        let due = std::mem::replace(&mut locker.awaiting_ack, later);
        for ((sequence, origin, incarnation, request_id), rejected) in due {
            if origin == self.me() {
                if incarnation == self.config.incarnation {
                    self.acknowledge_local(request_id, sequence, rejected);
                }
            } else {
                let ack = GumMessage::Ack {
                    epoch: self.epoch,
                    incarnation,
                    request_id,
                    sequence,
                    rejected,
                };
                self.send(origin, &Body::Gum(ack));
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
        self.locker_retry_writes();
        self.locker_write();
        self.locker_retransmit();
        self.checkpoint_maybe();
    }

    fn locker_retransmit(&mut self) {
        let now = self.now_ticks;
        let applied = self.gum.replica.sequence;
        let me = self.me();
        let lagging: Vec<(u8, Progress)> = match self.gum.locker.as_ref() {
            Some(locker) => ids(self.members)
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
                    for committed in batch {
                        let message = Body::Gum(GumMessage::Commit {
                            epoch: self.epoch,
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
        let now = self.now_ticks;
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
        let bytes = self.gum.replica.snapshot_bytes();
        let Ok(total) = u32::try_from(bytes.len()) else {
            self.emit(Event::GumTrouble {
                what: "snapshot larger than 4 GiB",
            });
            return;
        };
        for (index, chunk) in bytes.chunks(SNAPSHOT_CHUNK_BYTES).enumerate() {
            let message = Body::Gum(GumMessage::SnapshotChunk {
                epoch: self.epoch,
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
