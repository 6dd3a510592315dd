//! The byte-level pieces shared by the update and snapshot encodings: a bounds-checked reader of
//! untrusted bytes, the field error it reports, and the FNV-1a hash behind `Database::digest`.
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

/// FNV-1a, 64 bits: tiny, deterministic on every platform, and good enough to tell two
/// databases apart in the simulator's checker (not an integrity check; the CRC is that).
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Fnv1a {
        Fnv1a(Fnv1a::OFFSET_BASIS)
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl Sink for Fnv1a {
    fn put(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Fnv1a::PRIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        let hash = |bytes: &[u8]| {
            let mut fnv = Fnv1a::new();
            fnv.put(bytes);
            fnv.finish()
        };
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
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
