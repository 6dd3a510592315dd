//! Nodes of our own table heard alive but not as members of this cluster.
//!
//! Two mistakes leave two halves of a cluster that cannot hear each other's protocol while the
//! network between them is healthy: a disk formatted apart (a wrong `--disk`: each node's
//! frames carry its own disk's cluster id under the shared key, dropped as `other_cluster`),
//! and a node started with another key (every frame fails its tag, `bad_mac`). Each half would
//! form alone and own "the" quorum record of its own disk: two owners, one service address.
//!
//! The watch turns those drops into evidence: a frame sealed with our key, from a node of our
//! table, naming another cluster id is one at once (the tag proves the sender holds our key);
//! frames failing their tag count once `BAD_MAC_FRAMES_MIN` arrive within `BAD_MAC_WINDOW_MS`
//! from a table address of a node (one corrupt datagram proves nothing). Each conflict goes to
//! the core (`Input::PeerConflict`, which holds forming alone back), to the log at most once
//! per `LOG_EVERY_MS` per node, and to `ctl status` while it was heard within `SHOWN_MS`.
//!
//! A node in conflict must also learn of it: a member of one half does not heartbeat to the
//! other half's nodes, so a node started late beside a running cluster of another disk would
//! hear nothing and form. So each frame that shows a conflict is answered with a notice
//! (`FRAME_KIND_CONFLICT`, empty, sealed as usual, at most one per `NOTICE_EVERY_MS` per node):
//! the other side drops it for the same reason, and so sees the conflict too. A notice is
//! never answered when its kind can be read (another cluster id: the header is authentic), so
//! two nodes do not answer each other's notices for ever; with another key the kind is
//! unreadable and the rate bound caps the exchange.
//!
//! Limit: anyone who can send UDP from a table address can raise `bad_mac` conflicts and so
//! delay forming (not break a membership that exists); such a sender can also drop the
//! cluster's datagrams, which does the same.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use crate::wire::DropReason;

/// Frames with a bad tag from one node's table address, within `BAD_MAC_WINDOW_MS`, that make
/// a conflict.
pub const BAD_MAC_FRAMES_MIN: u32 = 3;
pub const BAD_MAC_WINDOW_MS: u64 = 1000;
/// A conflict is logged again at most this often per node while it lasts.
pub const LOG_EVERY_MS: u64 = 30_000;
/// `ctl status` shows a conflict heard within this long.
pub const SHOWN_MS: u64 = 10_000;
/// The frame kind of a conflict notice, after the core's (1), the time service's (2) and the
/// event exchange's (3).
pub const FRAME_KIND_CONFLICT: u8 = 4;
/// At most one notice per node this often.
pub const NOTICE_EVERY_MS: u64 = 100;

/// What a node of our table was heard as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Frames sealed with our key but naming another cluster id: its disk was formatted apart.
    OtherCluster { cluster_id: u64 },
    /// Frames from its table address keep failing their tag: it runs with another key.
    BadMac,
}

impl Conflict {
    fn text(&self, node: u8) -> String {
        match self {
            Conflict::OtherCluster { cluster_id } => format!(
                "node {node} is alive with another cluster id ({cluster_id:#018x}): its shared disk was formatted apart from ours (a wrong --disk?)"
            ),
            Conflict::BadMac => format!(
                "frames from node {node}'s address keep failing authentication: it runs with another key (a wrong --key?)"
            ),
        }
    }
}

#[derive(Debug)]
struct Watched {
    conflict: Option<Conflict>,
    last_conflict_ms: u64,
    last_logged_ms: Option<u64>,
    last_notice_ms: Option<u64>,
    bad_mac_window_start_ms: u64,
    bad_mac_in_window: u32,
}

/// What to do about one dropped frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Tell the core (`Input::PeerConflict`).
    pub conflict: bool,
    /// A line to log loudly (rate-limited).
    pub log: Option<String>,
}

/// A dropped frame that shows a conflict with node `node`.
#[derive(Debug, PartialEq, Eq)]
pub struct Dropped {
    pub node: u8,
    pub verdict: Verdict,
    /// Answer `node` with a notice now (`FRAME_KIND_CONFLICT`).
    pub notice: bool,
}

