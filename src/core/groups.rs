//! Which node holds which group: the assignment installed with each membership, and the rule
//! that places groups.
//!
//! A group is a slot (1..=64) with a `Policy`: from the catalog in the replicated database
//! (`core::catalog`), or a built-in test group (slot = its home node, preferred there). The
//! coordinator of a regroup computes the next table from its own replica and installs it, so
//! every member adopts the same placement for the epoch; placement changes only at a regroup
//! (a lost node, a joiner, or `placement_check` finding that the rule now places a group
//! elsewhere: a move, a failback, a group that failed on its owner, a new group).
//!
//! The set of nodes that may still hold a group (`unconfirmed`) travels with it: the new owner
//! brings the group online only once each is confirmed stopped (a lost node on disk, see
//! `observe.rs`; a member by its heartbeat in this epoch showing that it no longer holds it).

use super::catalog::{Catalog, Failback};
use super::message::GroupAssignment;
use super::{bit, ids};

/// How one group is placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    pub slot: u8,
    /// Most preferred first.
    pub preferred: Vec<u8>,
    /// 0 = every node.
    pub possible: u64,
    pub failback: Failback,
    /// An administrator's move target (0 = none): wins whenever it can host the group.
    pub target: u8,
    /// The catalog's entry, for the failover threshold (None for a built-in test group).
    pub spec: Option<super::catalog::GroupSpec>,
}

/// What the placement rule reads besides the table.
pub(crate) struct Facts<'a> {
    pub members: u64,
    /// Per node id - 1: the groups it holds (online, or stopping and not yet confirmed).
    pub holding_by_node: &'a [u64],
    /// Per node id - 1: the groups that failed there recently and that it refuses.
    pub refusing_by_node: &'a [u64],
    /// Members of newer views that are not in the new membership (each a possible holder).
    pub outsiders: u64,
    /// The coordinator's local hour of day, when known (failback windows).
    pub local_hour: Option<u8>,
    /// The coordinator's wall clock (unix seconds), when known (failover thresholds).
    pub wall_s: Option<u64>,
    /// The coordinator's replica is valid, so `policies` are the catalog's. A node that just
    /// rejoined has no replica until its snapshot arrives: it must not read "no catalog" as
    /// "every group was removed".
    pub catalog_known: bool,
    /// `Mutation::HandBackHeldAlone`: the rule of `reassign` for a group handed back is broken.
    pub hand_back_held_alone: bool,
}

/// The policies of every group: the built-in test groups, then the catalog's (a catalog group
/// on a built-in slot is left out: the test group was there first).
pub(crate) fn policies(builtin: u64, catalog: &Catalog) -> Vec<Policy> {
    let mut policies: Vec<Policy> = ids(builtin)
        .map(|home| Policy {
            slot: home,
            preferred: vec![home],
            possible: 0,
            failback: Failback::Off,
            target: 0,
            spec: None,
        })
        .collect();
    for group in &catalog.groups {
        if builtin & bit(group.slot) == 0 {
            policies.push(Policy {
                slot: group.slot,
                preferred: group.preferred.clone(),
                possible: group.possible,
                failback: group.failback,
                target: group.target,
                spec: Some(group.clone()),
            });
        }
    }
    policies.sort_by_key(|policy| policy.slot);
    policies
}

impl Policy {
    /// The node the rule prefers among `candidates`: the move target, then the preferred
    /// nodes in order, then the candidate with the fewest groups in `load` (per node id - 1;
    /// the lowest id among equals); 0 when there is none.
    fn best(&self, candidates: u64, load: &[u32]) -> u8 {
        if self.target != 0 && candidates & bit(self.target) != 0 {
            return self.target;
        }
        self.preferred
            .iter()
            .copied()
            .find(|node| candidates & bit(*node) != 0)
            .or_else(|| ids(candidates).min_by_key(|node| (load[usize::from(node - 1)], *node)))
            .unwrap_or(0)
    }

    /// Position in the preference order (target first, unlisted nodes last).
    fn rank(&self, node: u8) -> usize {
        if self.target != 0 && node == self.target {
            return 0;
        }
        self.preferred
            .iter()
            .position(|preferred| *preferred == node)
            .map_or(usize::MAX, |position| position + 1)
    }

    fn allows(&self, node: u8) -> bool {
        self.possible == 0 || self.possible & bit(node) != 0
    }

    /// Why the group must stay Failed (offline everywhere), if it must.
    pub fn blocked(&self, wall_s: Option<u64>) -> Option<String> {
        let (spec, now_s) = (self.spec.as_ref()?, wall_s?);
        spec.failover_blocked(now_s)
    }

    /// The node that holds the group now and may keep it: a member holding it, else its owner,
    /// if a candidate.
    fn keeper(entry_owner: u8, holder: Option<u8>, candidates: u64) -> Option<u8> {
        let current = holder.or_else(|| (entry_owner != 0).then_some(entry_owner))?;
        (candidates & bit(current) != 0).then_some(current)
    }

    /// Where the group goes, given its current holder (a member holding it) or owner. A group
    /// that may stay stays unless a move target, or a failback to a node it prefers, takes it:
    /// never merely to even out the load.
    fn choose(
        &self,
        entry_owner: u8,
        holder: Option<u8>,
        candidates: u64,
        hour: Option<u8>,
        load: &[u32],
    ) -> u8 {
        let best = self.best(candidates, load);
        let Some(current) = Policy::keeper(entry_owner, holder, candidates) else {
            // No holder, or one that may not keep it (it refuses it, or it is no longer a
            // possible owner).
            return best;
        };
        if best == current || best == 0 {
            return current;
        }
        if self.target != 0 && best == self.target {
            // A move happens at once, whatever the failback policy.
            return best;
        }
        let failback_now = hour.is_some_and(|hour| self.failback.allows(hour));
        if failback_now && self.rank(best) < self.rank(current) {
            best
        } else {
            current
        }
    }
}

