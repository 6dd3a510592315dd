//! The survival rule and pruning, as pure functions (Tandem regroup, closing and pruning).

use std::collections::BTreeMap;

use super::bit;

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

/// The rule for every view a round must satisfy (its newest stabilized membership and every
/// newer acknowledged one): survives only if it survives against each. Any two survivor sets
/// judged this way intersect in every view, so two partitions cannot both go on.
pub(crate) fn judge_all(views: &[u64], survivors: u64, quorum_held: bool) -> Survival {
    assert!(!views.is_empty());
    let mut verdict = Survival::Survives;
    for view in views {
        match judge(*view, survivors & view, quorum_held) {
            Survival::Dies => return Survival::Dies,
            Survival::NeedsQuorum => verdict = Survival::NeedsQuorum,
            Survival::Survives => {}
        }
    }
    verdict
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
    fn every_view_must_be_satisfied() {
        // Stabilized {1..4}, acknowledged {1,2,3}: {1,2,3} survives both, {3,4} neither.
        let views = [0b1111, 0b0111];
        assert_eq!(judge_all(&views, 0b0111, false), Survival::Survives);
        assert_eq!(judge_all(&views, 0b1100, false), Survival::Dies);
        assert_eq!(judge_all(&views, 0b0011, false), Survival::NeedsQuorum);
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
