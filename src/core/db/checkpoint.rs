//! Checkpoints (FORMAT.md §9): a database snapshot in one of two slots, and the choice of the
//! newest valid one on recovery.
//!
//! A slot is C blocks: the header (disklayout's `CheckpointHeader`, whose envelope sequence is
//! the generation) and C − 1 payload blocks holding the snapshot bytes, zero after their end.
//! The writer writes the payload, flushes, then the header, so a valid header promises a
//! durable payload; a payload that still fails its CRC is media damage, and recovery falls
//! back to the other slot.

use std::borrow::Borrow;
use std::fmt;

use disklayout::{Block, CheckpointHeader, Sealed, BLOCK_SIZE};

use super::database::Database;
use super::snapshot::SnapshotError;

/// The two checkpoint slots, in region order (`Geometry::checkpoint_region(slot.index())`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }

    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::A => f.write_str("checkpoint A"),
            Slot::B => f.write_str("checkpoint B"),
        }
    }
}

/// Why a checkpoint cannot be written or trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// The header block does not decode (corrupt, torn, another record type or version).
    Header(disklayout::DecodeError),
    /// A header of another cluster id: left from an earlier format of the disk.
    OtherCluster {
        found: u64,
        expected: u64,
    },
    /// Encoding: the snapshot needs more payload blocks than the slot has.
    TooLarge {
        snapshot_bytes: usize,
        payload_blocks_max: u64,
    },
    /// The header claims more payload than the slot (or the blocks given) can hold.
    PayloadTooLong {
        payload_bytes: u64,
        payload_blocks: u64,
    },
    PayloadChecksum {
        stored: u32,
        computed: u32,
    },
    /// A non-zero byte after the payload's end in its last block (offset within the payload
    /// blocks).
    PayloadPadding {
        offset: u64,
    },
    Snapshot(SnapshotError),
    /// The header's database sequence is not the snapshot's.
    SequenceMismatch {
        header: u64,
        snapshot: u64,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Header(error) => write!(f, "header: {error}"),
            CheckpointError::OtherCluster { found, expected } => write!(
                f,
                "header of cluster id {found:#018x}, not {expected:#018x} (left from an earlier format)"
            ),
            CheckpointError::TooLarge {
                snapshot_bytes,
                payload_blocks_max,
            } => write!(
                f,
                "a snapshot of {snapshot_bytes} bytes does not fit {payload_blocks_max} payload blocks"
            ),
            CheckpointError::PayloadTooLong {
                payload_bytes,
                payload_blocks,
            } => write!(
                f,
                "the header claims {payload_bytes} payload bytes; {payload_blocks} payload blocks hold at most {}",
                payload_blocks.saturating_mul(BLOCK_SIZE as u64)
            ),
            CheckpointError::PayloadChecksum { stored, computed } => write!(
                f,
                "payload checksum mismatch: stored {stored:#010x}, computed {computed:#010x} (corrupt)"
            ),
            CheckpointError::PayloadPadding { offset } => {
                write!(f, "payload byte {offset}, after the payload's end, is not zero")
            }
            CheckpointError::Snapshot(error) => write!(f, "payload: {error}"),
            CheckpointError::SequenceMismatch { header, snapshot } => write!(
                f,
                "the header says database sequence {header} but the snapshot holds {snapshot}"
            ),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Encodes a checkpoint: block 0 is the header, the rest the payload. Write the payload blocks
/// first, flush, then the header, then flush (FORMAT.md §1).
pub fn encode_checkpoint(
    database: &Database,
    generation: u64,
    log_position: u64,
    cluster_id: u64,
    payload_blocks_max: u64,
) -> Result<Vec<Box<Block>>, CheckpointError> {
    let snapshot = database.snapshot_bytes();
    let payload_blocks = snapshot.len().div_ceil(BLOCK_SIZE);
    if payload_blocks as u64 > payload_blocks_max {
        return Err(CheckpointError::TooLarge {
            snapshot_bytes: snapshot.len(),
            payload_blocks_max,
        });
    }
    let header = Sealed {
        cluster_id,
        sequence: generation,
        record: CheckpointHeader {
            database_sequence: database.sequence(),
            log_position,
            payload_bytes: snapshot.len() as u64,
            payload_crc32: disklayout::payload_crc32(&snapshot),
        },
    };
    let mut blocks = Vec::with_capacity(1 + payload_blocks);
    let mut header_block = Box::new([0u8; BLOCK_SIZE]);
    disklayout::encode(&header, &mut header_block)
        .expect("every checkpoint header is valid: its fields have no range to break");
    blocks.push(header_block);
    for chunk in snapshot.chunks(BLOCK_SIZE) {
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        block[..chunk.len()].copy_from_slice(chunk);
        blocks.push(block);
    }
    Ok(blocks)
}

/// Decodes a slot's header block: `None` for a slot never written.
pub fn decode_checkpoint_header(
    block: &[u8],
) -> Result<Option<Sealed<CheckpointHeader>>, CheckpointError> {
    disklayout::decode::<CheckpointHeader>(block).map_err(CheckpointError::Header)
}

/// How many payload blocks to read after this header, refusing a header that claims more than
/// the slot's `payload_blocks_max` (C − 1).
pub fn payload_blocks_needed(
    header: &CheckpointHeader,
    payload_blocks_max: u64,
) -> Result<u64, CheckpointError> {
    let needed = header.payload_bytes.div_ceil(BLOCK_SIZE as u64);
    match needed <= payload_blocks_max {
        true => Ok(needed),
        false => Err(CheckpointError::PayloadTooLong {
            payload_bytes: header.payload_bytes,
            payload_blocks: payload_blocks_max,
        }),
    }
}

/// Checks the payload against its header (length, zero padding, CRC) and decodes the snapshot,
/// whose sequence must be the header's. `payload_blocks` are the slot's blocks after the header,
/// at least [`payload_blocks_needed`] of them; blocks past those are not looked at (an older,
/// larger checkpoint may have left bytes there).
pub fn decode_checkpoint<B: Borrow<Block>>(
    header: &Sealed<CheckpointHeader>,
    payload_blocks: &[B],
) -> Result<Database, CheckpointError> {
    let header = &header.record;
    let needed = payload_blocks_needed(header, payload_blocks.len() as u64)?;
    // needed <= payload_blocks.len(), so payload_bytes fits in memory we already hold.
    let payload_bytes = header.payload_bytes as usize;
    let mut payload = Vec::with_capacity(payload_bytes);
    for block in &payload_blocks[..needed as usize] {
        payload.extend_from_slice(block.borrow());
    }
    if let Some(index) = payload[payload_bytes..].iter().position(|&byte| byte != 0) {
        return Err(CheckpointError::PayloadPadding {
            offset: (payload_bytes + index) as u64,
        });
    }
    payload.truncate(payload_bytes);
    let computed = disklayout::payload_crc32(&payload);
    if computed != header.payload_crc32 {
        return Err(CheckpointError::PayloadChecksum {
            stored: header.payload_crc32,
            computed,
        });
    }
    let database = Database::from_snapshot(&payload).map_err(CheckpointError::Snapshot)?;
    if database.sequence() != header.database_sequence {
        return Err(CheckpointError::SequenceMismatch {
            header: header.database_sequence,
            snapshot: database.sequence(),
        });
    }
    Ok(database)
}

/// A checkpoint whose header and payload are valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedCheckpoint {
    pub slot: Slot,
    pub generation: u64,
    /// The first log position the checkpoint does not cover: replay starts there.
    pub log_position: u64,
    /// At `database.sequence()`, the header's database sequence.
    pub database: Database,
}

