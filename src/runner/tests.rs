//! The runner against a scripted fake monitor (`bench.rs`).

mod bench;
mod blocked;
mod catalog;
mod failures;
mod order;
mod random;
