//! The errors of decoding, encoding and sizing. Each says what was wrong and where in the block.
use std::fmt;

/// Why a block does not hold a valid record. Offsets are byte offsets within the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer is not one block long.
    WrongBlockSize {
        /// The buffer's length.
        length: usize,
    },
    /// The header is zero but later bytes are not: a partial write over an empty block.
    Torn,
    /// The block holds another record type, or garbage.
    WrongMagic {
        /// The four bytes found.
        found: [u8; 4],
        /// The magic of the record type expected.
        expected: [u8; 4],
    },
    /// The record was written by a layout version this code does not know.
    UnsupportedVersion {
        /// The version found.
        found: u16,
        /// The version this code supports.
        supported: u16,
    },
    /// The body length is impossible for this record type.
    BodyLength {
        /// The length found in the header.
        found: u32,
        /// The length (or largest length) this type allows.
        allowed: u32,
    },
    /// The CRC does not match: a corrupt or torn record.
    Checksum {
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC of the bytes as read.
        computed: u32,
    },
    /// A reserved field is not zero.
    NonZeroReserved {
        /// Where the first non-zero reserved byte is.
        offset: usize,
    },
    /// A byte after the record's body is not zero.
    NonZeroPadding {
        /// Where the first non-zero padding byte is.
        offset: usize,
    },
    /// A field holds a value outside its range.
    InvalidField {
        /// Where the field starts.
        offset: usize,
        /// The field's name as FORMAT.md gives it.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::WrongBlockSize { length } => {
                write!(f, "block is {length} bytes, expected {}", crate::BLOCK_SIZE)
            }
            DecodeError::Torn => write!(f, "torn: header is zero but the block is not"),
            DecodeError::WrongMagic { found, expected } => write!(
                f,
                "magic {} where {} was expected",
                show_magic(found),
                show_magic(expected)
            ),
            DecodeError::UnsupportedVersion { found, supported } => write!(
                f,
                "layout version {found} is not supported (this wolfpack reads version {supported})"
            ),
            DecodeError::BodyLength { found, allowed } => {
                write!(f, "body length {found} where {allowed} is allowed")
            }
            DecodeError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x} (corrupt or torn)"
            ),
            DecodeError::NonZeroReserved { offset } => {
                write!(f, "reserved byte at offset {offset} is not zero")
            }
            DecodeError::NonZeroPadding { offset } => {
                write!(f, "padding byte at offset {offset} is not zero")
            }
            DecodeError::InvalidField { offset, field, problem } => {
                write!(f, "field {field} at offset {offset}: {problem}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Shows a magic as text when it is printable ASCII, else as hex.
pub(crate) fn show_magic(magic: &[u8; 4]) -> String {
    if magic.iter().all(|byte| byte.is_ascii_graphic()) {
        format!("{:?}", String::from_utf8_lossy(magic))
    } else {
        format!(
            "0x{}",
            magic
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        )
    }
}

/// Why a record cannot be encoded. Nothing was written when this is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// A field holds a value the format cannot represent.
    InvalidField {
        /// The field's name as FORMAT.md gives it.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl EncodeError {
    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> EncodeError {
        EncodeError::InvalidField {
            field,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::InvalidField { field, problem } => write!(f, "{field}: {problem}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Why a disk cannot hold the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// The disk is smaller than the smallest layout.
    TooSmall {
        /// The disk's size.
        size_bytes: u64,
        /// The smallest size that fits.
        size_bytes_min: u64,
    },
    /// The regions are out of order, overlap, or do not fit the disk.
    Inconsistent {
        /// Which rule is broken.
        problem: &'static str,
    },
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeometryError::TooSmall { size_bytes, size_bytes_min } => write!(
                f,
                "disk of {size_bytes} bytes is too small: the layout needs at least {size_bytes_min}"
            ),
            GeometryError::Inconsistent { problem } => write!(f, "inconsistent geometry: {problem}"),
        }
    }
}

impl std::error::Error for GeometryError {}
