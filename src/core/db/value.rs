//! Typed values and their encoding (shared by updates and snapshots).
//!
//! A Put may replace a value with one of another type: a key's type is what its last Put said.
//! Keeping types stable would need a schema the database does not have; the layers that own a
//! namespace (groups, resources) check the types they read.

use std::fmt;

use super::codec::{FieldError, FieldProblem, Reader, Sink};
use super::path::{Path, PATH_BYTES_MAX};

/// Most bytes of a `Text` or `Bytes` value.
pub const VALUE_BYTES_MAX: usize = 1024;

const TAG_TEXT: u8 = 1;
const TAG_U64: u8 = 2;
const TAG_I64: u8 = 3;
const TAG_BOOL: u8 = 4;
const TAG_BYTES: u8 = 5;
const TAG_NODE_LIST: u8 = 6;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// UTF-8, at most [`VALUE_BYTES_MAX`] bytes.
    Text(String),
    U64(u64),
    I64(i64),
    Bool(bool),
    /// At most [`VALUE_BYTES_MAX`] bytes.
    Bytes(Vec<u8>),
    /// Node ids in 1..=64, ascending, each once (so one set has one encoding and one digest).
    NodeList(Vec<u8>),
}

/// Why a value cannot be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    TextTooLong { bytes: usize },
    BytesTooLong { bytes: usize },
    NodeIdOutOfRange { node_id: u8 },
    NodeListNotAscending { node_id: u8 },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::TextTooLong { bytes } => {
                write!(
                    f,
                    "text of {bytes} bytes; at most {VALUE_BYTES_MAX} allowed"
                )
            }
            ValueError::BytesTooLong { bytes } => {
                write!(
                    f,
                    "{bytes} bytes of data; at most {VALUE_BYTES_MAX} allowed"
                )
            }
            ValueError::NodeIdOutOfRange { node_id } => {
                write!(f, "node id {node_id} is not in 1..=64")
            }
            ValueError::NodeListNotAscending { node_id } => write!(
                f,
                "node list is not ascending without repeats at node id {node_id}"
            ),
        }
    }
}

impl std::error::Error for ValueError {}

