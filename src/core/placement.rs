//! Groups and placement on this node: the table installed with each membership, the catalog
//! read from the replica, the groups held here (online, or stopping until the driver confirms),
//! refused after a failure, what members report in their heartbeats, the decision to bring a
//! group online or offline (`evaluate_groups`), and the check that asks for a regroup when the
//! placement rule (`groups.rs`) would now put a group elsewhere.
//!
//! `Placement` holds that state; its fields are private to this file, so only the methods here
//! change what this node holds.

use std::collections::BTreeMap;

use super::db::Namespace;
use super::groups::{self, Facts, Policy};
use super::message::GroupAssignment;
use super::node::{Node, Role};
use super::{bit, catalog, ids, Event, Output, NODES_MAX};
use crate::core::Dropped;

/// Least time between two regroups asked for by `placement_check` (ticks): a rule that keeps
/// changing its mind (a node refusing, then not) costs at most this many regroups.
const PLACEMENT_REGROUP_SPACING_TICKS: u64 = 50;
/// How often the lowest member runs `placement_check` (ticks).
const PLACEMENT_CHECK_TICKS: u64 = 10;

/// What a member's latest heartbeat said about its groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PeerGroups {
    /// The epoch the heartbeat was sent in.
    epoch: u64,
    /// Groups it holds (online, or stopping and not yet confirmed).
    holding: u64,
    /// Groups it refuses after a failure.
    refusing: u64,
}

/// A group this node gave up after it failed here. It belongs to the group that held the slot
/// then, under that group's cleanup generation: a group that later reuses the slot, or a
/// cleanup (`group cleanup`, `resource cleanup`), ends it on every node at once.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LocalRefusal {
    /// The catalog group of the slot when it failed (`None`: a built-in test group).
    group: Option<String>,
    cleanup: u64,
    until_tick: u64,
}

/// What `refresh_catalog` last saw of the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CatalogSeen {
    groups_changed_at: u64,
    resources_changed_at: u64,
    /// The replica holds nothing yet (sequence 0).
    empty: bool,
}

/// The groups and their placement, as this node knows them.
#[derive(Debug)]
pub(super) struct Placement {
    /// This epoch's table: the owner of every group slot, and who may still hold it.
    table: Vec<GroupAssignment>,
    /// Groups brought online here.
    online: u64,
    /// Groups asked offline and not yet confirmed stopped by the driver.
    stopping: u64,
    /// Groups that failed here, by slot.
    refusals: BTreeMap<u8, LocalRefusal>,
    /// The placement policies, from the built-in groups and the replica's catalog.
    policies: Vec<Policy>,
    catalog: catalog::Catalog,
    catalog_seen: CatalogSeen,
    /// Per node id - 1: its latest heartbeat's word on its groups.
    peer_groups: Vec<PeerGroups>,
    /// The driver's wall clock (`Input::WallClock`): failback windows and failover thresholds.
    local_hour: Option<u8>,
    wall_s: Option<u64>,
    /// When `placement_check` last asked for a regroup.
    last_regroup_tick: Option<u64>,
}

impl Placement {
    pub(super) fn new(builtin_groups: u64) -> Placement {
        Placement {
            table: groups::empty_table(),
            online: 0,
            stopping: 0,
            refusals: BTreeMap::new(),
            policies: groups::policies(builtin_groups, &Default::default()),
            catalog: Default::default(),
            catalog_seen: CatalogSeen {
                groups_changed_at: 0,
                resources_changed_at: 0,
                empty: true,
            },
            peer_groups: vec![PeerGroups::default(); NODES_MAX],
            local_hour: None,
            wall_s: None,
            last_regroup_tick: None,
        }
    }

    /// This epoch's table.
    pub(super) fn table(&self) -> &[GroupAssignment] {
        &self.table
    }

    /// The table of a new epoch (formed, or installed by a coordinator).
    pub(super) fn install_table(&mut self, table: Vec<GroupAssignment>) {
        assert_eq!(table.len(), NODES_MAX);
        self.table = table;
    }

    /// Groups brought online here.
    pub(super) fn online(&self) -> u64 {
        self.online
    }

    /// Groups asked offline whose stop the driver has not confirmed.
    pub(super) fn stopping(&self) -> u64 {
        self.stopping
    }

    /// Online, or stopping and not yet confirmed stopped.
    pub(super) fn holding(&self) -> u64 {
        self.online | self.stopping
    }

