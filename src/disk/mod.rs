//! Shared-disk storage.
