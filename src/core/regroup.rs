//! Regroup, Tandem style, run by a coordinator (the lowest continuing member heard):
//!
//! 1. **Activate**: every participant (the previous membership plus joiners) broadcasts its
//!    status for round `r`: its stabilized and acknowledged memberships, whom it heard recently
//!    on any network, what it holds, whether it owns the quorum.
//! 2. **Closing**: once every status is in and each reports hearing every sender (or after
//!    `regroup_activate_ticks`), the coordinator decides whether this side survives
//!    (`survival.rs`): more than half of the newest stabilized membership reported, and of every
//!    newer acknowledged one; exactly half only with the quorum (owned, or won by a challenge
//!    that may span several rounds); otherwise `Halt` and everyone leaves.
//! 3. **Pruning**: it keeps a fully connected set (both directions heard), greedily from itself.
//! 4. **Cleanup 1** (`regroup/install.rs`): it sends `Install` (epoch, members, group table, database for
//!    joiners); each member adopts it as the basis of its next survival judgement, makes the
//!    epoch durable in its slot, and acknowledges.
//! 5. **Cleanup 2**: with every acknowledgement in and the epoch durable, `Stabilize`.
//!
//! A round that does not stabilize within `regroup_round_ticks` is followed by round `r + 1`;
//! a regroup that does not stabilize within `regroup_give_up_ticks` gives up (stop resources,
//! rejoin). A join is a round started by the sponsor (the lowest member) with joiners in it,
//! so the death of the joiner, the sponsor or any member at any phase is just a failed round,
//! and concurrent joiners are simply several joiners in one round.

use std::collections::BTreeMap;

use super::message::{Body, Install, RegroupStatus};
use super::node::{Node, Role};
use super::survival::{judge_all, prune, Survival};
use super::{bit, ids, Mutation};
use crate::core::Dropped;

// Cleanup 1 and 2 (the install phase of a round) live in their own file but see `Round` whole.
mod install;

/// Where a round stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Activate,
    /// Coordinator: this side survives only with the quorum, being arbitrated.
    Closing,
    /// Coordinator: install sent, waiting for every member's acknowledgement.
    AwaitAcks {
        install: Install,
        acks: u64,
    },
    /// Member: install acknowledged, waiting for `Stabilize`.
    Acked {
        install: Install,
        coordinator: u8,
    },
}

/// One regroup round as this node sees it.
#[derive(Clone, Debug)]
pub(crate) struct Round {
    round: u64,
    started_tick: u64,
    participants: u64,
    joiners: u64,
    statuses: BTreeMap<u8, RegroupStatus>,
    last_status_sent_tick: u64,
    phase: Phase,
}

impl Round {
    /// The install this member acknowledged, waiting for its `Stabilize` (`None` in any other
    /// phase).
    pub(super) fn acked_install(&self) -> Option<&Install> {
        match &self.phase {
            Phase::Acked { install, .. } => Some(install),
            _ => None,
        }
    }

    /// True while this coordinator waits for its install's acknowledgements.
    pub(super) fn awaiting_acks(&self) -> bool {
        matches!(self.phase, Phase::AwaitAcks { .. })
    }

    /// A joiner asking during Activate joins this round; later it waits for the next one.
    pub(super) fn admit_joiner(&mut self, joiner: u8) {
        if self.phase == Phase::Activate {
            self.joiners |= bit(joiner);
            self.participants |= bit(joiner);
        }
    }
}

/// What lasts across the rounds of this node's regroups (the current round is `Node::regroup`).
#[derive(Clone, Debug, Default)]
pub(super) struct Regroups {
    /// When the current regroup began (its first round, from a stabilized membership).
    started_tick: u64,
    /// This regroup's survival hangs on the quorum: challenge until it ends.
    needs_quorum: bool,
    /// The highest round number seen: a new round is numbered above it.
    round_max_seen: u64,
    /// Joiners waiting for the next round (sponsor only).
    joiners_waiting: u64,
}

impl Regroups {
    /// This regroup's survival hangs on the quorum (`wants_quorum` keeps challenging).
    pub(super) fn needs_quorum(&self) -> bool {
        self.needs_quorum
    }

    /// A round numbered `round` was seen (an install of it).
    pub(super) fn round_seen(&mut self, round: u64) {
        self.round_max_seen = self.round_max_seen.max(round);
    }

