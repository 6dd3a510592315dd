use super::*;

fn builtin(configured: u64) -> Vec<Policy> {
    policies(configured, &Catalog::default())
}

fn facts<'a>(members: u64, holding: &'a [u64], refusing: &'a [u64]) -> Facts<'a> {
    Facts {
        members,
        holding_by_node: holding,
        refusing_by_node: refusing,
        outsiders: 0,
        local_hour: Some(12),
        wall_s: Some(1_000_000),
        catalog_known: true,
        hand_back_held_alone: false,
    }
}

fn policy(slot: u8, preferred: &[u8], failback: Failback) -> Policy {
    Policy {
        slot,
        preferred: preferred.to_vec(),
        possible: 0,
        failback,
        target: 0,
        spec: None,
    }
}

#[test]
fn a_lost_owner_group_moves_and_remembers_the_lost_owner() {
    let configured = 0b111;
    let policies = builtin(configured);
    let none = vec![0u64; 64];
    let table = formed(&policies, configured, 1, 0);
    assert_eq!(
        table[1],
        GroupAssignment {
            owner: 1,
            unconfirmed: 0b110
        }
    );
    let mut holding = vec![0u64; 64];
    holding[0] = 0b111; // node 1 holds all three
    let after_join = reassign(&table, &policies, &facts(0b111, &holding, &none));
    assert_eq!(
        after_join[1],
        GroupAssignment {
            owner: 1,
            unconfirmed: 0
        }
    );
    // Node 1 is lost: group 2 goes home to node 2, group 1 to the lowest member, node 2.
    let nothing = vec![0u64; 64];
    let after_loss = reassign(&after_join, &policies, &facts(0b110, &nothing, &none));
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
    // A member holding a group keeps it; an outsider of a newer view is a possible holder.
    // Node 3 was not its owner (node 2 was): it may hold it only while stopping it, so the
    // earlier possible holder stays unconfirmed (a start waits for it; holding online, node 3
    // keeps running it).
    let mut holding = vec![0u64; 64];
    holding[2] = 0b010; // node 3 holds group 2
    let mut with_views_facts = facts(0b110, &holding, &none);
    with_views_facts.outsiders = 0b001;
    let with_views = reassign(&after_loss, &policies, &with_views_facts);
    assert_eq!(
        with_views[1],
        GroupAssignment {
            owner: 3,
            unconfirmed: 0b001
        }
    );
    assert_eq!(with_views[0].unconfirmed, 0b001);
}

#[test]
fn a_move_target_takes_the_group_and_the_holder_stays_unconfirmed_until_it_stops() {
    let mut moved = policy(5, &[1, 2], Failback::Off);
    moved.target = 3;
    let none = vec![0u64; 64];
    let mut holding = vec![0u64; 64];
    holding[0] = bit(5);
    let mut table = empty_table();
    table[4] = GroupAssignment {
        owner: 1,
        unconfirmed: 0,
    };
    let next = reassign(&table, &[moved.clone()], &facts(0b111, &holding, &none));
    assert_eq!(
        next[4],
        GroupAssignment {
            owner: 3,
            unconfirmed: 0b001
        }
    );
    // Once node 1 reports it stopped, the next table has no one left to confirm.
    let nothing = vec![0u64; 64];
    let after = reassign(&next, &[moved], &facts(0b111, &nothing, &none));
    assert_eq!(
        after[4],
        GroupAssignment {
            owner: 3,
            unconfirmed: 0
        }
    );
}

#[test]
fn failback_follows_the_policy_and_the_window() {
    let none = vec![0u64; 64];
    let mut holding = vec![0u64; 64];
    holding[1] = bit(7); // node 2 holds group 7, which prefers node 1
    let mut table = empty_table();
    table[6] = GroupAssignment {
        owner: 2,
        unconfirmed: 0,
    };
    let owner = |failback: Failback, hour: Option<u8>| {
        let mut facts = facts(0b11, &holding, &none);
        facts.local_hour = hour;
        reassign(&table, &[policy(7, &[1, 2], failback)], &facts)[6].owner
    };
    assert_eq!(owner(Failback::Off, Some(12)), 2);
    assert_eq!(owner(Failback::Immediate, Some(12)), 1);
    let night = Failback::Window {
        from_hour: 22,
        to_hour: 6,
    };
    assert_eq!(owner(night, Some(12)), 2);
    assert_eq!(owner(night, Some(23)), 1);
    assert_eq!(owner(night, Some(3)), 1);
    assert_eq!(owner(night, None), 2, "an unknown hour opens no window");
}

