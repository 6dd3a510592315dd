//! Regroup, pruning to cleanup 2: the coordinator's proposal (`Install`), every member's
//! acknowledgement (cleanup 1: the proposal becomes the basis of its next survival judgement),
//! and `Stabilize` (cleanup 2). The coordinator stabilizes only once the new epoch is durable
//! on disk (its slot, and the quorum record if it owns it), so a later former never reuses it.

use super::Phase;
use crate::core::message::{Body, Install};
use crate::core::node::{Node, Role};
use crate::core::Dropped;
use crate::core::{bit, groups, ids, Event, Mutation};

impl Node {
    /// The epoch a proposal now would carry: above every epoch this node has seen in the
    /// round's statuses, its own, the quorum record and the slots. A watcher's claim of the
    /// quorum carries it too, so the read that confirms the claim confirms the epoch.
    pub(in crate::core) fn next_epoch(&self) -> u64 {
        let epoch_floor = self
            .regroup
            .iter()
            .flat_map(|round| round.statuses.values())
            .map(|status| status.epoch.max(status.acked_epoch))
            .max()
            .unwrap_or(0);
        // The quorum record carries the owner's epoch: after a tie won by challenge, the lost
        // side's last epoch is there even if none of its members is heard.
        epoch_floor
            .max(self.membership.acked_epoch())
            .max(self.membership.epoch())
            .max(self.quorum.owner_epoch_seen())
            .max(self.observer.epoch_seen_on_disk())
            + 1
    }

    pub(in crate::core) fn propose(&mut self, survivors: u64, basis: u64, quorum_holder: u8) {
        let epoch = self.next_epoch();
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let mut holding_by_node = vec![0u64; 64];
        let mut refusing_by_node = vec![0u64; 64];
        for (id, status) in &round.statuses {
            holding_by_node[usize::from(*id - 1)] = status.online_groups;
            refusing_by_node[usize::from(*id - 1)] = status.refusing;
        }
        let views = Self::round_views(round);
        let judged_epoch = Self::round_newest_epoch(round);
        let outsiders = views.iter().fold(0u64, |set, view| set | view) & !survivors;
        let facts = groups::Facts {
            members: survivors,
            holding_by_node: &holding_by_node,
            refusing_by_node: &refusing_by_node,
            outsiders,
            local_hour: self.placement.local_hour(),
            wall_s: self.placement.wall_s(),
            catalog_known: self.gum.valid(),
            hand_back_held_alone: self.config().mutation == Mutation::HandBackHeldAlone,
        };
        let table = groups::reassign(self.placement.table(), self.placement.policies(), &facts);
        let install = Install {
            round: round.round,
            epoch,
            members: survivors,
            previous_members: basis,
            quorum_holder,
            judged_epoch,
            judged_views: views,
            groups: table,
        };
        let round_started_ms = round.started_tick * crate::core::timeout::TICK_MS;
        self.emit(Event::Decided {
            round: install.round,
            epoch,
            members: survivors,
            basis,
            round_started_ms,
        });
        self.membership.acknowledge_own_install(epoch, survivors);
        self.send_all(survivors, &Body::Install(install.clone()));
        let me = self.me();
        if let Some(round) = self.regroup.as_mut() {
            round.phase = Phase::AwaitAcks {
                install,
                acks: bit(me),
            };
        }
        self.finish_install();
    }

