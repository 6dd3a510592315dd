//! The mmap backend: one shared mapping of the whole file, bytes copied in and out.
//!
//! Correct between processes on one host: they all see the one page cache. Not correct for a
//! device or image shared by several hosts or VMs, whose page caches do not see each other's
//! writes; use the direct backend there (see `open`).
//!
//! Invariants: a ReadOnly storage opens the file read-only and maps it `PROT_READ`, so it cannot
//! write. No reference into the mapping leaves a method. This file holds the only `unsafe`
//! of the storage layer apart from one ioctl in direct.rs.

use super::{
    check_access, index_range, open_error, usable_size, Access, DiskIo, FileKind, Operation,
    Storage, StorageError,
};
use memmap2::{Mmap, MmapMut, MmapOptions};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

enum Mapping {
    ReadOnly(Mmap),
    ReadWrite(MmapMut),
}

pub(super) struct MmapStorage {
    path: PathBuf,
    size_bytes: u64,
    mapping: Mapping,
}

impl MmapStorage {
    pub(super) fn open(
        path: &Path,
        kind: FileKind,
        access: Access,
    ) -> Result<MmapStorage, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(path)
            .map_err(|source| open_error(path, "open", source))?;
        let size_bytes = usable_size(&file, path, kind)?;
        let length_bytes = usize::try_from(size_bytes).map_err(|_| {
            open_error(
                path,
                "map",
                std::io::Error::other("larger than the address space"),
            )
        })?;
        // The length is explicit because a block device's metadata says 0 bytes.
        let mut options = MmapOptions::new();
        options.len(length_bytes);
        // SAFETY: memmap2 marks mapping unsafe because the file may change underneath (another
        // process writes it, or truncates it) while Rust code holds a slice into the mapping.
        // The shared disk is written concurrently by design. We accept that as follows: the
        // mapping is only touched by `copy_from_slice` inside `read_at`/`write_at`, so no
        // reference into it outlives one copy, and callers validate every record they copy out
        // by its CRC before trusting it, so a copy torn by a concurrent writer is detected.
        // Nobody in wolfpack truncates the disk; an outside truncation raises SIGBUS, which we
        // treat like the disk vanishing. The mapping is dropped (unmapped) with the storage.
        let mapping = unsafe {
            match access {
                Access::ReadOnly => options.map(&file).map(Mapping::ReadOnly),
                Access::ReadWrite => options.map_mut(&file).map(Mapping::ReadWrite),
            }
        }
        .map_err(|source| open_error(path, "map", source))?;
        Ok(MmapStorage {
            path: path.to_path_buf(),
            size_bytes,
            mapping,
        })
    }
}

impl Storage for MmapStorage {
    fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn io(&self) -> DiskIo {
        DiskIo::Mmap
    }

    fn read_at(&mut self, offset_bytes: u64, target: &mut [u8]) -> Result<(), StorageError> {
        check_access(
            &self.path,
            Operation::Read,
            self.size_bytes,
            offset_bytes,
            target.len(),
        )?;
        let range = index_range(offset_bytes, target.len());
        match &self.mapping {
            Mapping::ReadOnly(mapping) => target.copy_from_slice(&mapping[range]),
            Mapping::ReadWrite(mapping) => target.copy_from_slice(&mapping[range]),
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
        match &mut self.mapping {
            Mapping::ReadOnly(_) => Err(StorageError::ReadOnly {
                path: self.path.clone(),
                offset_bytes,
            }),
            Mapping::ReadWrite(mapping) => {
                mapping[index_range(offset_bytes, source.len())].copy_from_slice(source);
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        match &self.mapping {
            // Nothing was written, so everything written is durable.
            Mapping::ReadOnly(_) => Ok(()),
            Mapping::ReadWrite(mapping) => mapping.flush().map_err(|source| StorageError::Flush {
                path: self.path.clone(),
                source,
            }),
        }
    }
}