#[derive(Debug, Default)]
pub struct ConflictWatch {
    nodes: BTreeMap<u8, Watched>,
    /// Every peer address of the node table, to name the sender of a frame whose tag failed.
    table_addresses: HashMap<SocketAddr, u8>,
    /// Bit `n - 1` is set for each peer of the node table.
    peers: u64,
}

impl ConflictWatch {
    /// Watches the peers of the node table `nodes` for node `own`.
    pub fn for_table(nodes: &[disklayout::NodeEntry], own: u8) -> ConflictWatch {
        let peers: Vec<&disklayout::NodeEntry> =
            nodes.iter().filter(|node| node.node_id != own).collect();
        ConflictWatch {
            table_addresses: peers
                .iter()
                .flat_map(|node| {
                    node.addresses
                        .iter()
                        .map(|address| (*address, node.node_id))
                })
                .collect(),
            peers: peers
                .iter()
                .fold(0, |set, node| set | crate::core::bit(node.node_id)),
            ..ConflictWatch::default()
        }
    }

    /// A datagram `wire::Opener` dropped for `reason`, from `from`: whether it shows a node of
    /// the table alive in another cluster, and what to do about it.
    pub fn dropped(
        &mut self,
        reason: DropReason,
        datagram: &[u8],
        from: SocketAddr,
        now_ms: u64,
    ) -> Option<Dropped> {
        let (node, verdict, answerable) = match reason {
            // Refused after its tag verified: the header is authentic.
            DropReason::OtherCluster => {
                let header = crate::wire::claimed_header(datagram)?;
                let node = header.sender;
                if !disklayout::is_node_id(node) || self.peers & crate::core::bit(node) == 0 {
                    return None;
                }
                let verdict = self.other_cluster(node, header.cluster_id, now_ms);
                (node, verdict, header.kind != FRAME_KIND_CONFLICT)
            }
            // Its kind is unreadable, so even a notice is answered: the rate bound caps that.
            DropReason::BadMac => {
                let node = *self.table_addresses.get(&from)?;
                (node, self.bad_mac(node, now_ms), true)
            }
            _ => return None,
        };
        let notice = answerable && self.notice_due(node, now_ms);
        Some(Dropped {
            node,
            verdict,
            notice,
        })
    }

    /// A frame sealed with our key from `node` of our table named `cluster_id`, not ours.
    pub fn other_cluster(&mut self, node: u8, cluster_id: u64, now_ms: u64) -> Verdict {
        self.conflict(node, Conflict::OtherCluster { cluster_id }, now_ms)
    }

    /// A frame from a table address of `node` failed its tag.
    pub fn bad_mac(&mut self, node: u8, now_ms: u64) -> Verdict {
        let watched = self.watched(node);
        if now_ms.saturating_sub(watched.bad_mac_window_start_ms) >= BAD_MAC_WINDOW_MS {
            watched.bad_mac_window_start_ms = now_ms;
            watched.bad_mac_in_window = 0;
        }
        watched.bad_mac_in_window = watched.bad_mac_in_window.saturating_add(1);
        if watched.bad_mac_in_window < BAD_MAC_FRAMES_MIN {
            return Verdict::default();
        }
        self.conflict(node, Conflict::BadMac, now_ms)
    }

    /// Whether to send `node` a notice now (a frame of it showed a conflict): at most one per
    /// `NOTICE_EVERY_MS`.
    pub fn notice_due(&mut self, node: u8, now_ms: u64) -> bool {
        let watched = self.watched(node);
        let due = watched
            .last_notice_ms
            .is_none_or(|sent| now_ms.saturating_sub(sent) >= NOTICE_EVERY_MS);
        if due {
            watched.last_notice_ms = Some(now_ms);
        }
        due
    }

