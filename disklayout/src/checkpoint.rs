//! The checkpoint header (FORMAT.md §9); the payload after it is raw bytes checked by CRC.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_counter, Reader, Writer};
use crate::geometry::CHECKPOINT_BLOCKS_MAX;
use crate::{Record, BLOCK_SIZE};

/// The most payload bytes any checkpoint slot can hold: the largest slot less its header block.
/// The slot a header sits in may be smaller; its reader checks that too (FORMAT.md §9).
pub const CHECKPOINT_PAYLOAD_BYTES_MAX: u64 = (CHECKPOINT_BLOCKS_MAX - 1) * BLOCK_SIZE as u64;

/// Block 0 of a checkpoint slot; the header's sequence is the checkpoint generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointHeader {
    /// The global update sequence number of the last update the checkpoint includes.
    pub database_sequence: u64,
    /// The first log position the checkpoint does not cover: replay starts there.
    pub log_position: u64,
    /// Bytes of payload in the blocks after the header.
    pub payload_bytes: u64,
    /// CRC-32 of those bytes.
    pub payload_crc32: u32,
}

/// The CRC a checkpoint header records for `payload`.
pub fn payload_crc32(payload: &[u8]) -> u32 {
    crc32fast::hash(payload)
}

impl Record for CheckpointHeader {
    const MAGIC: [u8; 4] = *b"WPCK";
    const BODY_BYTES: Option<usize> = Some(32);

    fn validate(&self) -> Result<(), EncodeError> {
        check_counter("database_sequence", self.database_sequence)?;
        check_counter("log_position", self.log_position)?;
        if self.payload_bytes > CHECKPOINT_PAYLOAD_BYTES_MAX {
            return Err(EncodeError::field(
                "payload_length",
                format!(
                    "{} bytes do not fit a checkpoint slot ({CHECKPOINT_PAYLOAD_BYTES_MAX} at most)",
                    self.payload_bytes
                ),
            ));
        }
        Ok(())
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u64(self.database_sequence);
        writer.u64(self.log_position);
        writer.u64(self.payload_bytes);
        writer.u32(self.payload_crc32);
        writer.reserved(4);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<CheckpointHeader, DecodeError> {
        let mut reader = Reader::new(body);
        let database_sequence = reader.counter("database_sequence")?;
        let log_position = reader.counter("log_position")?;
        let payload_at = reader.offset();
        let payload_bytes = reader.u64("payload_length")?;
        if payload_bytes > CHECKPOINT_PAYLOAD_BYTES_MAX {
            return Err(DecodeError::InvalidField {
                offset: payload_at,
                field: "payload_length",
                problem: "does not fit the largest checkpoint slot",
            });
        }
        let header = CheckpointHeader {
            database_sequence,
            log_position,
            payload_bytes,
            payload_crc32: reader.u32("payload_crc32")?,
        };
        reader.reserved(4)?;
        reader.finish()?;
        Ok(header)
    }
}
