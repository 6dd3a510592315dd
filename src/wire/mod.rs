//! The authenticated wire protocol: what every UDP datagram between nodes looks like, and the
//! checks a datagram passes before anything above this layer sees it (DESIGN.md §4 item 4).
//!
//! - [`frame`]: the byte layout, version 1, with its diagram;
//! - [`Sealer`]: one per node; seals payloads into frames with a keyed BLAKE3 tag;
//! - [`Opener`]: one per node; checks shape, tag, cluster, receiver, network, sender,
//!   incarnation and sequence, and drops anything else with a [`DropReason`], counted in
//!   [`DropCounters`];
//! - [`ClusterKey`]: the 32-byte shared secret and its 0600 key file.
//!
//! Invariants: nothing a datagram says is believed before its tag verifies; only a frame that
//! passed every check changes replay state; no input makes `open` panic. This module does no
//! network I/O: the daemon owns the sockets.
pub mod frame;

mod drop_reason;
mod key;
mod mac;
mod open;
mod replay;
mod seal;

pub use drop_reason::{DropCounters, DropReason};
pub use frame::{
    claimed_cluster_id, claimed_header, Frame, Header, EVERY_NODE, FRAME_BYTES_MAX, NETWORKS_MAX,
    PAYLOAD_BYTES_MAX,
};
pub use key::{ClusterKey, KeyError, KEY_BYTES, KEY_FILE_BYTES};
pub use open::Opener;
pub use replay::REPLAY_WINDOW_DEPTH;
pub use seal::{seal_crafted, Sealer};