/// A slot that was written but cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotFailure {
    pub slot: Slot,
    /// Known when the header decoded.
    pub generation: Option<u64>,
    pub error: CheckpointError,
}

impl fmt::Display for SlotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            Some(generation) => {
                write!(f, "{} (generation {generation}): {}", self.slot, self.error)
            }
            None => write!(f, "{}: {}", self.slot, self.error),
        }
    }
}

/// The outcome of choosing between the two slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointChoice {
    /// `None` when neither slot was ever written (a fresh disk: replay from position 0).
    pub chosen: Option<LoadedCheckpoint>,
    /// The written slot that could not be used, if any.
    pub rejected: Option<SlotFailure>,
    /// The rejected slot may have been the newer one (its generation is larger or unknown), so
    /// the chosen checkpoint is a fallback and the log after it may have been overwritten;
    /// recovery detects that as a block ahead of its position.
    pub fallback: bool,
}

impl CheckpointChoice {
    /// No checkpoint at all: an empty database, replay from position 0.
    pub fn none() -> CheckpointChoice {
        CheckpointChoice {
            chosen: None,
            rejected: None,
            fallback: false,
        }
    }
}

/// A header's identity, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSummary {
    pub slot: Slot,
    pub generation: u64,
    pub database_sequence: u64,
    pub log_position: u64,
}

