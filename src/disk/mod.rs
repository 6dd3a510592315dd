//! Shared-disk storage.
pub mod storage;
