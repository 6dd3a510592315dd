//! wolfpack: a high-availability cluster service.
pub mod disk;
