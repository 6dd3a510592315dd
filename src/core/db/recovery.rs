//! Recovery: the newest valid checkpoint plus the log after it, read one block at a time by a
//! sans-IO caller, into the database every acknowledged update reached.
//!
//! What is refused, and why (each refusal is a `RecoveryError` with a sentence for `disk check`):
//! - a block at position p that carries a later position: the log went on past a checkpoint
//!   newer than the one used (the ring wrapped over what this checkpoint needs), so updates
//!   would be lost;
//! - a hole in the sequence: the first update after the checkpoint is not its sequence + 1, or
//!   two surviving updates are not consecutive;
//! - an update that does not decode or apply: every node applied it once, so its bytes are
//!   damaged or this code is not the code that logged it;
//! - after a fallback to the older checkpoint, a log that ends on a damaged block: the newer
//!   checkpoint let the writer lap the ring past the older one's position, and a damaged block
//!   may hide exactly that overwrite (without a fallback, the writer never laps the checkpoint
//!   used, so damage there is a torn tail).
//!
//! What ends the log normally, and is reported: an empty block; a block of the ring's previous
//! lap; a block that does not decode (a torn last write); a block of another cluster id or
//! a misplaced position (damage past which nothing can be trusted); the whole ring read. Log
//! updates numbered at or below the checkpoint's sequence are already in it and are skipped.

use std::borrow::Borrow;
use std::fmt;

use disklayout::{
    Block, DecodeError, DuplicateRule, LogBlock, LogEnd, LogReplayer, ReplayStep, Sealed,
};

use super::checkpoint::{newest_valid, CheckpointChoice, CheckpointChoiceError, Slot, SlotFailure};
use super::database::{ApplyError, Database, Outcome};
use super::update::{Update, UpdateDecodeError};

/// Why a logged update cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadUpdate {
    Decode(UpdateDecodeError),
    Apply(ApplyError),
}

impl fmt::Display for BadUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadUpdate::Decode(error) => write!(f, "does not decode: {error}"),
            BadUpdate::Apply(error) => write!(f, "does not apply: {error}"),
        }
    }
}

/// Why the database cannot be recovered. Nothing was applied blindly; the disk is as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryError {
    Checkpoint(CheckpointChoiceError),
    /// The checkpoint's log position leaves no room for a ring's worth of positions.
    CheckpointPositionOverflow {
        log_position: u64,
        ring_blocks: u64,
    },
    /// The block where the log should continue carries a later position.
    LogAheadOfCheckpoint {
        position: u64,
        found: u64,
        start_position: u64,
        fallback: bool,
    },
    SequenceGap {
        expected: u64,
        found: u64,
    },
    BadUpdate {
        sequence: u64,
        reason: BadUpdate,
    },
    /// A fallback checkpoint and a log ending on damage: whether the ring was overwritten past
    /// the damage cannot be told.
    FallbackEndsOnDamage {
        position: u64,
        end: LogEnd,
    },
}

impl From<CheckpointChoiceError> for RecoveryError {
    fn from(error: CheckpointChoiceError) -> RecoveryError {
        RecoveryError::Checkpoint(error)
    }
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Checkpoint(error) => write!(f, "{error}"),
            RecoveryError::CheckpointPositionOverflow {
                log_position,
                ring_blocks,
            } => write!(
                f,
                "the checkpoint's log position {log_position} is beyond what a ring of {ring_blocks} blocks can reach (corrupt header)"
            ),
            RecoveryError::LogAheadOfCheckpoint {
                position,
                found,
                start_position,
                fallback,
            } => {
                write!(
                    f,
                    "log position {position} holds position {found}: the log went on past a newer checkpoint and overwrote blocks needed after position {start_position}; updates would be lost"
                )?;
                if *fallback {
                    write!(f, " (the newer checkpoint is unusable, see above)")?;
                }
                Ok(())
            }
            RecoveryError::SequenceGap { expected, found } => write!(
                f,
                "sequence gap in the log: update {found} follows where update {expected} was next; updates {expected}..{found} are missing"
            ),
            RecoveryError::BadUpdate { sequence, reason } => {
                write!(f, "logged update {sequence} {reason}")
            }
            RecoveryError::FallbackEndsOnDamage { position, end } => {
                let damage = match end {
                    LogEnd::Invalid(error) => format!("does not decode ({error})"),
                    LogEnd::OtherCluster => String::from("holds a block of another cluster id"),
                    LogEnd::OlderPosition { found } | LogEnd::UnexpectedPosition { found } => {
                        format!("holds the misplaced position {found}")
                    }
                    LogEnd::Empty | LogEnd::RingExhausted => String::from("ends the log"),
                };
                write!(
                    f,
                    "the newer checkpoint is unusable and log position {position} after the older one {damage}; the ring may have been overwritten past it, so updates may be missing"
                )
            }
        }
    }
}

