//! The snapshot: a whole database as bytes, for the joiner and for checkpoints.
//!
//! Format 1 (little-endian):
//!
//! ```text
//! magic "WPDB" | format u16 (= 1) | reserved u16 (= 0) | sequence u64 | entry count u32
//! entries, in key order, each: path (length u8, bytes) | version u64 | value (see value.rs)
//! crc32 u32 over every byte before it
//! ```
//!
//! The CRC makes a snapshot that travels in chunks (network, checkpoint blocks) checkable end
//! to end by whoever reassembles it; the checkpoint's own CRC only covers its blocks.

use std::collections::BTreeMap;
use std::fmt;

use super::codec::{FieldError, FieldProblem, Reader, Sink};
use super::database::{Database, Entry, ENTRIES_MAX};
use super::path::Path;
use super::value::{decode_path, encode_path, path_encoded_len, Value};

const MAGIC: [u8; 4] = *b"WPDB";
const FORMAT: u16 = 1;
const HEADER_BYTES: usize = 4 + 2 + 2 + 8 + 4;
const CRC_BYTES: usize = 4;
/// The snapshot of an empty database.
pub(crate) const EMPTY_BYTES: usize = HEADER_BYTES + CRC_BYTES;

/// Why bytes are not a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    TooShort {
        bytes: usize,
    },
    WrongMagic {
        found: [u8; 4],
    },
    UnknownFormat {
        found: u16,
    },
    Checksum {
        stored: u32,
        computed: u32,
    },
    TooManyEntries {
        count: u32,
    },
    Field(FieldError),
    /// Keys must be strictly ascending: an unsorted or repeated key.
    OutOfOrder {
        offset: usize,
        path: Path,
        previous: Path,
    },
    /// A stored entry was put by some update, numbered from 1 to the snapshot's sequence.
    BadVersion {
        path: Path,
        version: u64,
        sequence: u64,
    },
    TrailingBytes {
        offset: usize,
        count: usize,
    },
}

