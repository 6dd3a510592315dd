//! Locker succession and recovery from the shared disk (see `gum/mod.rs` for the why).
//!
//! Steps: `Sync` every member (each answers once it has no log write in flight) → confirm every
//! earlier locker that is not a member stopped (fenced or lease expired, `observe.rs`) → read
//! the checkpoint headers, the newest checkpoint's payload if we need it, then the log from
//! what we know to its end → adopt what some member applied (everything, for a former or when
//! no member has a valid replica), discard the rest, and write a barrier if we discarded.
//!
//! The log ends at the first block that is empty, corrupt, torn, of another cluster, at another
//! position (a ring that wrapped), or of an epoch below its predecessor's: an orphan that an
//! earlier locker wrote beyond a block that never became durable.

use std::collections::BTreeMap;

use super::locker::{Locker, Phase};
use super::replica::Replica;
use super::wire::{GumMessage, SyncReply};
use super::{CheckpointKnown, Committed, Entry, RECOVERY_READS_IN_FLIGHT_MAX};
use crate::core::disk_records::{
    self, CheckpointHeader, DuplicateRule, LogBlock, LogReplayer, ReplayStep, Sealed, Unreadable,
    BLOCK_SIZE,
};
use crate::core::message::Body;
use crate::core::node::{Node, Purpose};
use crate::core::Dropped;
use crate::core::{bit, ids, Event, Mutation};

/// A checkpoint header as a read found it: `Ok(None)` for an empty block or another cluster's.
type HeaderRead = Result<Option<Sealed<CheckpointHeader>>, Unreadable>;

/// Ticks between two `Sync` requests to members that did not answer.
const SYNC_RETRY_TICKS: u64 = 10;
/// Ticks a failed recovery waits before it starts again.
const RECOVERY_RETRY_TICKS: u64 = 100;

#[derive(Debug)]
pub(crate) enum Step {
    Sync {
        replies: BTreeMap<u8, SyncReply>,
        last_asked_tick: Option<u64>,
    },
    Resolve {
        required: u64,
    },
    Headers {
        headers: [Option<HeaderRead>; 2],
    },
    Payload {
        slot: usize,
        header: Sealed<CheckpointHeader>,
        blocks: BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>,
        fallback: Option<(usize, Sealed<CheckpointHeader>)>,
    },
    Log {
        start: u64,
        next_read: u64,
        reads_in_flight: u64,
        blocks: BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>,
        replayer: Box<LogReplayer>,
    },
    Failed {
        since_tick: u64,
    },
}

#[derive(Debug)]
pub(crate) struct Takeover {
    pub attempt: u64,
    pub formed: bool,
    /// Highest sequence a member applied (`None`: adopt the whole log).
    pub adopt_up_to: Option<u64>,
    pub step: Step,
    /// The replica we recover into (a checkpoint may replace ours).
    pub base: Option<Replica>,
    pub base_position: u64,
}

/// What the disk read was for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RecoveryRead {
    Header { slot: usize },
    Payload { index: u64 },
    Log { position: u64 },
}

impl Node {
    pub(crate) fn takeover_begin(&mut self, formed: bool) {
        // Only this epoch's locker takes over (a retry after a failure included: a node that
        // stops being the locker drops its locker state, and with it the failed takeover).
        debug_assert_eq!(
            self.gum.locker_id,
            self.me(),
            "only the epoch's locker takes over"
        );
        self.gum.takeover_attempts += 1;
        let takeover = Takeover {
            attempt: self.gum.takeover_attempts,
            formed,
            adopt_up_to: None,
            step: Step::Sync {
                replies: BTreeMap::new(),
                last_asked_tick: None,
            },
            base: None,
            base_position: 0,
        };
        self.gum.locker = Some(Locker::new(Phase::TakingOver(Box::new(takeover))));
        self.emit(Event::GumLocker {
            epoch: self.membership.epoch(),
            ready: false,
        });
        self.takeover_progress();
    }