#[test]
fn a_refusing_or_impossible_node_is_passed_over_and_no_candidate_means_no_owner() {
    let nothing = vec![0u64; 64];
    let mut refusing = vec![0u64; 64];
    refusing[0] = bit(4);
    let mut only_three = policy(4, &[1, 2, 3], Failback::Off);
    only_three.possible = bit(1) | bit(3);
    let table = empty_table();
    let next = reassign(
        &table,
        &[only_three.clone()],
        &facts(0b111, &nothing, &refusing),
    );
    assert_eq!(next[3].owner, 3, "1 refuses, 2 is not a possible owner");
    let next = reassign(&table, &[only_three], &facts(0b011, &nothing, &refusing));
    assert_eq!(next[3].owner, 0, "no member may host it");
    // A holder that starts refusing gives the group up.
    let mut holding = vec![0u64; 64];
    holding[0] = bit(4);
    let next = reassign(
        &table,
        &[policy(4, &[1, 2], Failback::Immediate)],
        &facts(0b011, &holding, &refusing),
    );
    assert_eq!(
        next[3],
        GroupAssignment {
            owner: 2,
            unconfirmed: 0b01
        }
    );
}

#[test]
fn a_group_that_failed_over_too_often_in_its_period_stays_offline_with_the_reason() {
    let spec = crate::core::catalog::GroupSpec {
        name: "web".into(),
        slot: 2,
        preferred: vec![1, 2],
        possible: 0,
        failback: Failback::Off,
        failover_threshold: 2,
        failover_period_s: 600,
        target: 0,
        failures: vec![1_000_000 - 700, 1_000_000 - 300, 1_000_000 - 100],
        refusals: Vec::new(),
        cleanup: 0,
    };
    let mut guarded = policy(2, &[1, 2], Failback::Off);
    guarded.spec = Some(spec.clone());
    let nothing = vec![0u64; 64];
    let table = empty_table();
    // Two failures inside the period: a third failover is still allowed.
    let next = reassign(&table, &[guarded.clone()], &facts(0b11, &nothing, &nothing));
    assert_eq!(next[1].owner, 1);
    assert!(guarded.blocked(Some(1_000_000)).is_none());
    let mut spec_more = spec;
    spec_more.failures.push(1_000_000 - 10);
    guarded.spec = Some(spec_more);
    let next = reassign(&table, &[guarded.clone()], &facts(0b11, &nothing, &nothing));
    assert_eq!(next[1].owner, 0, "three failures in 600 s, threshold 2");
    let reason = guarded.blocked(Some(1_000_000)).unwrap_or_default();
    assert!(
        reason.contains("failed 3 times in the last 600 s"),
        "{reason}"
    );
    // The failures expire on their own: 10 minutes later only one is inside the period.
    assert!(guarded.blocked(Some(1_000_000 + 400)).is_none());
    // Without a wall clock nothing is blocked (an unknown time must not strand a group).
    assert!(guarded.blocked(None).is_none());
}

/// Issue 17, finding 8: groups without a preference used to all land on the lowest node, and
/// all move to the next lowest when it died.
#[test]
fn groups_without_a_preference_spread_evenly_and_a_dead_nodes_groups_spread_over_the_rest() {
    let policies: Vec<Policy> = (1..=50)
        .map(|slot| policy(slot, &[], Failback::Off))
        .collect();
    let per_node = |table: &[GroupAssignment]| {
        let mut count = [0usize; 4];
        for entry in table {
            count[usize::from(entry.owner)] += 1;
        }
        count
    };
    let nothing = vec![0u64; 64];
    let first = reassign(&empty_table(), &policies, &facts(0b111, &nothing, &nothing));
    assert_eq!(per_node(&first), [14, 17, 17, 16]);
    // Each member holds what it was given; node 1 dies.
    let mut holding = vec![0u64; 64];
    for (index, entry) in first.iter().enumerate() {
        if entry.owner != 0 {
            holding[usize::from(entry.owner - 1)] |= bit(index as u8 + 1);
        }
    }
    holding[0] = 0;
    let mut survivors = facts(0b110, &holding, &nothing);
    survivors.outsiders = 0b001;
    let second = reassign(&first, &policies, &survivors);
    assert_eq!(per_node(&second)[2..], [25, 25]);
    // Nothing the survivors held moved to even out the load.
    for slot in 1..=50usize {
        if first[slot - 1].owner != 1 {
            assert_eq!(second[slot - 1].owner, first[slot - 1].owner, "slot {slot}");
        }
    }
    // Node 1 comes back: nothing moves to it merely to rebalance...
    let mut back = facts(0b111, &holding, &nothing);
    back.holding_by_node = &holding;
    let mut holding_after = vec![0u64; 64];
    for (index, entry) in second.iter().enumerate() {
        if entry.owner != 0 {
            holding_after[usize::from(entry.owner - 1)] |= bit(index as u8 + 1);
        }
    }
    back.holding_by_node = &holding_after;
    let third = reassign(&second, &policies, &back);
    assert_eq!(per_node(&third)[1..], [0, 25, 25]);
    // ...but a new group goes to it, the node with the fewest.
    let mut more = policies.clone();
    more.push(policy(51, &[], Failback::Off));
    assert_eq!(reassign(&second, &more, &back)[50].owner, 1);
}