impl From<FieldError> for SnapshotError {
    fn from(error: FieldError) -> SnapshotError {
        SnapshotError::Field(error)
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::TooShort { bytes } => {
                write!(f, "{bytes} bytes is shorter than any snapshot ({EMPTY_BYTES} at least)")
            }
            SnapshotError::WrongMagic { found } => {
                write!(f, "not a database snapshot (magic {found:02x?})")
            }
            SnapshotError::UnknownFormat { found } => write!(
                f,
                "snapshot format {found} is unknown (this wolfpack reads {FORMAT})"
            ),
            SnapshotError::Checksum { stored, computed } => write!(
                f,
                "snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x} (corrupt)"
            ),
            SnapshotError::TooManyEntries { count } => {
                write!(f, "{count} entries; a database holds at most {ENTRIES_MAX}")
            }
            SnapshotError::Field(error) => write!(f, "{error}"),
            SnapshotError::OutOfOrder {
                offset,
                path,
                previous,
            } => write!(
                f,
                "entry {path} at byte {offset} does not sort after {previous} (unsorted or repeated key)"
            ),
            SnapshotError::BadVersion {
                path,
                version,
                sequence,
            } => write!(
                f,
                "entry {path} has version {version}, outside 1..={sequence} (the snapshot's sequence)"
            ),
            SnapshotError::TrailingBytes { offset, count } => {
                write!(f, "{count} bytes follow the last entry at byte {offset}")
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

pub(crate) fn entry_encoded_len(path: &Path, value: &Value) -> usize {
    path_encoded_len(path) + 8 + value.encoded_len()
}

/// Everything but the CRC.
pub(crate) fn encode_content(database: &Database, sink: &mut impl Sink) {
    sink.put(&MAGIC);
    sink.put(&FORMAT.to_le_bytes());
    sink.put(&[0, 0]);
    sink.put(&database.sequence().to_le_bytes());
    let count = u32::try_from(database.len()).expect("ENTRIES_MAX bounds the count");
    sink.put(&count.to_le_bytes());
    for (path, entry) in database.entries() {
        encode_entry(path, entry, sink);
    }
}

/// One entry as the snapshot encodes it.
pub(crate) fn encode_entry(path: &Path, entry: &Entry, sink: &mut impl Sink) {
    encode_path(path, sink);
    sink.put(&entry.version.to_le_bytes());
    entry.value.encode(sink);
}

impl Database {
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.snapshot_len());
        encode_content(self, &mut bytes);
        let crc = disklayout::payload_crc32(&bytes);
        bytes.put(&crc.to_le_bytes());
        debug_assert_eq!(bytes.len(), self.snapshot_len());
        bytes
    }

    /// Decodes untrusted bytes into a database with the default limits.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Database, SnapshotError> {
        if bytes.len() < EMPTY_BYTES {
            return Err(SnapshotError::TooShort { bytes: bytes.len() });
        }
        let (content, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
        let mut reader = Reader::new(content);
        let mut magic = [0; 4];
        magic.copy_from_slice(reader.take(4, "magic")?);
        if magic != MAGIC {
            return Err(SnapshotError::WrongMagic { found: magic });
        }
        let format = reader.u16("format")?;
        if format != FORMAT {
            return Err(SnapshotError::UnknownFormat { found: format });
        }
        let stored = Reader::new(crc).u32("crc32")?;
        let computed = disklayout::payload_crc32(content);
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        let reserved_at = reader.offset();
        if reader.u16("reserved")? != 0 {
            return Err(reader
                .error(reserved_at, "reserved", FieldProblem::NonZeroReserved)
                .into());
        }
        let sequence = reader.u64("sequence")?;
        let count = reader.u32("entry count")?;
        if count as usize > ENTRIES_MAX {
            return Err(SnapshotError::TooManyEntries { count });
        }
        let mut entries = BTreeMap::new();
        let mut previous: Option<Path> = None;
        for _ in 0..count {
            let offset = reader.offset();
            let path = decode_path(&mut reader)?;
            let version = reader.u64("version")?;
            let value = Value::decode(&mut reader)?;
            if let Some(previous) = previous.filter(|previous| *previous >= path) {
                return Err(SnapshotError::OutOfOrder {
                    offset,
                    path,
                    previous,
                });
            }
            if version == 0 || version > sequence {
                return Err(SnapshotError::BadVersion {
                    path,
                    version,
                    sequence,
                });
            }
            previous = Some(path.clone());
            entries.insert(path, Entry { value, version });
        }
        if reader.remaining() != 0 {
            return Err(SnapshotError::TrailingBytes {
                offset: reader.offset(),
                count: reader.remaining(),
            });
        }
        Ok(Database::from_parts(sequence, entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::db::{Op, Outcome, Update};

    fn path(text: &str) -> Path {
        Path::parse(text).expect("a valid path")
    }

    fn sample() -> Database {
        let mut database = Database::default();
        let first = Update::new(vec![
            Op::Put {
                path: path("groups/web/owner"),
                value: Value::U64(2),
            },
            Op::Put {
                path: path("groups/web-2"),
                value: Value::Text("x".into()),
            },
            Op::Put {
                path: path("nodes/1/name"),
                value: Value::Text("alpha".into()),
            },
        ]);
        assert_eq!(database.apply(1, &first), Ok(Outcome::Applied));
        let second = Update::put(path("groups/web"), Value::NodeList(vec![1, 3]));
        assert_eq!(database.apply(2, &second), Ok(Outcome::Applied));
        database
    }

    /// Rewrites the CRC so a test reaches the check after it.
    fn reseal(bytes: &mut [u8]) {
        let content = bytes.len() - CRC_BYTES;
        let crc = disklayout::payload_crc32(&bytes[..content]);
        bytes[content..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trips_with_the_same_digest() {
        let database = sample();
        let bytes = database.snapshot_bytes();
        assert_eq!(bytes.len(), database.snapshot_len());
        let copy = Database::from_snapshot(&bytes).expect("a valid snapshot");
        assert_eq!(copy, database);
        assert_eq!(copy.digest(), database.digest());
        assert_eq!(copy.snapshot_len(), database.snapshot_len());
        assert_eq!(
            Database::from_snapshot(&Database::default().snapshot_bytes()),
            Ok(Database::default())
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut bytes = sample().snapshot_bytes();
        bytes[HEADER_BYTES + 3] ^= 0x10;
        assert!(matches!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::Checksum { .. })
        ));
    }

    #[test]
    fn unsorted_or_repeated_keys_are_refused() {
        let database = sample();
        let mut bytes = database.snapshot_bytes();
        // The first two entries are groups/web (NodeList) and groups/web/owner (U64): swap them.
        let first_len = entry_encoded_len(&path("groups/web"), &Value::NodeList(vec![1, 3]));
        let second_len = entry_encoded_len(&path("groups/web/owner"), &Value::U64(2));
        let start = HEADER_BYTES;
        let mut swapped = bytes[start + first_len..start + first_len + second_len].to_vec();
        swapped.extend_from_slice(&bytes[start..start + first_len]);
        bytes[start..start + first_len + second_len].copy_from_slice(&swapped);
        reseal(&mut bytes);
        assert_eq!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::OutOfOrder {
                offset: start + second_len,
                path: path("groups/web"),
                previous: path("groups/web/owner"),
            })
        );
        let mut repeated = database.snapshot_bytes();
        let duplicate = repeated[start..start + first_len].to_vec();
        repeated.splice(start..start, duplicate);
        let count_at = HEADER_BYTES - 4;
        repeated[count_at..count_at + 4].copy_from_slice(&5u32.to_le_bytes());
        reseal(&mut repeated);
        assert!(matches!(
            Database::from_snapshot(&repeated),
            Err(SnapshotError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn versions_must_lie_within_the_sequence() {
        let mut bytes = sample().snapshot_bytes();
        let sequence_at = 8;
        bytes[sequence_at..sequence_at + 8].copy_from_slice(&1u64.to_le_bytes());
        reseal(&mut bytes);
        assert_eq!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::BadVersion {
                path: path("groups/web"),
                version: 2,
                sequence: 1
            })
        );
    }

    #[test]
    fn counts_and_lengths_must_agree() {
        let mut bytes = sample().snapshot_bytes();
        let count_at = HEADER_BYTES - 4;
        bytes[count_at..count_at + 4].copy_from_slice(&3u32.to_le_bytes());
        reseal(&mut bytes);
        assert!(matches!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::TrailingBytes { .. })
        ));
        bytes[count_at..count_at + 4].copy_from_slice(&5u32.to_le_bytes());
        reseal(&mut bytes);
        assert!(matches!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::Field(FieldError {
                problem: FieldProblem::Truncated,
                ..
            }))
        ));
        bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut bytes);
        assert_eq!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::TooManyEntries { count: u32::MAX })
        );
    }

    #[test]
    fn the_header_is_checked_first() {
        assert_eq!(
            Database::from_snapshot(&[0; 10]),
            Err(SnapshotError::TooShort { bytes: 10 })
        );
        let mut bytes = sample().snapshot_bytes();
        bytes[0] = b'X';
        assert!(matches!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::WrongMagic { .. })
        ));
        let mut bytes = sample().snapshot_bytes();
        bytes[4] = 2;
        assert_eq!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::UnknownFormat { found: 2 })
        );
        let mut bytes = sample().snapshot_bytes();
        bytes[6] = 1;
        reseal(&mut bytes);
        assert!(matches!(
            Database::from_snapshot(&bytes),
            Err(SnapshotError::Field(FieldError {
                problem: FieldProblem::NonZeroReserved,
                ..
            }))
        ));
    }
}
