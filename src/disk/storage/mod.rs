//! Block-addressed access to the shared disk, behind one trait with three backends.
//!
//! - `mmap` (mmap.rs): a shared mapping of a file. Correct between processes on one host,
//!   because they share one page cache. The default for a regular file.
//! - `direct` (direct.rs): O_DIRECT pread/pwrite. Required for a block device or an image
//!   shared by several hosts or VMs, whose page caches are not coherent with each other.
//!   The default for a block device.
//! - `memory` (memory.rs): a `Vec<u8>`, for tests and the simulator.
//!
//! Invariants, for every backend:
//! - `size_bytes` is a nonzero multiple of `BLOCK_SIZE` and does not change while open.
//! - Every access is checked before a byte moves: offset and length are multiples of
//!   `BLOCK_SIZE` and lie inside the storage. A rejected access changes nothing.
//! - Bytes are copied in and out. No reference into the storage outlives a call, so the caller
//!   always decodes a private copy (another node may be rewriting the same block).
//! - A `ReadOnly` storage never writes: its file is opened read-only.

mod direct;
mod memory;
mod mmap;

pub use memory::MemoryStorage;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Every offset and length given to a Storage must be a multiple of BLOCK_SIZE (4096 bytes).
pub const BLOCK_SIZE: usize = 4096;

const BLOCK_SIZE_BYTES: u64 = BLOCK_SIZE as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskIo {
    Mmap,
    Direct,
    /// An in-process Vec, for tests and the simulator. Never chosen by `parse` or `open`.
    Memory,
}

impl DiskIo {
    /// Parses a `--disk-io` value: "mmap" or "direct".
    pub fn parse(s: &str) -> Option<DiskIo> {
        match s {
            "mmap" => Some(DiskIo::Mmap),
            "direct" => Some(DiskIo::Direct),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DiskIo::Mmap => "mmap",
            DiskIo::Direct => "direct",
            DiskIo::Memory => "memory",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

pub trait Storage: Send {
    fn size_bytes(&self) -> u64;
    fn io(&self) -> DiskIo;
    fn read_at(&mut self, offset_bytes: u64, target: &mut [u8]) -> Result<(), StorageError>;
    fn write_at(&mut self, offset_bytes: u64, source: &[u8]) -> Result<(), StorageError>;
    /// Returns once every earlier write is durable (msync for mmap, fdatasync for direct).
    fn flush(&mut self) -> Result<(), StorageError>;
}

/// Lets callers `expect_err` on `open` and derive Debug for structs that own a storage.
impl fmt::Debug for dyn Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("io", &self.io())
            .field("size_bytes", &self.size_bytes())
            .finish()
    }
}

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

/// Opens an existing file or block device. `io: None` picks the default: Direct for a block
/// device, Mmap for a regular file. Mmap on a block device only when asked explicitly, and then
/// it logs a warning, because page-cache reads of a device shared by several hosts or VMs are
/// not coherent (only O_DIRECT reads see another host's writes).
///
/// A regular file's size must be a multiple of BLOCK_SIZE. A block device's size is rounded
/// down to one: a partition may end on any sector, and its trailing partial block is unused.
pub fn open(
    path: &Path,
    io: Option<DiskIo>,
    access: Access,
) -> Result<Box<dyn Storage>, StorageError> {
    let kind = FileKind::of(path)?;
    let io = io.unwrap_or(match kind {
        FileKind::BlockDevice => DiskIo::Direct,
        FileKind::RegularFile => DiskIo::Mmap,
    });
    match io {
        DiskIo::Mmap => {
            if kind == FileKind::BlockDevice {
                log::warn!(
                    "disk={} disk_io=mmap: mmap reads a block device through this host's page \
                     cache, which does not see writes by other hosts or VMs sharing the device; \
                     use --disk-io direct unless every node runs on this host",
                    path.display()
                );
            }
            Ok(Box::new(mmap::MmapStorage::open(path, kind, access)?))
        }
        DiskIo::Direct => Ok(Box::new(direct::DirectStorage::open(path, kind, access)?)),
        DiskIo::Memory => panic!("DiskIo::Memory has no path to open: use MemoryStorage::new"),
    }
}

/// Creates a regular file of `size_bytes` if missing (sparse, set_len); an existing regular file
/// smaller than size_bytes is grown; a block device is used as is (its size must be >=
/// size_bytes). Then opens it ReadWrite like `open`.
pub fn create(
    path: &Path,
    size_bytes: u64,
    io: Option<DiskIo>,
) -> Result<Box<dyn Storage>, StorageError> {
    check_size(path, size_bytes)?;
    match std::fs::metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|source| open_error(path, "create", source))?;
            file.set_len(size_bytes)
                .map_err(|source| open_error(path, "grow", source))?;
        }
        Err(source) => return Err(open_error(path, "open", source)),
        Ok(metadata) => match FileKind::from_type(path, metadata.file_type())? {
            FileKind::RegularFile if metadata.len() < size_bytes => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|source| open_error(path, "open", source))?;
                file.set_len(size_bytes)
                    .map_err(|source| open_error(path, "grow", source))?;
            }
            FileKind::RegularFile => {}
            FileKind::BlockDevice => {
                let file = File::open(path).map_err(|source| open_error(path, "open", source))?;
                let device_size_bytes = measure_size(&file, path, FileKind::BlockDevice)?;
                if device_size_bytes < size_bytes {
                    return Err(StorageError::TooSmall {
                        path: path.to_path_buf(),
                        size_bytes: device_size_bytes,
                        size_min_bytes: size_bytes,
                    });
                }
            }
        },
    }
    open(path, io, Access::ReadWrite)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    RegularFile,
    BlockDevice,
}

