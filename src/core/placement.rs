//! The local half of placement: the catalog read from the replica, the groups this node
//! stopped (confirmed by the driver) or refuses after a failure, what members report in their
//! heartbeats, and the check that asks for a regroup when the placement rule (`groups.rs`)
//! would now put a group elsewhere.

use super::db::Namespace;
use super::groups::{self, Facts};
use super::node::{Node, Role};
use super::{bit, catalog, ids, Event, NODES_MAX};

/// Least time between two regroups asked for by `placement_check` (ticks): a rule that keeps
/// changing its mind (a node refusing, then not) costs at most this many regroups.
const PLACEMENT_REGROUP_SPACING_TICKS: u64 = 50;
/// How often the lowest member runs `placement_check` (ticks).
const PLACEMENT_CHECK_TICKS: u64 = 10;

impl Node {
    /// The catalog as of the last applied update.
    pub fn catalog(&self) -> &catalog::Catalog {
        &self.catalog
    }

    /// Re-reads the catalog when the replica's groups or resources changed.
    pub(super) fn refresh_catalog(&mut self) {
        let database = self.database();
        let seen = (
            database.changed_at(Namespace::Groups),
            database.changed_at(Namespace::Resources),
            database.sequence() == 0,
        );
        if seen == self.catalog_seen && !self.catalog_dirty {
            return;
        }
        let catalog = catalog::read(database);
        self.catalog_seen = seen;
        self.catalog_dirty = false;
        if catalog == self.catalog {
            return;
        }
        self.catalog = catalog;
        self.policies = groups::policies(self.config.builtin_groups, &self.catalog);
        self.emit(Event::CatalogChanged);
    }

    /// Every group slot that exists.
    pub(super) fn group_slots(&self) -> u64 {
        self.policies
            .iter()
            .fold(0, |slots, policy| slots | bit(policy.slot))
    }

    /// Groups refused here now.
    pub(super) fn refusing(&self) -> u64 {
        self.refusing_until
            .iter()
            .filter(|(_, until)| **until > self.now_ticks)
            .fold(0, |set, (slot, _)| set | bit(*slot))
    }

    /// Groups held here: online, or stopping and not yet confirmed stopped.
    pub fn holding_groups(&self) -> u64 {
        self.holding()
    }

    /// Online, or stopping and not yet confirmed stopped.
    pub(super) fn holding(&self) -> u64 {
        self.online | self.stopping
    }

    pub(super) fn on_group_stopped(&mut self, group: u8) {
        if !(1..=NODES_MAX as u8).contains(&group) || self.stopping & bit(group) == 0 {
            self.dropped.unexpected += 1;
            return;
        }
        self.stopping &= !bit(group);
        // Tell the members now: a new owner may be waiting for exactly this.
        self.send_heartbeat_now();
        self.evaluate_groups();
        // Its resources are stopped: give their leases back.
        self.reconcile_resource_leases();
    }

    pub(super) fn on_group_failed(&mut self, group: u8, refuse_ms: u64) {
        if !(1..=NODES_MAX as u8).contains(&group) {
            self.dropped.unexpected += 1;
            return;
        }
        let until = self.now_ticks + refuse_ms.div_ceil(super::timeout::TICK_MS).max(1);
        self.refusing_until.insert(group, until);
        self.emit(Event::GroupRefused { group });
        self.evaluate_groups();
        self.send_heartbeat_now();
    }

    /// A member's heartbeat: what it holds and refuses in its epoch.
    pub(super) fn record_peer_groups(&mut self, from: u8, epoch: u64, holding: u64, refusing: u64) {
        self.peer_groups[usize::from(from - 1)] = (epoch, holding, refusing);
    }

    /// Whether member `peer` showed, in this epoch, that it does not hold `group`. In this
    /// epoch's table it is not the owner (we are), so it will not take the group back before
    /// the next epoch: its word is a confirmation that lasts the epoch.
    pub(super) fn member_released(&self, peer: u8, group: u8) -> bool {
        let (epoch, holding, _) = self.peer_groups[usize::from(peer - 1)];
        self.members & bit(peer) != 0 && epoch == self.epoch && holding & bit(group) == 0
    }

    /// The lowest member asks for a regroup when the rule would now place a group elsewhere
    /// than this epoch's table does (a move, a failback, a refusal, a new or removed group).
    pub(super) fn placement_check(&mut self) {
        let now = self.now_ticks;
        if self.role != Role::Member
            || !self.stabilized
            || self.regroup.is_some()
            || self.shutting_down
            || !self.gum.valid
            || ids(self.members).next() != Some(self.me())
            || !now.is_multiple_of(PLACEMENT_CHECK_TICKS)
        {
            return;
        }
        if self
            .last_placement_regroup_tick
            .is_some_and(|last| now < last + PLACEMENT_REGROUP_SPACING_TICKS)
        {
            return;
        }
        let mut holding = vec![0u64; NODES_MAX];
        let mut refusing = vec![0u64; NODES_MAX];
        for member in ids(self.members) {
            let index = usize::from(member - 1);
            if member == self.me() {
                holding[index] = self.holding();
                refusing[index] = self.refusing();
                continue;
            }
            let (epoch, peer_holding, peer_refusing) = self.peer_groups[index];
            if epoch != self.epoch {
                // Not heard in this epoch yet: judge nothing on stale words.
                return;
            }
            holding[index] = peer_holding;
            refusing[index] = peer_refusing;
        }
        let facts = Facts {
            members: self.members,
            holding_by_node: &holding,
            refusing_by_node: &refusing,
            outsiders: 0,
            local_hour: self.local_hour,
            wall_s: self.wall_s,
            catalog_known: true,
            hand_back_held_alone: self.config.mutation == super::Mutation::HandBackHeldAlone,
        };
        let next = groups::reassign(&self.table, &self.policies, &facts);
        let slots = self.group_slots();
        let changed = ids(slots).find(|slot| {
            let index = usize::from(slot - 1);
            next[index].owner != self.table[index].owner
        });
        // A removed group still owned in the table: forget it at the next regroup too.
        let removed = ids(!slots).find(|slot| self.table[usize::from(slot - 1)].owner != 0);
        let Some(group) = changed.or(removed) else {
            return;
        };
        let owner = next[usize::from(group - 1)].owner;
        self.last_placement_regroup_tick = Some(now);
        self.emit(Event::PlacementChanged { group, owner });
        self.start_regroup();
    }
}

impl Node {
    /// Why group `slot` stays Failed everywhere (its failover threshold), if it does.
    pub fn group_blocked(&self, slot: u8) -> Option<String> {
        self.policies
            .iter()
            .find(|policy| policy.slot == slot)
            .and_then(|policy| policy.blocked(self.wall_s))
    }
}
