//! The direct backend: O_DIRECT pread/pwrite through an aligned bounce buffer.
//!
//! O_DIRECT bypasses this host's page cache, so a read sees what another host or VM wrote to a
//! shared device, and a write reaches the device (or its write cache; `flush` fdatasyncs).
//!
//! Invariants: every transfer starts at a BLOCK_SIZE-aligned offset, from or into the bounce
//! buffer, which is page-aligned (so BLOCK_SIZE-aligned) and a whole number of blocks long; a
//! block device's logical sector size divides BLOCK_SIZE (checked at open), so each transfer is
//! sector-aligned as O_DIRECT demands. A ReadOnly storage opens its file read-only.

use super::{
    check_access, open_error, usable_size, Access, DiskIo, FileKind, Operation, Storage,
    StorageError, BLOCK_SIZE,
};
use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Large enough that a scan of the database log takes few system calls, small enough to keep
/// one per open storage without thought.
const BOUNCE_BUFFER_SIZE_BYTES: usize = 64 * BLOCK_SIZE;

pub(super) struct DirectStorage {
    path: PathBuf,
    file: File,
    access: Access,
    size_bytes: u64,
    /// An anonymous mapping: page-aligned, zeroed, and unmapped on drop, without `unsafe`.
    bounce_buffer: MmapMut,
}

impl DirectStorage {
    pub(super) fn open(
        path: &Path,
        kind: FileKind,
        access: Access,
    ) -> Result<DirectStorage, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|source| direct_open_error(path, source))?;
        if kind == FileKind::BlockDevice {
            let logical_sector_bytes = logical_sector_size(&file, path)?;
            if logical_sector_bytes == 0
                || !(BLOCK_SIZE as u64).is_multiple_of(logical_sector_bytes)
            {
                return Err(StorageError::SectorSize {
                    path: path.to_path_buf(),
                    logical_sector_bytes,
                });
            }
        }
        let size_bytes = usable_size(&file, path, kind)?;
        let bounce_buffer = MmapMut::map_anon(BOUNCE_BUFFER_SIZE_BYTES)
            .map_err(|source| open_error(path, "allocate a buffer for", source))?;
        assert_eq!(bounce_buffer.as_ptr() as usize % BLOCK_SIZE, 0);
        assert_eq!(bounce_buffer.len() % BLOCK_SIZE, 0);
        let mut storage = DirectStorage {
            path: path.to_path_buf(),
            file,
            access,
            size_bytes,
            bounce_buffer,
        };
        storage.probe()?;
        Ok(storage)
    }

    /// Reads the first block, because some filesystems accept O_DIRECT at open and refuse it
    /// (EINVAL) at the first transfer; better to learn that now than in the middle of a run.
    fn probe(&mut self) -> Result<(), StorageError> {
        let mut block = [0; BLOCK_SIZE];
        match self.read_at(0, &mut block) {
            Err(StorageError::Read { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) =>
            {
                Err(StorageError::DirectUnsupported {
                    path: self.path.clone(),
                    source,
                })
            }
            result => result,
        }
    }
}

fn direct_open_error(path: &Path, source: io::Error) -> StorageError {
    if source.raw_os_error() == Some(libc::EINVAL) {
        StorageError::DirectUnsupported {
            path: path.to_path_buf(),
            source,
        }
    } else {
        open_error(path, "open", source)
    }
}

fn logical_sector_size(file: &File, path: &Path) -> Result<u64, StorageError> {
    let mut logical_sector_bytes: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one c_int through the pointer, which points at a live local of
    // that type; the descriptor is open for the duration of the call.
    let result = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::BLKSSZGET,
            &mut logical_sector_bytes as *mut libc::c_int,
        )
    };
    if result != 0 {
        return Err(open_error(
            path,
            "query the sector size of",
            io::Error::last_os_error(),
        ));
    }
    u64::try_from(logical_sector_bytes).map_err(|_| StorageError::SectorSize {
        path: path.to_path_buf(),
        logical_sector_bytes: 0,
    })
}

impl Storage for DirectStorage {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn io(&self) -> DiskIo {
        DiskIo::Direct
    }

    fn read_at(&mut self, offset_bytes: u64, target: &mut [u8]) -> Result<(), StorageError> {
        check_access(
            &self.path,
            Operation::Read,
            self.size_bytes,
            offset_bytes,
            target.len(),
        )?;
        let mut chunk_offset_bytes = offset_bytes;
        for chunk in target.chunks_mut(BOUNCE_BUFFER_SIZE_BYTES) {
            let bounce = &mut self.bounce_buffer[..chunk.len()];
            // read_exact_at retries on EINTR and after short reads; EOF is UnexpectedEof.
            self.file
                .read_exact_at(bounce, chunk_offset_bytes)
                .map_err(|source| StorageError::Read {
                    path: self.path.clone(),
                    offset_bytes: chunk_offset_bytes,
                    source,
                })?;
            chunk.copy_from_slice(bounce);
            chunk_offset_bytes += chunk.len() as u64;
        }
        Ok(())
    }

    fn write_at(&mut self, offset_bytes: u64, source: &[u8]) -> Result<(), StorageError> {
        check_access(
            &self.path,
            Operation::Write,
            self.size_bytes,
            offset_bytes,
            source.len(),
        )?;
        if self.access == Access::ReadOnly {
            return Err(StorageError::ReadOnly {
                path: self.path.clone(),
                offset_bytes,
            });
        }
        let mut chunk_offset_bytes = offset_bytes;
        for chunk in source.chunks(BOUNCE_BUFFER_SIZE_BYTES) {
            let bounce = &mut self.bounce_buffer[..chunk.len()];
            bounce.copy_from_slice(chunk);
            // write_all_at retries on EINTR and after short writes.
            self.file
                .write_all_at(bounce, chunk_offset_bytes)
                .map_err(|source| StorageError::Write {
                    path: self.path.clone(),
                    offset_bytes: chunk_offset_bytes,
                    source,
                })?;
            chunk_offset_bytes += chunk.len() as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        if self.access == Access::ReadOnly {
            // Nothing was written, so everything written is durable; and a stalled device
            // should not stall a reader.
            return Ok(());
        }
        self.file.sync_data().map_err(|source| StorageError::Flush {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn einval_at_open_means_direct_io_is_unsupported() {
        let path = Path::new("/dev/shm/disk");
        let error = direct_open_error(path, io::Error::from_raw_os_error(libc::EINVAL));
        assert!(matches!(error, StorageError::DirectUnsupported { .. }));
        let error = direct_open_error(path, io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(
            error,
            StorageError::Open {
                operation: "open",
                ..
            }
        ));
    }
}
