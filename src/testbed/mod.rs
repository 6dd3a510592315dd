//! The network-namespace testbed (DESIGN.md §6, `testbed/README.md`): real `wolfpack node`
//! processes, each in its own network namespace on a bridge, a client namespace that probes a
//! per-group service address, fault verbs, and the checkers a chaos run and the failover
//! benchmark share.
//!
//! Why Rust and not a shell script: teardown must run on every exit path (errors, panics in
//! tests, Ctrl-C), processes are stopped by the PIDs we recorded, and the checkers parse
//! microsecond timestamps; `Drop` plus one signal flag does all of that in one place, and the
//! test and the benchmark drive the same code as the command line.
//!
//! Layout of a run (`<run>` = 4 hex digits, unique per run; see `names.rs`):
//! - `wp-<run>-sw`: a "switch" namespace holding the bridges `wp-<run>-br0` (network 0,
//!   198.18.0.0/24) and optionally `wp-<run>-br1` (network 1, 198.18.1.0/24). The host's own
//!   namespace is never touched, so its firewall cannot interfere and teardown cannot hurt it.
//! - `wp-<run>-nI`: node I, addresses 198.18.K.I on network K, veth `wp-<run>-nIeK` whose peer
//!   `wp-<run>-sIeK` is a bridge port.
//! - `wp-<run>-cl`: the client, 198.18.0.200 plus one source address per node (see `probe.rs`).
//! - Service addresses: group G serves TCP on 198.18.10.G:8000 (see `serve.rs`); in catalog
//!   mode the group `web` serves on its virtual IP 198.18.0.100:8000 (see `vip.rs`).
//! - Files under `/tmp/wp-<run>/`: disk, key, event log, node logs, probe samples.
pub mod bed;
pub mod cgroup;
pub mod chaos;
pub mod cleanup;
pub mod cli;
pub mod crash;
pub mod faults;
pub mod host;
pub mod names;
pub mod network;
pub mod overlap;
pub mod probe;
pub mod samples;
pub mod scenarios;
pub mod serve;
pub mod status;
pub mod vip;
pub mod watch;
pub mod watchdog;
pub mod writer;

pub use bed::{Bed, BedOptions, GroupSource};

/// TCP port of every group's service.
pub const SERVICE_PORT: u16 = 8000;
/// UDP port of every node on every network.
pub const CLUSTER_PORT: u16 = 7400;
/// The client's main address on network 0.
pub const CLIENT_HOST: u8 = 200;

/// Network K's address of host H (node id, or CLIENT_HOST + x for the client).
pub fn host_address(network: u8, host: u8) -> String {
    format!("198.18.{network}.{host}")
}

/// Group G's service address (a /32 its owner adds to its network-0 interface).
pub fn service_address(group: u8) -> String {
    format!("198.18.10.{group}")
}

/// Microseconds of CLOCK_MONOTONIC, the clock of every event log line and probe sample.
pub fn micros() -> u64 {
    crate::monitor::event_log::monotonic_micros()
}