    pub(in crate::core) fn halt(&mut self, survivors: u64) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let body = Body::Halt { round: round.round };
        let participants = round.participants;
        self.send_all(participants | survivors, &body);
        self.leave("partition does not survive");
    }

    pub(in crate::core) fn on_install(&mut self, from: u8, install: Install) {
        if self.own_lease.fenced_at_or_after(install.epoch) {
            // A membership no newer than one that fenced us (`OwnLease::fenced_by_epoch`).
            self.count_drop(Dropped::Stale);
            return;
        }
        let fresh = install.epoch > self.membership.acked_epoch()
            || self.config().mutation == Mutation::StaleEpoch;
        let duplicate = matches!(
            self.regroup.as_ref().map(|round| &round.phase),
            Some(Phase::Acked { install: acked, coordinator }) if *acked == install && *coordinator == from
        );
        let addressed = install.members & bit(self.me()) != 0 && install.members & bit(from) != 0;
        if !addressed || install.groups.len() != 64 {
            self.count_drop(Dropped::Unexpected);
            return;
        }
        if !fresh && !duplicate {
            self.count_drop(Dropped::Stale);
            return;
        }
        // We adopted a membership newer than any the coordinator judged survival against: it
        // decided from a status we sent before, and its members may now overlap another live
        // membership through us (simulator seed 775: node 4 acknowledged {2,3,4}, then node 1's
        // {1,4}, judged against {1,2,3,4} alone).
        let decided_without_us = self.membership.role() == Role::Member
            && self.membership.acked_epoch() > install.judged_epoch
            && !install
                .judged_views
                .contains(&self.membership.basis_members());
        let rule_broken = matches!(
            self.config().mutation,
            Mutation::StaleEpoch | Mutation::InstallIgnoresJudgedViews
        );
        if decided_without_us && !duplicate && !rule_broken {
            self.count_drop(Dropped::Stale);
            return;
        }
        if self.regroup.is_none() {
            // An install for a round we never joined (we are not a participant): ignore.
            self.count_drop(Dropped::Unexpected);
            return;
        }
        // Members of the acknowledged membership may hold groups again: confirmations of
        // them stopping (from when they were lost) no longer hold.
        for member in ids(install.members & !bit(self.me())) {
            self.observer.forget(member);
        }
        self.membership.acknowledge_epoch(install.epoch);
        if self.membership.role() == Role::Member {
            self.membership.judge_survival_against(install.members);
        }
        self.regroups.round_seen(install.round);
        if let Some(round) = self.regroup.as_mut() {
            round.round = round.round.max(install.round);
            round.phase = Phase::Acked {
                install,
                coordinator: from,
            };
        }
        self.acknowledge_when_durable();
    }

    /// Cleanup 1, member side: acknowledge once the new epoch is in our slot, so that when the
    /// coordinator stabilizes, every member's slot holds the epoch (one torn slot cannot make
    /// a later former reuse it). A retransmitted install is acknowledged again.
    pub(in crate::core) fn acknowledge_when_durable(&mut self) {
        let Some(Phase::Acked {
            install,
            coordinator,
        }) = self.regroup.as_ref().map(|round| &round.phase)
        else {
            return;
        };
        let (round, epoch, coordinator) = (install.round, install.epoch, *coordinator);
        let holder = install.quorum_holder == self.me();
        if !self.own_lease.slot_holds_epoch(epoch) {
            self.own_lease.schedule_slot_write();
            return;
        }
        if holder && !self.quorum_confirms(epoch) {
            return;
        }
        self.send(coordinator, &Body::InstallAck { round, epoch });
    }

    /// True once `epoch` is confirmed in the quorum record under our ownership; until then,
    /// drives the confirmation (a renewal carrying it, then the confirming read). A holder that
    /// no longer owns never confirms: the round stalls and a new one judges again.
    pub(in crate::core) fn quorum_confirms(&mut self, epoch: u64) -> bool {
        if self.quorum_record_confirms(epoch) {
            return true;
        }
        self.confirm_quorum_epoch(epoch);
        false
    }

    /// The epoch of the install we adopted as its quorum holder, if any.
    fn held_install_epoch(&self) -> Option<u64> {
        match self.regroup.as_ref().map(|round| &round.phase) {
            Some(Phase::Acked { install, .. }) if install.quorum_holder == self.me() => {
                Some(install.epoch)
            }
            _ => None,
        }
    }

    /// Every tick of a round: the quorum holder of an install it adopted drives the record's
    /// confirmation of its epoch until it holds.
    pub(in crate::core) fn quorum_holder_tick(&mut self) {
        if self
            .held_install_epoch()
            .is_some_and(|epoch| !self.quorum_record_confirms(epoch))
        {
            self.acknowledge_when_durable();
        }
    }

    /// A quorum read completed: if it confirmed the epoch of the install we hold the quorum
    /// for, acknowledge now.
    pub(in crate::core) fn quorum_holder_read_done(&mut self) {
        if self.held_install_epoch().is_some() {
            self.acknowledge_when_durable();
        }
    }

    pub(in crate::core) fn on_install_ack(&mut self, from: u8, round_number: u64, epoch: u64) {
        let Some(round) = self.regroup.as_mut() else {
            self.count_drop(Dropped::Stale);
            return;
        };
        let Phase::AwaitAcks { install, acks } = &mut round.phase else {
            self.count_drop(Dropped::Stale);
            return;
        };
        if install.round != round_number
            || install.epoch != epoch
            || install.members & bit(from) == 0
        {
            self.count_drop(Dropped::Stale);
            return;
        }
        *acks |= bit(from);
        self.finish_install();
    }

    /// Cleanup 2, coordinator: every acknowledgement in and the epoch durable in our slot.
    pub(in crate::core) fn finish_install(&mut self) {
        let Some(round) = self.regroup.as_ref() else {
            return;
        };
        let Phase::AwaitAcks { install, acks } = &round.phase else {
            return;
        };
        if *acks != install.members {
            return;
        }
        let (epoch, members) = (install.epoch, install.members);
        let holder = install.quorum_holder == self.me();
        if !self.epoch_durable(epoch, members) {
            self.make_epoch_durable(epoch, members);
            return;
        }
        if holder && !self.quorum_confirms(epoch) {
            return;
        }
        let Some(Phase::AwaitAcks { install, .. }) =
            self.regroup.as_ref().map(|round| &round.phase)
        else {
            return;
        };
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

    /// Cleanup 1 under loss: the coordinator resends its install to members yet to acknowledge
    /// (a member acknowledges a duplicate again).
    pub(in crate::core) fn retransmit_install(&mut self) {
        let now = self.now();
        let interval = self.timeouts().heartbeat_interval_ticks;
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

    pub(in crate::core) fn on_stabilize(&mut self, from: u8, round_number: u64, epoch: u64) {
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
            None => self.count_drop(Dropped::Stale),
        }
    }

    pub(in crate::core) fn on_halt(&mut self, from: u8, round_number: u64) {
        let matches_round = self
            .regroup
            .as_ref()
            .is_some_and(|round| round.round == round_number);
        let from_basis = self.membership.basis_members() & bit(from) != 0;
        if matches_round && from_basis && self.membership.role() == Role::Member {
            self.leave("partition does not survive (halt)");
        } else if matches_round && self.membership.role() != Role::Member {
            // A joiner: that round will not admit us.
            self.regroup = None;
        } else {
            // A member's round ends only by its own coordinator's word or by its timers.
            self.count_drop(Dropped::Unexpected);
        }
    }

    /// Cleanup 2 done: the membership of `install` is this node's stable view.
    pub(in crate::core) fn stabilize(&mut self, install: Install) {
        if self.own_lease.fenced_at_or_after(install.epoch) {
            // Every path here (a Stabilize, a member's heartbeat or status showing the epoch
            // stabilized, our own round as coordinator) ends in this one check: a membership
            // no newer than one that fenced us is never joined (`OwnLease::fenced_by_epoch`).
            self.count_drop(Dropped::Stale);
            self.regroup = None;
            return;
        }
        let was_member = self.membership.role() == Role::Member;
        if self.config().mutation != Mutation::StaleEpoch && was_member {
            assert!(install.epoch > self.membership.epoch(), "epochs only grow");
        }
        if !was_member {
            // The joiner receives the cluster database from the locker (a GUM snapshot).
            self.became_member();
        }
        let relies_on_quorum = install.quorum_holder == self.me()
            || (install.members == bit(self.me()) && self.configured() != bit(self.me()));
        self.membership
            .stabilize(install.epoch, install.members, relies_on_quorum);
        self.placement.install_table(install.groups);
        self.regroup = None;
        self.regroups.joined(install.members);
        for member in ids(install.members & !bit(self.me())) {
            self.peers.grant_window(member, self.now());
        }
        // Every possible holder in the new table must be confirmed stopped anew: a lost node may
        // have been a member again meanwhile, in views this node never saw.
        self.observer.forget_all();
        self.emit(Event::Stabilized {
            epoch: install.epoch,
            members: install.members,
        });
        self.gum_on_stabilized(false);
        // The table changed: give up at once any group now assigned elsewhere.
        self.evaluate_groups();
    }
}
