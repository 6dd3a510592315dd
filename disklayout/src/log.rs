//! Log blocks and log replay (FORMAT.md §10).
//!
//! A log block is a batch of global updates (group commit). Replay walks the ring from a start
//! position and applies the duplicate-sequence rule of the original system's quorum log.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_counter, Reader, Writer};
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
        check_counter("epoch", self.epoch)?;
        for update in &self.updates {
            check_counter("sequence", update.sequence)?;
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
        let epoch = reader.counter("epoch")?;
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
            let sequence = reader.counter("sequence")?;
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
    /// The next block was written in an earlier epoch than the block before it: an orphan an
    /// earlier writer left beyond a block that never became durable, overtaken since.
    OlderEpoch {
        /// The epoch the block holds.
        found: u64,
        /// The epoch of the block before it.
        previous: u64,
    },
    /// Every block of the ring was read.
    RingExhausted,
}

/// The result of replaying the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReplay {
    /// The surviving updates in log order, after the duplicate-sequence rule.
    pub updates: Vec<LogUpdate>,
    /// The log position of the block each surviving update came from (same order).
    pub positions: Vec<u64>,
    /// The position the next block must be appended at.
    pub next_position: u64,
    /// Why replay stopped.
    pub end: LogEnd,
    /// How many updates the duplicate-sequence rule discarded.
    pub discarded: usize,
}

/// Which of two updates with one sequence number survives replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicateRule {
    /// The format's rule (FORMAT.md §10): the later update wins, and the earlier one (with every
    /// earlier update numbered at or above it) is discarded, because it was logged by a sender
    /// that died before replicating it and its number was reused.
    LaterWins,
    /// The wrong rule, on purpose: the first update with a number is kept and later ones are
    /// dropped. It exists only so the simulator's mutation `replay-keeps-duplicate` can prove
    /// that its checkers catch a replay that resolves duplicates the wrong way. Never use it
    /// for a real disk.
    EarlierWins,
}

/// What the replayer wants after a block was fed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayStep {
    /// Feed the block at [`LogReplayer::next_position`].
    Continue,
    /// The log ended; call [`LogReplayer::finish`].
    Ended(LogEnd),
}

/// Replays the ring one block at a time, for a caller that reads blocks itself (the sans-IO
/// core reads one block per disk operation and cannot hand over the whole ring at once).
///
/// Feed the decoded block at [`next_position`](LogReplayer::next_position) (stored in ring block
/// `position % ring_blocks`) until [`feed`](LogReplayer::feed) returns [`ReplayStep::Ended`],
/// then [`finish`](LogReplayer::finish). The end conditions and the duplicate rule are those of
/// FORMAT.md §10.
#[derive(Clone, Debug)]
pub struct LogReplayer {
    start_position: u64,
    ring_blocks: u64,
    cluster_id: u64,
    rule: DuplicateRule,
    position: u64,
    blocks_replayed: u64,
    updates: Vec<LogUpdate>,
    positions: Vec<u64>,
    discarded: usize,
    end: Option<LogEnd>,
    last_epoch: u64,
}

impl LogReplayer {
    /// A replayer that starts at `start_position` in a ring of `ring_blocks` blocks.
    ///
    /// # Panics
    /// When `ring_blocks` is 0: a geometry that decoded has at least 16 log blocks.
    pub fn new(
        start_position: u64,
        ring_blocks: u64,
        cluster_id: u64,
        rule: DuplicateRule,
    ) -> LogReplayer {
        assert!(ring_blocks > 0, "a log ring has blocks");
        LogReplayer {
            start_position,
            ring_blocks,
            cluster_id,
            rule,
            position: start_position,
            blocks_replayed: 0,
            updates: Vec::new(),
            positions: Vec::new(),
            discarded: 0,
            end: None,
            last_epoch: 0,
        }
    }

    /// The position of the block to feed next, or `None` once the log ended.
    pub fn next_position(&self) -> Option<u64> {
        match self.end {
            None => Some(self.position),
            Some(_) => None,
        }
    }

    /// The ring block (index within the log region) that stores `position`.
    pub fn ring_block(&self, position: u64) -> u64 {
        position % self.ring_blocks
    }

    /// How many blocks were fed that belonged to the log (the block that ended it excluded).
    pub fn blocks_replayed(&self) -> u64 {
        self.blocks_replayed
    }

    /// The position replay started at.
    pub fn start_position(&self) -> u64 {
        self.start_position
    }