impl fmt::Display for HeaderSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (generation {}, database sequence {}, log position {})",
            self.slot, self.generation, self.database_sequence, self.log_position
        )
    }
}

/// Why no checkpoint can be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointChoiceError {
    /// A slot was written, but neither slot holds a valid checkpoint: starting from an empty
    /// database would silently drop what the checkpoints covered.
    NothingValid { failures: Vec<SlotFailure> },
    /// The newer generation covers less than the older one (or two headers share a
    /// generation): no writer does that, so neither can be trusted to be the newest.
    Inconsistent {
        newer: HeaderSummary,
        older: HeaderSummary,
    },
}

impl fmt::Display for CheckpointChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointChoiceError::NothingValid { failures } => {
                write!(f, "no valid checkpoint, but a slot was written")?;
                failures
                    .iter()
                    .try_for_each(|failure| write!(f, "; {failure}"))
            }
            CheckpointChoiceError::Inconsistent { newer, older } => write!(
                f,
                "inconsistent checkpoints: {newer} does not cover at least what {older} does"
            ),
        }
    }
}

impl std::error::Error for CheckpointChoiceError {}

/// Picks the valid checkpoint with the larger generation, falling back to the other slot when
/// the newer one is corrupt. Each slot is its header block followed by at least the payload
/// blocks its header needs (the whole slot is fine).
///
/// # Panics
/// When a slot has no blocks at all: the header block must be read.
pub fn newest_valid<B: Borrow<Block>>(
    slot_a: &[B],
    slot_b: &[B],
    cluster_id: u64,
) -> Result<CheckpointChoice, CheckpointChoiceError> {
    let mut failures = Vec::new();
    let mut candidates = Vec::new();
    for (slot, blocks) in [(Slot::A, slot_a), (Slot::B, slot_b)] {
        let (header_block, payload) = blocks.split_first().expect("a slot's header block is read");
        match decode_checkpoint_header(header_block.borrow()) {
            Ok(None) => {}
            Err(error) => failures.push(SlotFailure {
                slot,
                generation: None,
                error,
            }),
            Ok(Some(header)) if header.cluster_id != cluster_id => failures.push(SlotFailure {
                slot,
                generation: Some(header.sequence),
                error: CheckpointError::OtherCluster {
                    found: header.cluster_id,
                    expected: cluster_id,
                },
            }),
            Ok(Some(header)) => candidates.push((slot, header, payload)),
        }
    }
    candidates.sort_by_key(|(slot, header, _)| (std::cmp::Reverse(header.sequence), *slot));
    if let [(newer_slot, newer, _), (older_slot, older, _)] = candidates.as_slice() {
        let newer = summary(*newer_slot, newer);
        let older = summary(*older_slot, older);
        let same_generation = newer.generation == older.generation;
        let covers_less = newer.database_sequence < older.database_sequence
            || newer.log_position < older.log_position;
        if same_generation || covers_less {
            return Err(CheckpointChoiceError::Inconsistent { newer, older });
        }
    }
    for (slot, header, payload) in candidates {
        match decode_checkpoint(&header, payload) {
            Ok(database) => {
                let generation = header.sequence;
                debug_assert!(failures.len() <= 1, "one of two slots is chosen");
                let rejected = failures.pop();
                let fallback = rejected
                    .as_ref()
                    .is_some_and(|failure| failure.generation.is_none_or(|g| g > generation));
                return Ok(CheckpointChoice {
                    chosen: Some(LoadedCheckpoint {
                        slot,
                        generation,
                        log_position: header.record.log_position,
                        database,
                    }),
                    rejected,
                    fallback,
                });
            }
            Err(error) => failures.push(SlotFailure {
                slot,
                generation: Some(header.sequence),
                error,
            }),
        }
    }
    match failures.is_empty() {
        true => Ok(CheckpointChoice::none()),
        false => Err(CheckpointChoiceError::NothingValid { failures }),
    }
}