impl std::error::Error for RecoveryError {}

/// The checkpoint recovery started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointUsed {
    pub slot: Slot,
    pub generation: u64,
    pub database_sequence: u64,
    pub log_position: u64,
}

/// What recovery did, for the node's log and `disk check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// `None`: no checkpoint was ever written; replay started from an empty database at 0.
    pub checkpoint: Option<CheckpointUsed>,
    /// A written checkpoint slot that could not be used.
    pub rejected: Option<SlotFailure>,
    /// The rejected slot may have been newer: the checkpoint used is a fallback.
    pub fallback: bool,
    pub ring_blocks: u64,
    pub start_position: u64,
    /// Where the next log block goes.
    pub next_position: u64,
    /// Blocks fed, including the one that ended the log.
    pub blocks_read: u64,
    /// Blocks that belonged to the log.
    pub blocks_replayed: u64,
    /// Updates applied on top of the checkpoint (failed preconditions included).
    pub updates_replayed: u64,
    pub preconditions_failed: u64,
    /// Log updates numbered at or below the checkpoint's sequence.
    pub updates_already_in_checkpoint: u64,
    /// Updates the duplicate-sequence rule discarded.
    pub updates_discarded: u64,
    pub end: LogEnd,
    /// The recovered database's sequence.
    pub sequence: u64,
}

impl RecoveryReport {
    /// Whether the log ended on damage rather than cleanly (worth a warning, not a refusal).
    pub fn ended_on_damage(&self) -> bool {
        ends_on_damage(&self.end, self.next_position, self.ring_blocks)
    }

    fn describe_end(&self) -> String {
        let position = self.next_position;
        match &self.end {
            LogEnd::Empty => format!("position {position} is empty (the normal end)"),
            LogEnd::RingExhausted => String::from(
                "every block of the ring belongs to the log (it is full: checkpoint before appending)",
            ),
            LogEnd::OlderPosition { found } if same_ring_block(*found, position, self.ring_blocks) => format!(
                "position {position} holds position {found} of an earlier lap (the normal end of a wrapped log)"
            ),
            LogEnd::OlderPosition { found } => format!(
                "position {position} holds position {found}, which belongs in another block (a misplaced write); the log is taken to end there"
            ),
            LogEnd::Invalid(error) => format!(
                "position {position} does not decode ({error}); a torn last write ends the log there"
            ),
            LogEnd::OtherCluster => format!(
                "position {position} holds a block of another cluster id; the log is taken to end there"
            ),
            LogEnd::UnexpectedPosition { found } => {
                format!("position {position} holds the later position {found}")
            }
        }
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.checkpoint {
            Some(used) => writeln!(
                f,
                "checkpoint: {} generation {} (database sequence {}, log position {})",
                used.slot, used.generation, used.database_sequence, used.log_position
            )?,
            None => writeln!(
                f,
                "checkpoint: none (empty database, replay from position 0)"
            )?,
        }
        if let Some(rejected) = &self.rejected {
            let role = match self.fallback {
                true => "fell back from",
                false => "ignored",
            };
            writeln!(f, "checkpoint: {role} {rejected}")?;
        }
        writeln!(
            f,
            "log: {} blocks from position {} ({} read); {}",
            self.blocks_replayed,
            self.start_position,
            self.blocks_read,
            self.describe_end()
        )?;
        writeln!(
            f,
            "updates: {} replayed ({} with a failed precondition), {} already in the checkpoint, {} discarded as duplicates",
            self.updates_replayed,
            self.preconditions_failed,
            self.updates_already_in_checkpoint,
            self.updates_discarded
        )?;
        write!(
            f,
            "database: sequence {}; next log position {}",
            self.sequence, self.next_position
        )
    }
}

fn same_ring_block(found: u64, position: u64, ring_blocks: u64) -> bool {
    found % ring_blocks == position % ring_blocks
}