    fn takeover(&mut self) -> Option<&mut Takeover> {
        let attempts = self.gum.takeover_attempts;
        match self.gum.locker.as_mut().map(|locker| &mut locker.phase) {
            Some(Phase::TakingOver(takeover)) => {
                // Only the latest attempt is under way: a read answered for an older one is
                // told apart by this number (`on_recovery_read`).
                debug_assert_eq!(takeover.attempt, attempts, "a stale takeover is under way");
                Some(takeover)
            }
            _ => None,
        }
    }

    pub(crate) fn takeover_on_sync_reply(&mut self, from: u8, epoch: u64, reply: SyncReply) {
        if epoch != self.membership.epoch() || self.membership.members() & bit(from) == 0 {
            self.count_drop(Dropped::Stale);
            return;
        }
        let members = self.membership.members();
        if let Some(Step::Sync { replies, .. }) = self.takeover().map(|takeover| &mut takeover.step)
        {
            replies.insert(from, reply);
            // What decides the adoption comes from members of this epoch only.
            debug_assert!(replies.keys().all(|id| members & bit(*id) != 0));
        }
        self.takeover_progress();
    }

    /// Advances the takeover as far as what we know allows.
    pub(crate) fn takeover_progress(&mut self) {
        // While taking over, the locker sequences nothing: no proposal is queued, no block in
        // flight, nothing awaits an acknowledgement (all start once the log is recovered).
        debug_assert!(self.gum.locker.as_ref().is_none_or(|locker| locker.ready()
            || (locker.queue.is_empty()
                && locker.flights.is_empty()
                && locker.awaiting_ack.is_empty())));
        for _ in 0..4 {
            if !self.gum_member() {
                return;
            }
            let Some(takeover) = self.takeover() else {
                return;
            };
            let before = std::mem::discriminant(&takeover.step);
            self.takeover_step();
            let Some(takeover) = self.takeover() else {
                return;
            };
            if std::mem::discriminant(&takeover.step) == before {
                return;
            }
        }
    }

    fn takeover_step(&mut self) {
        let now = self.now();
        let me = self.me();
        let members = self.membership.members();
        let own = self.own_sync_reply();
        let writes_in_flight = self.gum.log_writes_in_flight;
        let mutation = self.config().mutation;
        let epoch = self.membership.epoch();
        let Some(takeover) = self.takeover() else {
            return;
        };
        match &mut takeover.step {
            Step::Sync {
                replies,
                last_asked_tick,
            } => {
                if writes_in_flight == 0 {
                    replies.insert(me, own);
                }
                let missing = members & !replies.keys().fold(0, |set, id| set | bit(*id));
                if missing != 0 {
                    if last_asked_tick.is_none_or(|asked| now >= asked + SYNC_RETRY_TICKS) {
                        *last_asked_tick = Some(now);
                        self.send_all(missing, &Body::Gum(GumMessage::Sync { epoch }));
                    }
                    return;
                }
                let valid: Vec<u64> = replies
                    .values()
                    .filter(|reply| reply.valid)
                    .map(|reply| reply.applied)
                    .collect();
                let formed = takeover.formed;
                takeover.adopt_up_to = if formed || valid.is_empty() {
                    None
                } else if mutation == Mutation::GumNoReplay {
                    Some(own.applied)
                } else {
                    valid.iter().copied().max()
                };
                // The new locker never adopts less than it applied itself: our own reply is
                // among those (it waited for our writes), so a half-done broadcast we applied
                // is completed, never discarded.
                debug_assert!(
                    replies.contains_key(&me)
                        && (!own.valid
                            || takeover
                                .adopt_up_to
                                .is_none_or(|limit| limit >= own.applied)),
                    "the new locker adopts at least what it applied"
                );
                let mut required = 0;
                for reply in replies.values() {
                    required |= reply.unresolved;
                    if reply.last_locker != 0 {
                        required |= bit(reply.last_locker);
                    }
                }
                if formed {
                    required = 0;
                }
                required &= !members;
                if mutation == Mutation::NoLockerSuccession {
                    required = 0;
                }
                takeover.step = Step::Resolve { required };
            }
            Step::Resolve { required } => {
                let required = *required;
                let mut waiting = 0;
                for peer in ids(required) {
                    if !self.confirmed_stopped(peer) {
                        self.observe(peer);
                        waiting |= bit(peer);
                    }
                }
                if waiting != 0 {
                    return;
                }
                // No write of ours can still land on the log we are about to read: our own
                // `Sync` answer waited for them, and a locker not ready writes nothing.
                debug_assert!(
                    self.gum.log_writes_in_flight == 0 || !self.gum_rules_intact(),
                    "the log is read while a write of ours is in flight"
                );
                self.gum.unresolved = 0;
                if let Some(takeover) = self.takeover() {
                    takeover.step = Step::Headers {
                        headers: [None, None],
                    };
                }
                self.recovery_read(RecoveryRead::Header { slot: 0 });
                self.recovery_read(RecoveryRead::Header { slot: 1 });
            }
            Step::Headers { headers } => {
                let [Some(a), Some(b)] = headers.clone() else {
                    return;
                };
                self.choose_checkpoint(a, b);
            }
            Step::Payload { .. } => self.finish_payload(),
            Step::Log { .. } => self.process_log(),
            Step::Failed { since_tick } => {
                if now >= *since_tick + RECOVERY_RETRY_TICKS {
                    let formed = takeover.formed;
                    self.takeover_begin(formed);
                }
            }
        }
    }