    pub(super) fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub(super) fn local_hour(&self) -> Option<u8> {
        self.local_hour
    }

    pub(super) fn wall_s(&self) -> Option<u64> {
        self.wall_s
    }

    pub(super) fn set_wall_clock(&mut self, unix_s: u64, local_hour: u8) {
        self.local_hour = (local_hour < 24).then_some(local_hour);
        self.wall_s = Some(unix_s);
    }

    /// Every group slot that exists.
    fn group_slots(&self) -> u64 {
        self.policies
            .iter()
            .fold(0, |slots, policy| slots | bit(policy.slot))
    }

    /// The identity a refusal of `slot` made now carries (see `LocalRefusal`).
    fn refusal_of(&self, slot: u8, until_tick: u64) -> LocalRefusal {
        let group = self.catalog.group_by_slot(slot);
        LocalRefusal {
            group: group.map(|group| group.name.clone()),
            cleanup: group.map_or(0, |group| group.cleanup),
            until_tick,
        }
    }

    /// Whether `refusal` of `slot` was made for the group the catalog has there now, under its
    /// current cleanup generation (compared in place: every heartbeat asks).
    fn made_for_current_group(&self, slot: u8, refusal: &LocalRefusal) -> bool {
        let group = self.catalog.group_by_slot(slot);
        group.map(|group| group.name.as_str()) == refusal.group.as_deref()
            && group.map_or(0, |group| group.cleanup) == refusal.cleanup
    }

    /// Groups refused by node `me` at `now_ticks`: its own refusals still in force for the
    /// group they were made for, and its records in the catalog still in force by the wall
    /// clock (so a restarted node keeps refusing what its previous run gave up).
    fn refusing(&self, me: u8, now_ticks: u64) -> u64 {
        let local = self
            .refusals
            .iter()
            .filter(|(slot, refusal)| {
                refusal.until_tick > now_ticks && self.made_for_current_group(**slot, refusal)
            })
            .fold(0, |set, (slot, _)| set | bit(*slot));
        let recorded = match self.wall_s {
            Some(now_s) => self
                .catalog
                .groups
                .iter()
                .filter(|group| group.refused_at(now_s) & bit(me) != 0)
                .fold(0, |set, group| set | bit(group.slot)),
            None => 0,
        };
        local | recorded
    }

    fn start(&mut self, group: u8) {
        assert_eq!(
            self.holding() & bit(group),
            0,
            "a group starts only once stopped"
        );
        self.online |= bit(group);
    }

    fn stop(&mut self, group: u8) {
        assert_ne!(self.online & bit(group), 0, "only an online group stops");
        self.online &= !bit(group);
        self.stopping |= bit(group);
    }
}

impl Node {
    /// The catalog as of the last applied update.
    pub fn catalog(&self) -> &catalog::Catalog {
        &self.placement.catalog
    }

    /// Re-reads the catalog when the replica's groups or resources changed.
    pub(super) fn refresh_catalog(&mut self) {
        let database = self.database();
        let seen = CatalogSeen {
            groups_changed_at: database.changed_at(Namespace::Groups),
            resources_changed_at: database.changed_at(Namespace::Resources),
            empty: database.sequence() == 0,
        };
        if seen == self.placement.catalog_seen {
            return;
        }
        let catalog = catalog::read(database);
        self.placement.catalog_seen = seen;
        if catalog == self.placement.catalog {
            return;
        }
        self.placement.catalog = catalog;
        self.placement.policies =
            groups::policies(self.config().builtin_groups, &self.placement.catalog);
        self.emit(Event::CatalogChanged);
    }

    /// Groups refused here now.
    pub(super) fn refusing(&self) -> u64 {
        self.placement.refusing(self.me(), self.now())
    }

    /// Groups held here: online, or stopping and not yet confirmed stopped.
    pub fn holding_groups(&self) -> u64 {
        self.holding()
    }

    /// Online, or stopping and not yet confirmed stopped.
    pub(super) fn holding(&self) -> u64 {
        self.placement.holding()
    }

    pub(super) fn on_group_stopped(&mut self, group: u8) {
        if !(1..=NODES_MAX as u8).contains(&group) || self.placement.stopping & bit(group) == 0 {
            self.count_drop(Dropped::Unexpected);
            return;
        }
        self.placement.stopping &= !bit(group);
        // Tell the members now: a new owner may be waiting for exactly this.
        self.send_heartbeat_now();
        self.evaluate_groups();
        // Its resources are stopped: give their leases back.
        self.reconcile_resource_leases();
    }

