//! wolfpack: a high-availability cluster service. One binary per node keeps a membership,
//! arbitrates quorum on a shared disk, replicates a cluster database and fails over resources.
//!
//! See ARCHITECTURE.md for the code map and its invariants.
pub mod admin;
pub mod cli;
pub mod core;
pub mod demo;
pub mod disk;
pub mod host;
pub mod json;
pub mod loopback;
pub mod monitor;
pub mod node;
pub mod prng;
pub mod runner;
pub mod sim;
pub mod testbed;
pub mod wire;
