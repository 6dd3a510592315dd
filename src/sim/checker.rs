//! Invariants checked after every step of the simulation.
//!
//! - every node that stabilizes epoch `e` stabilizes the same membership;
//! - a membership a regroup decided descends from the newest one stabilized before it, each
//!   decided step holding at least half of the one before (`check_succession`);
//! - a node's stabilized epochs only grow (within one incarnation);
//! - a decided membership is fully connected as the network stood during its regroup: no pair
//!   in it had a link down since long enough before the round began for the protocol to know
//!   (`peer_silence_ticks` plus the largest message delay);
//! - at most one node holds a valid quorum lease (by its own clock) at any instant;
//! - no group is online on two nodes at the same instant;
//! - no resource lease is held by two nodes at the same instant. A lease counts from
//!   `Output::ResourceLease { held: true }` until the end of its validity as its node last
//!   reported it (the quorum owner check counts validity too), also once taken back, crashed or
//!   stopped by the dead-man: no node may claim a lease before the previous holder's validity
//!   ended, even a released one, because every claim waits the defence window after a
//!   challenge that landed after the holder's last write (ARBITRATION.md §5). That is stronger
//!   than "never mounted twice" (a lease taken back is unmounted at once), and it is what shows
//!   a challenger that does not wait.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::{bit, ids};

/// Which invariant a violation broke: tests and sweeps ask this, not the description's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    // Membership (`Checker`).
    StabilizedWithoutItself,
    TwoMembershipsInOneEpoch,
    /// A membership a regroup decided stabilized without descending from the newest one
    /// stabilized before it (`Checker::check_succession`).
    MembershipWithoutSuccession,
    EpochWentBack,
    DecidedMembershipNotConnected,
    TwoQuorumOwners,
    GroupOnlineTwice,
    ResourceLeaseHeldTwice,
    /// The cluster did not converge within the bound after the faults healed.
    NoConvergence,
    // The cluster's own checks (`cluster.rs`).
    /// A ready locker's log blocks before its next write are neither applied nor discarded.
    LogBlocksUnaccounted,
    /// A half that survived by the quorum stabilized before the quorum record named its epoch.
    QuorumRecordMissesHalfEpoch,
    /// A member confirmed that a peer stopped while the run it covers still runs resources.
    FalseConfirmationPeerStopped,
    // GUM (`gum_checker.rs`).
    GumAppliedAfterSuperseded,
    GumSequenceSkipped,
    GumAcknowledgedSequenceReplaced,
    GumStateDiverged,
    GumSequenceAppliedTwiceByOneNode,
    GumStateUnlikeSnapshot,
    GumSnapshotAfterSuperseded,
    GumSnapshotUnlikeLiveState,
    GumAcknowledgedUnsentRequest,
    GumAcknowledgedUnappliedUpdate,
    GumAcknowledgedBelowItsSequence,
    GumSequenceAcknowledgedForTwoUpdates,
    // Resources (`resource_checker.rs`).
    ResourceRunsOnTwoNodes,
    ResourceRunsWithoutItsGroup,
    ResourceRunsWithoutItsDependency,
    ResourceStartedBeforeItsDependency,
    // The simulated monitors (`node_monitor.rs`).
    /// ARBITRATION.md rule 5: a ping restarted the dead-man past the node's leases' end.
    DeadmanPastLeaseAtPing,
    /// ARBITRATION.md rule 5: a start while the dead-man ran past the node's leases' end.
    DeadmanPastLeaseAtStart,
    /// The host sent a command only the daemon sends on its way out.
    HostSentDaemonCommand,
}

/// What went wrong, first occurrence only per kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub tick: u64,
    pub kind: ViolationKind,
    /// What the CLI prints; its words are part of each seed's output.
    pub description: String,
}

/// A violation found where the tick is not known; the caller stamps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: ViolationKind,
    pub description: String,
}

impl Finding {
    pub fn new(kind: ViolationKind, description: String) -> Self {
        Self { kind, description }
    }

