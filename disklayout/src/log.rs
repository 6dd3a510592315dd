//! Log blocks and log replay (FORMAT.md §10).
//!
//! A log block is a batch of global updates (group commit). Replay walks the ring from a start
//! position and applies the duplicate-sequence rule of the original system's quorum log.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{Reader, Writer};
use crate::{Record, Sealed, BODY_BYTES_MAX};

const BLOCK_FIXED_BYTES: usize = 16;
const UPDATE_FIXED_BYTES: usize = 12;
/// The most payload bytes one log block can carry (a single update of this size fills it).
pub const LOG_BODY_BYTES_MAX: usize = BODY_BYTES_MAX - BLOCK_FIXED_BYTES - UPDATE_FIXED_BYTES;

/// One global update as the log stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogUpdate {
    /// The global update sequence number.
    pub sequence: u64,
    /// The node that sent the update.
    pub origin: u8,
    /// The update itself, opaque to the format.
    pub payload: Vec<u8>,
}

/// A batch of updates; the header's sequence is the block's absolute log position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogBlock {
    /// The writer's membership epoch when it appended the block.
    pub epoch: u64,
    /// At least one update.
    pub updates: Vec<LogUpdate>,
}

impl Record for LogBlock {
    const MAGIC: [u8; 4] = *b"WPLG";
    const BODY_BYTES: Option<usize> = None;

    fn body_bytes(&self) -> usize {
        let updates: usize = self
            .updates
            .iter()
            .map(|update| UPDATE_FIXED_BYTES + update.payload.len())
            .sum();
        BLOCK_FIXED_BYTES + updates
    }

    fn validate(&self) -> Result<(), EncodeError> {
        if self.updates.is_empty() {
            return Err(EncodeError::field(
                "count",
                "a log block holds at least one update",
            ));
        }
        if self.updates.len() > u16::MAX as usize {
            return Err(EncodeError::field(
                "count",
                "more updates than a u16 counts",
            ));
        }
        if self
            .updates
            .iter()
            .any(|update| !crate::is_node_id(update.origin))
        {
            return Err(EncodeError::field("origin", "not in 1..=64"));
        }
        if self.body_bytes() > BODY_BYTES_MAX {
            return Err(EncodeError::field(
                "updates",
                format!(
                    "{} body bytes do not fit in a block ({BODY_BYTES_MAX} at most)",
                    self.body_bytes()
                ),
            ));
        }
        Ok(())
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u64(self.epoch);
        writer.u16(self.updates.len() as u16);
        writer.reserved(6);
        for update in &self.updates {
            writer.u64(update.sequence);
            writer.u8(update.origin);
            writer.reserved(1);
            writer.u16(update.payload.len() as u16);
            writer.bytes(&update.payload);
        }
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<LogBlock, DecodeError> {
        let mut reader = Reader::new(body);
        let epoch = reader.u64("epoch")?;
        let count_at = reader.offset();
        let count = reader.u16("count")?;
        if count == 0 {
            return Err(DecodeError::InvalidField {
                offset: count_at,
                field: "count",
                problem: "is 0",
            });
        }
        reader.reserved(6)?;
        let mut updates = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let sequence = reader.u64("sequence")?;
            let origin = reader.node_id("origin")?;
            reader.reserved(1)?;
            let length = reader.u16("length")? as usize;
            let payload = reader.bytes(length, "payload")?.to_vec();
            updates.push(LogUpdate {
                sequence,
                origin,
                payload,
            });
        }
        if reader.remaining() != 0 {
            return Err(reader.invalid("updates", "do not fill the body exactly"));
        }
        Ok(LogBlock { epoch, updates })
    }
}

/// Why replay stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// The next block is empty: the normal end of a log.
    Empty,
    /// The next block does not decode (torn or corrupt): the end of the log.
    Invalid(DecodeError),
    /// The next block holds an older position: a block from the previous lap of the ring.
    OlderPosition {
        /// The position the block holds.
        found: u64,
    },
    /// The next block holds a position other than the next or an older one.
    UnexpectedPosition {
        /// The position the block holds.
        found: u64,
    },
    /// The next block belongs to another cluster id (left from an earlier format).
    OtherCluster,
    /// Every block of the ring was read.
    RingExhausted,
}

/// The result of replaying the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReplay {
    /// The surviving updates in log order, after the duplicate-sequence rule.
    pub updates: Vec<LogUpdate>,
    /// The position the next block must be appended at.
    pub next_position: u64,
    /// Why replay stopped.
    pub end: LogEnd,
    /// How many updates the duplicate-sequence rule discarded.
    pub discarded: usize,
}

/// Replays the ring from `start_position`. `ring[i]` is the decoded block `i` of the log region.
///
/// Duplicate rule (FORMAT.md §10): an update whose sequence is not larger than an earlier kept
/// update's discards every earlier update with that sequence or a larger one; they were logged
/// by a sender that died before replicating them, and their numbers were reused.
pub fn replay_log(
    ring: &[Result<Option<Sealed<LogBlock>>, DecodeError>],
    start_position: u64,
    cluster_id: u64,
) -> LogReplay {
    assert!(!ring.is_empty(), "a log ring has blocks");
    let ring_blocks = ring.len() as u64;
    let mut updates: Vec<LogUpdate> = Vec::new();
    let mut discarded = 0;
    let mut position = start_position;
    let end = loop {
        if position - start_position == ring_blocks {
            break LogEnd::RingExhausted;
        }
        let block = match &ring[(position % ring_blocks) as usize] {
            Ok(None) => break LogEnd::Empty,
            Err(error) => break LogEnd::Invalid(error.clone()),
            Ok(Some(block)) => block,
        };
        if block.cluster_id != cluster_id {
            break LogEnd::OtherCluster;
        }
        if block.sequence < position {
            break LogEnd::OlderPosition {
                found: block.sequence,
            };
        }
        if block.sequence != position {
            break LogEnd::UnexpectedPosition {
                found: block.sequence,
            };
        }
        for update in &block.record.updates {
            let keep = updates
                .iter()
                .position(|kept| kept.sequence >= update.sequence)
                .unwrap_or(updates.len());
            discarded += updates.len() - keep;
            updates.truncate(keep);
            updates.push(update.clone());
        }
        position += 1;
    };
    LogReplay {
        updates,
        next_position: position,
        end,
        discarded,
    }
}
