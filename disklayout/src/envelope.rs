//! The 32-byte record header shared by every record, and the generic encode/decode (FORMAT.md §3).
use crate::error::{DecodeError, EncodeError};
use crate::{Block, ATOMIC_SECTOR_SIZE, BLOCK_SIZE, BODY_BYTES_MAX, HEADER_SIZE, LAYOUT_VERSION};
use byteorder::{ByteOrder, LittleEndian};

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 4;
const RESERVED_AT: usize = 6;
const CLUSTER_ID_AT: usize = 8;
const SEQUENCE_AT: usize = 16;
const BODY_LENGTH_AT: usize = 24;
const CRC_AT: usize = 28;

/// One record type of the format: its magic and how its body is laid out.
pub trait Record: Sized {
    /// The four ASCII letters that start every block of this type.
    const MAGIC: [u8; 4];
    /// The body length of every record of this type, or `None` when it varies (the log block).
    const BODY_BYTES: Option<usize>;
    /// Whether the block carries the record twice, in sectors 0 and 1 (FORMAT.md §3): every
    /// record that fits one sector. A crash that tears the write of one sector leaves the other
    /// whole, so the block always reads as the old record or the new one, never as nothing.
    const MIRRORED: bool = match Self::BODY_BYTES {
        Some(body) => HEADER_SIZE + body <= ATOMIC_SECTOR_SIZE,
        None => false,
    };
    /// The body length of this record.
    fn body_bytes(&self) -> usize {
        Self::BODY_BYTES.expect("variable-length records override body_bytes")
    }
    /// Checks every field before anything is written.
    fn validate(&self) -> Result<(), EncodeError>;
    /// Writes the body; `body` is exactly `body_bytes()` long and the record is valid.
    fn encode_body(&self, body: &mut [u8]);
    /// Reads a body whose length has been checked against `BODY_BYTES`.
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError>;
}

/// A record with the header fields that every record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed<R> {
    /// The id of the cluster the disk was formatted for.
    pub cluster_id: u64,
    /// The record's generation; its meaning depends on the type (FORMAT.md §3).
    pub sequence: u64,
    /// The record itself.
    pub record: R,
}

/// The header fields of any record, readable without knowing its type (for dumps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The record type's magic.
    pub magic: [u8; 4],
    /// The layout version.
    pub version: u16,
    /// The id of the cluster the disk was formatted for.
    pub cluster_id: u64,
    /// The record's generation.
    pub sequence: u64,
    /// The body's length in bytes.
    pub body_bytes: u32,
}

impl Header {
    /// Reads the header of a block without checking anything but its size.
    pub fn peek(block: &[u8]) -> Option<Header> {
        if block.len() < HEADER_SIZE {
            return None;
        }
        let mut magic = [0; 4];
        magic.copy_from_slice(&block[MAGIC_AT..MAGIC_AT + 4]);
        Some(Header {
            magic,
            version: LittleEndian::read_u16(&block[VERSION_AT..]),
            cluster_id: LittleEndian::read_u64(&block[CLUSTER_ID_AT..]),
            sequence: LittleEndian::read_u64(&block[SEQUENCE_AT..]),
            body_bytes: LittleEndian::read_u32(&block[BODY_LENGTH_AT..]),
        })
    }
}