    pub fn at(self, tick: u64) -> Violation {
        Violation {
            tick,
            kind: self.kind,
            description: self.description,
        }
    }
}

#[derive(Debug, Default)]
pub struct Checker {
    membership_by_epoch: BTreeMap<u64, u64>,
    /// Memberships a regroup decided (epoch, members), as opposed to a form.
    decided_by_regroup: BTreeSet<(u64, u64)>,
    /// Last stabilized epoch per (node, incarnation).
    last_epoch: BTreeMap<(u8, u64), u64>,
    pub violations: Vec<Violation>,
}

impl Checker {
    fn violation(&mut self, tick: u64, kind: ViolationKind, description: String) {
        if self.violations.len() < 16 {
            self.violations.push(Violation {
                tick,
                kind,
                description,
            });
        }
    }

    pub fn on_stabilized(
        &mut self,
        tick: u64,
        node: u8,
        incarnation: u64,
        epoch: u64,
        members: u64,
    ) {
        if members & bit(node) == 0 {
            self.violation(
                tick,
                ViolationKind::StabilizedWithoutItself,
                format!("node {node} stabilized epoch {epoch} without itself"),
            );
        }
        match self.membership_by_epoch.get(&epoch) {
            Some(known) if *known != members => {
                let known = *known;
                self.violation(
                    tick,
                    ViolationKind::TwoMembershipsInOneEpoch,
                    format!(
                        "epoch {epoch} stabilized as {known:#b} and as {members:#b} (node {node})"
                    ),
                );
            }
            Some(_) => {}
            None => {
                self.check_succession(tick, epoch, members);
                self.membership_by_epoch.insert(epoch, members);
            }
        }
        let previous = self.last_epoch.insert((node, incarnation), epoch);
        if let Some(previous) = previous {
            if epoch <= previous {
                self.violation(
                    tick,
                    ViolationKind::EpochWentBack,
                    format!("node {node} went from epoch {previous} back to {epoch}"),
                );
            }
        }
    }

    /// A regroup decided `members` as `epoch` (its stabilization is checked for succession).
    pub fn note_decided_by_regroup(&mut self, epoch: u64, members: u64) {
        self.decided_by_regroup.insert((epoch, members));
    }

    /// The first stabilization of a membership a regroup decided descends from the newest
    /// membership that stabilized before it (by epoch), `P`: through decided memberships of
    /// growing epochs, each holding at least half of the one before, from `P` to it. Survival
    /// is judged against every view a participant knows (its stabilized membership and the
    /// newest it acknowledged), and a member of `P` knows `P` until it acknowledges a successor
    /// judged against `P`; a membership with no such line would live beside `P`'s survivors
    /// (ARBITRATION.md §3.4: a member bound to a second membership judged without the first; an
    /// epoch a node only acknowledged taken for the one that stabilized). A form waits out every
    /// lease instead, and is not checked.
    fn check_succession(&mut self, tick: u64, epoch: u64, members: u64) {
        if !self.decided_by_regroup.contains(&(epoch, members)) {
            return;
        }
        let Some((&previous_epoch, &previous)) =
            self.membership_by_epoch.range(..epoch).next_back()
        else {
            return;
        };
        let at_least_half =
            |successor: u64, of: u64| 2 * (successor & of).count_ones() >= of.count_ones();
        let mut line = vec![previous];
        for &(decided_epoch, decided) in self
            .decided_by_regroup
            .range((previous_epoch + 1, 0)..(epoch, 0))
        {
            debug_assert!(decided_epoch > previous_epoch && decided_epoch < epoch);
            if line.iter().any(|before| at_least_half(decided, *before)) {
                line.push(decided);
            }
        }
        if !line.iter().any(|before| at_least_half(members, *before)) {
            self.violation(
                tick,
                ViolationKind::MembershipWithoutSuccession,
                format!(
                    "epoch {epoch} stabilized as {members:#b}, which descends from no half of epoch {previous_epoch} ({previous:#b}), the newest before it, through decided memberships"
                ),
            );
        }
    }