impl FileKind {
    /// Follows symlinks, since devices are usually named through /dev/disk/by-id/.
    fn of(path: &Path) -> Result<FileKind, StorageError> {
        let metadata =
            std::fs::metadata(path).map_err(|source| open_error(path, "open", source))?;
        FileKind::from_type(path, metadata.file_type())
    }

    fn from_type(path: &Path, file_type: std::fs::FileType) -> Result<FileKind, StorageError> {
        if file_type.is_file() {
            Ok(FileKind::RegularFile)
        } else if file_type.is_block_device() {
            Ok(FileKind::BlockDevice)
        } else {
            Err(StorageError::NotFileOrBlockDevice {
                path: path.to_path_buf(),
            })
        }
    }
}

fn open_error(path: &Path, operation: &'static str, source: io::Error) -> StorageError {
    StorageError::Open {
        path: path.to_path_buf(),
        operation,
        source,
    }
}

fn check_size(path: &Path, size_bytes: u64) -> Result<(), StorageError> {
    if !size_bytes.is_multiple_of(BLOCK_SIZE_BYTES) {
        return Err(StorageError::SizeNotBlockMultiple {
            path: path.to_path_buf(),
            size_bytes,
        });
    }
    if size_bytes < BLOCK_SIZE_BYTES {
        return Err(StorageError::TooSmall {
            path: path.to_path_buf(),
            size_bytes,
            size_min_bytes: BLOCK_SIZE_BYTES,
        });
    }
    Ok(())
}

/// The raw size of an open file or device. A block device's metadata says 0 bytes, so it is
/// measured by seeking to its end.
fn measure_size(file: &File, path: &Path, kind: FileKind) -> Result<u64, StorageError> {
    match kind {
        FileKind::RegularFile => file
            .metadata()
            .map(|metadata| metadata.len())
            .map_err(|source| open_error(path, "measure the size of", source)),
        FileKind::BlockDevice => {
            let mut handle = file;
            handle
                .seek(SeekFrom::End(0))
                .map_err(|source| open_error(path, "measure the size of", source))
        }
    }
}

/// The usable size of an open file or device: see `open` for the rounding rule.
fn usable_size(file: &File, path: &Path, kind: FileKind) -> Result<u64, StorageError> {
    let size_bytes = measure_size(file, path, kind)?;
    let size_bytes = match kind {
        FileKind::RegularFile => size_bytes,
        FileKind::BlockDevice => size_bytes - size_bytes % BLOCK_SIZE_BYTES,
    };
    check_size(path, size_bytes)?;
    Ok(size_bytes)
}

