//! Failure detection: when each peer was last heard, on each network.
//!
//! A peer is alive while it was heard on *any* network within `peer_silence_ticks`: silence on
//! one network alone is not a failure. A peer silent on every network is lost to the network
//! layer; whether it is dead or only partitioned is decided by its disk slot (`lease.rs`).

use super::{bit, NODES_MAX};

/// What a message's incarnation says about its sender's run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunHeard {
    /// An older run, or the run that said it leaves: drop the message.
    Stale,
    /// The run already heard.
    Known,
    /// The first run heard from this peer.
    First,
    /// A newer run than the one heard: the previous one is gone.
    Restarted,
}

/// Per-peer liveness as seen by this node.
#[derive(Clone, Debug)]
pub(crate) struct Peers {
    /// Tick each peer was last heard on each network; `None` = never.
    last_heard_ticks: Vec<Vec<Option<u64>>>,
    /// Highest incarnation heard from each peer (0 = never heard).
    incarnations: Vec<u64>,
    /// Peers already reported silent (so the event fires once per silence).
    reported_silent: u64,
    /// When each peer last became a member (start of its silence window).
    window_start_ticks: Vec<u64>,
    /// The incarnation each peer left with (its later messages are stale; 0 = none).
    left_incarnation: Vec<u64>,
    /// Tick each configured node was last heard alive but not as one of this cluster (another
    /// cluster id, another key: `Input::PeerConflict`); `None` = never.
    conflict_heard_ticks: Vec<Option<u64>>,
    /// The nodes in conflict when forming was last reported held back (the event fires once
    /// per set).
    conflict_reported: u64,
}

impl Peers {
    pub fn new(networks: &[u8]) -> Peers {
        assert!(networks.len() <= NODES_MAX);
        Peers {
            last_heard_ticks: networks
                .iter()
                .map(|count| vec![None; usize::from(*count)])
                .collect(),
            incarnations: vec![0; networks.len()],
            left_incarnation: vec![0; networks.len()],
            reported_silent: 0,
            window_start_ticks: vec![0; networks.len()],
            conflict_heard_ticks: vec![None; networks.len()],
            conflict_reported: 0,
        }
    }

    /// The highest incarnation heard from `peer` (0 = never heard).
    pub fn incarnation(&self, peer: u8) -> u64 {
        self.incarnations[usize::from(peer - 1)]
    }

    /// Classifies a message's incarnation from `peer` and remembers a newer one.
    pub fn heard_run(&mut self, peer: u8, incarnation: u64) -> RunHeard {
        let index = usize::from(peer - 1);
        let known = self.incarnations[index];
        if incarnation < known || incarnation == self.left_incarnation[index] {
            return RunHeard::Stale;
        }
        if incarnation == known {
            return RunHeard::Known;
        }
        self.incarnations[index] = incarnation;
        if known == 0 {
            RunHeard::First
        } else {
            RunHeard::Restarted
        }
    }

    /// True the first time `peer` is found silent since it was last heard (so the event fires
    /// once per silence).
    pub fn report_silent_once(&mut self, peer: u8) -> bool {
        let first = self.reported_silent & bit(peer) == 0;
        self.reported_silent |= bit(peer);
        first
    }

    /// True if `nodes` differs from the set last reported in conflict (so the event fires once
    /// per set).
    pub fn report_conflict_once(&mut self, nodes: u64) -> bool {
        let changed = self.conflict_reported != nodes;
        self.conflict_reported = nodes;
        changed
    }

    /// `peer` was heard alive as a node of another cluster (the driver saw its frames).
    pub fn heard_in_conflict(&mut self, peer: u8, now_ticks: u64) {
        if let Some(heard) = self.conflict_heard_ticks.get_mut(usize::from(peer) - 1) {
            *heard = Some(now_ticks);
        }
    }

    /// The nodes heard in conflict within the last `window_ticks`.
    pub fn in_conflict(&self, now_ticks: u64, window_ticks: u64) -> u64 {
        self.conflict_heard_ticks
            .iter()
            .enumerate()
            .filter(|(_, heard)| {
                heard.is_some_and(|at| now_ticks.saturating_sub(at) < window_ticks)
            })
            .fold(0, |set, (index, _)| set | (1u64 << index))
    }

    /// Records a message from `peer` on `network` (both already validated).
    pub fn heard(&mut self, peer: u8, network: u8, now_ticks: u64) {
        let index = usize::from(peer - 1);
        self.last_heard_ticks[index][usize::from(network)] = Some(now_ticks);
        self.reported_silent &= !bit(peer);
    }

    /// A fresh member gets a full silence window before it can be reported silent (without
    /// pretending it was heard: regroup statuses report only what was really heard).
    pub fn grant_window(&mut self, peer: u8, now_ticks: u64) {
        self.window_start_ticks[usize::from(peer - 1)] = now_ticks;
        self.reported_silent &= !bit(peer);
    }

    /// `peer` said it leaves: silent from now on (its fresh-member window too), so the next
    /// membership tick regroups without it.
    pub fn forget(&mut self, peer: u8) {
        let index = usize::from(peer - 1);
        self.last_heard_ticks[index]
            .iter_mut()
            .for_each(|heard| *heard = None);
        self.window_start_ticks[index] = 0;
        self.left_incarnation[index] = self.incarnations[index];
    }

    /// True while `peer` is heard, or its window as a fresh member is not over.
    pub fn alive_or_fresh(&self, peer: u8, now_ticks: u64, silence_ticks: u64) -> bool {
        let fresh = now_ticks.saturating_sub(self.window_start_ticks[usize::from(peer - 1)])
            < silence_ticks;
        fresh || self.alive(peer, now_ticks, silence_ticks)
    }

    /// True while `peer` was heard on at least one network within `silence_ticks`.
    pub fn alive(&self, peer: u8, now_ticks: u64, silence_ticks: u64) -> bool {
        self.last_heard_ticks[usize::from(peer - 1)]
            .iter()
            .flatten()
            .any(|heard| now_ticks.saturating_sub(*heard) < silence_ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::Peers;

    #[test]
    fn silent_on_one_network_is_alive_silent_on_all_is_not() {
        let mut peers = Peers::new(&[2, 2]);
        peers.heard(2, 0, 10);
        peers.heard(2, 1, 30);
        assert!(peers.alive(2, 50, 30));
        assert!(!peers.alive(2, 60, 30));
        assert!(!peers.alive(1, 0, 30));
    }
}