    fn recovery_read(&mut self, what: RecoveryRead) {
        let Some(attempt) = self.takeover().map(|takeover| takeover.attempt) else {
            return;
        };
        let geometry = self.config().geometry;
        let offset = match what {
            RecoveryRead::Header { slot } => geometry.checkpoint_offset(slot),
            RecoveryRead::Payload { index } => {
                let slot = match self.takeover().map(|takeover| &takeover.step) {
                    Some(Step::Payload { slot, .. }) => *slot,
                    _ => return,
                };
                // Payload blocks follow the header block, inside the slot.
                debug_assert!(
                    index >= 1 && index < geometry.checkpoint_region(slot).blocks,
                    "payload block {index} outside checkpoint slot {slot}"
                );
                geometry.checkpoint_region(slot).block_offset(index)
            }
            RecoveryRead::Log { position } => {
                // Log reads stay within one turn of the ring from where the replay starts.
                debug_assert!(
                    matches!(
                        self.takeover().map(|takeover| &takeover.step),
                        Some(Step::Log { start, .. })
                            if *start <= position && position < start + geometry.log_blocks()
                    ),
                    "log read at {position} outside the replay window"
                );
                geometry.log_block_offset(position)
            }
        };
        self.disk_read(Purpose::GumRecoveryRead { attempt, what }, offset);
    }

    /// A recovery read finished (`None`: the read failed and is retried).
    pub(crate) fn on_recovery_read(
        &mut self,
        attempt: u64,
        what: RecoveryRead,
        block: Option<&[u8; BLOCK_SIZE]>,
    ) {
        let cluster_id = self.config().cluster_id;
        let current = self
            .takeover()
            .is_some_and(|takeover| takeover.attempt == attempt);
        if !current {
            return;
        }
        let Some(block) = block else {
            self.recovery_read(what);
            return;
        };
        let Some(takeover) = self.takeover() else {
            return;
        };
        match (what, &mut takeover.step) {
            (RecoveryRead::Header { slot }, Step::Headers { headers }) => {
                let decoded = match disk_records::decode::<CheckpointHeader>(&block[..]) {
                    Ok(Some(sealed)) if sealed.cluster_id == cluster_id => Ok(Some(sealed)),
                    Ok(_) => Ok(None),
                    Err(_) => Err(Unreadable),
                };
                headers[slot] = Some(decoded);
            }
            (RecoveryRead::Payload { index }, Step::Payload { blocks, .. }) => {
                blocks.insert(index, Box::new(*block));
            }
            (
                RecoveryRead::Log { position },
                Step::Log {
                    blocks,
                    reads_in_flight,
                    ..
                },
            ) => {
                // A completion answers one read of this attempt, issued and counted once.
                debug_assert!(*reads_in_flight > 0, "log read {position} answered twice");
                *reads_in_flight -= 1;
                let earlier = blocks.insert(position, Box::new(*block));
                debug_assert!(earlier.is_none(), "log block {position} read twice");
            }
            _ => return,
        }
        self.takeover_progress();
    }