fn summary(slot: Slot, header: &Sealed<CheckpointHeader>) -> HeaderSummary {
    HeaderSummary {
        slot,
        generation: header.sequence,
        database_sequence: header.record.database_sequence,
        log_position: header.record.log_position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::db::{Outcome, Path, Update, Value};

    const CLUSTER: u64 = 0x5eed;

    fn database(sequence: u64) -> Database {
        let mut database = Database::default();
        for number in 1..=sequence {
            let key = Path::parse(&format!("properties/p{number}")).expect("valid");
            let update = Update::put(key, Value::Bytes(vec![number as u8; 300]));
            assert_eq!(database.apply(number, &update), Ok(Outcome::Applied));
        }
        database
    }

    fn slot(database: &Database, generation: u64, log_position: u64) -> Vec<Box<Block>> {
        let mut blocks =
            encode_checkpoint(database, generation, log_position, CLUSTER, 7).expect("fits");
        blocks.resize(8, Box::new([0; BLOCK_SIZE]));
        blocks
    }

    fn empty_slot() -> Vec<Box<Block>> {
        vec![Box::new([0; BLOCK_SIZE]); 8]
    }

    #[test]
    fn round_trips_through_header_and_payload() {
        let original = database(20);
        let blocks = encode_checkpoint(&original, 3, 17, CLUSTER, 7).expect("fits");
        assert_eq!(
            blocks.len(),
            1 + original.snapshot_len().div_ceil(BLOCK_SIZE)
        );
        let header = decode_checkpoint_header(&blocks[0][..])
            .expect("valid")
            .expect("written");
        assert_eq!(header.sequence, 3);
        assert_eq!(header.cluster_id, CLUSTER);
        assert_eq!(header.record.log_position, 17);
        assert_eq!(header.record.database_sequence, 20);
        assert_eq!(
            payload_blocks_needed(&header.record, 7),
            Ok(blocks.len() as u64 - 1)
        );
        assert_eq!(decode_checkpoint(&header, &blocks[1..]), Ok(original));
    }

    #[test]
    fn a_snapshot_larger_than_the_slot_is_refused() {
        let big = database(20);
        assert_eq!(
            encode_checkpoint(&big, 1, 0, CLUSTER, 1),
            Err(CheckpointError::TooLarge {
                snapshot_bytes: big.snapshot_len(),
                payload_blocks_max: 1
            })
        );
    }

    #[test]
    fn payload_damage_is_detected() {
        let original = database(5);
        let blocks = encode_checkpoint(&original, 1, 0, CLUSTER, 7).expect("fits");
        let header = decode_checkpoint_header(&blocks[0][..]).unwrap().unwrap();
        let mut flipped = blocks.clone();
        flipped[1][100] ^= 1;
        assert!(matches!(
            decode_checkpoint(&header, &flipped[1..]),
            Err(CheckpointError::PayloadChecksum { .. })
        ));
        let mut padded = blocks.clone();
        let last = padded.len() - 1;
        padded[last][BLOCK_SIZE - 1] = 1;
        assert!(matches!(
            decode_checkpoint(&header, &padded[1..]),
            Err(CheckpointError::PayloadPadding { .. })
        ));
        assert!(matches!(
            decode_checkpoint(&header, &blocks[1..blocks.len() - 1]),
            Err(CheckpointError::PayloadTooLong { .. })
        ));
    }

    #[test]
    fn a_header_whose_sequence_disagrees_with_its_snapshot_is_refused() {
        let original = database(4);
        let blocks = encode_checkpoint(&original, 1, 0, CLUSTER, 7).expect("fits");
        let mut header = decode_checkpoint_header(&blocks[0][..]).unwrap().unwrap();
        header.record.database_sequence = 5;
        assert_eq!(
            decode_checkpoint(&header, &blocks[1..]),
            Err(CheckpointError::SequenceMismatch {
                header: 5,
                snapshot: 4
            })
        );
    }

    #[test]
    fn the_newer_valid_generation_wins() {
        let older = slot(&database(3), 4, 10);
        let newer = slot(&database(6), 5, 20);
        let choice = newest_valid(&older, &newer, CLUSTER).expect("valid");
        let chosen = choice.chosen.expect("chosen");
        assert_eq!(
            (chosen.slot, chosen.generation, chosen.log_position),
            (Slot::B, 5, 20)
        );
        assert_eq!(chosen.database, database(6));
        assert_eq!(choice.rejected, None);
        assert!(!choice.fallback);
    }

    #[test]
    fn a_corrupt_newer_payload_falls_back_to_the_older_slot() {
        let older = slot(&database(3), 4, 10);
        let mut newer = slot(&database(6), 5, 20);
        newer[1][0] ^= 0x80;
        let choice = newest_valid(&newer, &older, CLUSTER).expect("valid");
        assert_eq!(
            choice.chosen.as_ref().map(|c| (c.slot, c.generation)),
            Some((Slot::B, 4))
        );
        assert!(choice.fallback);
        let rejected = choice.rejected.expect("reported");
        assert_eq!((rejected.slot, rejected.generation), (Slot::A, Some(5)));
        assert!(rejected
            .to_string()
            .starts_with("checkpoint A (generation 5): payload checksum mismatch"));
    }

    #[test]
    fn a_corrupt_header_is_a_fallback_because_its_age_is_unknown() {
        let older = slot(&database(3), 4, 10);
        let mut corrupt = slot(&database(6), 5, 20);
        corrupt[0][40] ^= 1;
        let choice = newest_valid(&older, &corrupt, CLUSTER).expect("valid");
        assert_eq!(choice.chosen.map(|c| c.generation), Some(4));
        assert!(choice.fallback);
        assert!(matches!(
            choice.rejected,
            Some(SlotFailure {
                slot: Slot::B,
                generation: None,
                error: CheckpointError::Header(_)
            })
        ));
    }

    #[test]
    fn a_corrupt_older_slot_is_reported_but_is_no_fallback() {
        let mut older = slot(&database(3), 4, 10);
        older[1][0] ^= 1;
        let newer = slot(&database(6), 5, 20);
        let choice = newest_valid(&older, &newer, CLUSTER).expect("valid");
        assert_eq!(choice.chosen.map(|c| c.generation), Some(5));
        assert!(!choice.fallback);
        assert_eq!(
            choice.rejected, None,
            "the older payload is never read when the newer is valid"
        );
    }

    #[test]
    fn a_fresh_disk_has_no_checkpoint_and_that_is_fine() {
        assert_eq!(
            newest_valid(&empty_slot(), &empty_slot(), CLUSTER),
            Ok(CheckpointChoice::none())
        );
        let only = slot(&database(2), 1, 3);
        let choice = newest_valid(&empty_slot(), &only, CLUSTER).expect("valid");
        assert_eq!(choice.chosen.map(|c| c.slot), Some(Slot::B));
        assert!(!choice.fallback);
    }

    #[test]
    fn nothing_valid_after_a_write_is_an_error() {
        let mut only = slot(&database(2), 1, 3);
        only[1][5] ^= 1;
        let error = newest_valid(&only, &empty_slot(), CLUSTER).unwrap_err();
        assert!(
            matches!(&error, CheckpointChoiceError::NothingValid { failures } if failures.len() == 1)
        );
        assert!(error.to_string().starts_with(
            "no valid checkpoint, but a slot was written; checkpoint A (generation 1)"
        ));
        let foreign = {
            let mut blocks = encode_checkpoint(&database(1), 1, 0, CLUSTER + 1, 7).unwrap();
            blocks.resize(8, Box::new([0; BLOCK_SIZE]));
            blocks
        };
        assert!(matches!(
            newest_valid(&foreign, &empty_slot(), CLUSTER),
            Err(CheckpointChoiceError::NothingValid { failures })
                if matches!(failures[0].error, CheckpointError::OtherCluster { .. })
        ));
    }

    #[test]
    fn a_newer_generation_that_covers_less_is_inconsistent() {
        let older = slot(&database(6), 4, 20);
        let newer = slot(&database(3), 5, 25);
        assert!(matches!(
            newest_valid(&older, &newer, CLUSTER),
            Err(CheckpointChoiceError::Inconsistent { .. })
        ));
        let behind = slot(&database(6), 5, 19);
        assert!(matches!(
            newest_valid(&older, &behind, CLUSTER),
            Err(CheckpointChoiceError::Inconsistent { .. })
        ));
        let twin = slot(&database(7), 4, 21);
        let error = newest_valid(&older, &twin, CLUSTER).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("inconsistent checkpoints: checkpoint"));
    }
}
