//! `Membership`: where this node stands in the cluster (searching, forming, or a member) and
//! the membership it belongs to. Its fields change only through the methods here, each one
//! step of the protocol, so that a membership is always taken or dropped whole: epoch, members
//! and the basis its survival is judged against move together.

use super::bit;
use super::node::Role;

#[derive(Debug)]
pub(crate) struct Membership {
    role: Role,
    stabilized: bool,
    epoch: u64,
    members: u64,
    /// Highest epoch this node acknowledged an install for, and that install's members: the
    /// membership its survival is judged against until a later one.
    acked_epoch: u64,
    basis_members: u64,
    /// Our membership lives by our quorum ownership: we are a membership of one, or the member
    /// whose ownership let exactly half survive. Losing the ownership ends the membership.
    relies_on_quorum: bool,
    /// When this node last became a member (formed or stabilized from outside).
    member_since_tick: u64,
    /// When a member of a stable membership last said it owns the quorum: while one does,
    /// the leader need not contend for it.
    quorum_owner_heard_tick: Option<u64>,
    /// When this node last sent a heartbeat, or the goodbye that stands in for one.
    last_heartbeat_tick: u64,
}

impl Membership {
    pub fn new() -> Membership {
        Membership {
            role: Role::Searching {
                since_tick: 0,
                form_wait_ticks: 0,
            },
            stabilized: false,
            epoch: 0,
            members: 0,
            acked_epoch: 0,
            basis_members: 0,
            relies_on_quorum: false,
            member_since_tick: 0,
            quorum_owner_heard_tick: None,
            last_heartbeat_tick: 0,
        }
    }

    /// True once a heartbeat interval has passed since the last heartbeat (or goodbye).
    pub fn heartbeat_due(&self, now_ticks: u64, heartbeat_interval_ticks: u64) -> bool {
        now_ticks >= self.last_heartbeat_tick + heartbeat_interval_ticks
    }

    pub fn heartbeat_sent(&mut self, now_ticks: u64) {
        self.last_heartbeat_tick = now_ticks;
    }

    pub fn quorum_owner_heard(&mut self, now_ticks: u64) {
        self.quorum_owner_heard_tick = Some(now_ticks);
    }

    /// True if a quorum owner was heard less than `window_ticks` ago.
    pub fn quorum_owner_heard_within(&self, now_ticks: u64, window_ticks: u64) -> bool {
        self.quorum_owner_heard_tick
            .is_some_and(|tick| now_ticks < tick + window_ticks)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn stabilized(&self) -> bool {
        self.stabilized
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn members(&self) -> u64 {
        self.members
    }

    pub fn acked_epoch(&self) -> u64 {
        self.acked_epoch
    }

    pub fn basis_members(&self) -> u64 {
        self.basis_members
    }

    pub fn relies_on_quorum(&self) -> bool {
        self.relies_on_quorum
    }

    pub fn member_since_tick(&self) -> u64 {
        self.member_since_tick
    }

    /// Searching for a cluster: forms after `form_wait_ticks` from `since_tick` of hearing no
    /// member. Leaves any membership's epoch and members as they were (see `leave`).
    pub fn search(&mut self, since_tick: u64, form_wait_ticks: u64) {
        self.role = Role::Searching {
            since_tick,
            form_wait_ticks,
        };
    }

    pub fn begin_forming(&mut self) {
        self.role = Role::Forming;
    }

    /// The epoch is being made durable before it stabilizes: nothing older may be acknowledged.
    pub fn acknowledge_forming_epoch(&mut self, epoch: u64) {
        self.acked_epoch = epoch;
    }

    /// This node formed a cluster alone at `epoch`; alone in a cluster of more it lives by its
    /// quorum ownership.
    pub fn formed(&mut self, epoch: u64, me: u8, configured: u64) {
        self.role = Role::Member;
        self.stabilized = true;
        self.epoch = epoch;
        self.acked_epoch = epoch;
        self.members = bit(me);
        self.basis_members = bit(me);
        self.relies_on_quorum = configured != bit(me);
    }

    /// As coordinator: the install this node sends for `epoch`, to `survivors`, counts as
    /// acknowledged by itself.
    pub fn acknowledge_own_install(&mut self, epoch: u64, survivors: u64) {
        self.acked_epoch = epoch;
        self.basis_members = survivors;
    }

    /// An epoch this node acknowledged, or saw acknowledged on the disk: it never acknowledges
    /// an older one.
    pub fn acknowledge_epoch(&mut self, epoch: u64) {
        self.acked_epoch = self.acked_epoch.max(epoch);
    }

    /// Cleanup 1: from now on this member's survival is judged against `members`.
    pub fn judge_survival_against(&mut self, members: u64) {
        self.basis_members = members;
    }

    /// An install stabilized here.
    pub fn stabilize(&mut self, epoch: u64, members: u64, relies_on_quorum: bool) {
        self.role = Role::Member;
        self.stabilized = true;
        self.epoch = epoch;
        self.acked_epoch = self.acked_epoch.max(epoch);
        self.members = members;
        self.basis_members = members;
        self.relies_on_quorum = relies_on_quorum;
    }

    pub fn became_member(&mut self, now_ticks: u64) {
        self.member_since_tick = now_ticks;
    }

    /// The quorum ownership this membership lived by is lost.
    pub fn stop_relying_on_quorum(&mut self) {
        self.relies_on_quorum = false;
    }

    /// Out of the membership, searching again; the epoch stays, so the next one is newer.
    pub fn leave(&mut self, since_tick: u64, form_wait_ticks: u64) {
        self.search(since_tick, form_wait_ticks);
        self.stabilized = false;
        self.members = 0;
        self.basis_members = 0;
    }
}
