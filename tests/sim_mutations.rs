//! Checkers with teeth: each deliberately broken rule is caught within a bounded number of seeds.

use wolfpack::core::Mutation;
use wolfpack::sim::{run, Params};

/// Every mutation must be caught within this many seeds (observed first catches: seeds 1, 7,
/// 2 and 1 for no-majority-rule, no-lease-wait, no-prune, stale-epoch).
const SEEDS_TO_CATCH_MAX: u64 = 60;

fn first_caught(mutation: Mutation) -> Option<(u64, String)> {
    (1..=SEEDS_TO_CATCH_MAX).find_map(|seed| {
        let (report, _) = run(Params::from_seed(seed, None, mutation));
        report
            .violations
            .first()
            .map(|violation| (seed, violation.description.clone()))
    })
}

#[test]
fn no_majority_rule_is_caught() {
    let caught = first_caught(Mutation::NoMajorityRule);
    assert!(caught.is_some(), "a minority partition survived unnoticed");
}

#[test]
fn no_lease_wait_is_caught() {
    let caught = first_caught(Mutation::NoLeaseWait);
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, text)| text.contains("online on nodes")),
        "{caught:?}"
    );
}

#[test]
fn no_prune_is_caught() {
    let caught = first_caught(Mutation::NoPrune);
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, text)| text.contains("decided with link")),
        "{caught:?}"
    );
}

#[test]
fn stale_epoch_is_caught() {
    let caught = first_caught(Mutation::StaleEpoch);
    assert!(caught.is_some(), "stale messages were accepted unnoticed");
}

#[test]
fn the_unmutated_rules_pass_the_same_seeds() {
    for seed in 1..=SEEDS_TO_CATCH_MAX {
        let (report, _) = run(Params::from_seed(seed, None, Mutation::None));
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
    }
}