    /// Takes the decoded block at `position`. Feeding after the end repeats the end.
    ///
    /// # Panics
    /// When `position` is not [`next_position`](LogReplayer::next_position): blocks must come
    /// in order, and feeding another one is a bug of the caller, not bad input.
    pub fn feed(
        &mut self,
        position: u64,
        block: &Result<Option<Sealed<LogBlock>>, DecodeError>,
    ) -> ReplayStep {
        if let Some(end) = &self.end {
            return ReplayStep::Ended(end.clone());
        }
        assert_eq!(
            position, self.position,
            "log blocks are fed in position order"
        );
        match self.judge(block) {
            Some(end) => {
                self.end = Some(end.clone());
                ReplayStep::Ended(end)
            }
            None => {
                if let Ok(Some(block)) = block {
                    self.last_epoch = block.record.epoch;
                    for update in &block.record.updates {
                        self.keep(update);
                    }
                }
                self.blocks_replayed += 1;
                // A position near u64::MAX can only come from a corrupt checkpoint that passed
                // its CRC; running out of positions ends the log like running out of ring.
                match self.position.checked_add(1) {
                    Some(next) if self.blocks_replayed < self.ring_blocks => {
                        self.position = next;
                        ReplayStep::Continue
                    }
                    next => {
                        self.position = next.unwrap_or(self.position);
                        self.end = Some(LogEnd::RingExhausted);
                        ReplayStep::Ended(LogEnd::RingExhausted)
                    }
                }
            }
        }
    }

    /// The replay's result.
    ///
    /// # Panics
    /// When the log has not ended yet: a caller that cannot read on (a disk error) abandons the
    /// replay instead of pretending the log ended there.
    pub fn finish(self) -> LogReplay {
        let end = self
            .end
            .expect("finish is called once feed returned ReplayStep::Ended");
        LogReplay {
            updates: self.updates,
            positions: self.positions,
            next_position: self.position,
            end,
            discarded: self.discarded,
        }
    }

    /// Why the block at the current position ends the log, if it does.
    fn judge(&self, block: &Result<Option<Sealed<LogBlock>>, DecodeError>) -> Option<LogEnd> {
        let block = match block {
            Ok(None) => return Some(LogEnd::Empty),
            Err(error) => return Some(LogEnd::Invalid(error.clone())),
            Ok(Some(block)) => block,
        };
        if block.cluster_id != self.cluster_id {
            return Some(LogEnd::OtherCluster);
        }
        if block.sequence < self.position {
            return Some(LogEnd::OlderPosition {
                found: block.sequence,
            });
        }
        if block.sequence != self.position {
            return Some(LogEnd::UnexpectedPosition {
                found: block.sequence,
            });
        }
        if block.record.epoch < self.last_epoch {
            return Some(LogEnd::OlderEpoch {
                found: block.record.epoch,
                previous: self.last_epoch,
            });
        }
        None
    }

    fn keep(&mut self, update: &LogUpdate) {
        // Kept updates are strictly increasing in sequence, so the duplicates of `update` and
        // everything numbered above it form a suffix.
        let first_not_below = self
            .updates
            .partition_point(|kept| kept.sequence < update.sequence);
        let superseded = self.updates.len() - first_not_below;
        match self.rule {
            DuplicateRule::LaterWins => {
                self.discarded += superseded;
                self.updates.truncate(first_not_below);
                self.positions.truncate(first_not_below);
                self.updates.push(update.clone());
                self.positions.push(self.position);
            }
            DuplicateRule::EarlierWins if superseded > 0 => self.discarded += 1,
            DuplicateRule::EarlierWins => {
                self.updates.push(update.clone());
                self.positions.push(self.position);
            }
        }
    }
}

/// Replays the ring from `start_position` with the format's duplicate rule. `ring[i]` is the
/// decoded block `i` of the log region.
///
/// Duplicate rule (FORMAT.md §10): an update whose sequence is not larger than an earlier kept
/// update's discards every earlier update with that sequence or a larger one; they were logged
/// by a sender that died before replicating them, and their numbers were reused.
pub fn replay_log(
    ring: &[Result<Option<Sealed<LogBlock>>, DecodeError>],
    start_position: u64,
    cluster_id: u64,
) -> LogReplay {
    let ring_blocks = ring.len() as u64;
    let mut replayer = LogReplayer::new(
        start_position,
        ring_blocks,
        cluster_id,
        DuplicateRule::LaterWins,
    );
    while let Some(position) = replayer.next_position() {
        let block = &ring[replayer.ring_block(position) as usize];
        if let ReplayStep::Ended(_) = replayer.feed(position, block) {
            break;
        }
    }
    replayer.finish()
}