/// Every end but an empty block, the previous lap of the ring and a full ring is damage.
fn ends_on_damage(end: &LogEnd, position: u64, ring_blocks: u64) -> bool {
    match end {
        LogEnd::Empty | LogEnd::RingExhausted => false,
        LogEnd::OlderPosition { found } => !same_ring_block(*found, position, ring_blocks),
        LogEnd::Invalid(_) | LogEnd::OtherCluster | LogEnd::UnexpectedPosition { .. } => true,
    }
}

/// A recovered database and where the log continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// With the default limits; set the cluster's limits before applying new updates.
    pub database: Database,
    pub next_position: u64,
    pub report: RecoveryReport,
}

/// Recovery in progress: feed the log block at `next_position` until `feed` says the log
/// ended, then `finish`.
#[derive(Clone, Debug)]
pub struct Recovery {
    database: Database,
    checkpoint: Option<CheckpointUsed>,
    rejected: Option<SlotFailure>,
    fallback: bool,
    ring_blocks: u64,
    replayer: LogReplayer,
}

impl Recovery {
    /// Starts from the chosen checkpoint (or an empty database at position 0). `rule` is
    /// `DuplicateRule::LaterWins` except in the simulator's `replay-keeps-duplicate` mutation.
    ///
    /// # Panics
    /// When `ring_blocks` is 0 (a decoded geometry has at least 16 log blocks).
    pub fn new(
        choice: CheckpointChoice,
        ring_blocks: u64,
        cluster_id: u64,
        rule: DuplicateRule,
    ) -> Result<Recovery, RecoveryError> {
        let (database, checkpoint) = match choice.chosen {
            Some(loaded) => {
                let used = CheckpointUsed {
                    slot: loaded.slot,
                    generation: loaded.generation,
                    database_sequence: loaded.database.sequence(),
                    log_position: loaded.log_position,
                };
                (loaded.database, Some(used))
            }
            None => (Database::default(), None),
        };
        let start_position = checkpoint.map_or(0, |used| used.log_position);
        if start_position.checked_add(ring_blocks).is_none() {
            return Err(RecoveryError::CheckpointPositionOverflow {
                log_position: start_position,
                ring_blocks,
            });
        }
        Ok(Recovery {
            database,
            checkpoint,
            rejected: choice.rejected,
            fallback: choice.fallback,
            ring_blocks,
            replayer: LogReplayer::new(start_position, ring_blocks, cluster_id, rule),
        })
    }

    /// The log position to read next, `None` once the log ended.
    pub fn next_position(&self) -> Option<u64> {
        self.replayer.next_position()
    }

    /// The block of the log region that stores `position`.
    pub fn ring_block(&self, position: u64) -> u64 {
        self.replayer.ring_block(position)
    }

    /// Takes the raw block read at `position` (it is decoded and checked here).
    pub fn feed(&mut self, position: u64, block: &[u8]) -> ReplayStep {
        self.feed_decoded(position, &disklayout::decode::<LogBlock>(block))
    }

    /// Takes a block already decoded with `disklayout::decode::<LogBlock>`.
    pub fn feed_decoded(
        &mut self,
        position: u64,
        block: &Result<Option<Sealed<LogBlock>>, DecodeError>,
    ) -> ReplayStep {
        self.replayer.feed(position, block)
    }

