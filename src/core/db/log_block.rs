//! Packing updates into log blocks (FORMAT.md §10): the group commit of the update manager
//! writes as many as fit into one block.

use disklayout::{Block, EncodeError, LogBlock, LogUpdate, Sealed, BLOCK_SIZE, BODY_BYTES_MAX};

/// Bytes of a log block body before its updates, and per update before its payload
/// (FORMAT.md §10); `LOG_BODY_BYTES_MAX` is what remains for one update's payload.
const BLOCK_FIXED_BYTES: usize = 16;
const UPDATE_FIXED_BYTES: usize = 12;
const _: () = assert!(
    BODY_BYTES_MAX - BLOCK_FIXED_BYTES - UPDATE_FIXED_BYTES == disklayout::LOG_BODY_BYTES_MAX
);

fn body_bytes<'a>(payload_lengths: impl Iterator<Item = usize> + 'a) -> usize {
    BLOCK_FIXED_BYTES
        + payload_lengths
            .map(|length| UPDATE_FIXED_BYTES + length)
            .sum::<usize>()
}

/// Whether these updates fit one log block (they must also be at least one).
pub fn log_block_fits(updates: &[LogUpdate]) -> bool {
    !updates.is_empty()
        && body_bytes(updates.iter().map(|update| update.payload.len())) <= BODY_BYTES_MAX
}

/// Encodes the log block at absolute `position` (its envelope sequence), written by a member
/// of `epoch`. Refuses no updates, too many bytes, or an origin outside 1..=64.
pub fn encode_log_block(
    cluster_id: u64,
    position: u64,
    epoch: u64,
    updates: &[LogUpdate],
) -> Result<Box<Block>, EncodeError> {
    let sealed = Sealed {
        cluster_id,
        sequence: position,
        record: LogBlock {
            epoch,
            updates: updates.to_vec(),
        },
    };
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    disklayout::encode(&sealed, &mut block)?;
    Ok(block)
}

/// Collects updates until the next one would not fit, for a batcher that commits as many
/// updates per block write as it can.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogBlockBuilder {
    updates: Vec<LogUpdate>,
    body_bytes: usize,
}

impl LogBlockBuilder {
    pub fn new() -> LogBlockBuilder {
        LogBlockBuilder {
            updates: Vec::new(),
            body_bytes: BLOCK_FIXED_BYTES,
        }
    }

    /// Whether an update with a payload of `payload_bytes` would still fit.
    pub fn fits(&self, payload_bytes: usize) -> bool {
        self.body_bytes + UPDATE_FIXED_BYTES + payload_bytes <= BODY_BYTES_MAX
    }

    /// Adds the update, or hands it back when the block is full. A payload above
    /// `LOG_BODY_BYTES_MAX` never fits, not even an empty block; `Update::encode` keeps
    /// payloads within it.
    pub fn try_push(&mut self, update: LogUpdate) -> Result<(), LogUpdate> {
        if !self.fits(update.payload.len()) {
            return Err(update);
        }
        self.body_bytes += UPDATE_FIXED_BYTES + update.payload.len();
        self.updates.push(update);
        Ok(())
    }

    pub fn updates(&self) -> &[LogUpdate] {
        &self.updates
    }

    pub fn len(&self) -> usize {
        self.updates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// The largest payload one more update may have, `None` when not even an empty one fits.
    pub fn room(&self) -> Option<usize> {
        BODY_BYTES_MAX.checked_sub(self.body_bytes + UPDATE_FIXED_BYTES)
    }

    pub fn encode(
        &self,
        cluster_id: u64,
        position: u64,
        epoch: u64,
    ) -> Result<Box<Block>, EncodeError> {
        encode_log_block(cluster_id, position, epoch, &self.updates)
    }

    pub fn into_updates(self) -> Vec<LogUpdate> {
        self.updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use disklayout::LOG_BODY_BYTES_MAX;

    fn update(sequence: u64, payload_bytes: usize) -> LogUpdate {
        LogUpdate {
            sequence,
            origin: 1,
            payload: vec![sequence as u8; payload_bytes],
        }
    }

    #[test]
    fn one_update_of_the_largest_size_fills_a_block() {
        let largest = update(1, LOG_BODY_BYTES_MAX);
        assert!(log_block_fits(std::slice::from_ref(&largest)));
        assert!(!log_block_fits(&[update(1, LOG_BODY_BYTES_MAX + 1)]));
        assert!(!log_block_fits(&[]));
        let block = encode_log_block(7, 3, 2, std::slice::from_ref(&largest)).expect("fits");
        let decoded = disklayout::decode::<LogBlock>(&block[..])
            .expect("valid")
            .expect("written");
        assert_eq!(decoded.sequence, 3);
        assert_eq!(decoded.record.epoch, 2);
        assert_eq!(decoded.record.updates, vec![largest]);
    }

    #[test]
    fn the_builder_takes_updates_until_the_block_is_full() {
        let mut builder = LogBlockBuilder::new();
        let mut sequence = 0;
        loop {
            sequence += 1;
            if let Err(refused) = builder.try_push(update(sequence, 1100)) {
                assert_eq!(refused.sequence, sequence);
                break;
            }
        }
        assert_eq!(
            builder.len(),
            3,
            "3 x 1112 bytes fit a 4064-byte body after 16, 4 do not"
        );
        assert!(log_block_fits(builder.updates()));
        let room = builder.room().expect("room for one more");
        assert_eq!(room, BODY_BYTES_MAX - 16 - 3 * 1112 - 12);
        assert!(builder.try_push(update(sequence, room)).is_ok());
        assert_eq!(builder.room(), None);
        assert!(builder.try_push(update(sequence + 1, 0)).is_err());
        let block = builder.encode(7, 0, 1).expect("fits exactly");
        let decoded = disklayout::decode::<LogBlock>(&block[..]).unwrap().unwrap();
        assert_eq!(decoded.record.updates, builder.into_updates());
    }

    #[test]
    fn an_oversized_update_never_fits_even_alone() {
        let mut builder = LogBlockBuilder::new();
        assert!(builder.try_push(update(1, LOG_BODY_BYTES_MAX + 1)).is_err());
        assert!(builder.is_empty());
        assert!(encode_log_block(7, 0, 1, &[]).is_err());
        let mut bad_origin = update(1, 1);
        bad_origin.origin = 0;
        assert!(encode_log_block(7, 0, 1, &[bad_origin]).is_err());
    }
}
