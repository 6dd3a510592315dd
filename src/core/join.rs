//! Heartbeats, searching, joining through the sponsor, leaving and shutdown.
//!
//! A node starts `Searching`: it sends `JoinRequest` to every configured node; the sponsor (the
//! lowest member of a stabilized membership) answers by starting a regroup round with it as a
//! joiner. A node that heard no member for `form_wait_ticks` (plus jitter) tries to form
//! (`forming.rs`).

use super::message::Body;
use super::node::{Node, Role};
use super::{bit, ids, Event};
use crate::core::Dropped;

impl Node {
    /// Heartbeats to the membership on every network, and detection of silent members.
    pub(super) fn membership_tick(&mut self) {
        if self.membership.role() != Role::Member {
            return;
        }
        let now = self.now();
        if self
            .membership
            .heartbeat_due(now, self.timeouts().heartbeat_interval_ticks)
        {
            self.send_heartbeat_now();
        }
        let silence = self.timeouts().peer_silence_ticks;
        let mut any_silent = false;
        for peer in ids(self.membership.members() & !bit(self.me())) {
            if self.peers.alive_or_fresh(peer, now, silence) {
                continue;
            }
            any_silent = true;
            if self.peers.report_silent_once(peer) {
                self.emit(Event::PeerSilent { peer });
                self.observe(peer);
            }
        }
        // A stable membership with a silent member is not stable: regroup until it is gone.
        if any_silent && self.membership.stabilized() && self.regroup.is_none() {
            self.start_regroup();
        }
    }

    /// A heartbeat to the membership on every network, now.
    pub(super) fn send_heartbeat_now(&mut self) {
        if self.membership.role() != Role::Member {
            return;
        }
        let now = self.now();
        self.membership.heartbeat_sent(now);
        let body = Body::Heartbeat {
            epoch: self.membership.epoch(),
            members: self.membership.members(),
            stabilized: self.membership.stabilized(),
            quorum_owner: self.quorum.owned(now),
            holding: self.holding(),
            refusing: self.refusing(),
        };
        self.send_all(
            self.membership.members() | self.membership.basis_members(),
            &body,
        );
    }

    pub(super) fn on_heartbeat(
        &mut self,
        from: u8,
        epoch: u64,
        members: u64,
        stabilized: bool,
        quorum_owner: bool,
    ) {
        if quorum_owner && stabilized {
            self.membership.quorum_owner_heard(self.now());
        }
        if self.membership.role() != Role::Member {
            if stabilized {
                self.member_heard();
            }
            // A joiner that acknowledged this epoch's install but missed its Stabilize.
            let acked = self
                .regroup
                .as_ref()
                .and_then(|round| round.acked_install())
                .filter(|install| {
                    install.epoch == epoch && members & bit(self.me()) != 0 && stabilized
                })
                .cloned();
            if let Some(install) = acked {
                self.stabilize(install);
            }
            return;
        }
        if (self.membership.members() | self.membership.basis_members()) & bit(from) == 0 {
            self.count_drop(Dropped::Unexpected);
            return;
        }
        let stale_accepted = self.config().mutation == super::Mutation::StaleEpoch;
        if epoch < self.membership.epoch() && !stale_accepted {
            self.count_drop(Dropped::Stale);
            return;
        }
        if epoch == self.membership.epoch() || !stabilized {
            return;
        }
        if members & bit(self.me()) == 0 {
            if epoch > self.membership.epoch() || stale_accepted {
                self.leave("excluded from the membership");
            }
            return;
        }
        // A newer view that includes us: we missed its Stabilize, or we are behind.
        let acked = self
            .regroup
            .as_ref()
            .and_then(|round| round.acked_install())
            .filter(|install| install.epoch == epoch)
            .cloned();
        match acked {
            Some(install) => self.stabilize(install),
            None if self.regroup.is_none() && self.membership.stabilized() => self.start_regroup(),
            None => {}
        }
    }