    pub(super) fn on_group_failed(&mut self, group: u8, refuse_ms: u64) {
        if !(1..=NODES_MAX as u8).contains(&group) {
            self.count_drop(Dropped::Unexpected);
            return;
        }
        let until = self.now() + refuse_ms.div_ceil(super::timeout::TICK_MS).max(1);
        let refusal = self.placement.refusal_of(group, until);
        self.placement.refusals.insert(group, refusal);
        self.emit(Event::GroupRefused { group });
        self.evaluate_groups();
        self.send_heartbeat_now();
    }

    /// A member's heartbeat: what it holds and refuses in its epoch.
    pub(super) fn record_peer_groups(&mut self, from: u8, epoch: u64, holding: u64, refusing: u64) {
        self.placement.peer_groups[usize::from(from - 1)] = PeerGroups {
            epoch,
            holding,
            refusing,
        };
    }

    /// Whether member `peer` showed, in this epoch, that it does not hold `group`. In this
    /// epoch's table it is not the owner (we are), so it will not take the group back before
    /// the next epoch: its word is a confirmation that lasts the epoch.
    fn member_released(&self, peer: u8, group: u8) -> bool {
        let said = self.placement.peer_groups[usize::from(peer - 1)];
        self.membership.members() & bit(peer) != 0
            && said.epoch == self.membership.epoch()
            && said.holding & bit(group) == 0
    }

    /// Brings this node's groups online or offline to match the rules.
    pub(super) fn evaluate_groups(&mut self) {
        let now = self.now();
        let started = self.start_tick().unwrap_or(now);
        // A restarted node waits out its previous run's lease before holding anything.
        let old_run_expired = now >= started + self.timeouts().lease_expiry_observed_ticks;
        let eligible = self.membership.role() == Role::Member
            && self.membership.stabilized()
            && self.own_lease.valid(now)
            && self.deadman.armed_at(now)
            && old_run_expired;
        let mut desired = 0u64;
        if eligible {
            let refusing = self.refusing();
            for group in ids(self.placement.group_slots() & !refusing) {
                let entry = self.placement.table[usize::from(group - 1)];
                if entry.owner != self.me() {
                    continue;
                }
                if self.placement.online & bit(group) != 0 {
                    // Confirmations are what a start waits for; once online, the group stays
                    // while we own it. (A joiner's confirmation is dropped when it enters the
                    // membership: waiting for it again would bounce every group on every join.)
                    desired |= bit(group);
                    continue;
                }
                let waiting: Vec<u8> = ids(entry.unconfirmed & !bit(self.me())).collect();
                // A member lets a group go by saying so in its heartbeats; a lost node is
                // confirmed stopped on disk. Never observe a member: that path may fence it.
                let (members_waiting, lost_waiting): (Vec<u8>, Vec<u8>) = waiting
                    .into_iter()
                    .partition(|peer| self.membership.members() & bit(*peer) != 0);
                for peer in &lost_waiting {
                    self.observe(*peer);
                }
                let skip_wait = self.config().mutation == super::Mutation::NoLeaseWait;
                let released = members_waiting
                    .iter()
                    .all(|peer| self.member_released(*peer, group));
                let stopped = lost_waiting
                    .iter()
                    .all(|peer| self.confirmed_stopped(*peer));
                if skip_wait || (released && stopped) {
                    desired |= bit(group);
                }
            }
        }
        for group in ids(self.placement.online & !desired) {
            self.stop_group(group);
        }
        // A group still stopping here comes back only once its stop is confirmed: the driver
        // never has a start and a stop of one group in flight at once. And nothing starts
        // during a regroup: our status told the coordinator what we hold, and the table it
        // installs may give a group we do not hold to another member at once.
        if self.regroup.is_some() || !self.may_start_groups() {
            return;
        }
        for group in ids(desired & !self.placement.online & !self.placement.stopping) {
            self.start_group(group);
        }
    }

    /// Brings `group` online here. Only with every possible previous holder confirmed stopped
    /// (asserted here, where the driver is told: the point of no return).
    fn start_group(&mut self, group: u8) {
        self.assert_previous_holders_stopped(group);
        self.placement.start(group);
        self.push_output(Output::Resource {
            group,
            online: true,
        });
    }

