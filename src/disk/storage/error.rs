//! Errors of the storage layer: one enum for every backend and for `open`/`create`.
//!
//! Invariant: `Display` is one line naming the path (or `<memory>`), the operation and, for an
//! access, the byte offset, followed by the OS message without its " (os error N)" suffix, so
//! `main` can print it as is: `cannot read /dev/loop3 at byte 8192: Input/output error`.

use super::BLOCK_SIZE;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// The direction of a checked access, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Read => "read",
            Operation::Write => "write",
        })
    }
}

/// Why a storage could not be opened or accessed. Each variant says whether state changed.
/// `Display` gives one line with the path, the operation and the offset, and includes the
/// underlying OS error, so `source()` is None (printing a chain would repeat it).
#[derive(Debug)]
pub enum StorageError {
    /// A step of opening failed (`operation` is e.g. "open", "map", "create", "grow").
    /// Nothing was written, except that `create` may have created or grown a regular file.
    Open {
        path: PathBuf,
        operation: &'static str,
        source: io::Error,
    },
    /// The filesystem refuses O_DIRECT (EINVAL). Nothing changed.
    DirectUnsupported { path: PathBuf, source: io::Error },
    /// The path is a directory, character device, socket, ... Nothing changed.
    NotFileOrBlockDevice { path: PathBuf },
    /// A regular file, or a size asked of `create`, is not a multiple of BLOCK_SIZE.
    /// Nothing changed.
    SizeNotBlockMultiple { path: PathBuf, size_bytes: u64 },
    /// The file or device holds fewer bytes than needed. Nothing changed.
    TooSmall {
        path: PathBuf,
        size_bytes: u64,
        size_min_bytes: u64,
    },
    /// The device's logical sector size does not divide BLOCK_SIZE, so aligned O_DIRECT
    /// blocks cannot be addressed. Nothing changed.
    SectorSize {
        path: PathBuf,
        logical_sector_bytes: u64,
    },
    /// An offset or length is not a multiple of BLOCK_SIZE. Nothing changed.
    Unaligned {
        path: PathBuf,
        operation: Operation,
        offset_bytes: u64,
        length_bytes: usize,
    },
    /// The access runs past the end of the storage. Nothing changed.
    OutOfRange {
        path: PathBuf,
        operation: Operation,
        offset_bytes: u64,
        length_bytes: usize,
        size_bytes: u64,
    },
    /// A write on a storage opened ReadOnly. Nothing changed.
    ReadOnly { path: PathBuf, offset_bytes: u64 },
    /// The read failed at `offset_bytes`. The target buffer may hold some of the bytes.
    Read {
        path: PathBuf,
        offset_bytes: u64,
        source: io::Error,
    },
    /// The write failed at `offset_bytes`. Earlier blocks of the same call may have been written.
    Write {
        path: PathBuf,
        offset_bytes: u64,
        source: io::Error,
    },
    /// Earlier writes may or may not be durable.
    Flush { path: PathBuf, source: io::Error },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Open { path, operation, source } => {
                write!(f, "cannot {operation} {}: {}", path.display(), describe(source))
            }
            StorageError::DirectUnsupported { path, source } => write!(
                f,
                "cannot open {} with O_DIRECT: its filesystem refuses direct I/O ({}); \
                 use --disk-io mmap for a disk used by one host only",
                path.display(),
                describe(source)
            ),
            StorageError::NotFileOrBlockDevice { path } => {
                write!(f, "cannot use {}: not a regular file or block device", path.display())
            }
            StorageError::SizeNotBlockMultiple { path, size_bytes } => write!(
                f,
                "cannot use {}: size {size_bytes} bytes is not a multiple of {BLOCK_SIZE}",
                path.display()
            ),
            StorageError::TooSmall { path, size_bytes, size_min_bytes } => write!(
                f,
                "cannot use {}: it holds {size_bytes} bytes, fewer than the {size_min_bytes} needed",
                path.display()
            ),
            StorageError::SectorSize { path, logical_sector_bytes } => write!(
                f,
                "cannot use {}: its logical sector size, {logical_sector_bytes} bytes, \
                 does not divide the {BLOCK_SIZE}-byte block",
                path.display()
            ),
            StorageError::Unaligned { path, operation, offset_bytes, length_bytes } => write!(
                f,
                "cannot {operation} {} at byte {offset_bytes}: offset and length \
                 ({length_bytes} bytes) must be multiples of {BLOCK_SIZE}",
                path.display()
            ),
            StorageError::OutOfRange {
                path,
                operation,
                offset_bytes,
                length_bytes,
                size_bytes,
            } => write!(
                f,
                "cannot {operation} {} at byte {offset_bytes}: {length_bytes} bytes from there \
                 run past its end at byte {size_bytes}",
                path.display()
            ),
            StorageError::ReadOnly { path, offset_bytes } => write!(
                f,
                "cannot write {} at byte {offset_bytes}: opened read-only",
                path.display()
            ),
            StorageError::Read { path, offset_bytes, source } => write!(
                f,
                "cannot read {} at byte {offset_bytes}: {}",
                path.display(),
                describe(source)
            ),
            StorageError::Write { path, offset_bytes, source } => write!(
                f,
                "cannot write {} at byte {offset_bytes}: {}",
                path.display(),
                describe(source)
            ),
            StorageError::Flush { path, source } => {
                write!(f, "cannot flush {}: {}", path.display(), describe(source))
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// The OS message without std's " (os error N)" suffix, for a clean one-line report.
fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match error.raw_os_error() {
        Some(code) => match text.strip_suffix(&format!(" (os error {code})")) {
            Some(message) => message.to_string(),
            None => text,
        },
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_one_line_with_path_operation_and_offset() {
        let error = StorageError::Read {
            path: PathBuf::from("/dev/loop3"),
            offset_bytes: 8192,
            source: io::Error::from_raw_os_error(libc::EIO),
        };
        assert_eq!(
            error.to_string(),
            "cannot read /dev/loop3 at byte 8192: Input/output error"
        );
        let error = StorageError::DirectUnsupported {
            path: PathBuf::from("/tmp/disk"),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        let message = error.to_string();
        assert!(message.contains("/tmp/disk"), "{message}");
        assert!(message.contains("--disk-io mmap"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn describe_keeps_messages_without_an_os_code() {
        let error = io::Error::new(io::ErrorKind::UnexpectedEof, "short read");
        assert_eq!(describe(&error), "short read");
    }
}