    /// Applies the surviving updates to the checkpoint's database.
    ///
    /// # Panics
    /// When the log has not ended (`feed` has not returned `ReplayStep::Ended`).
    pub fn finish(self) -> Result<Recovered, RecoveryError> {
        let start_position = self.replayer.start_position();
        let blocks_replayed = self.replayer.blocks_replayed();
        let replay = self.replayer.finish();
        if let LogEnd::UnexpectedPosition { found } = replay.end {
            return Err(RecoveryError::LogAheadOfCheckpoint {
                position: replay.next_position,
                found,
                start_position,
                fallback: self.fallback,
            });
        }
        if self.fallback && ends_on_damage(&replay.end, replay.next_position, self.ring_blocks) {
            return Err(RecoveryError::FallbackEndsOnDamage {
                position: replay.next_position,
                end: replay.end,
            });
        }
        let mut database = self.database;
        let checkpoint_sequence = database.sequence();
        let mut already_in_checkpoint = 0;
        let mut replayed = 0;
        let mut preconditions_failed = 0;
        for logged in &replay.updates {
            if logged.sequence <= checkpoint_sequence {
                already_in_checkpoint += 1;
                continue;
            }
            let expected = database.sequence().saturating_add(1);
            if logged.sequence != expected {
                return Err(RecoveryError::SequenceGap {
                    expected,
                    found: logged.sequence,
                });
            }
            let bad = |reason| RecoveryError::BadUpdate {
                sequence: logged.sequence,
                reason,
            };
            let update =
                Update::decode(&logged.payload).map_err(|error| bad(BadUpdate::Decode(error)))?;
            match database.apply(logged.sequence, &update) {
                Ok(Outcome::Applied) => {}
                Ok(Outcome::PreconditionFailed { .. }) => preconditions_failed += 1,
                Err(error) => return Err(bad(BadUpdate::Apply(error))),
            }
            replayed += 1;
        }
        let blocks_read = blocks_replayed + u64::from(replay.end != LogEnd::RingExhausted);
        let report = RecoveryReport {
            checkpoint: self.checkpoint,
            rejected: self.rejected,
            fallback: self.fallback,
            ring_blocks: self.ring_blocks,
            start_position,
            next_position: replay.next_position,
            blocks_read,
            blocks_replayed,
            updates_replayed: replayed,
            preconditions_failed,
            updates_already_in_checkpoint: already_in_checkpoint,
            updates_discarded: replay.discarded as u64,
            end: replay.end,
            sequence: database.sequence(),
        };
        Ok(Recovered {
            database,
            next_position: report.next_position,
            report,
        })
    }
}