    fn stop_group(&mut self, group: u8) {
        self.placement.stop(group);
        self.push_output(Output::Resource {
            group,
            online: false,
        });
    }

    /// The architecture invariant a start rests on: this node owns `group` in this epoch's
    /// table, holds no regroup open, and every node that may still hold it (the entry's
    /// `unconfirmed`) is confirmed stopped: a member by a heartbeat of this epoch that no
    /// longer lists it, a lost node on disk (`observe.rs`: fence acknowledged, lease expired,
    /// non-member slot). `Mutation::NoLeaseWait` breaks exactly this rule on purpose, for the
    /// simulator's checker to catch.
    fn assert_previous_holders_stopped(&self, group: u8) {
        let entry = self.placement.table[usize::from(group - 1)];
        assert_eq!(entry.owner, self.me(), "a group starts only on its owner");
        assert!(self.regroup.is_none(), "no group starts during a regroup");
        assert!(
            self.membership.role() == Role::Member && self.membership.stabilized(),
            "a group starts only in a stabilized membership"
        );
        if self.config().mutation == super::Mutation::NoLeaseWait {
            return;
        }
        for peer in ids(entry.unconfirmed & !bit(self.me())) {
            if self.membership.members() & bit(peer) != 0 {
                assert!(
                    self.member_released(peer, group),
                    "group {group} starts while member {peer} may still hold it"
                );
            } else {
                assert!(
                    self.confirmed_stopped(peer),
                    "group {group} starts while lost node {peer} is not confirmed stopped"
                );
            }
        }
    }

    /// Stops every group at once (leaving, lease lost, fenced).
    pub(super) fn stop_all_groups(&mut self) {
        for group in ids(self.placement.online) {
            self.stop_group(group);
        }
    }

    /// The lowest member asks for a regroup when the rule would now place a group elsewhere
    /// than this epoch's table does (a move, a failback, a refusal, a new or removed group).
    pub(super) fn placement_check(&mut self) {
        let now = self.now();
        if self.membership.role() != Role::Member
            || !self.membership.stabilized()
            || self.regroup.is_some()
            || self.shutdown.begun()
            || !self.gum.valid()
            || ids(self.membership.members()).next() != Some(self.me())
            || !now.is_multiple_of(PLACEMENT_CHECK_TICKS)
        {
            return;
        }
        if self
            .placement
            .last_regroup_tick
            .is_some_and(|last| now < last + PLACEMENT_REGROUP_SPACING_TICKS)
        {
            return;
        }
        let mut holding = vec![0u64; NODES_MAX];
        let mut refusing = vec![0u64; NODES_MAX];
        for member in ids(self.membership.members()) {
            let index = usize::from(member - 1);
            if member == self.me() {
                holding[index] = self.holding();
                refusing[index] = self.refusing();
                continue;
            }
            let said = self.placement.peer_groups[index];
            if said.epoch != self.membership.epoch() {
                // Not heard in this epoch yet: judge nothing on stale words.
                return;
            }
            holding[index] = said.holding;
            refusing[index] = said.refusing;
        }
        let facts = Facts {
            members: self.membership.members(),
            holding_by_node: &holding,
            refusing_by_node: &refusing,
            outsiders: 0,
            local_hour: self.placement.local_hour,
            wall_s: self.placement.wall_s,
            catalog_known: true,
            hand_back_held_alone: self.config().mutation == super::Mutation::HandBackHeldAlone,
        };
        let table = &self.placement.table;
        let next = groups::reassign(table, &self.placement.policies, &facts);
        let slots = self.placement.group_slots();
        let changed = ids(slots).find(|slot| {
            let index = usize::from(slot - 1);
            next[index].owner != table[index].owner
        });
        // A removed group still owned in the table: forget it at the next regroup too.
        let removed = ids(!slots).find(|slot| table[usize::from(slot - 1)].owner != 0);
        let Some(group) = changed.or(removed) else {
            return;
        };
        let owner = next[usize::from(group - 1)].owner;
        self.placement.last_regroup_tick = Some(now);
        self.emit(Event::PlacementChanged { group, owner });
        self.start_regroup();
    }

    /// Why group `slot` stays Failed everywhere (its failover threshold), if it does.
    pub fn group_blocked(&self, slot: u8) -> Option<String> {
        self.placement
            .policies
            .iter()
            .find(|policy| policy.slot == slot)
            .and_then(|policy| policy.blocked(self.placement.wall_s))
    }
}