impl Value {
    pub fn validate(&self) -> Result<(), ValueError> {
        match self {
            Value::Text(text) if text.len() > VALUE_BYTES_MAX => {
                Err(ValueError::TextTooLong { bytes: text.len() })
            }
            Value::Bytes(bytes) if bytes.len() > VALUE_BYTES_MAX => {
                Err(ValueError::BytesTooLong { bytes: bytes.len() })
            }
            Value::NodeList(ids) => {
                if let Some(&node_id) = ids.iter().find(|&&id| !disklayout::is_node_id(id)) {
                    return Err(ValueError::NodeIdOutOfRange { node_id });
                }
                match ids.windows(2).find(|pair| pair[0] >= pair[1]) {
                    Some(pair) => Err(ValueError::NodeListNotAscending { node_id: pair[1] }),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) => "text",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::Bool(_) => "bool",
            Value::Bytes(_) => "bytes",
            Value::NodeList(_) => "node list",
        }
    }

    /// Bytes of the encoding: a tag, then a u16 length and the bytes for text and bytes, eight
    /// bytes for numbers, one for a bool, and a 64-bit bitmap (bit n-1 for node n) for a node
    /// list, which cannot express an unsorted or repeated list.
    pub(crate) fn encoded_len(&self) -> usize {
        1 + match self {
            Value::Text(text) => 2 + text.len(),
            Value::Bytes(bytes) => 2 + bytes.len(),
            Value::U64(_) | Value::I64(_) | Value::NodeList(_) => 8,
            Value::Bool(_) => 1,
        }
    }

    /// Writes a valid value; `validate` first.
    pub(crate) fn encode(&self, sink: &mut impl Sink) {
        debug_assert_eq!(self.validate(), Ok(()));
        match self {
            Value::Text(text) => {
                sink.put(&[TAG_TEXT]);
                sink.put(&(text.len() as u16).to_le_bytes());
                sink.put(text.as_bytes());
            }
            Value::U64(number) => {
                sink.put(&[TAG_U64]);
                sink.put(&number.to_le_bytes());
            }
            Value::I64(number) => {
                sink.put(&[TAG_I64]);
                sink.put(&number.to_le_bytes());
            }
            Value::Bool(flag) => sink.put(&[TAG_BOOL, u8::from(*flag)]),
            Value::Bytes(bytes) => {
                sink.put(&[TAG_BYTES]);
                sink.put(&(bytes.len() as u16).to_le_bytes());
                sink.put(bytes);
            }
            Value::NodeList(ids) => {
                let bitmap = ids.iter().fold(0u64, |bitmap, &id| bitmap | 1 << (id - 1));
                sink.put(&[TAG_NODE_LIST]);
                sink.put(&bitmap.to_le_bytes());
            }
        }
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Value, FieldError> {
        let tag_at = reader.offset();
        match reader.u8("value tag")? {
            TAG_TEXT => {
                let bytes = read_sized(reader, "text")?;
                match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => Ok(Value::Text(text)),
                    Err(_) => Err(reader.error(tag_at, "text", FieldProblem::NotUtf8)),
                }
            }
            TAG_U64 => Ok(Value::U64(reader.u64("u64")?)),
            TAG_I64 => Ok(Value::I64(reader.u64("i64")? as i64)),
            TAG_BOOL => {
                let at = reader.offset();
                match reader.u8("bool")? {
                    0 => Ok(Value::Bool(false)),
                    1 => Ok(Value::Bool(true)),
                    other => Err(reader.error(at, "bool", FieldProblem::NotBool(other))),
                }
            }
            TAG_BYTES => Ok(Value::Bytes(read_sized(reader, "bytes")?.to_vec())),
            TAG_NODE_LIST => {
                let bitmap = reader.u64("node list")?;
                let ids = (1..=64u8)
                    .filter(|id| bitmap & 1 << (id - 1) != 0)
                    .collect();
                Ok(Value::NodeList(ids))
            }
            other => Err(reader.error(tag_at, "value tag", FieldProblem::UnknownTag(other))),
        }
    }
}

/// Reads a u16 length and that many bytes, refusing a length above [`VALUE_BYTES_MAX`] before
/// looking at the bytes.
fn read_sized<'a>(reader: &mut Reader<'a>, field: &'static str) -> Result<&'a [u8], FieldError> {
    let at = reader.offset();
    let length = usize::from(reader.u16(field)?);
    if length > VALUE_BYTES_MAX {
        let error = match field {
            "text" => ValueError::TextTooLong { bytes: length },
            _ => ValueError::BytesTooLong { bytes: length },
        };
        return Err(reader.error(at, field, FieldProblem::Value(error)));
    }
    reader.take(length, field)
}

/// Bytes of a path's encoding: a one-byte length, then the path.
pub(crate) fn path_encoded_len(path: &Path) -> usize {
    1 + path.as_str().len()
}

pub(crate) fn encode_path(path: &Path, sink: &mut impl Sink) {
    const _: () = assert!(PATH_BYTES_MAX <= u8::MAX as usize);
    sink.put(&[path.as_str().len() as u8]);
    sink.put(path.as_str().as_bytes());
}

pub(crate) fn decode_path(reader: &mut Reader<'_>) -> Result<Path, FieldError> {
    let at = reader.offset();
    let length = usize::from(reader.u8("path length")?);
    let bytes = reader.take(length, "path")?;
    Path::from_bytes(bytes).map_err(|error| reader.error(at, "path", FieldProblem::Path(error)))
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => write!(f, "{text:?}"),
            Value::U64(number) => write!(f, "{number}"),
            Value::I64(number) => write!(f, "{number}"),
            Value::Bool(flag) => write!(f, "{flag}"),
            Value::Bytes(bytes) => {
                f.write_str("0x")?;
                bytes.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            Value::NodeList(ids) => {
                let ids: Vec<String> = ids.iter().map(u8::to_string).collect();
                write!(f, "[{}]", ids.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &Value) -> Value {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        assert_eq!(bytes.len(), value.encoded_len());
        let mut reader = Reader::new(&bytes);
        let decoded = Value::decode(&mut reader).expect("a value decodes");
        assert_eq!(reader.remaining(), 0);
        decoded
    }

    #[test]
    fn every_type_round_trips() {
        let values = [
            Value::Text("web server ✓".into()),
            Value::Text(String::new()),
            Value::U64(u64::MAX),
            Value::I64(-5),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bytes(vec![0, 1, 255]),
            Value::NodeList(vec![]),
            Value::NodeList(vec![1, 2, 33, 64]),
            Value::Text("x".repeat(VALUE_BYTES_MAX)),
        ];
        for value in values {
            assert_eq!(value.validate(), Ok(()));
            assert_eq!(round_trip(&value), value);
        }
    }

    #[test]
    fn limits_are_checked() {
        let long = Value::Bytes(vec![0; VALUE_BYTES_MAX + 1]);
        assert_eq!(
            long.validate(),
            Err(ValueError::BytesTooLong { bytes: 1025 })
        );
        let text = Value::Text("é".repeat(513));
        assert_eq!(
            text.validate(),
            Err(ValueError::TextTooLong { bytes: 1026 })
        );
        assert_eq!(
            Value::NodeList(vec![0]).validate(),
            Err(ValueError::NodeIdOutOfRange { node_id: 0 })
        );
        assert_eq!(
            Value::NodeList(vec![65]).validate(),
            Err(ValueError::NodeIdOutOfRange { node_id: 65 })
        );
        assert_eq!(
            Value::NodeList(vec![3, 3]).validate(),
            Err(ValueError::NodeListNotAscending { node_id: 3 })
        );
        assert_eq!(
            Value::NodeList(vec![4, 2]).validate(),
            Err(ValueError::NodeListNotAscending { node_id: 2 })
        );
    }

    #[test]
    fn decoding_refuses_what_encoding_never_writes() {
        let decode = |bytes: &[u8]| Value::decode(&mut Reader::new(bytes)).map_err(|e| e.problem);
        assert_eq!(decode(&[9]), Err(FieldProblem::UnknownTag(9)));
        assert_eq!(decode(&[TAG_BOOL, 2]), Err(FieldProblem::NotBool(2)));
        assert_eq!(
            decode(&[TAG_TEXT, 2, 0, 0xff, 0xfe]),
            Err(FieldProblem::NotUtf8)
        );
        assert_eq!(
            decode(&[TAG_BYTES, 0x01, 0x04]),
            Err(FieldProblem::Value(ValueError::BytesTooLong {
                bytes: 1025
            }))
        );
        assert_eq!(
            decode(&[TAG_TEXT, 5, 0, b'a']),
            Err(FieldProblem::Truncated)
        );
        assert_eq!(decode(&[TAG_U64, 1, 2]), Err(FieldProblem::Truncated));
    }

    #[test]
    fn values_display_for_people() {
        assert_eq!(Value::NodeList(vec![1, 3]).to_string(), "[1,3]");
        assert_eq!(Value::Bytes(vec![0xab, 1]).to_string(), "0xab01");
        assert_eq!(Value::Text("a".into()).to_string(), "\"a\"");
    }
}