/// The table of a freshly formed cluster: `former` owns every group it may host, and every
/// other configured node is a possible holder until confirmed stopped.
pub(crate) fn formed(
    policies: &[Policy],
    configured: u64,
    former: u8,
    refusing: u64,
) -> Vec<GroupAssignment> {
    // Every slot, not just today's groups: a group added later is placed from this entry, and
    // any configured node may have held a group of that slot in an earlier life.
    let mut table = vec![
        GroupAssignment {
            owner: 0,
            unconfirmed: configured & !bit(former),
        };
        64
    ];
    for policy in policies {
        let candidates = if policy.allows(former) && refusing & bit(policy.slot) == 0 {
            bit(former)
        } else {
            0
        };
        table[usize::from(policy.slot - 1)] = GroupAssignment {
            owner: policy.best(candidates, &[0; 64]),
            unconfirmed: configured & !bit(former),
        };
    }
    table
}

pub(crate) fn empty_table() -> Vec<GroupAssignment> {
    vec![
        GroupAssignment {
            owner: 0,
            unconfirmed: 0
        };
        64
    ]
}

/// The table for a new membership. A member that holds a group keeps it unless the rule moves
/// it (then it stays a possible holder until its heartbeat shows it stopped); a member that
/// does not hold a group is not a possible holder of it. The coordinator's own table may
/// predate a view in which an outsider was given a group, so each outsider is a possible
/// holder of every group it does not provably not hold.
pub(crate) fn reassign(
    table: &[GroupAssignment],
    policies: &[Policy],
    facts: &Facts<'_>,
) -> Vec<GroupAssignment> {
    let members = facts.members;
    assert_eq!(members & facts.outsiders, 0);
    assert!(members != 0);
    assert_eq!(table.len(), 64);
    let holds = |node: u8, slot: u8| facts.holding_by_node[usize::from(node - 1)] & bit(slot) != 0;
    let candidates_of = |policy: &Policy| {
        ids(members)
            .filter(|node| policy.allows(*node))
            .filter(|node| facts.refusing_by_node[usize::from(node - 1)] & bit(policy.slot) == 0)
            .fold(0, |set, node| set | bit(node))
    };
    let holder_of = |slot: u8| ids(members).find(|member| holds(*member, slot));
    // Groups that may stay where they are are placed first, so that those that must go
    // somewhere (a lost owner's, a refused one, a new one) go to the nodes with the fewest
    // groups: a dead node's groups spread over the survivors.
    let mut order: Vec<&Policy> = policies.iter().collect();
    order.sort_by_cached_key(|policy| {
        let entry = table[usize::from(policy.slot - 1)];
        let keeper = Policy::keeper(entry.owner, holder_of(policy.slot), candidates_of(policy));
        (keeper.is_none(), policy.slot)
    });
    let mut load = [0u32; 64];
    let mut next = table.to_vec();
    for policy in order {
        let slot = policy.slot;
        let entry = table[usize::from(slot - 1)];
        let mut unconfirmed = entry.unconfirmed | facts.outsiders;
        let candidates = candidates_of(policy);
        let holder = holder_of(slot);
        let owner = if policy.blocked(facts.wall_s).is_some() {
            0
        } else {
            policy.choose(entry.owner, holder, candidates, facts.local_hour, &load)
        };
        if owner != 0 {
            load[usize::from(owner - 1)] += 1;
        }
        if entry.owner != 0 && members & bit(entry.owner) == 0 {
            unconfirmed |= bit(entry.owner);
        }
        for member in ids(members) {
            if holds(member, slot) {
                unconfirmed |= bit(member);
            } else {
                unconfirmed &= !bit(member);
            }
        }
        let kept_by_its_owner = owner != 0 && (owner == entry.owner || facts.hand_back_held_alone);
        if kept_by_its_owner
            && holds(owner, slot)
            && ids(members).filter(|m| holds(*m, slot)).count() == 1
        {
            // Its owner keeps it and holds it alone: every earlier holder was confirmed before
            // it went online, and no other member holds it. Not when it comes back to a node
            // that still holds it while stopping it: the owner it was given to meanwhile may
            // have started it (simulator seed 254398 --nodes 2: node 1, still stopping the
            // group it had handed to node 2, took it back alone and started it beside node 2).
            unconfirmed = 0;
        }
        if owner != 0 {
            unconfirmed &= !bit(owner);
        }
        next[usize::from(slot - 1)] = GroupAssignment { owner, unconfirmed };
    }
    for slot in 1..=64u8 {
        let entry = table[usize::from(slot - 1)];
        if entry.owner == 0 || policies.iter().any(|policy| policy.slot == slot) {
            continue;
        }
        if !facts.catalog_known && members & bit(entry.owner) != 0 {
            // Not known to be removed: its owner keeps it until a coordinator that knows the
            // catalog places it.
            continue;
        }
        // A removed group: no owner; whoever may still hold it stays a possible holder, so a
        // group that reuses the slot waits for them.
        let mut unconfirmed = entry.unconfirmed | facts.outsiders | bit(entry.owner);
        for member in ids(members) {
            if !holds(member, slot) {
                unconfirmed &= !bit(member);
            }
        }
        next[usize::from(slot - 1)] = GroupAssignment {
            owner: 0,
            unconfirmed,
        };
    }
    next
}

#[cfg(test)]
mod tests;
