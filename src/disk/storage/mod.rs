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
mod error;
mod memory;
mod mmap;

pub use error::{Operation, StorageError};
pub use memory::MemoryStorage;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Every offset and length given to a Storage must be a multiple of BLOCK_SIZE (4096 bytes).
pub use disklayout::BLOCK_SIZE;

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
            // 0600: the disk holds resource parameters and database values, which are no
            // other local user's business.
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
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
    use std::path::PathBuf;

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