/// Encodes `sealed` into `block`, zeroing every byte after the body. Nothing is written when the
/// record is invalid.
pub fn encode<R: Record>(sealed: &Sealed<R>, block: &mut Block) -> Result<(), EncodeError> {
    crate::fields::check_counter("sequence", sealed.sequence)?;
    sealed.record.validate()?;
    let body_bytes = sealed.record.body_bytes();
    assert!(body_bytes <= BODY_BYTES_MAX, "validate bounds every body");
    if let Some(fixed) = R::BODY_BYTES {
        assert_eq!(body_bytes, fixed);
    }
    block.fill(0);
    block[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(&R::MAGIC);
    LittleEndian::write_u16(&mut block[VERSION_AT..], LAYOUT_VERSION);
    LittleEndian::write_u64(&mut block[CLUSTER_ID_AT..], sealed.cluster_id);
    LittleEndian::write_u64(&mut block[SEQUENCE_AT..], sealed.sequence);
    LittleEndian::write_u32(&mut block[BODY_LENGTH_AT..], body_bytes as u32);
    sealed
        .record
        .encode_body(&mut block[HEADER_SIZE..HEADER_SIZE + body_bytes]);
    let crc = record_crc(block, body_bytes);
    LittleEndian::write_u32(&mut block[CRC_AT..], crc);
    if R::MIRRORED {
        let (first, rest) = block.split_at_mut(ATOMIC_SECTOR_SIZE);
        rest[..ATOMIC_SECTOR_SIZE].copy_from_slice(first);
    }
    Ok(())
}

/// Decodes a block: `Ok(None)` for an empty (all-zero) block, the record when it is valid, and
/// otherwise the first problem found. A mirrored record (FORMAT.md §3) is the copy in sector 0
/// when that copy is valid, else the copy in sector 1; the block is empty when no copy is valid
/// and one copy is empty (a first write torn over an empty block), and otherwise fails with the
/// problem of sector 0's copy. Bytes after the two copies must be zero.
pub fn decode<R: Record>(block: &[u8]) -> Result<Option<Sealed<R>>, DecodeError> {
    if block.len() != BLOCK_SIZE {
        return Err(DecodeError::WrongBlockSize {
            length: block.len(),
        });
    }
    if !R::MIRRORED {
        return decode_copy(block);
    }
    let copies_end = 2 * ATOMIC_SECTOR_SIZE;
    let first = decode_copy::<R>(&block[..ATOMIC_SECTOR_SIZE]);
    let second = || decode_copy::<R>(&block[ATOMIC_SECTOR_SIZE..copies_end]);
    let read = match first {
        Ok(Some(sealed)) => Some(sealed),
        first => match (first, second()) {
            (_, Ok(Some(sealed))) => Some(sealed),
            (Err(problem), Err(_)) => return Err(problem),
            // One copy is empty: a first write torn over an empty block.
            _ => None,
        },
    };
    if is_zero(&block[copies_end..]) {
        return Ok(read);
    }
    let index = block[copies_end..]
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(0);
    Err(DecodeError::NonZeroPadding {
        offset: copies_end + index,
    })
}

/// Decodes one copy of a record that fills `window` (the block, or one sector of a mirrored
/// block). The order: empty or torn, magic, version (a newer layout may define the rest
/// differently), body length, CRC, then the reserved bytes, the sequence's range and padding
/// (a flipped bit there already fails the CRC; these catch a writer that set them), then the
/// body's fields. Offsets in errors are offsets in the window.
fn decode_copy<R: Record>(window: &[u8]) -> Result<Option<Sealed<R>>, DecodeError> {
    if is_zero(&window[..HEADER_SIZE]) {
        return match is_zero(window) {
            true => Ok(None),
            false => Err(DecodeError::Torn),
        };
    }
    let header = Header::peek(window).expect("a window is longer than a header");
    if header.magic != R::MAGIC {
        return Err(DecodeError::WrongMagic {
            found: header.magic,
            expected: R::MAGIC,
        });
    }
    if header.version != LAYOUT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: header.version,
            supported: LAYOUT_VERSION,
        });
    }
    let body_bytes = header.body_bytes as usize;
    let allowed = R::BODY_BYTES.unwrap_or(BODY_BYTES_MAX);
    let length_ok = match R::BODY_BYTES {
        Some(fixed) => body_bytes == fixed,
        None => body_bytes <= BODY_BYTES_MAX,
    };
    if !length_ok || HEADER_SIZE + body_bytes > window.len() {
        return Err(DecodeError::BodyLength {
            found: header.body_bytes,
            allowed: allowed as u32,
        });
    }
    let stored = LittleEndian::read_u32(&window[CRC_AT..]);
    let computed = record_crc(window, body_bytes);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    if let Some(index) = window[RESERVED_AT..RESERVED_AT + 2]
        .iter()
        .position(|&byte| byte != 0)
    {
        return Err(DecodeError::NonZeroReserved {
            offset: RESERVED_AT + index,
        });
    }
    // Every record's sequence is a counter (FORMAT.md §3), however its type uses it.
    if !crate::is_counter(header.sequence) {
        return Err(DecodeError::InvalidField {
            offset: SEQUENCE_AT,
            field: "sequence",
            problem: "is above the largest counter (2^62-1)",
        });
    }
    let padding_start = HEADER_SIZE + body_bytes;
    if !is_zero(&window[padding_start..]) {
        let index = window[padding_start..]
            .iter()
            .position(|&byte| byte != 0)
            .unwrap_or(0);
        return Err(DecodeError::NonZeroPadding {
            offset: padding_start + index,
        });
    }
    let record = R::decode_body(&window[HEADER_SIZE..padding_start])?;
    Ok(Some(Sealed {
        cluster_id: header.cluster_id,
        sequence: header.sequence,
        record,
    }))
}

/// CRC-32 of header bytes 0..28 followed by the body.
fn record_crc(block: &[u8], body_bytes: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&block[..CRC_AT]);
    hasher.update(&block[HEADER_SIZE..HEADER_SIZE + body_bytes]);
    hasher.finalize()
}

/// Whether every byte is zero; ORs whole words because the padding scan is on the heartbeat path.
fn is_zero(bytes: &[u8]) -> bool {
    let (words, tail) = bytes.split_at(bytes.len() - bytes.len() % 8);
    let words_or = words
        .chunks_exact(8)
        .fold(0u64, |acc, word| acc | LittleEndian::read_u64(word));
    words_or == 0 && tail.iter().all(|&byte| byte == 0)
}
