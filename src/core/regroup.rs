//! Regroup, Tandem style, run by a coordinator (the lowest continuing member heard):
//!
//! 1. **Activate**: every participant (the previous membership plus joiners) broadcasts its
//!    status for round `r`: whom it heard recently, what it holds, whether it owns the quorum.
//! 2. **Closing**: once all statuses are in (or `regroup_activate_ticks` passed) the coordinator
//!    decides whether this side survives: more than half of the previous membership; exactly
//!    half only with the quorum (owned, or won by a challenge now); otherwise `Halt`.
//! 3. **Pruning**: it keeps a fully connected set (both directions heard), greedily from itself.
//! 4. **Cleanup 1**: it sends `Install` (epoch, members, group table, database for joiners);
//!    each member adopts it as the basis of its next survival judgement, and acknowledges.
//! 5. **Cleanup 2**: with every acknowledgement in, `Stabilize`: the membership is stable.
//!
//! A round that does not stabilize within `regroup_round_ticks` is followed by round `r + 1`;
//! a regroup that does not stabilize within `regroup_give_up_ticks` gives up (stop resources,
//! rejoin). A join is a round started by the sponsor (the lowest member) with joiners in it,
//! so the death of the joiner, the sponsor or any member at any phase is just a failed round.

use std::collections::BTreeMap;

use super::database::Database;
use super::message::{Body, Install, RegroupStatus};
use super::node::{Node, Role};
use super::{bit, groups, ids, Event, Mutation};

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
    pub round: u64,
    pub started_tick: u64,
    pub participants: u64,
    pub joiners: u64,
    pub statuses: BTreeMap<u8, RegroupStatus>,
    pub last_status_sent_tick: u64,
    pub phase: Phase,
}

/// The closing decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Survival {
    Survives,
    NeedsQuorum,
    Dies,
}

/// More than half of `previous` survives; exactly half only with the quorum.
pub(crate) fn judge(previous: u64, continuing: u64, quorum_held: bool) -> Survival {
    assert!(previous != 0);
    assert_eq!(continuing & !previous, 0, "only previous members count");
    let total = u64::from(previous.count_ones());
    let alive = u64::from(continuing.count_ones());
    if 2 * alive > total {
        Survival::Survives
    } else if 2 * alive == total {
        if quorum_held {
            Survival::Survives
        } else {
            Survival::NeedsQuorum
        }
    } else {
        Survival::Dies
    }
}

/// A fully connected set containing `coordinator`: candidates are added in order (continuing
/// members first, then joiners, each ascending) when heard both ways by everyone already in.
pub(crate) fn prune(coordinator: u8, heard: &BTreeMap<u8, u64>, members_first: u64) -> u64 {
    assert!(heard.contains_key(&coordinator));
    let connected = |a: u8, b: u8| heard[&a] & bit(b) != 0 && heard[&b] & bit(a) != 0;
    let mut chosen = vec![coordinator];
    let mut order: Vec<u8> = heard
        .keys()
        .copied()
        .filter(|id| members_first & bit(*id) != 0)
        .collect();
    order.extend(
        heard
            .keys()
            .copied()
            .filter(|id| members_first & bit(*id) == 0),
    );
    for candidate in order {
        if candidate != coordinator && chosen.iter().all(|member| connected(*member, candidate)) {
            chosen.push(candidate);
        }
    }
    chosen.iter().fold(0, |set, id| set | bit(*id))
}

impl Node {
    /// Nodes heard recently on any network, this node included.
    pub(super) fn heard(&self) -> u64 {
        let silence = self.timeouts.peer_silence_ticks;
        let mut heard = bit(self.me());
        for peer in ids(self.configured() & !bit(self.me())) {
            if self.peers.alive(peer, self.now_ticks, silence) {
                heard |= bit(peer);
            }
        }
        heard
    }

    fn own_status(&self, round: u64, joiners: u64) -> RegroupStatus {
        let member = self.role == Role::Member;
        RegroupStatus {
            round,
            epoch: if member { self.epoch } else { 0 },
            acked_epoch: self.acked_epoch,
            previous_members: if member { self.basis_members } else { 0 },
            heard: self.heard(),
            joiners,
            online_groups: self.online,
            quorum_owner: self.quorum.owned(self.now_ticks),
        }
    }