    /// `joiner` asked to join: it goes into the next round.
    pub(super) fn joiner_waits(&mut self, joiner: u8) {
        self.joiners_waiting |= bit(joiner);
    }

    /// `members` are in a membership now: none of them waits to join any more.
    pub(super) fn joined(&mut self, members: u64) {
        self.joiners_waiting &= !members;
    }

    /// Left the membership: no joiner waits for us.
    pub(super) fn forget_joiners(&mut self) {
        self.joiners_waiting = 0;
    }
}

impl Node {
    /// Nodes heard recently on any network, this node included.
    pub(super) fn heard(&self) -> u64 {
        let silence = self.timeouts().peer_silence_ticks;
        let mut heard = bit(self.me());
        for peer in ids(self.configured() & !bit(self.me())) {
            if self.peers.alive(peer, self.now(), silence) {
                heard |= bit(peer);
            }
        }
        heard
    }

    fn own_status(&self, round: u64, joiners: u64) -> RegroupStatus {
        let member = self.membership.role() == Role::Member;
        RegroupStatus {
            round,
            epoch: if member { self.membership.epoch() } else { 0 },
            members: if member { self.membership.members() } else { 0 },
            acked_epoch: self.membership.acked_epoch(),
            acked_members: if member {
                self.membership.basis_members()
            } else {
                0
            },
            heard: self.heard(),
            joiners,
            online_groups: self.holding(),
            refusing: self.refusing(),
            quorum_owner: self.quorum_supports_survival(),
        }
    }

    /// Enters round `round` (activate): resets the round state and broadcasts our status.
    pub(super) fn begin_round(&mut self, round: u64, joiners: u64, participants: u64) {
        if self.regroup.is_none() && self.membership.role() == Role::Member {
            self.regroups.started_tick = self.now();
            self.regroups.needs_quorum = false;
        }
        self.regroups.round_seen(round);
        let joiners = if self.membership.role() == Role::Member {
            joiners
        } else {
            joiners | bit(self.me())
        };
        let participants = participants | joiners | bit(self.me());
        let status = self.own_status(round, joiners);
        let mut statuses = BTreeMap::new();
        statuses.insert(self.me(), status.clone());
        self.regroup = Some(Round {
            round,
            started_tick: self.now(),
            participants,
            joiners,
            statuses,
            last_status_sent_tick: self.now(),
            phase: Phase::Activate,
        });
        self.send_all(participants, &Body::RegroupStatus(status));
    }

    /// Starts a regroup from a stabilized membership (a peer lost, a joiner, a newer view).
    pub(super) fn start_regroup(&mut self) {
        assert_eq!(self.membership.role(), Role::Member);
        let round = self.regroups.round_max_seen + 1;
        self.begin_round(
            round,
            self.regroups.joiners_waiting,
            self.membership.basis_members(),
        );
    }

    /// The views the round must satisfy: the newest stabilized membership among the
    /// statuses, plus every newer acknowledged (possibly stabilized elsewhere) membership.
    /// The epoch of the newest stabilized membership among the round's statuses (0: none).
    pub(super) fn round_newest_epoch(round: &Round) -> u64 {
        round
            .statuses
            .values()
            .filter(|status| status.members != 0)
            .map(|status| status.epoch)
            .max()
            .unwrap_or(0)
    }

    pub(super) fn round_views(round: &Round) -> Vec<u64> {
        let newest = round
            .statuses
            .values()
            .filter(|status| status.members != 0)
            .max_by_key(|status| status.epoch);
        let Some(newest) = newest else {
            return Vec::new();
        };
        let mut views = vec![newest.members];
        for status in round.statuses.values() {
            let newer = status.acked_epoch > newest.epoch && status.acked_members != 0;
            if newer && !views.contains(&status.acked_members) {
                views.push(status.acked_members);
            }
        }
        views
    }

    /// The coordinator of the current round: the lowest node that sent a status as a member
    /// of one of the round's views.
    fn coordinator(&self) -> Option<u8> {
        let round = self.regroup.as_ref()?;
        let in_views = Self::round_views(round)
            .iter()
            .fold(0, |set, view| set | view);
        round
            .statuses
            .iter()
            .find(|(id, status)| status.members != 0 && in_views & bit(**id) != 0)
            .map(|(id, _)| *id)
    }

