//! Bounds-checked little-endian field readers and writers for record bodies.
//!
//! The reader reports offsets relative to the block (not the body), so every error points at the
//! byte a person would look at in a hex dump.
use crate::error::{DecodeError, EncodeError};
use crate::HEADER_SIZE;
use byteorder::{ByteOrder, LittleEndian};

/// Reads fields from a record body in order.
pub(crate) struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Reader<'a> {
        Reader { body, at: 0 }
    }

    /// The block offset of the next field.
    pub(crate) fn offset(&self) -> usize {
        HEADER_SIZE + self.at
    }

    pub(crate) fn remaining(&self) -> usize {
        self.body.len() - self.at
    }

    pub(crate) fn bytes(
        &mut self,
        count: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < count {
            return Err(self.invalid(field, "runs past the end of the body"));
        }
        let bytes = &self.body[self.at..self.at + count];
        self.at += count;
        Ok(bytes)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(LittleEndian::read_u16(self.bytes(2, field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(LittleEndian::read_u32(self.bytes(4, field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(LittleEndian::read_u64(self.bytes(8, field)?))
    }

    /// Reads a counter (an epoch, sequence, incarnation or position) and refuses one above
    /// `COUNTER_MAX`, so arithmetic on it cannot overflow.
    pub(crate) fn counter(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let offset = self.offset();
        let value = self.u64(field)?;
        if crate::is_counter(value) {
            Ok(value)
        } else {
            Err(DecodeError::InvalidField {
                offset,
                field,
                problem: "is above the largest counter (2^62-1)",
            })
        }
    }

    /// Reads `count` reserved bytes and rejects any that is not zero.
    pub(crate) fn reserved(&mut self, count: usize) -> Result<(), DecodeError> {
        let start = self.offset();
        let bytes = self.bytes(count, "reserved")?;
        match bytes.iter().position(|&byte| byte != 0) {
            Some(index) => Err(DecodeError::NonZeroReserved {
                offset: start + index,
            }),
            None => Ok(()),
        }
    }

    /// Reads a zero-padded UTF-8 string field of `size` bytes holding 1..size-1 bytes of text.
    pub(crate) fn string(
        &mut self,
        size: usize,
        field: &'static str,
    ) -> Result<String, DecodeError> {
        let start = self.offset();
        let bytes = self.bytes(size, field)?;
        let length = bytes.iter().position(|&byte| byte == 0).unwrap_or(size);
        let problem = |problem| DecodeError::InvalidField {
            offset: start,
            field,
            problem,
        };
        if length == 0 {
            return Err(problem("is empty"));
        }
        if length == size {
            return Err(problem("has no terminating zero byte"));
        }
        if bytes[length..].iter().any(|&byte| byte != 0) {
            return Err(problem("has non-zero bytes after its end"));
        }
        match std::str::from_utf8(&bytes[..length]) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Err(problem("is not UTF-8")),
        }
    }

    /// Reads a node id field (1..=64), rejecting any other value at its offset.
    pub(crate) fn node_id(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let offset = self.offset();
        let node_id = self.u8(field)?;
        match crate::is_node_id(node_id) {
            true => Ok(node_id),
            false => Err(DecodeError::InvalidField {
                offset,
                field,
                problem: "not in 1..=64",
            }),
        }
    }

    pub(crate) fn invalid(&self, field: &'static str, problem: &'static str) -> DecodeError {
        DecodeError::InvalidField {
            offset: self.offset(),
            field,
            problem,
        }
    }

    /// Fails unless the whole body was read: a fixed-size body has no room for surprises.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        assert_eq!(
            self.remaining(),
            0,
            "fixed-size bodies are checked for length before decoding"
        );
        Ok(())
    }
}

/// Writes fields into a record body in order. Overrunning the body is a programmer error.
pub(crate) struct Writer<'a> {
    body: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(body: &'a mut [u8]) -> Writer<'a> {
        Writer { body, at: 0 }
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.body[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes(&[value]);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        LittleEndian::write_u16(&mut self.body[self.at..self.at + 2], value);
        self.at += 2;
    }

    pub(crate) fn u32(&mut self, value: u32) {
        LittleEndian::write_u32(&mut self.body[self.at..self.at + 4], value);
        self.at += 4;
    }

    pub(crate) fn u64(&mut self, value: u64) {
        LittleEndian::write_u64(&mut self.body[self.at..self.at + 8], value);
        self.at += 8;
    }

    pub(crate) fn reserved(&mut self, count: usize) {
        self.body[self.at..self.at + count].fill(0);
        self.at += count;
    }

    /// Writes `text` zero-padded to `size` bytes; it must leave at least one zero byte.
    pub(crate) fn string(&mut self, text: &str, size: usize) {
        assert!(text.len() < size, "strings are validated before encoding");
        self.bytes(text.as_bytes());
        self.reserved(size - text.len());
    }

    pub(crate) fn finish(&self) {
        assert_eq!(
            self.at,
            self.body.len(),
            "a body is written to its last byte"
        );
    }
}

/// Checks a string before it is encoded into a zero-padded field of `size` bytes.
pub(crate) fn check_string(
    text: &str,
    size: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    if text.is_empty() {
        return Err(EncodeError::field(field, "must not be empty"));
    }
    if text.len() >= size {
        return Err(EncodeError::field(
            field,
            format!("is {} bytes; at most {} allowed", text.len(), size - 1),
        ));
    }
    if text.as_bytes().contains(&0) {
        return Err(EncodeError::field(field, "must not contain a zero byte"));
    }
    Ok(())
}

/// Checks a counter field (an epoch, sequence, incarnation, position or time) before it is
/// encoded: what a decoder refuses is never written.
pub(crate) fn check_counter(field: &'static str, value: u64) -> Result<(), EncodeError> {
    match crate::is_counter(value) {
        true => Ok(()),
        false => Err(EncodeError::field(
            field,
            format!("{value} is above the largest counter (2^62-1)"),
        )),
    }
}

/// Checks a node id field (1..=64) before it is encoded.
pub(crate) fn check_node_id(field: &'static str, node_id: u8) -> Result<(), EncodeError> {
    match crate::is_node_id(node_id) {
        true => Ok(()),
        false => Err(EncodeError::field(
            field,
            format!("{node_id} is not in 1..=64"),
        )),
    }
}