    /// Enters round `round` (activate): resets the round state and broadcasts our status.
    pub(super) fn begin_round(&mut self, round: u64, joiners: u64, participants: u64) {
        if self.regroup.is_none() && self.role == Role::Member {
            self.regroup_started_tick = self.now_ticks;
        }
        self.round_max_seen = self.round_max_seen.max(round);
        let joiners = if self.role == Role::Member {
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
            started_tick: self.now_ticks,
            participants,
            joiners,
            statuses,
            last_status_sent_tick: self.now_ticks,
            phase: Phase::Activate,
        });
        self.send_all(participants, &Body::RegroupStatus(status));
    }

    /// Starts a regroup from a stabilized membership (a peer lost, a joiner, a newer view).
    pub(super) fn start_regroup(&mut self) {
        assert_eq!(self.role, Role::Member);
        let round = self.round_max_seen + 1;
        self.begin_round(round, self.joiners_waiting, self.basis_members);
    }

    /// The membership the round is judged against: that of the most recent view among the
    /// statuses (highest acknowledged epoch).
    fn round_basis(round: &Round) -> Option<u64> {
        round
            .statuses
            .values()
            .filter(|status| status.previous_members != 0)
            .max_by_key(|status| status.acked_epoch)
            .map(|status| status.previous_members)
    }

    /// The coordinator of the current round: the lowest member of the round's basis that
    /// sent a status as a member.
    fn coordinator(&self) -> Option<u8> {
        let round = self.regroup.as_ref()?;
        let basis = Self::round_basis(round)?;
        round
            .statuses
            .iter()
            .find(|(id, status)| status.previous_members != 0 && basis & bit(**id) != 0)
            .map(|(id, _)| *id)
    }

    pub(super) fn on_status(&mut self, from: u8, status: RegroupStatus) {
        let stale_accepted = self.config.mutation == Mutation::StaleEpoch;
        let current = self.regroup.as_ref().map(|round| round.round);
        if let Some(current) = current {
            if status.round < current && !stale_accepted {
                self.dropped.stale += 1;
                return;
            }
        }
        let sender_is_member = status.previous_members != 0;
        if self.role != Role::Member {
            // Searching or forming: only an invitation (a member's round listing us) matters.
            if !(sender_is_member && status.joiners & bit(self.me()) != 0) {
                if sender_is_member {
                    self.member_heard();
                }
                self.dropped.unexpected += 1;
                return;
            }
            self.member_heard();
            if self.role == Role::Forming {
                self.abort_forming();
            }
            if current != Some(status.round) {
                self.begin_round(
                    status.round,
                    status.joiners,
                    status.previous_members | status.joiners,
                );
            }
        } else {
            let known = self.basis_members
                | self.members
                | self.regroup.as_ref().map_or(0, |round| round.joiners);
            let acceptable = if sender_is_member {
                known & bit(from) != 0
            } else {
                status.joiners & bit(from) != 0
            };
            if !acceptable {
                self.dropped.unexpected += 1;
                return;
            }
            if current.is_none() || status.round > current.unwrap_or(0) {
                let joiners = self.joiners_waiting | status.joiners;
                self.begin_round(
                    status.round,
                    joiners,
                    self.basis_members | status.previous_members,
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
        let now = self.now_ticks;
        if self.role == Role::Member
            && now >= self.regroup_started_tick + self.timeouts.regroup_give_up_ticks
        {
            self.leave("regroup did not stabilize");
            return;
        }
        // A joiner that acknowledged an install waits longer: the Stabilize may come late
        // (or a heartbeat of the new epoch stands in for it).
        let acked_joiner = self.role != Role::Member && matches!(round.phase, Phase::Acked { .. });
        let round_ticks = self.timeouts.regroup_round_ticks * if acked_joiner { 3 } else { 1 };
        if now >= round.started_tick + round_ticks {
            if self.role == Role::Member {
                self.start_regroup();
            } else {
                self.regroup = None;
            }
            return;
        }
        if round.phase == Phase::Activate
            && now >= round.last_status_sent_tick + self.timeouts.heartbeat_interval_ticks
        {
            let (number, joiners, participants) = (round.round, round.joiners, round.participants);
            let status = self.own_status(number, joiners);
            if let Some(round) = self.regroup.as_mut() {
                round.last_status_sent_tick = now;
                round.statuses.insert(self.config.node_id, status.clone());
            }
            self.send_all(participants, &Body::RegroupStatus(status));
        }
        self.retransmit_install();
        self.finish_install();
        if self.regroup.is_none() {
            return;
        }
        if self.coordinator() == Some(self.me()) {
            self.coordinate();
        }
    }

    /// Cleanup 1 under loss: the coordinator resends its install to members yet to acknowledge
    /// (a member acknowledges a duplicate again).
    fn retransmit_install(&mut self) {
        let now = self.now_ticks;
        let interval = self.timeouts.heartbeat_interval_ticks;
        let Some(round) = self.regroup.as_mut() else {
            return;
        };
        let Phase::AwaitAcks { install, acks } = &round.phase else {
            return;
        };
        if now < round.last_status_sent_tick + interval {
            return;
        }
        round.last_status_sent_tick = now;
        let (install, missing) = (install.clone(), install.members & !*acks);
        self.send_all(missing, &Body::Install(install));
    }

    /// Coordinator: closing and pruning once the statuses are in.
    fn coordinate(&mut self) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let now = self.now_ticks;
        let all_in = ids(round.participants).all(|id| round.statuses.contains_key(&id));
        let activate_over = now >= round.started_tick + self.timeouts.regroup_activate_ticks;
        match round.phase {
            Phase::Activate if all_in || activate_over => {}
            Phase::Closing => {}
            _ => return,
        }
        let basis = Self::round_basis(round).unwrap_or(self.basis_members);
        if basis & bit(self.me()) == 0 {
            // A newer view excludes us: we are not a member any more.
            self.leave("excluded from the membership (newer view in regroup)");
            return;
        }
        let continuing: u64 = round
            .statuses
            .iter()
            .filter(|(id, status)| status.previous_members != 0 && basis & bit(**id) != 0)
            .fold(0, |set, (id, _)| set | bit(*id));
        let joiners: u64 = round
            .statuses
            .iter()
            .filter(|(id, status)| status.previous_members == 0 && round.joiners & bit(**id) != 0)
            .fold(0, |set, (id, _)| set | bit(*id));
        let heard: BTreeMap<u8, u64> = round
            .statuses
            .iter()
            .filter(|(id, _)| (continuing | joiners) & bit(**id) != 0)
            .map(|(id, status)| (*id, status.heard))
            .collect();
        let survivors = if self.config.mutation == Mutation::NoPrune {
            continuing | joiners
        } else {
            prune(self.me(), &heard, continuing)
        };
        let quorum_held = self.quorum.owned(now)
            || round
                .statuses
                .iter()
                .any(|(id, status)| survivors & bit(*id) != 0 && status.quorum_owner);
        let started_tick = round.started_tick;
        let verdict = if self.config.mutation == Mutation::NoMajorityRule {
            Survival::Survives
        } else {
            judge(basis, survivors & continuing, quorum_held)
        };
        match verdict {
            Survival::Survives => self.propose(survivors, basis),
            Survival::NeedsQuorum => {
                let lost = self
                    .quorum
                    .outcome
                    .is_some_and(|outcome| !outcome.won && outcome.tick >= started_tick);
                if lost {
                    self.halt(survivors);
                } else if let Some(round) = self.regroup.as_mut() {
                    round.phase = Phase::Closing;
                }
            }
            Survival::Dies => self.halt(survivors),
        }
    }

    fn halt(&mut self, survivors: u64) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let body = Body::Halt { round: round.round };
        let participants = round.participants;
        self.send_all(participants | survivors, &body);
        self.leave("partition does not survive");
    }

    fn propose(&mut self, survivors: u64, basis: u64) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let epoch_floor = round
            .statuses
            .values()
            .map(|status| status.epoch.max(status.acked_epoch))
            .max()
            .unwrap_or(0);
        let epoch = epoch_floor.max(self.acked_epoch).max(self.epoch) + 1;
        let mut online_by_node = vec![0u64; 64];
        for (id, status) in &round.statuses {
            online_by_node[usize::from(*id - 1)] = status.online_groups;
        }
        let table = groups::reassign(&self.table, self.configured(), survivors, &online_by_node);
        let install = Install {
            round: round.round,
            epoch,
            members: survivors,
            previous_members: basis,
            groups: table,
            database_version: self.database.version(),
            database: self.database.snapshot(),
        };
        let round_started_ms = round.started_tick * super::timeout::TICK_MS;
        self.emit(Event::Decided {
            round: install.round,
            epoch,
            members: survivors,
            round_started_ms,
        });
        self.acked_epoch = epoch;
        self.basis_members = survivors;
        self.send_all(survivors, &Body::Install(install.clone()));
        if let Some(round) = self.regroup.as_mut() {
            round.phase = Phase::AwaitAcks {
                install,
                acks: bit(self.config.node_id),
            };
        }
        self.finish_install();
    }

    pub(super) fn on_install(&mut self, from: u8, install: Install) {
        let fresh =
            install.epoch > self.acked_epoch || self.config.mutation == Mutation::StaleEpoch;
        let duplicate = matches!(
            self.regroup.as_ref().map(|round| &round.phase),
            Some(Phase::Acked { install: acked, coordinator }) if *acked == install && *coordinator == from
        );
        let addressed = install.members & bit(self.me()) != 0 && install.members & bit(from) != 0;
        if !addressed || install.groups.len() != 64 {
            self.dropped.unexpected += 1;
            return;
        }
        if !fresh && !duplicate {
            self.dropped.stale += 1;
            return;
        }
        if self.regroup.is_none() {
            // An install for a round we never joined (we are not a participant): ignore.
            self.dropped.unexpected += 1;
            return;
        }
        self.acked_epoch = self.acked_epoch.max(install.epoch);
        if self.role == Role::Member {
            // Cleanup 1: from now on our survival is judged against the new membership.
            self.basis_members = install.members;
        }
        self.round_max_seen = self.round_max_seen.max(install.round);
        self.send(
            from,
            &Body::InstallAck {
                round: install.round,
                epoch: install.epoch,
            },
        );
        if let Some(round) = self.regroup.as_mut() {
            round.round = round.round.max(install.round);
            round.phase = Phase::Acked {
                install,
                coordinator: from,
            };
        }
    }

    pub(super) fn on_install_ack(&mut self, from: u8, round_number: u64, epoch: u64) {
        let Some(round) = self.regroup.as_mut() else {
            self.dropped.stale += 1;
            return;
        };
        let Phase::AwaitAcks { install, acks } = &mut round.phase else {
            self.dropped.stale += 1;
            return;
        };
        if install.round != round_number
            || install.epoch != epoch
            || install.members & bit(from) == 0
        {
            self.dropped.stale += 1;
            return;
        }
        *acks |= bit(from);
        self.finish_install();
    }

    /// Cleanup 2, coordinator: every acknowledgement in and the epoch durable in our slot.
    fn finish_install(&mut self) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let Phase::AwaitAcks { install, acks } = &round.phase else {
            return;
        };
        if *acks != install.members {
            return;
        }
        if self.own_lease.durable_epoch < install.epoch {
            if !self.own_lease.slot_write_in_flight {
                self.last_renew_tick = None;
            }
            return;
        }
        let install = install.clone();
        self.send_all(
            install.members,
            &Body::Stabilize {
                round: install.round,
                epoch: install.epoch,
            },
        );
        self.stabilize(install);
    }

    pub(super) fn on_stabilize(&mut self, from: u8, round_number: u64, epoch: u64) {
        let acked = match self.regroup.as_ref().map(|round| &round.phase) {
            Some(Phase::Acked {
                install,
                coordinator,
            }) if install.epoch == epoch
                && install.round == round_number
                && *coordinator == from =>
            {
                Some(install.clone())
            }
            _ => None,
        };
        match acked {
            Some(install) => self.stabilize(install),
            None => self.dropped.stale += 1,
        }
    }

    pub(super) fn on_halt(&mut self, from: u8, round_number: u64) {
        let matches_round = self
            .regroup
            .as_ref()
            .is_some_and(|round| round.round == round_number);
        if matches_round && self.basis_members & bit(from) != 0 && self.role == Role::Member {
            self.leave("partition does not survive (halt)");
        } else if matches_round {
            self.regroup = None;
        } else {
            self.dropped.stale += 1;
        }
    }

    /// Cleanup 2 done: the membership of `install` is this node's stable view.
    pub(super) fn stabilize(&mut self, install: Install) {
        let was_member = self.role == Role::Member;
        if self.config.mutation != Mutation::StaleEpoch && was_member {
            assert!(install.epoch > self.epoch, "epochs only grow");
        }
        if !was_member {
            // The joiner receives the cluster database as it stands.
            self.database
                .install(install.database_version, install.database.clone());
            self.became_member();
        }
        self.role = Role::Member;
        self.stabilized = true;
        self.epoch = install.epoch;
        self.acked_epoch = self.acked_epoch.max(install.epoch);
        self.members = install.members;
        self.basis_members = install.members;
        self.table = install.groups;
        self.regroup = None;
        self.joiners_waiting &= !install.members;
        for member in ids(install.members & !bit(self.me())) {
            self.peers.grant_window(member, self.now_ticks);
            self.observations.remove(&member);
        }
        self.emit(Event::Stabilized {
            epoch: install.epoch,
            members: install.members,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_survives_half_needs_quorum_minority_dies() {
        assert_eq!(judge(0b111, 0b011, false), Survival::Survives);
        assert_eq!(judge(0b1111, 0b0011, false), Survival::NeedsQuorum);
        assert_eq!(judge(0b1111, 0b0011, true), Survival::Survives);
        assert_eq!(judge(0b111, 0b001, true), Survival::Dies);
        assert_eq!(judge(0b1, 0b1, false), Survival::Survives);
    }

    #[test]
    fn prune_keeps_a_fully_connected_set_only() {
        // 1 hears 2 and 3; 2 and 3 do not hear each other: one of them is pruned.
        let mut heard = BTreeMap::new();
        heard.insert(1, 0b111);
        heard.insert(2, 0b011);
        heard.insert(3, 0b101);
        assert_eq!(prune(1, &heard, 0b111), 0b011);
        // One-way: 3 hears 1 but 1 does not hear 3.
        heard.insert(1, 0b011);
        heard.insert(3, 0b111);
        heard.insert(2, 0b111);
        assert_eq!(prune(1, &heard, 0b111), 0b011);
    }
}