/// Checks an access against the invariants in the module doc, before any byte moves.
fn check_access(
    path: &Path,
    operation: Operation,
    size_bytes: u64,
    offset_bytes: u64,
    length_bytes: usize,
) -> Result<(), StorageError> {
    if !offset_bytes.is_multiple_of(BLOCK_SIZE_BYTES) || !length_bytes.is_multiple_of(BLOCK_SIZE) {
        return Err(StorageError::Unaligned {
            path: path.to_path_buf(),
            operation,
            offset_bytes,
            length_bytes,
        });
    }
    let end_bytes = offset_bytes.checked_add(length_bytes as u64);
    if end_bytes.is_none_or(|end_bytes| end_bytes > size_bytes) {
        return Err(StorageError::OutOfRange {
            path: path.to_path_buf(),
            operation,
            offset_bytes,
            length_bytes,
            size_bytes,
        });
    }
    Ok(())
}

/// Index range of a checked access into an in-memory or mapped storage, whose size fits in
/// usize because it was allocated or mapped.
fn index_range(offset_bytes: u64, length_bytes: usize) -> std::ops::Range<usize> {
    let start = usize::try_from(offset_bytes).expect("checked offset inside a mapped storage");
    start..start + length_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> PathBuf {
        PathBuf::from("/dev/loop3")
    }

    #[test]
    fn parse_accepts_the_command_line_names_only() {
        assert_eq!(DiskIo::parse("mmap"), Some(DiskIo::Mmap));
        assert_eq!(DiskIo::parse("direct"), Some(DiskIo::Direct));
        assert_eq!(DiskIo::parse("memory"), None);
        assert_eq!(DiskIo::parse("Direct"), None);
        assert_eq!(DiskIo::parse(""), None);
        for io in [DiskIo::Mmap, DiskIo::Direct] {
            assert_eq!(DiskIo::parse(io.name()), Some(io));
        }
        assert_eq!(DiskIo::Memory.name(), "memory");
    }

    #[test]
    fn check_access_accepts_aligned_accesses_inside() {
        let size_bytes = 4 * BLOCK_SIZE_BYTES;
        assert!(check_access(&path(), Operation::Read, size_bytes, 0, BLOCK_SIZE).is_ok());
        assert!(check_access(&path(), Operation::Read, size_bytes, 0, 4 * BLOCK_SIZE).is_ok());
        assert!(check_access(&path(), Operation::Write, size_bytes, 3 * 4096, BLOCK_SIZE).is_ok());
        assert!(check_access(&path(), Operation::Write, size_bytes, size_bytes, 0).is_ok());
    }

    #[test]
    fn check_access_rejects_unaligned_and_out_of_range() {
        let size_bytes = 4 * BLOCK_SIZE_BYTES;
        let unaligned = [
            (1, BLOCK_SIZE),
            (512, BLOCK_SIZE),
            (0, 512),
            (0, BLOCK_SIZE + 1),
        ];
        for (offset_bytes, length_bytes) in unaligned {
            let result = check_access(
                &path(),
                Operation::Read,
                size_bytes,
                offset_bytes,
                length_bytes,
            );
            assert!(
                matches!(result, Err(StorageError::Unaligned { .. })),
                "{result:?}"
            );
        }
        let outside = [
            (size_bytes, BLOCK_SIZE),
            (0, 5 * BLOCK_SIZE),
            (u64::MAX - 4095, BLOCK_SIZE),
        ];
        for (offset_bytes, length_bytes) in outside {
            let result = check_access(
                &path(),
                Operation::Write,
                size_bytes,
                offset_bytes,
                length_bytes,
            );
            assert!(
                matches!(result, Err(StorageError::OutOfRange { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn errors_print_one_line_with_path_operation_and_offset() {
        let error = StorageError::Read {
            path: path(),
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

    #[test]
    fn create_rejects_sizes_that_are_not_whole_blocks() {
        let missing = Path::new("/nonexistent-wolfpack-dir/disk");
        let result = create(missing, 4097, None);
        assert!(matches!(
            result,
            Err(StorageError::SizeNotBlockMultiple { .. })
        ));
        let result = create(missing, 0, None);
        assert!(matches!(result, Err(StorageError::TooSmall { .. })));
    }

    #[test]
    fn open_rejects_a_directory() {
        let result = open(Path::new("/"), None, Access::ReadOnly);
        assert!(matches!(
            result,
            Err(StorageError::NotFileOrBlockDevice { .. })
        ));
    }
}