    /// Picks the newest valid checkpoint; loads it if our replica is behind it.
    fn choose_checkpoint(&mut self, a: HeaderRead, b: HeaderRead) {
        // Called once both headers are read, and before the replay has a base.
        debug_assert!(matches!(
            self.takeover()
                .map(|takeover| (&takeover.step, takeover.base.is_none())),
            Some((
                Step::Headers {
                    headers: [Some(_), Some(_)]
                },
                true
            ))
        ));
        let mut valid: Vec<(usize, Sealed<CheckpointHeader>)> = [a, b]
            .into_iter()
            .enumerate()
            .filter_map(|(slot, header)| header.ok().flatten().map(|header| (slot, header)))
            .collect();
        valid.sort_by_key(|(_, header)| std::cmp::Reverse(header.sequence));
        let newest = valid.first().cloned();
        let fallback = valid.get(1).cloned();
        let ours_valid = self.gum.valid;
        let ours = self.gum.replica.sequence;
        match newest {
            Some((slot, header)) if !ours_valid || header.record.database_sequence > ours => {
                self.start_payload(slot, header, fallback);
            }
            Some((slot, header)) => {
                self.gum.checkpoint = known(slot, &header);
                let start = self.gum.applied_position.max(header.record.log_position);
                let base = self.gum.replica.clone();
                self.start_log(base, start);
            }
            None => {
                self.gum.checkpoint = CheckpointKnown::default();
                let (base, start) = if ours_valid {
                    (self.gum.replica.clone(), self.gum.applied_position)
                } else {
                    (Replica::default(), 0)
                };
                self.start_log(base, start);
            }
        }
    }

    fn start_payload(
        &mut self,
        slot: usize,
        header: Sealed<CheckpointHeader>,
        fallback: Option<(usize, Sealed<CheckpointHeader>)>,
    ) {
        // The fallback is the other slot, tried at most once: recovery cannot loop on one slot.
        debug_assert!(slot < 2 && fallback.as_ref().is_none_or(|(other, _)| *other != slot));
        let blocks_needed = header.record.payload_bytes.div_ceil(BLOCK_SIZE as u64);
        let capacity = self.config().geometry.checkpoint_region(slot).blocks - 1;
        if blocks_needed > capacity {
            self.checkpoint_unusable(slot, fallback, "payload larger than its slot");
            return;
        }
        if let Some(takeover) = self.takeover() {
            takeover.step = Step::Payload {
                slot,
                header,
                blocks: BTreeMap::new(),
                fallback,
            };
        }
        for index in 1..=blocks_needed {
            self.recovery_read(RecoveryRead::Payload { index });
        }
        self.finish_payload();
    }

    fn finish_payload(&mut self) {
        let Some(takeover) = self.takeover() else {
            return;
        };
        let Step::Payload {
            slot,
            header,
            blocks,
            fallback,
        } = &takeover.step
        else {
            return;
        };
        let needed = header.record.payload_bytes.div_ceil(BLOCK_SIZE as u64);
        // Only the payload blocks asked for are kept, so counting them tells when all are in.
        debug_assert!(blocks.keys().all(|index| (1..=needed).contains(index)));
        if (blocks.len() as u64) < needed {
            return;
        }
        let (slot, header, fallback) = (*slot, header.clone(), fallback.clone());
        let mut payload = Vec::with_capacity(header.record.payload_bytes as usize);
        for block in blocks.values() {
            payload.extend_from_slice(&block[..]);
        }
        payload.truncate(header.record.payload_bytes as usize);
        if disk_records::payload_crc32(&payload) != header.record.payload_crc32 {
            self.checkpoint_unusable(slot, fallback, "payload CRC mismatch");
            return;
        }
        match Replica::from_snapshot(&payload) {
            Ok(replica) if replica.sequence == header.record.database_sequence => {
                self.gum.checkpoint = known(slot, &header);
                self.start_log(replica, header.record.log_position);
            }
            Ok(_) => self.checkpoint_unusable(slot, fallback, "sequence differs from its header"),
            Err(_) => self.checkpoint_unusable(slot, fallback, "payload does not decode"),
        }
    }