    pub(super) fn on_status(&mut self, from: u8, status: RegroupStatus) {
        // A member reports the epoch we acknowledged as stabilized: our Stabilize is late or
        // lost. Stabilize first, as on such a heartbeat. A joiner that entered the sender's next
        // round still a joiner would not count as continuing, and the membership it belongs to
        // could fail the survival rule (simulator seed 22452: a fresh membership admitting ten
        // nodes died four times over, as late statuses of left-out joiners started the next
        // round before most of the new members had the Stabilize).
        let acked = match self.regroup.as_ref().map(|round| &round.phase) {
            Some(Phase::Acked { install, .. })
                if status.members != 0
                    && status.epoch == install.epoch
                    && status.members == install.members
                    && install.members & bit(from) != 0 =>
            {
                Some(install.clone())
            }
            _ => None,
        };
        if let Some(install) = acked {
            self.stabilize(install);
        }
        let stale_accepted = self.config().mutation == Mutation::StaleEpoch;
        let current = self.regroup.as_ref().map(|round| round.round);
        if let Some(current) = current {
            if status.round < current && !stale_accepted {
                self.count_drop(Dropped::Stale);
                return;
            }
        }
        let sender_is_member = status.members != 0;
        if self.membership.role() != Role::Member {
            // Searching or forming: only an invitation (a member's round listing us) matters.
            if !(sender_is_member && status.joiners & bit(self.me()) != 0) {
                if sender_is_member {
                    self.member_heard();
                }
                self.count_drop(Dropped::Unexpected);
                return;
            }
            self.member_heard();
            if self.membership.role() == Role::Forming {
                self.abort_forming();
            }
            if current != Some(status.round) {
                self.begin_round(
                    status.round,
                    status.joiners,
                    status.members | status.acked_members | status.joiners,
                );
            }
        } else {
            let known = self.membership.basis_members()
                | self.membership.members()
                | self.regroup.as_ref().map_or(0, |round| round.joiners);
            let acceptable = if sender_is_member {
                known & bit(from) != 0
            } else {
                status.joiners & bit(from) != 0
            };
            if !acceptable {
                self.count_drop(Dropped::Unexpected);
                return;
            }
            if current.is_none()
                && sender_is_member
                && status.epoch < self.membership.epoch()
                && !stale_accepted
            {
                // Sent before our last stabilization (a late duplicate of a finished round),
                // or by a member behind us, which our heartbeats will bring forward.
                self.count_drop(Dropped::Stale);
                return;
            }
            // A joiner's status from a member of our membership was sent before it joined: a
            // late datagram of a finished round. Counted as current, it would start a round
            // that decides at once from it, blind to the groups the sender took since as a
            // member (simulator seed 13363 --nodes 2: node 1 gave node 2's group back to itself
            // while node 2 ran it). A member that really left asks to join again, which starts
            // a fresh round (`on_join_request`); a restarted one is judged lost first.
            let late_joiner = current.is_none()
                && !sender_is_member
                && self.membership.members() & bit(from) != 0
                && self.config().mutation != Mutation::LateJoinerStatusCounts;
            if late_joiner && !stale_accepted {
                self.count_drop(Dropped::Stale);
                return;
            }
            if current.is_none() || status.round > current.unwrap_or(0) {
                let joiners = self.regroups.joiners_waiting | status.joiners;
                // A fresh regroup in our epoch: join it, with a round number no one used yet.
                let round = if current.is_none() {
                    status.round.max(self.regroups.round_max_seen + 1)
                } else {
                    status.round
                };
                self.begin_round(
                    round,
                    joiners,
                    self.membership.basis_members()
                        | self.membership.members()
                        | status.members
                        | status.acked_members,
                );
            }
        }
        let Some(round) = self.regroup.as_mut() else {
            return;
        };
        round.joiners |= status.joiners;
        if !sender_is_member {
            round.joiners |= bit(from);
        }
        round.participants |= round.joiners | bit(from);
        round.statuses.insert(from, status);
    }

