//! The runner against a scripted fake monitor (`bench.rs`).

mod bench;
mod catalog;
mod failures;
mod order;
mod random;
