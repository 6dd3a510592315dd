//! The memory backend: a `Vec<u8>` in this process, for tests and the simulator.
//!
//! Invariants: the same checks as every backend (see mod.rs); flush is a no-op because nothing
//! outlives the process. A clone is an independent copy of the bytes, not a second handle: the
//! simulator can keep one as the image a crash would leave behind.

use super::{check_access, check_size, index_range, DiskIo, Operation, Storage, StorageError};
use std::fmt;
use std::path::Path;

/// Stands in for a path in error messages.
const MEMORY_PATH: &str = "<memory>";

#[derive(Clone)]
pub struct MemoryStorage {
    bytes: Vec<u8>,
}

impl MemoryStorage {
    /// `size_bytes` must be a nonzero multiple of BLOCK_SIZE: it is chosen by code, not read
    /// from outside, so a bad size is a programmer error.
    pub fn new(size_bytes: u64) -> Self {
        if let Err(error) = check_size(Path::new(MEMORY_PATH), size_bytes) {
            panic!("MemoryStorage::new: {error}");
        }
        let length = usize::try_from(size_bytes).expect("memory storage size fits in usize");
        MemoryStorage {
            bytes: vec![0; length],
        }
    }
}

impl fmt::Debug for MemoryStorage {
    // The bytes would drown any test failure message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("size_bytes", &self.bytes.len())
            .finish()
    }
}

impl Storage for MemoryStorage {
    fn size_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn io(&self) -> DiskIo {
        DiskIo::Memory
    }

    fn read_at(&mut self, offset_bytes: u64, target: &mut [u8]) -> Result<(), StorageError> {
        let path = Path::new(MEMORY_PATH);
        check_access(
            path,
            Operation::Read,
            self.size_bytes(),
            offset_bytes,
            target.len(),
        )?;
        target.copy_from_slice(&self.bytes[index_range(offset_bytes, target.len())]);
        Ok(())
    }

    fn write_at(&mut self, offset_bytes: u64, source: &[u8]) -> Result<(), StorageError> {
        let path = Path::new(MEMORY_PATH);
        check_access(
            path,
            Operation::Write,
            self.size_bytes(),
            offset_bytes,
            source.len(),
        )?;
        self.bytes[index_range(offset_bytes, source.len())].copy_from_slice(source);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::BLOCK_SIZE;
    use super::*;

    #[test]
    fn reads_back_what_was_written_and_starts_zeroed() {
        let mut storage = MemoryStorage::new(4 * BLOCK_SIZE as u64);
        assert_eq!(storage.size_bytes(), 4 * BLOCK_SIZE as u64);
        assert_eq!(storage.io(), DiskIo::Memory);
        let written = vec![0xa5; 2 * BLOCK_SIZE];
        storage
            .write_at(BLOCK_SIZE as u64, &written)
            .expect("write");
        storage.flush().expect("flush");
        let mut read = vec![0; 4 * BLOCK_SIZE];
        storage.read_at(0, &mut read).expect("read");
        assert!(read[..BLOCK_SIZE].iter().all(|&byte| byte == 0));
        assert_eq!(&read[BLOCK_SIZE..3 * BLOCK_SIZE], &written[..]);
        assert!(read[3 * BLOCK_SIZE..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn a_clone_is_an_independent_copy() {
        let mut storage = MemoryStorage::new(BLOCK_SIZE as u64);
        let snapshot = storage.clone();
        storage.write_at(0, &[1; BLOCK_SIZE]).expect("write");
        let mut read = [0xff; BLOCK_SIZE];
        snapshot.clone().read_at(0, &mut read).expect("read");
        assert_eq!(read, [0; BLOCK_SIZE]);
    }

    #[test]
    fn rejected_accesses_name_the_memory_storage() {
        let mut storage = MemoryStorage::new(BLOCK_SIZE as u64);
        let error = storage
            .write_at(BLOCK_SIZE as u64, &[0; BLOCK_SIZE])
            .expect_err("past end");
        assert!(matches!(error, StorageError::OutOfRange { .. }));
        assert!(error.to_string().contains(MEMORY_PATH));
    }

    #[test]
    #[should_panic(expected = "not a multiple")]
    fn new_panics_on_a_partial_block() {
        MemoryStorage::new(100);
    }
}