    /// `link_down_since(a, b)`: the tick since which a cannot reach b (None = up).
    pub fn on_decided(
        &mut self,
        tick: u64,
        round_started_tick: u64,
        members: u64,
        knowable_ticks: u64,
        link_down_since: impl Fn(u8, u8) -> Option<u64>,
    ) {
        for a in ids(members) {
            for b in ids(members) {
                if a == b {
                    continue;
                }
                if let Some(since) = link_down_since(a, b) {
                    if since + knowable_ticks <= round_started_tick {
                        self.violation(
                            tick,
 ViolationKind::DecidedMembershipNotConnected,
                            format!(
                                "membership {members:#b} decided with link {a}->{b} down since tick {since} (round began {round_started_tick})"
                            ),
                        );
                    }
                }
            }
        }
    }

    /// Instantaneous checks: `quorum_owners` and `online` per live node.
    pub fn check_instant(&mut self, tick: u64, quorum_owners: &[u8], online: &[(u8, u64)]) {
        if quorum_owners.len() > 1 {
            self.violation(
                tick,
                ViolationKind::TwoQuorumOwners,
                format!("two quorum owners at once: {quorum_owners:?}"),
            );
        }
        let mut seen = 0u64;
        for (node, groups) in online {
            let twice = seen & groups;
            if twice != 0 {
                let holders: Vec<u8> = online
                    .iter()
                    .filter(|(_, g)| g & twice != 0)
                    .map(|(n, _)| *n)
                    .collect();
                self.violation(
                    tick,
                    ViolationKind::GroupOnlineTwice,
                    format!(
                        "group(s) {twice:#b} online on nodes {holders:?} at once (node {node})"
                    ),
                );
            }
            seen |= groups;
        }
    }

    /// `holders`: per resource, the nodes holding its lease now.
    pub fn check_resource_leases(&mut self, tick: u64, holders: &BTreeMap<&str, Vec<u8>>) {
        for (resource, nodes) in holders {
            if nodes.len() > 1 {
                self.violation(
                    tick,
                    ViolationKind::ResourceLeaseHeldTwice,
                    format!("resource lease {resource} held by nodes {nodes:?} at once"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_fires_on_a_bad_history_and_not_on_a_good_one() {
        let mut checker = Checker::default();
        checker.on_stabilized(1, 1, 1, 5, 0b11);
        checker.on_stabilized(2, 2, 1, 5, 0b11);
        checker.check_instant(3, &[1], &[(1, 0b01), (2, 0b10)]);
        checker.on_decided(4, 100, 0b11, 40, |_, _| Some(90));
        assert!(checker.violations.is_empty());
        checker.on_stabilized(5, 3, 1, 5, 0b100);
        checker.on_stabilized(6, 1, 1, 4, 0b1);
        checker.check_instant(7, &[1, 2], &[(1, 0b01), (2, 0b01)]);
        checker.on_decided(8, 100, 0b11, 40, |_, _| Some(10));
        let one = BTreeMap::from([("fs-a", vec![1]), ("fs-b", vec![2])]);
        checker.check_resource_leases(9, &one);
        let two = BTreeMap::from([("fs-a", vec![1, 3])]);
        checker.check_resource_leases(10, &two);
        checker.on_stabilized(11, 2, 2, 6, 0b1);
        let kinds: Vec<ViolationKind> = checker.violations.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [
                ViolationKind::TwoMembershipsInOneEpoch,
                ViolationKind::EpochWentBack,
                ViolationKind::TwoQuorumOwners,
                ViolationKind::GroupOnlineTwice,
                ViolationKind::DecidedMembershipNotConnected,
                ViolationKind::DecidedMembershipNotConnected,
                ViolationKind::ResourceLeaseHeldTwice,
                ViolationKind::StabilizedWithoutItself,
            ],
            "{:?}",
            checker.violations
        );
    }
}