    /// Timers of the current round: rebroadcast, close, next round, give up.
    pub(super) fn regroup_tick(&mut self) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let now = self.now();
        if self.membership.role() == Role::Member
            && now >= self.regroups.started_tick + self.timeouts().regroup_give_up_ticks
        {
            self.leave("regroup did not stabilize");
            return;
        }
        // A joiner that acknowledged an install waits longer: the Stabilize may come late
        // (or a heartbeat of the new epoch stands in for it).
        let acked_joiner =
            self.membership.role() != Role::Member && matches!(round.phase, Phase::Acked { .. });
        let round_ticks = self.timeouts().regroup_round_ticks * if acked_joiner { 3 } else { 1 };
        // A coordinator whose install every member acknowledged waits only for its epoch to be
        // durable (a membership of one: confirmed in the quorum record it owns, ~C). A new round
        // would decide again and restart that wait: the survivor of two, whose challenge takes
        // most of a round, lost up to a confirmation window to it. The give-up timer still runs.
        let only_durability_left = match &round.phase {
            Phase::AwaitAcks { install, acks } => {
                *acks == install.members
                    && (install.members != bit(self.me()) || self.quorum.owned(now))
            }
            _ => false,
        };
        if now >= round.started_tick + round_ticks && !only_durability_left {
            if self.membership.role() == Role::Member {
                self.start_regroup();
            } else {
                self.regroup = None;
            }
            return;
        }
        if round.phase == Phase::Activate {
            let (number, joiners, participants) = (round.round, round.joiners, round.participants);
            let status = self.own_status(number, joiners);
            // Resend on every heartbeat interval, and at once when we hear someone new: the
            // coordinator closes only when every status reports hearing every sender, so a
            // joiner's first status (sent before it heard the members) would otherwise hold the
            // round for a whole interval. At most one extra send per peer per round.
            let heard_changed = round
                .statuses
                .get(&self.config().node_id)
                .is_none_or(|last| last.heard != status.heard);
            let interval_over =
                now >= round.last_status_sent_tick + self.timeouts().heartbeat_interval_ticks;
            if heard_changed || interval_over {
                let me = self.me();
                if let Some(round) = self.regroup.as_mut() {
                    round.last_status_sent_tick = now;
                    round.statuses.insert(me, status.clone());
                }
                self.send_all(participants, &Body::RegroupStatus(status));
            }
        }
        self.retransmit_install();
        self.quorum_holder_tick();
        self.finish_install();
        if self.regroup.is_none() {
            return;
        }
        if self.coordinator() == Some(self.me()) {
            self.coordinate();
        }
    }

    /// Coordinator: closing and pruning once the statuses are in.
    fn coordinate(&mut self) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let now = self.now();
        // Close early only once the status of every participant we can still hear is in and
        // every status reports hearing every other sender (a joiner's first status predates
        // hearing the members). A participant silent to us on every network is not waited for:
        // it cannot be fully connected with us, so its status could not change the decision,
        // and waiting for it cost a fixed half silence window in every failure regroup.
        let silence_ticks = self.timeouts().peer_silence_ticks;
        let me = self.me();
        let awaited = ids(round.participants)
            .filter(|&id| id == me || self.peers.alive_or_fresh(id, now, silence_ticks));
        let senders = round.statuses.keys().fold(0u64, |set, id| set | bit(*id));
        let all_in = awaited
            .into_iter()
            .all(|id| round.statuses.contains_key(&id))
            && round
                .statuses
                .values()
                .all(|status| status.heard & senders == senders);
        let activate_over = now >= round.started_tick + self.timeouts().regroup_activate_ticks;
        match round.phase {
            Phase::Activate if all_in || activate_over => {}
            Phase::Closing => {}
            _ => return,
        }
        let views = Self::round_views(round);
        let in_views = views.iter().fold(0, |set, view| set | view);
        if in_views & bit(self.me()) == 0 {
            // Newer views exclude us: we are not a member any more.
            self.leave("excluded from the membership (newer view in regroup)");
            return;
        }
        let basis = views[0];
        let continuing: u64 = round
            .statuses
            .iter()
            .filter(|(id, status)| status.members != 0 && in_views & bit(**id) != 0)
            .fold(0, |set, (id, _)| set | bit(*id));
        let joiners: u64 = round
            .statuses
            .iter()
            .filter(|(id, status)| status.members == 0 && round.joiners & bit(**id) != 0)
            .fold(0, |set, (id, _)| set | bit(*id));
        let heard: BTreeMap<u8, u64> = round
            .statuses
            .iter()
            .filter(|(id, _)| (continuing | joiners) & bit(**id) != 0)
            .map(|(id, status)| (*id, status.heard))
            .collect();
        let survivors = if self.config().mutation == Mutation::NoPrune {
            continuing | joiners
        } else {
            prune(self.me(), &heard, continuing)
        };
        let quorum_held = self.quorum_supports_survival()
            || round
                .statuses
                .iter()
                .any(|(id, status)| survivors & bit(*id) != 0 && status.quorum_owner);
        let regroup_started_tick = self.regroups.started_tick;
        let verdict = if self.config().mutation == Mutation::NoMajorityRule {
            Survival::Survives
        } else {
            judge_all(&views, survivors & continuing, quorum_held)
        };
        // Exactly half survives only by the quorum: the new epoch must then be in the quorum
        // record before anyone stabilizes it, or a later owner from the other half would not
        // know its half is stale (§3.3; simulator seed 116273).
        let relied_on_quorum = verdict == Survival::Survives
            && self.config().mutation != Mutation::NoMajorityRule
            && self.config().mutation != Mutation::HalfWithoutQuorumEpoch
            && judge_all(&views, survivors & continuing, false) != Survival::Survives;
        let quorum_holder = match relied_on_quorum {
            false => 0,
            true if self.quorum_supports_survival() => self.me(),
            true => round
                .statuses
                .iter()
                .find(|(id, status)| survivors & bit(**id) != 0 && status.quorum_owner)
                .map_or(0, |(id, _)| *id),
        };
        match verdict {
            Survival::Survives => self.propose(survivors, basis, quorum_holder),
            Survival::NeedsQuorum => {
                let lost = self.quorum.lost_challenge_since(regroup_started_tick);
                if lost || self.quorum_record_is_newer_than_our_views() {
                    self.halt(survivors);
                } else if let Some(round) = self.regroup.as_mut() {
                    round.phase = Phase::Closing;
                    // The challenge outlasts a round (it takes a lease expiry): keep it going
                    // across rounds until this regroup ends.
                    self.regroups.needs_quorum = true;
                }
            }
            Survival::Dies => self.halt(survivors),
        }
    }
}