    fn checkpoint_unusable(
        &mut self,
        slot: usize,
        fallback: Option<(usize, Sealed<CheckpointHeader>)>,
        why: &'static str,
    ) {
        // Falling back to the same slot would read it again and again.
        debug_assert!(fallback.as_ref().is_none_or(|(other, _)| *other != slot));
        self.emit(Event::GumRecovery {
            what: "checkpoint unusable, trying the other slot",
            detail: why,
            value: slot as u64,
        });
        match fallback {
            Some((slot, header)) => self.start_payload(slot, header, None),
            None => self.recovery_failed("no usable checkpoint"),
        }
    }

    fn recovery_failed(&mut self, why: &'static str) {
        // Only a takeover under way fails; a ready locker is never sent back.
        debug_assert!(
            matches!(
                self.gum.locker.as_ref().map(|locker| &locker.phase),
                Some(Phase::TakingOver(_))
            ),
            "recovery failed outside a takeover: {why}"
        );
        self.emit(Event::GumRecovery {
            what: "recovery refused",
            detail: why,
            value: 0,
        });
        let now = self.now();
        if let Some(takeover) = self.takeover() {
            takeover.step = Step::Failed { since_tick: now };
        }
    }

    fn start_log(&mut self, base: Replica, start: u64) {
        // The replay builds on the checkpoint it starts from, or on something newer, and never
        // reads before the checkpoint's position (the ring may have reused those blocks).
        debug_assert!(
            base.sequence >= self.gum.checkpoint.sequence
                && start >= self.gum.checkpoint.log_position,
            "replay from {start} at sequence {} below the checkpoint {:?}",
            base.sequence,
            self.gum.checkpoint
        );
        let ring = self.config().geometry.log_blocks();
        let rule = if self.config().mutation == Mutation::ReplayKeepsDuplicate {
            DuplicateRule::EarlierWins
        } else {
            DuplicateRule::LaterWins
        };
        let replayer = LogReplayer::new(start, ring, self.config().cluster_id, rule);
        let Some(takeover) = self.takeover() else {
            return;
        };
        takeover.base = Some(base);
        takeover.base_position = start;
        takeover.step = Step::Log {
            start,
            next_read: start,
            reads_in_flight: 0,
            blocks: BTreeMap::new(),
            replayer: Box::new(replayer),
        };
        self.process_log();
    }

    /// Feeds log blocks to the replayer in position order (FORMAT.md §10: it ends the log and
    /// applies the duplicate rule); keeps the read window full.
    fn process_log(&mut self) {
        let ring = self.config().geometry.log_blocks();
        let Some(takeover) = self.takeover() else {
            return;
        };
        let Step::Log {
            start,
            next_read,
            reads_in_flight,
            blocks,
            replayer,
        } = &mut takeover.step
        else {
            return;
        };
        while let Some(position) = replayer.next_position() {
            let Some(block) = blocks.remove(&position) else {
                break;
            };
            let decoded = disk_records::decode::<LogBlock>(&block[..]);
            if let ReplayStep::Ended(_) = replayer.feed(position, &decoded) {
                break;
            }
        }
        let mut reads = Vec::new();
        if replayer.next_position().is_some() {
            while *reads_in_flight < RECOVERY_READS_IN_FLIGHT_MAX && *next_read - *start < ring {
                reads.push(*next_read);
                *next_read += 1;
                *reads_in_flight += 1;
            }
        }
        // The read window: a bounded number in flight, and never more than one turn of the ring.
        debug_assert!(
            *reads_in_flight <= RECOVERY_READS_IN_FLIGHT_MAX && *next_read - *start <= ring
        );
        let done = replayer.next_position().is_none() && *reads_in_flight == 0;
        for position in reads {
            self.recovery_read(RecoveryRead::Log { position });
        }
        if done {
            self.finish_recovery();
        }
    }