    /// One line per conflict heard within `SHOWN_MS`, for `ctl status`.
    pub fn lines(&self, now_ms: u64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, watched)| now_ms.saturating_sub(watched.last_conflict_ms) < SHOWN_MS)
            .filter_map(|(node, watched)| {
                let conflict = watched.conflict?;
                let ago_ms = now_ms.saturating_sub(watched.last_conflict_ms);
                Some(format!(
                    "{} (last heard {ago_ms} ms ago)",
                    conflict.text(*node)
                ))
            })
            .collect()
    }

    fn watched(&mut self, node: u8) -> &mut Watched {
        self.nodes.entry(node).or_insert(Watched {
            conflict: None,
            last_conflict_ms: 0,
            last_logged_ms: None,
            last_notice_ms: None,
            bad_mac_window_start_ms: 0,
            bad_mac_in_window: 0,
        })
    }

    fn conflict(&mut self, node: u8, conflict: Conflict, now_ms: u64) -> Verdict {
        let watched = self.watched(node);
        let changed = watched.conflict != Some(conflict);
        watched.conflict = Some(conflict);
        watched.last_conflict_ms = now_ms;
        let log_due = changed
            || watched
                .last_logged_ms
                .is_none_or(|logged| now_ms.saturating_sub(logged) >= LOG_EVERY_MS);
        let log = log_due.then(|| {
            watched.last_logged_ms = Some(now_ms);
            format!(
                "{}; this node will not form a cluster alone while it lasts",
                conflict.text(node)
            )
        });
        Verdict {
            conflict: true,
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_cluster_id_is_a_conflict_at_once_logged_at_a_bounded_rate() {
        let mut watch = ConflictWatch::default();
        let first = watch.other_cluster(2, 0xabc, 1000);
        assert!(first.conflict);
        assert!(first
            .log
            .as_deref()
            .is_some_and(|line| line.contains("node 2")
                && line.contains("0x0000000000000abc")
                && line.contains("formatted apart")));
        let again = watch.other_cluster(2, 0xabc, 1050);
        assert!(again.conflict && again.log.is_none(), "rate-limited");
        assert!(watch
            .other_cluster(2, 0xabc, 1000 + LOG_EVERY_MS)
            .log
            .is_some());
        assert_eq!(watch.lines(1000 + LOG_EVERY_MS).len(), 1);
        assert!(
            watch.lines(1000 + LOG_EVERY_MS + SHOWN_MS).is_empty(),
            "over"
        );
    }

    #[test]
    fn only_frames_from_a_table_address_count_and_each_conflict_is_answered() {
        let address = |last: u8| SocketAddr::from(([198, 18, 0, last], 7400));
        let entry = |node_id: u8| disklayout::NodeEntry {
            node_id,
            name: format!("n{node_id}"),
            addresses: vec![address(node_id)],
        };
        let mut watch = ConflictWatch::for_table(&[entry(1), entry(2)], 1);
        let stranger = address(9);
        assert_eq!(watch.dropped(DropReason::BadMac, &[], stranger, 0), None);
        assert_eq!(
            watch.dropped(DropReason::BadMac, &[], address(1), 0),
            None,
            "ourselves"
        );
        assert_eq!(
            watch.dropped(DropReason::Replayed, &[], address(2), 0),
            None
        );
        let first = watch
            .dropped(DropReason::BadMac, &[], address(2), 0)
            .expect("node 2");
        assert!(first.node == 2 && !first.verdict.conflict && first.notice);
        let _ = watch.dropped(DropReason::BadMac, &[], address(2), 10);
        let third = watch
            .dropped(DropReason::BadMac, &[], address(2), 20)
            .expect("node 2");
        assert!(
            third.verdict.conflict && !third.notice,
            "notices at most every 100 ms"
        );
    }

    #[test]
    fn notices_are_rate_limited_per_node() {
        let mut watch = ConflictWatch::default();
        assert!(watch.notice_due(2, 0));
        assert!(!watch.notice_due(2, NOTICE_EVERY_MS - 1));
        assert!(watch.notice_due(3, 1), "per node");
        assert!(watch.notice_due(2, NOTICE_EVERY_MS));
    }

    #[test]
    fn a_bad_tag_counts_only_when_it_keeps_coming() {
        let mut watch = ConflictWatch::default();
        assert!(!watch.bad_mac(3, 0).conflict);
        assert!(!watch.bad_mac(3, 10).conflict);
        // The window ended: a fresh count.
        assert!(!watch.bad_mac(3, BAD_MAC_WINDOW_MS + 10).conflict);
        assert!(!watch.bad_mac(3, BAD_MAC_WINDOW_MS + 20).conflict);
        let third = watch.bad_mac(3, BAD_MAC_WINDOW_MS + 30);
        assert!(third.conflict);
        assert!(third.log.is_some_and(|line| line.contains("another key")));
        assert!(watch.lines(BAD_MAC_WINDOW_MS + 40)[0].contains("node 3"));
    }
}