impl Node {
    /// The newest membership epoch this node knows: its stabilized one or a newer one it
    /// acknowledged.
    fn newest_known_epoch(&self) -> u64 {
        self.membership.epoch().max(self.membership.acked_epoch())
    }

    /// Whether the quorum record names an epoch newer than every view we know: a membership
    /// newer than ours held the quorum, so it succeeded ours (the joint survival rule held for
    /// it), and our side is a stale partition. Such a side must not survive by the quorum, even
    /// after the newer membership let the lease lapse (simulator seed 12450 with a regroup
    /// timing variant: a node cut off since epoch 2 won the lapsed lease and stabilized alone).
    ///
    /// An epoch we only acknowledged (or proposed) and never saw stabilize is no view of ours:
    /// two coordinators may decide one epoch number for different memberships, and only one
    /// stabilizes. A record naming that number may be the other one's (simulator seed 49136876:
    /// node 3 proposed {3,6,8} as epoch 5 while {1,8} stabilized epoch 5 by the quorum; later,
    /// holding the record that named epoch 5, node 3 let {3,6} live as half of {1,3,6,8}).
    fn quorum_record_is_newer_than_our_views(&self) -> bool {
        let seen = self.quorum.owner_epoch_seen();
        let unstabilized_acknowledged = self.membership.acked_epoch() > self.membership.epoch();
        let rule_broken = matches!(
            self.config().mutation,
            Mutation::StaleEpoch | Mutation::AcknowledgedEpochIsAView
        );
        if unstabilized_acknowledged && !rule_broken {
            seen > self.membership.epoch() && seen >= self.membership.acked_epoch()
        } else {
            seen > self.newest_known_epoch()
        }
    }

    /// Holding the quorum counts toward survival only if no newer membership held it.
    fn quorum_supports_survival(&self) -> bool {
        self.quorum.owned(self.now()) && !self.quorum_record_is_newer_than_our_views()
    }
}
