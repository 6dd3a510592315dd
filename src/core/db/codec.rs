//! The byte-level pieces shared by the update and snapshot encodings: a bounds-checked reader of
//! untrusted bytes, the field error it reports, and the hash behind `Database::digest`.
//!
//! Every read returns an error naming the field and its offset instead of panicking, so a
//! decoder built from these never trusts a length it has not checked.

use std::fmt;

use super::path::PathError;
use super::value::ValueError;

/// Where in an encoded update or snapshot a field is wrong, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Byte offset of the field from the start of the encoding.
    pub offset: usize,
    /// The field's name.
    pub field: &'static str,
    pub problem: FieldProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldProblem {
    /// The bytes end before the field does.
    Truncated,
    /// A tag byte names no known kind of operation or value.
    UnknownTag(u8),
    Path(PathError),
    Value(ValueError),
    /// Text that is not valid UTF-8.
    NotUtf8,
    /// A boolean byte other than 0 or 1 (two encodings of one value would give two digests).
    NotBool(u8),
    /// A byte that must be zero is not.
    NonZeroReserved,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}: ", self.field, self.offset)?;
        match &self.problem {
            FieldProblem::Truncated => write!(f, "the bytes end inside it"),
            FieldProblem::UnknownTag(tag) => write!(f, "unknown tag {tag}"),
            FieldProblem::Path(error) => write!(f, "{error}"),
            FieldProblem::Value(error) => write!(f, "{error}"),
            FieldProblem::NotUtf8 => write!(f, "text is not UTF-8"),
            FieldProblem::NotBool(byte) => write!(f, "{byte} is neither 0 (false) nor 1 (true)"),
            FieldProblem::NonZeroReserved => write!(f, "reserved bytes are not zero"),
        }
    }
}

/// Reads little-endian fields from untrusted bytes, front to back.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(crate) fn error(
        &self,
        offset: usize,
        field: &'static str,
        problem: FieldProblem,
    ) -> FieldError {
        FieldError {
            offset,
            field,
            problem,
        }
    }

    pub(crate) fn take(
        &mut self,
        count: usize,
        field: &'static str,
    ) -> Result<&'a [u8], FieldError> {
        if self.remaining() < count {
            return Err(self.error(self.at, field, FieldProblem::Truncated));
        }
        let taken = &self.bytes[self.at..self.at + count];
        self.at += count;
        Ok(taken)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FieldError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FieldError> {
        let mut bytes = [0; 2];
        bytes.copy_from_slice(self.take(2, field)?);
        Ok(u16::from_le_bytes(bytes))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FieldError> {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(self.take(4, field)?);
        Ok(u32::from_le_bytes(bytes))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, FieldError> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_le_bytes(bytes))
    }
}

/// Where encoders write: a byte vector, or a hash that never materialises the bytes.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A 64-bit hash of a byte stream, eight bytes at a time: deterministic on every platform,
/// independent of how the stream is cut into `put`s, and good enough to tell two databases
/// apart in the simulator's checker (not an integrity check; the CRC is that). The checker
/// hashes every replica after every update, so speed matters: byte-at-a-time FNV-1a was a
/// fifth of the simulator's time.
pub(crate) struct StateHash {
    state: u64,
    /// Bytes not yet folded in, little-endian, `pending_bytes` of them.
    pending: u64,
    pending_bytes: u32,
    total_bytes: u64,
}

impl StateHash {
    const SEED: u64 = 0xcbf2_9ce4_8422_2325;
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

    pub(crate) fn new() -> StateHash {
        StateHash {
            state: StateHash::SEED,
            pending: 0,
            pending_bytes: 0,
            total_bytes: 0,
        }
    }

    fn fold(&mut self, word: u64) {
        let mixed = (self.state ^ word).wrapping_mul(StateHash::MULTIPLIER);
        self.state = mixed ^ (mixed >> 29);
    }

    pub(crate) fn finish(&self) -> u64 {
        let mut last = StateHash {
            state: self.state,
            pending: 0,
            pending_bytes: 0,
            total_bytes: 0,
        };
        // The length separates streams that differ only by trailing zero bytes.
        last.fold(self.pending);
        last.fold(self.total_bytes);
        last.state
    }
}

impl Sink for StateHash {
    fn put(&mut self, mut bytes: &[u8]) {
        self.total_bytes += bytes.len() as u64;
        while self.pending_bytes != 0 {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            self.pending |= u64::from(byte) << (8 * self.pending_bytes);
            self.pending_bytes += 1;
            bytes = rest;
            if self.pending_bytes == 8 {
                let word = self.pending;
                self.fold(word);
                self.pending = 0;
                self.pending_bytes = 0;
            }
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut array = [0u8; 8];
            array.copy_from_slice(word);
            self.fold(u64::from_le_bytes(array));
        }
        for (index, &byte) in words.remainder().iter().enumerate() {
            self.pending |= u64::from(byte) << (8 * index);
        }
        self.pending_bytes = words.remainder().len() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_hash(pieces: &[&[u8]]) -> u64 {
        let mut hash = StateHash::new();
        for piece in pieces {
            hash.put(piece);
        }
        hash.finish()
    }

    #[test]
    fn the_state_hash_ignores_how_the_stream_is_cut_and_tells_streams_apart() {
        let whole = state_hash(&[b"properties/a\x00\x01twelve bytes"]);
        assert_eq!(
            whole,
            state_hash(&[b"prop", b"erties/a\x00", b"\x01", b"twelve bytes"])
        );
        assert_eq!(
            whole,
            state_hash(&[b"", b"properties/a\x00\x01twelve bytes", b""])
        );
        assert_ne!(whole, state_hash(&[b"properties/b\x00\x01twelve bytes"]));
        assert_ne!(state_hash(&[b""]), state_hash(&[b"\x00"]));
        assert_ne!(state_hash(&[b"\x00"]), state_hash(&[b"\x00\x00"]));
        assert_ne!(
            state_hash(&[b"0123456789abcdef"]),
            state_hash(&[b"89abcdef01234567"])
        );
    }

    #[test]
    fn a_short_read_names_the_field_and_where_it_started() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.u8("tag"), Ok(1));
        let error = reader.u32("length").unwrap_err();
        assert_eq!(error.offset, 1);
        assert_eq!(error.field, "length");
        assert_eq!(error.problem, FieldProblem::Truncated);
        assert_eq!(reader.remaining(), 2, "a failed read consumes nothing");
    }
}
