//! Updates: lists of operations the global update manager orders and every node applies.
//!
//! Encoding, format 1 (little-endian), small enough for one log entry:
//!
//! ```text
//! format u8 (= 1) | operation count u16 (>= 1) | operations ...
//! operation: tag u8 | path (length u8, bytes) | then by tag:
//!   1 Put     value (tag u8, then: text/bytes u16 length + bytes; u64/i64 8 bytes;
//!             bool 1 byte; node list u64 bitmap, bit n-1 = node n)
//!   2 Delete  nothing
//!   3 Require version u64
//! ```
//!
//! An encoding has exactly one decoding and a valid update exactly one encoding, so nodes that
//! apply the same bytes compute the same digest.

use std::fmt;

use super::codec::{FieldError, FieldProblem, Reader, Sink};
use super::path::Path;
use super::value::{decode_path, encode_path, path_encoded_len, Value, ValueError};

/// The largest encoded update the database accepts: what one log block carries as its only
/// update payload (FORMAT.md §10), the disk's bound. The update manager carries less: its own
/// `gum::PROPOSAL_BYTES_MAX` (1024, one datagram) is the binding limit on what is submitted,
/// and asserts that it stays at most this one, with room for its entry header in the block.
pub const UPDATE_BYTES_MAX: usize = disklayout::LOG_BODY_BYTES_MAX;

const FORMAT: u8 = 1;
const HEADER_BYTES: usize = 3;
const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_REQUIRE: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Sets the key's value (of any type; see `value.rs`); its version becomes the update's
    /// sequence.
    Put { path: Path, value: Value },
    /// Removes the key and every key under it; deleting nothing is not an error.
    Delete { path: Path },
    /// Precondition: the key's version before this update equals `version` (0 = absent).
    Require { path: Path, version: u64 },
}

impl Op {
    pub fn path(&self) -> &Path {
        match self {
            Op::Put { path, .. } | Op::Delete { path } | Op::Require { path, .. } => path,
        }
    }

    fn encoded_len(&self) -> usize {
        1 + path_encoded_len(self.path())
            + match self {
                Op::Put { value, .. } => value.encoded_len(),
                Op::Delete { .. } => 0,
                Op::Require { .. } => 8,
            }
    }
}

/// Operations applied atomically: every one or none.
///
/// Every `Require` is checked against the database as it stood before the update, wherever it
/// appears in the list, so the order of operations matters only among Puts and Deletes (applied
/// in list order: a Put after a Delete of its parent survives).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub ops: Vec<Op>,
}

/// Why an update cannot be encoded or applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateError {
    NoOperations,
    BadValue { path: Path, error: ValueError },
    TooLarge { bytes: usize },
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::NoOperations => write!(f, "an update needs at least one operation"),
            UpdateError::BadValue { path, error } => write!(f, "value for {path}: {error}"),
            UpdateError::TooLarge { bytes } => write!(
                f,
                "the update encodes to {bytes} bytes; one log entry holds at most {UPDATE_BYTES_MAX}"
            ),
        }
    }
}

impl std::error::Error for UpdateError {}

/// Why bytes are not an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateDecodeError {
    TooLarge { bytes: usize },
    UnknownFormat { found: u8 },
    NoOperations,
    Field(FieldError),
    TrailingBytes { offset: usize, count: usize },
}

impl From<FieldError> for UpdateDecodeError {
    fn from(error: FieldError) -> UpdateDecodeError {
        UpdateDecodeError::Field(error)
    }
}

impl fmt::Display for UpdateDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateDecodeError::TooLarge { bytes } => write!(
                f,
                "{bytes} bytes is larger than any update ({UPDATE_BYTES_MAX} at most)"
            ),
            UpdateDecodeError::UnknownFormat { found } => {
                write!(
                    f,
                    "update format {found} is unknown (this wolfpack reads {FORMAT})"
                )
            }
            UpdateDecodeError::NoOperations => write!(f, "the update has no operations"),
            UpdateDecodeError::Field(error) => write!(f, "{error}"),
            UpdateDecodeError::TrailingBytes { offset, count } => {
                write!(
                    f,
                    "{count} bytes follow the last operation at byte {offset}"
                )
            }
        }
    }
}