/// Recovers from a whole disk's worth of blocks at once (`disk check`, tests): both checkpoint
/// slots (header then payload blocks) and the log region, `log[i]` being its block `i`.
pub fn recover<B: Borrow<Block>>(
    slot_a: &[B],
    slot_b: &[B],
    log: &[B],
    cluster_id: u64,
    rule: DuplicateRule,
) -> Result<Recovered, RecoveryError> {
    let choice = newest_valid(slot_a, slot_b, cluster_id)?;
    let mut recovery = Recovery::new(choice, log.len() as u64, cluster_id, rule)?;
    while let Some(position) = recovery.next_position() {
        let block = log[recovery.ring_block(position) as usize].borrow();
        if let ReplayStep::Ended(_) = recovery.feed(position, block) {
            break;
        }
    }
    recovery.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::db::{encode_checkpoint, encode_log_block, Op, Path, Value};
    use disklayout::{LogUpdate, BLOCK_SIZE};

    const CLUSTER: u64 = 77;
    const RING: usize = 8;
    const SLOT_BLOCKS: usize = 4;

    fn update(sequence: u64) -> Update {
        let path = Path::parse(&format!("properties/k{}", sequence % 5)).expect("valid");
        Update::new(vec![Op::Put {
            path,
            value: Value::U64(sequence),
        }])
    }

    fn logged(sequence: u64, origin: u8) -> LogUpdate {
        LogUpdate {
            sequence,
            origin,
            payload: update(sequence).encode().expect("valid"),
        }
    }

    /// The database after updates 1..=sequence.
    fn reference(sequence: u64) -> Database {
        let mut database = Database::default();
        for number in 1..=sequence {
            database.apply(number, &update(number)).expect("applies");
        }
        database
    }

    struct Disk {
        slot_a: Vec<Box<Block>>,
        slot_b: Vec<Box<Block>>,
        log: Vec<Box<Block>>,
    }

    impl Disk {
        fn new() -> Disk {
            let empty = || vec![Box::new([0u8; BLOCK_SIZE]); SLOT_BLOCKS];
            Disk {
                slot_a: empty(),
                slot_b: empty(),
                log: vec![Box::new([0u8; BLOCK_SIZE]); RING],
            }
        }

        fn append(&mut self, position: u64, updates: &[LogUpdate]) {
            self.log[position as usize % RING] =
                encode_log_block(CLUSTER, position, 1, updates).expect("fits");
        }

        fn checkpoint(&mut self, slot: Slot, generation: u64, sequence: u64, log_position: u64) {
            let blocks = encode_checkpoint(
                &reference(sequence),
                generation,
                log_position,
                CLUSTER,
                SLOT_BLOCKS as u64 - 1,
            )
            .expect("fits");
            let target = match slot {
                Slot::A => &mut self.slot_a,
                Slot::B => &mut self.slot_b,
            };
            for (index, block) in blocks.into_iter().enumerate() {
                target[index] = block;
            }
        }

        fn recover(&self) -> Result<Recovered, RecoveryError> {
            recover(
                &self.slot_a,
                &self.slot_b,
                &self.log,
                CLUSTER,
                DuplicateRule::LaterWins,
            )
        }
    }

    #[test]
    fn a_fresh_log_replays_from_position_zero() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1), logged(2, 2)]);
        disk.append(1, &[logged(3, 1)]);
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database, reference(3));
        assert_eq!(recovered.next_position, 2);
        let report = &recovered.report;
        assert_eq!(report.checkpoint, None);
        assert_eq!((report.blocks_replayed, report.blocks_read), (2, 3));
        assert_eq!(report.updates_replayed, 3);
        assert_eq!(report.end, LogEnd::Empty);
        assert!(!report.ended_on_damage());
        assert_eq!(
            report.to_string(),
            "checkpoint: none (empty database, replay from position 0)\n\
             log: 2 blocks from position 0 (3 read); position 2 is empty (the normal end)\n\
             updates: 3 replayed (0 with a failed precondition), 0 already in the checkpoint, 0 discarded as duplicates\n\
             database: sequence 3; next log position 2"
        );
    }

    #[test]
    fn an_empty_disk_recovers_an_empty_database() {
        let recovered = Disk::new().recover().expect("recovers");
        assert_eq!(recovered.database, Database::default());
        assert_eq!(recovered.next_position, 0);
    }

    #[test]
    fn replay_continues_from_the_checkpoint_and_skips_what_it_holds() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1), logged(2, 1)]);
        disk.append(1, &[logged(3, 1), logged(4, 1)]);
        disk.checkpoint(Slot::B, 1, 5, 2);
        // Update 5 was applied (and checkpointed) before its block landed; 6 is new.
        disk.append(2, &[logged(5, 1), logged(6, 1)]);
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database, reference(6));
        let report = &recovered.report;
        assert_eq!(
            report.checkpoint,
            Some(CheckpointUsed {
                slot: Slot::B,
                generation: 1,
                database_sequence: 5,
                log_position: 2
            })
        );
        assert_eq!(report.start_position, 2);
        assert_eq!(report.updates_already_in_checkpoint, 1);
        assert_eq!(report.updates_replayed, 1);
        assert_eq!(recovered.next_position, 3);
    }

    #[test]
    fn a_torn_tail_ends_the_log_and_is_reported() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1)]);
        disk.append(1, &[logged(2, 1)]);
        disk.log[1][40] ^= 0x04;
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database, reference(1));
        assert_eq!(recovered.next_position, 1);
        assert!(matches!(
            recovered.report.end,
            LogEnd::Invalid(DecodeError::Checksum { .. })
        ));
        assert!(recovered.report.ended_on_damage());
        assert!(recovered
            .report
            .to_string()
            .contains("position 1 does not decode (checksum mismatch"));
    }

    #[test]
    fn a_hole_after_the_checkpoint_is_refused() {
        let mut disk = Disk::new();
        disk.checkpoint(Slot::A, 1, 3, 0);
        disk.append(0, &[logged(5, 1)]);
        let error = disk.recover().unwrap_err();
        assert_eq!(
            error,
            RecoveryError::SequenceGap {
                expected: 4,
                found: 5
            }
        );
        assert_eq!(
            error.to_string(),
            "sequence gap in the log: update 5 follows where update 4 was next; updates 4..5 are missing"
        );
    }

    #[test]
    fn a_hole_between_updates_is_refused() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1), logged(2, 1)]);
        disk.append(1, &[logged(4, 1)]);
        assert_eq!(
            disk.recover().unwrap_err(),
            RecoveryError::SequenceGap {
                expected: 3,
                found: 4
            }
        );
    }

    #[test]
    fn a_checkpoint_newer_than_the_whole_log_keeps_its_content() {
        let mut disk = Disk::new();
        disk.checkpoint(Slot::A, 2, 9, 3);
        disk.append(3, &[logged(8, 1), logged(9, 1)]);
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database, reference(9));
        assert_eq!(recovered.report.updates_already_in_checkpoint, 2);
        assert_eq!(recovered.report.updates_replayed, 0);
    }

    #[test]
    fn a_ring_that_wrapped_past_the_checkpoint_is_refused() {
        let mut disk = Disk::new();
        disk.checkpoint(Slot::A, 1, 2, 2);
        // A newer checkpoint (lost) let the writer lap the ring: position 2 + 8 sits at block 2.
        disk.append(2 + RING as u64, &[logged(30, 1)]);
        let error = disk.recover().unwrap_err();
        assert_eq!(
            error,
            RecoveryError::LogAheadOfCheckpoint {
                position: 2,
                found: 10,
                start_position: 2,
                fallback: false
            }
        );
        assert!(error.to_string().contains("updates would be lost"));
    }

    #[test]
    fn falling_back_over_an_overwritten_log_says_so() {
        let mut disk = Disk::new();
        disk.checkpoint(Slot::A, 1, 2, 2);
        disk.checkpoint(Slot::B, 2, 20, 12);
        disk.slot_b[1][10] ^= 0x01;
        disk.append(10, &[logged(21, 1)]);
        let error = disk.recover().unwrap_err();
        assert!(matches!(
            error,
            RecoveryError::LogAheadOfCheckpoint {
                fallback: true,
                found: 10,
                ..
            }
        ));
        assert!(error
            .to_string()
            .ends_with("(the newer checkpoint is unusable, see above)"));
    }

    #[test]
    fn a_fallback_with_an_intact_log_recovers_and_reports_the_fallback() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1)]);
        disk.checkpoint(Slot::A, 1, 1, 1);
        disk.append(1, &[logged(2, 1)]);
        disk.append(2, &[logged(3, 1)]);
        disk.checkpoint(Slot::B, 2, 3, 3);
        disk.slot_b[0][40] ^= 0x01;
        let recovered = disk.recover().expect("recovers from the older checkpoint");
        assert_eq!(recovered.database, reference(3));
        assert!(recovered.report.fallback);
        assert_eq!(
            recovered.report.checkpoint.map(|used| used.generation),
            Some(1)
        );
        let text = recovered.report.to_string();
        assert!(
            text.contains("checkpoint: fell back from checkpoint B: header: checksum mismatch"),
            "{text}"
        );
    }

    #[test]
    fn the_previous_lap_ends_a_wrapped_log_normally() {
        let mut disk = Disk::new();
        for position in 0..RING as u64 {
            disk.append(position, &[logged(position + 1, 1)]);
        }
        disk.checkpoint(Slot::A, 1, 5, 5);
        for position in RING as u64..RING as u64 + 3 {
            disk.append(position, &[logged(position + 1, 1)]);
        }
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database, reference(11));
        assert_eq!(recovered.next_position, 11);
        assert_eq!(recovered.report.end, LogEnd::OlderPosition { found: 3 });
        assert!(!recovered.report.ended_on_damage());
        assert!(recovered.report.to_string().contains("of an earlier lap"));
    }

    #[test]
    fn a_misplaced_older_block_ends_the_log_as_damage() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1)]);
        let stray = encode_log_block(CLUSTER, 0, 1, &[logged(1, 1)]).expect("fits");
        disk.append(1, &[logged(2, 1)]);
        disk.log[2] = disk.log[1].clone();
        disk.log[1] = stray;
        let recovered = disk.recover().expect("recovers what precedes the damage");
        assert_eq!(recovered.database, reference(1));
        assert!(recovered.report.ended_on_damage());
        assert!(recovered.report.to_string().contains("misplaced write"));
    }

    #[test]
    fn a_block_of_another_cluster_ends_the_log_as_damage() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1)]);
        disk.log[1] = encode_log_block(CLUSTER + 1, 1, 1, &[logged(2, 1)]).expect("fits");
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.report.end, LogEnd::OtherCluster);
        assert!(recovered.report.ended_on_damage());
    }

    #[test]
    fn a_full_ring_is_read_to_its_end() {
        let mut disk = Disk::new();
        for position in 0..RING as u64 {
            disk.append(position, &[logged(position + 1, 1)]);
        }
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.report.end, LogEnd::RingExhausted);
        assert_eq!(recovered.report.blocks_read, RING as u64);
        assert_eq!(recovered.next_position, RING as u64);
    }

    #[test]
    fn the_later_duplicate_wins_and_the_mutation_keeps_the_earlier() {
        let mut disk = Disk::new();
        let mut orphan = logged(2, 3);
        orphan.payload = Update::put(Path::parse("properties/orphan").unwrap(), Value::Bool(true))
            .encode()
            .unwrap();
        disk.append(0, &[logged(1, 1), orphan]);
        disk.append(1, &[logged(2, 2), logged(3, 2)]);
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database, reference(3));
        assert_eq!(recovered.report.updates_discarded, 1);
        let mutated = recover(
            &disk.slot_a,
            &disk.slot_b,
            &disk.log,
            CLUSTER,
            DuplicateRule::EarlierWins,
        )
        .expect("recovers the wrong database");
        let orphan_path = Path::parse("properties/orphan").unwrap();
        assert!(mutated.database.get(&orphan_path).is_some());
        assert_ne!(mutated.database.digest(), recovered.database.digest());
    }

    #[test]
    fn an_update_that_does_not_decode_is_refused() {
        let mut disk = Disk::new();
        let mut damaged = logged(1, 1);
        damaged.payload[0] = 9;
        disk.append(0, &[damaged]);
        let error = disk.recover().unwrap_err();
        assert_eq!(
            error,
            RecoveryError::BadUpdate {
                sequence: 1,
                reason: BadUpdate::Decode(UpdateDecodeError::UnknownFormat { found: 9 })
            }
        );
        assert_eq!(
            error.to_string(),
            "logged update 1 does not decode: update format 9 is unknown (this wolfpack reads 1)"
        );
    }

    #[test]
    fn a_failed_precondition_in_the_log_is_replayed_as_one() {
        let mut disk = Disk::new();
        let guarded = Update::new(vec![Op::Require {
            path: Path::parse("properties/k1").unwrap(),
            version: 7,
        }]);
        disk.append(
            0,
            &[
                logged(1, 1),
                LogUpdate {
                    sequence: 2,
                    origin: 1,
                    payload: guarded.encode().unwrap(),
                },
            ],
        );
        let recovered = disk.recover().expect("recovers");
        assert_eq!(recovered.database.sequence(), 2);
        assert_eq!(recovered.report.preconditions_failed, 1);
    }

    #[test]
    fn a_checkpoint_position_near_the_end_of_numbers_is_refused() {
        let mut disk = Disk::new();
        disk.checkpoint(Slot::A, 1, 1, u64::MAX - 3);
        assert_eq!(
            disk.recover().unwrap_err(),
            RecoveryError::CheckpointPositionOverflow {
                log_position: u64::MAX - 3,
                ring_blocks: RING as u64
            }
        );
    }

    #[test]
    fn two_unusable_checkpoints_are_refused() {
        let mut disk = Disk::new();
        disk.checkpoint(Slot::A, 1, 1, 1);
        disk.slot_a[1][0] ^= 1;
        let error = disk.recover().unwrap_err();
        assert!(matches!(
            error,
            RecoveryError::Checkpoint(CheckpointChoiceError::NothingValid { .. })
        ));
    }

    #[test]
    fn the_incremental_caller_reads_one_block_at_a_time() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1)]);
        let mut recovery = Recovery::new(
            CheckpointChoice::none(),
            RING as u64,
            CLUSTER,
            DuplicateRule::LaterWins,
        )
        .expect("starts");
        let mut reads = Vec::new();
        while let Some(position) = recovery.next_position() {
            let block = recovery.ring_block(position);
            reads.push(block);
            recovery.feed(position, &disk.log[block as usize][..]);
        }
        assert_eq!(reads, [0, 1]);
        assert_eq!(recovery.finish().expect("recovers").database, reference(1));
    }

    #[test]
    fn a_fallback_whose_log_ends_on_damage_is_refused() {
        let mut disk = Disk::new();
        disk.append(0, &[logged(1, 1)]);
        disk.checkpoint(Slot::A, 1, 1, 1);
        disk.append(1, &[logged(2, 1)]);
        disk.checkpoint(Slot::B, 2, 2, 2);
        disk.slot_b[1][3] ^= 0x01;
        disk.append(2, &[logged(3, 1)]);
        disk.log[2][40] ^= 0x01;
        let error = disk.recover().unwrap_err();
        assert!(matches!(
            error,
            RecoveryError::FallbackEndsOnDamage {
                position: 2,
                end: LogEnd::Invalid(_)
            }
        ));
        assert!(error
            .to_string()
            .contains("the ring may have been overwritten past it"));
    }
}