    fn finish_recovery(&mut self) {
        let Some(takeover) = self.takeover() else {
            return;
        };
        let Step::Log { replayer, .. } = &mut takeover.step else {
            return;
        };
        let replayer = std::mem::replace(
            replayer,
            Box::new(LogReplayer::new(0, 1, 0, DuplicateRule::LaterWins)),
        );
        let replay = replayer.finish();
        let end = replay.next_position;
        let duplicates = replay.discarded as u64;
        let adopt_up_to = takeover.adopt_up_to;
        let Some(base) = takeover.base.take() else {
            return;
        };
        let base_position = takeover.base_position;
        let base_sequence = base.sequence;
        let mut beyond = Vec::new();
        for (update, position) in replay.updates.iter().zip(&replay.positions) {
            if update.sequence <= base_sequence {
                continue;
            }
            let Some(entry) = Entry::from_log(update) else {
                self.recovery_failed("a log update is not a global update entry");
                return;
            };
            beyond.push(Committed {
                sequence: update.sequence,
                position: *position,
                entry,
            });
        }
        let contiguous = beyond
            .iter()
            .enumerate()
            // A base sequence is at most COUNTER_MAX, the index below a ring's updates.
            .all(|(index, committed)| committed.sequence == base_sequence + 1 + index as u64);
        if !contiguous {
            self.recovery_failed("sequence gap in the log");
            return;
        }
        let replaced = base_sequence != self.gum.replica.sequence || !self.gum.valid;
        if replaced {
            self.gum.replica = base;
            self.gum.valid = true;
            self.gum.applied_position = base_position;
            self.gum.retained.clear();
            self.emit(Event::GumSnapshotInstalled {
                sequence: base_sequence,
                state_digest: self.gum.replica.digest(),
            });
        }
        let limit = adopt_up_to.unwrap_or(u64::MAX);
        let mut discarded = 0;
        for committed in beyond {
            if committed.sequence <= limit {
                self.apply_committed(committed);
            } else {
                discarded += 1;
            }
        }
        if adopt_up_to.is_some_and(|limit| limit > self.gum.replica.sequence) {
            // A member applied an update the log does not hold: only a broken rule does that.
            self.recovery_failed("members applied updates the log does not hold");
            return;
        }
        self.gum.pending = self.gum.pending.split_off(&(self.gum.replica.sequence + 1));
        // The replica now accounts for every block before `end`: what it did not apply there
        // is discarded for good (a checkpoint from `end` on leaves it out of every later
        // replay, as the barrier below would supersede it). Without this, discarded blocks at
        // the ring's end kept `applied_position + 1` below `end` and so no checkpoint could
        // start, while the full ring let no barrier be written: the log never moved again
        // (simulator seed 216565 --nodes 2, a small disk).
        let keeps = self.config().mutation == crate::core::Mutation::RecoveryKeepsAppliedPosition;
        if end > 0 && !keeps {
            self.gum.applied_position = self.gum.applied_position.max(end - 1);
        }
        self.emit(Event::GumRecovery {
            what: "recovered",
            detail: "updates discarded (never replicated)",
            value: discarded + duplicates,
        });
        let me = self.me();
        let incarnation = self.config().incarnation;
        let applied = self.gum.replica.sequence;
        // The new locker starts from an authoritative replica holding everything a member
        // applied (checked above), and what it retains for lagging members ends where its
        // replica does (`retained_from` counts on it).
        debug_assert!(self.gum.valid, "a recovered locker has a valid replica");
        debug_assert!(self
            .gum
            .retained
            .back()
            .is_none_or(|committed| committed.sequence == applied));
        let Some(locker) = self.gum.locker.as_mut() else {
            return;
        };
        locker.phase = Phase::Ready;
        // Decoded sequences are at most COUNTER_MAX; `locker_write` stops at the limit.
        locker.next_sequence = applied + 1;
        locker.next_position = end;
        locker.progress.clear();
        if discarded > 0 {
            // Supersede the discarded updates in the log itself: a later replay keeps the
            // later of two entries with one number (FORMAT.md §10).
            locker.queue.push_front(Entry::barrier(me, incarnation));
        }
        self.emit(Event::GumLocker {
            epoch: self.membership.epoch(),
            ready: true,
        });
        self.report_applied();
        self.send_proposals();
        self.locker_write();
    }
}

fn known(slot: usize, header: &Sealed<CheckpointHeader>) -> CheckpointKnown {
    // Two slots: `checkpoint_maybe` writes the next one into `1 - slot`.
    debug_assert!(slot < 2, "checkpoint slot {slot}");
    CheckpointKnown {
        generation: header.sequence,
        slot,
        sequence: header.record.database_sequence,
        log_position: header.record.log_position,
    }
}