impl std::error::Error for UpdateDecodeError {}

impl Update {
    pub fn new(ops: Vec<Op>) -> Update {
        Update { ops }
    }

    pub fn put(path: Path, value: Value) -> Update {
        Update::new(vec![Op::Put { path, value }])
    }

    pub fn delete(path: Path) -> Update {
        Update::new(vec![Op::Delete { path }])
    }

    /// Bytes of the encoding (also for an invalid update).
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.ops.iter().map(Op::encoded_len).sum::<usize>()
    }

    /// Checks that the update can be encoded, logged and applied.
    pub fn validate(&self) -> Result<(), UpdateError> {
        if self.ops.is_empty() {
            return Err(UpdateError::NoOperations);
        }
        for op in &self.ops {
            if let Op::Put { path, value } = op {
                value.validate().map_err(|error| UpdateError::BadValue {
                    path: path.clone(),
                    error,
                })?;
            }
        }
        // The size bound also keeps the operation count within its u16.
        let bytes = self.encoded_len();
        if bytes > UPDATE_BYTES_MAX {
            return Err(UpdateError::TooLarge { bytes });
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>, UpdateError> {
        self.validate()?;
        let mut bytes = Vec::with_capacity(self.encoded_len());
        bytes.put(&[FORMAT]);
        bytes.put(&(self.ops.len() as u16).to_le_bytes());
        for op in &self.ops {
            match op {
                Op::Put { path, value } => {
                    bytes.put(&[TAG_PUT]);
                    encode_path(path, &mut bytes);
                    value.encode(&mut bytes);
                }
                Op::Delete { path } => {
                    bytes.put(&[TAG_DELETE]);
                    encode_path(path, &mut bytes);
                }
                Op::Require { path, version } => {
                    bytes.put(&[TAG_REQUIRE]);
                    encode_path(path, &mut bytes);
                    bytes.put(&version.to_le_bytes());
                }
            }
        }
        debug_assert_eq!(bytes.len(), self.encoded_len());
        Ok(bytes)
    }

    /// Decodes untrusted bytes; the result is valid (`validate` passes).
    pub fn decode(bytes: &[u8]) -> Result<Update, UpdateDecodeError> {
        if bytes.len() > UPDATE_BYTES_MAX {
            return Err(UpdateDecodeError::TooLarge { bytes: bytes.len() });
        }
        let mut reader = Reader::new(bytes);
        let format = reader.u8("format")?;
        if format != FORMAT {
            return Err(UpdateDecodeError::UnknownFormat { found: format });
        }
        let count = reader.u16("operation count")?;
        if count == 0 {
            return Err(UpdateDecodeError::NoOperations);
        }
        // No capacity from the count: it is untrusted, and the size bound limits the ops anyway.
        let mut ops = Vec::new();
        for _ in 0..count {
            ops.push(decode_op(&mut reader)?);
        }
        if reader.remaining() != 0 {
            return Err(UpdateDecodeError::TrailingBytes {
                offset: reader.offset(),
                count: reader.remaining(),
            });
        }
        Ok(Update { ops })
    }
}

fn decode_op(reader: &mut Reader<'_>) -> Result<Op, FieldError> {
    let tag_at = reader.offset();
    let tag = reader.u8("operation tag")?;
    if !matches!(tag, TAG_PUT | TAG_DELETE | TAG_REQUIRE) {
        return Err(reader.error(tag_at, "operation tag", FieldProblem::UnknownTag(tag)));
    }
    let path = decode_path(reader)?;
    Ok(match tag {
        TAG_PUT => Op::Put {
            path,
            value: Value::decode(reader)?,
        },
        TAG_DELETE => Op::Delete { path },
        _ => Op::Require {
            path,
            version: reader.u64("required version")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).expect("a valid path")
    }

    fn sample() -> Update {
        Update::new(vec![
            Op::Require {
                path: path("groups/web"),
                version: 0,
            },
            Op::Put {
                path: path("groups/web/owners"),
                value: Value::NodeList(vec![1, 2]),
            },
            Op::Delete {
                path: path("groups/old"),
            },
        ])
    }

    #[test]
    fn round_trips_and_knows_its_length() {
        let update = sample();
        let bytes = update.encode().expect("a valid update");
        assert_eq!(bytes.len(), update.encoded_len());
        assert_eq!(Update::decode(&bytes), Ok(update));
    }

    #[test]
    fn the_largest_update_fills_one_log_entry_and_one_byte_more_is_refused() {
        let overhead = Update::put(path("properties/x"), Value::Bytes(vec![])).encoded_len();
        let mut ops = Vec::new();
        let mut bytes = HEADER_BYTES;
        while bytes + overhead - HEADER_BYTES + 1024 <= UPDATE_BYTES_MAX {
            ops.push(Op::Put {
                path: path("properties/x"),
                value: Value::Bytes(vec![7; 1024]),
            });
            bytes += overhead - HEADER_BYTES + 1024;
        }
        let fill = UPDATE_BYTES_MAX - bytes - (overhead - HEADER_BYTES);
        ops.push(Op::Put {
            path: path("properties/x"),
            value: Value::Bytes(vec![7; fill]),
        });
        let mut update = Update::new(ops);
        assert_eq!(update.encoded_len(), UPDATE_BYTES_MAX);
        let encoded = update.encode().expect("fits exactly");
        assert_eq!(Update::decode(&encoded).as_ref(), Ok(&update));
        if let Some(Op::Put {
            value: Value::Bytes(data),
            ..
        }) = update.ops.last_mut()
        {
            data.push(7);
        }
        assert_eq!(
            update.encode(),
            Err(UpdateError::TooLarge {
                bytes: UPDATE_BYTES_MAX + 1
            })
        );
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(Update::default().encode(), Err(UpdateError::NoOperations));
        let bad = Update::put(path("nodes/1/peers"), Value::NodeList(vec![2, 1]));
        assert_eq!(
            bad.validate(),
            Err(UpdateError::BadValue {
                path: path("nodes/1/peers"),
                error: ValueError::NodeListNotAscending { node_id: 1 },
            })
        );
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "value for nodes/1/peers: node list is not ascending without repeats at node id 1"
        );
    }

    #[test]
    fn decoding_says_what_is_wrong() {
        let good = sample().encode().expect("valid");
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            Update::decode(&trailing),
            Err(UpdateDecodeError::TrailingBytes {
                offset: good.len(),
                count: 1
            })
        );
        assert_eq!(
            Update::decode(&[2, 1, 0]),
            Err(UpdateDecodeError::UnknownFormat { found: 2 })
        );
        assert_eq!(
            Update::decode(&[1, 0, 0]),
            Err(UpdateDecodeError::NoOperations)
        );
        let error = Update::decode(&[1, 1, 0, 9]).unwrap_err();
        assert_eq!(error.to_string(), "operation tag at byte 3: unknown tag 9");
        let mut bad_path = vec![1, 1, 0, TAG_DELETE, 5];
        bad_path.extend_from_slice(b"users");
        let error = Update::decode(&bad_path).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("path at byte 4: 'users' is not a namespace"),
            "{error}"
        );
        assert!(matches!(
            Update::decode(&good[..good.len() - 1]),
            Err(UpdateDecodeError::Field(FieldError {
                problem: FieldProblem::Truncated,
                ..
            }))
        ));
        assert_eq!(
            Update::decode(&vec![0; UPDATE_BYTES_MAX + 1]),
            Err(UpdateDecodeError::TooLarge {
                bytes: UPDATE_BYTES_MAX + 1
            })
        );
    }
}