    pub(super) fn on_join_request(&mut self, from: u8) {
        if matches!(self.membership.role(), Role::Searching { .. }) && from < self.me() {
            // Bully-style deferral: the lowest searching node forms, the others join it, so
            // that concurrent quorum challenges (which all but one lose) stay rare.
            self.member_heard();
            return;
        }
        if self.membership.role() == Role::Member
            && self.membership.stabilized()
            && self.membership.members() & bit(from) != 0
        {
            // A member asking to join has left (fenced, lease lost, restarted): regroup, so
            // it is judged lost and re-added as a joiner.
            self.regroups.joiner_waits(from);
            if self.regroup.is_none() {
                self.start_regroup();
            }
            return;
        }
        let leader = ids(self.membership.members()).next();
        if self.membership.role() != Role::Member
            || !self.membership.stabilized()
            || leader != Some(self.me())
        {
            return;
        }
        self.regroups.joiner_waits(from);
        match self.regroup.as_mut() {
            None => self.start_regroup(),
            Some(round) => round.admit_joiner(from),
        }
    }

    /// A member's incarnation grew: its previous run is gone; regroup so it can rejoin.
    pub(super) fn on_peer_restarted(&mut self, peer: u8) {
        // What we confirmed about its previous run says nothing about this one.
        self.observer.forget(peer);
        if self.membership.role() == Role::Member
            && self.membership.members() & bit(peer) != 0
            && self.membership.stabilized()
            && self.regroup.is_none()
        {
            self.start_regroup();
        }
    }

    /// Evidence that a cluster is alive: postpone forming.
    pub(super) fn member_heard(&mut self) {
        if let Role::Searching {
            form_wait_ticks, ..
        } = self.membership.role()
        {
            self.membership.search(self.now(), form_wait_ticks);
        }
    }

    pub(super) fn search_tick(&mut self) {
        if self.shutdown.begun() {
            self.repeat_goodbye();
            return;
        }
        let now = self.now();
        match self.membership.role() {
            Role::Searching {
                since_tick,
                form_wait_ticks,
            } => {
                let started = self.start_tick().unwrap_or(0);
                if (now - started).is_multiple_of(self.timeouts().join_retry_ticks) {
                    let everyone = self.configured() & !bit(self.me());
                    self.send_all(everyone, &Body::JoinRequest);
                }
                if self.regroup.is_none() && now >= since_tick + form_wait_ticks {
                    // A configured node alive in another cluster (`Input::PeerConflict`) holds
                    // forming back until one form wait passes without hearing it so.
                    let in_conflict = self.peers.in_conflict(now, self.timeouts().form_wait_ticks);
                    if in_conflict == 0 {
                        self.begin_forming();
                    } else if self.peers.report_conflict_once(in_conflict) {
                        self.emit(Event::FormHeldByConflict { nodes: in_conflict });
                    }
                }
            }
            Role::Forming => {
                let lost = self.quorum.lost_last_challenge();
                let in_conflict = self.peers.in_conflict(now, self.timeouts().form_wait_ticks);
                if lost || in_conflict != 0 {
                    self.abort_forming();
                } else {
                    self.complete_forming();
                }
            }
            Role::Member => {}
        }
    }

    /// Entering a membership: write a member slot at once (the lease starts with it).
    pub(super) fn became_member(&mut self) {
        self.membership.became_member(self.now());
        self.own_lease.enter_membership();
    }

    /// A member says it leaves: forget it now, so the next tick regroups without it.
    pub(super) fn on_leaving(&mut self, from: u8) {
        if self.membership.members() & bit(from) == 0 {
            self.count_drop(Dropped::Unexpected);
            return;
        }
        self.peers.forget(from);
    }

    /// Leaves the membership: stops every resource first, then stops renewing as a member.
    pub(super) fn leave(&mut self, reason: &'static str) {
        self.stop_all_groups();
        self.quorum.release();
        self.own_lease.end();
        let wait = self.timeouts().form_wait_ticks
            + self.random_below(self.timeouts().form_wait_ticks.max(1));
        self.membership.leave(self.now(), wait);
        self.regroup = None;
        self.regroups.forget_joiners();
        self.emit(Event::Left { reason });
        self.gum_on_left();
    }
}
