//! Shutdown (`AdminCommand::Leave`, SIGTERM in the daemon): this node leaves the membership
//! for good, stops its groups, writes a non-member slot once every stop is confirmed, and tells
//! the members (`Leaving`, repeated until that slot is durable), so they regroup at once and
//! confirm it stopped from its slot instead of waiting for its lease.
//!
//! `Shutdown` holds that state; its fields are private to this file.

use super::message::Body;
use super::node::{Node, Role};

/// Leaving for good: never search, join or form again in this incarnation.
#[derive(Clone, Debug, Default)]
pub(super) struct Shutdown {
    /// The shutdown began.
    begun: bool,
    /// A non-member slot written since the shutdown began.
    slot_written: bool,
    /// The members told (and told again) that we leave.
    leaving_to: u64,
}

impl Shutdown {
    pub(super) fn begun(&self) -> bool {
        self.begun
    }

    /// Our non-member slot is durable: the slot itself now says we stopped.
    pub(super) fn slot_written(&self) -> bool {
        self.slot_written
    }
}

impl Node {
    /// Shutdown: leave the membership for good and tell the members, so they regroup at once
    /// and confirm us stopped from our non-member slot instead of waiting for our lease.
    pub(super) fn shut_down(&mut self) {
        if self.shutdown.begun {
            return;
        }
        let former = self.membership.members();
        self.shutdown.begun = true;
        self.shutdown.leaving_to = former;
        if self.membership.role() == Role::Member {
            self.leave("leaving on request (shutdown)");
        } else {
            self.quorum.release();
            self.regroup = None;
            self.membership.search(self.now(), u64::MAX / 2);
        }
        let epoch = self.membership.epoch();
        self.send_all(former, &Body::Leaving { epoch });
        // The non-member slot: written at once (not at the next renewal).
        self.own_lease.schedule_slot_write();
        self.try_write_own_slot();
    }

    /// Repeats the goodbye until our non-member slot is durable: it may be lost, and a driver
    /// may hold our sends while our stops are unconfirmed.
    pub(super) fn repeat_goodbye(&mut self) {
        assert!(self.shutdown.begun);
        let due = self
            .membership
            .heartbeat_due(self.now(), self.timeouts().heartbeat_interval_ticks);
        if due && !self.shutdown.slot_written {
            self.membership.heartbeat_sent(self.now());
            let (targets, epoch) = (self.shutdown.leaving_to, self.membership.epoch());
            self.send_all(targets, &Body::Leaving { epoch });
        }
    }

    /// A non-member slot of ours is durable (written by a non-member).
    pub(super) fn non_member_slot_written(&mut self) {
        assert_ne!(self.membership.role(), Role::Member);
        if !self.shutdown.begun {
            return;
        }
        self.shutdown.slot_written = true;
        // The last goodbye: our slot now confirms us stopped to whoever reads it.
        let (targets, epoch) = (self.shutdown.leaving_to, self.membership.epoch());
        self.send_all(targets, &Body::Leaving { epoch });
    }
}
