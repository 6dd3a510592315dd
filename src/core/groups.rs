//! Which node holds which group: the assignment installed with each membership.
//!
//! One test group per configured node (group id = its home node id; real resources are a later
//! issue). An owner still in the membership keeps its group (no failback yet); a lost owner's
//! group goes to its home node if present, else to the lowest member. The set of nodes that
//! may still hold a group (`unconfirmed`) travels with it: the new owner brings the group
//! online only once each is confirmed stopped.

use super::message::GroupAssignment;
use super::{bit, ids};

/// The table of a freshly formed cluster: `former` owns every group, and every other
/// configured node is a possible holder until confirmed stopped.
pub(crate) fn formed(configured: u64, former: u8) -> Vec<GroupAssignment> {
    let mut table = vec![
        GroupAssignment {
            owner: 0,
            unconfirmed: 0
        };
        64
    ];
    for group in ids(configured) {
        table[usize::from(group - 1)] = GroupAssignment {
            owner: former,
            unconfirmed: configured & !bit(former),
        };
    }
    table
}

/// The table for a new membership. `online_by_node[id - 1]` is what each participant reported
/// holding; a member that reported not holding a group is not a possible holder of it.
pub(crate) fn reassign(
    table: &[GroupAssignment],
    configured: u64,
    members: u64,
    online_by_node: &[u64],
) -> Vec<GroupAssignment> {
    assert!(members != 0);
    assert_eq!(table.len(), 64);
    let lowest_member = ids(members).next().expect("members is not empty");
    let mut next = table.to_vec();
    for group in ids(configured) {
        let entry = table[usize::from(group - 1)];
        let mut unconfirmed = entry.unconfirmed;
        let owner = if entry.owner != 0 && members & bit(entry.owner) != 0 {
            entry.owner
        } else {
            if entry.owner != 0 {
                unconfirmed |= bit(entry.owner);
            }
            if members & bit(group) != 0 {
                group
            } else {
                lowest_member
            }
        };
        for member in ids(members) {
            if online_by_node[usize::from(member - 1)] & bit(group) == 0 {
                unconfirmed &= !bit(member);
            }
        }
        if online_by_node[usize::from(owner - 1)] & bit(group) != 0 {
            // The owner holds it: every earlier holder was confirmed before it went online.
            unconfirmed = 0;
        }
        next[usize::from(group - 1)] = GroupAssignment { owner, unconfirmed };
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_owner_group_moves_and_remembers_the_lost_owner() {
        let configured = 0b111;
        let table = formed(configured, 1);
        assert_eq!(
            table[1],
            GroupAssignment {
                owner: 1,
                unconfirmed: 0b110
            }
        );
        let mut online = vec![0u64; 64];
        online[0] = 0b111; // node 1 holds all three
        let after_join = reassign(&table, configured, 0b111, &online);
        assert_eq!(
            after_join[1],
            GroupAssignment {
                owner: 1,
                unconfirmed: 0
            }
        );
        // Node 1 is lost: group 2 goes home to node 2, group 1 to the lowest member, node 2.
        online = vec![0u64; 64];
        let after_loss = reassign(&after_join, configured, 0b110, &online);
        assert_eq!(
            after_loss[1],
            GroupAssignment {
                owner: 2,
                unconfirmed: 0b001
            }
        );
        assert_eq!(
            after_loss[0],
            GroupAssignment {
                owner: 2,
                unconfirmed: 0b001
            }
        );
        assert_eq!(
            after_loss[2],
            GroupAssignment {
                owner: 3,
                unconfirmed: 0b001
            }
        );
    }
}
