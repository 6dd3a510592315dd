//! wolfpack: a high-availability cluster service.
pub mod core;
pub mod disk;
pub mod prng;
pub mod sim;
