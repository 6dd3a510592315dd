//! Why a datagram was dropped, and a count per reason for the `metrics` command.
//!
//! Invariant: every variant has one label, unique, in Prometheus label syntax
//! (`[a-z_]+`), and [`DropReason::ALL`] lists each variant once, in the order
//! [`super::Opener::open`] checks them. A drop changes no replay state: only its counter.
use std::fmt;

/// Why [`super::Opener::open`] dropped a datagram. Dropping changes nothing but the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than a header and a tag, longer than a frame may be, or not as long as its
    /// payload length says.
    BadLength,
    /// The first four bytes are not `WLFP`: not a wolfpack frame.
    BadMagic,
    /// A wire version this node does not speak.
    BadVersion,
    /// The reserved byte is not zero, or the network index is out of range.
    BadHeader,
    /// The tag does not match: forged, corrupted, or sealed with another key (which includes
    /// a neighbouring cluster with a key of its own).
    BadMac,
    /// Authentic, but for another cluster id: the same key is used by two clusters.
    OtherCluster,
    /// Addressed to another node.
    NotForMe,
    /// Sealed for another network than the one it arrived on: a miswired or bridged network,
    /// or a frame relayed from one network to another (which would fake that link's health).
    WrongNetwork,
    /// The sender id is not 1..=64, is this node's own, or is not a configured peer.
    UnknownSender,
    /// From an incarnation of the sender older than one already heard from.
    StaleIncarnation,
    /// A sequence number already accepted from this sender incarnation: a duplicate or replay.
    Replayed,
    /// A sequence number so far behind the newest one that the replay window no longer says
    /// whether it was seen: delayed too long, or replayed.
    TooOld,
}

impl DropReason {
    /// Every reason, in the order `open` checks them.
    pub const ALL: [DropReason; 12] = [
        DropReason::BadLength,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::BadHeader,
        DropReason::BadMac,
        DropReason::OtherCluster,
        DropReason::NotForMe,
        DropReason::WrongNetwork,
        DropReason::UnknownSender,
        DropReason::StaleIncarnation,
        DropReason::Replayed,
        DropReason::TooOld,
    ];

    /// The reason's name, usable as a Prometheus label value: `bad_mac`, `replayed`, ...
    pub fn label(self) -> &'static str {
        match self {
            DropReason::BadLength => "bad_length",
            DropReason::BadMagic => "bad_magic",
            DropReason::BadVersion => "bad_version",
            DropReason::BadHeader => "bad_header",
            DropReason::BadMac => "bad_mac",
            DropReason::OtherCluster => "other_cluster",
            DropReason::NotForMe => "not_for_me",
            DropReason::WrongNetwork => "wrong_network",
            DropReason::UnknownSender => "unknown_sender",
            DropReason::StaleIncarnation => "stale_incarnation",
            DropReason::Replayed => "replayed",
            DropReason::TooOld => "too_old",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl std::error::Error for DropReason {}

/// How many datagrams were dropped for each reason since the counters were made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    /// Counts one drop for `reason`.
    pub fn record(&mut self, reason: DropReason) {
        let count = &mut self.counts[reason.index()];
        *count = count.saturating_add(1);
    }

    /// The drops counted for `reason`.
    pub fn count(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |sum, count| sum.saturating_add(*count))
    }

    /// Each reason with its count, zeros included, in [`DropReason::ALL`] order: what a
    /// Prometheus exporter prints as `wolfpack_wire_dropped_total{reason="bad_mac"} 3`.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(move |reason| (*reason, self.count(*reason)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_label_and_index() {
        for (position, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), position);
            let label = reason.label();
            assert!(!label.is_empty());
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
            let same = DropReason::ALL
                .iter()
                .filter(|other| other.label() == label);
            assert_eq!(same.count(), 1, "{label}");
        }
    }

    #[test]
    fn counters_count_each_reason_apart() {
        let mut counters = DropCounters::default();
        counters.record(DropReason::BadMac);
        counters.record(DropReason::BadMac);
        counters.record(DropReason::Replayed);
        assert_eq!(counters.count(DropReason::BadMac), 2);
        assert_eq!(counters.count(DropReason::Replayed), 1);
        assert_eq!(counters.count(DropReason::TooOld), 0);
        assert_eq!(counters.total(), 3);
        assert_eq!(counters.iter().count(), DropReason::ALL.len());
    }
}
