//! Checkers with teeth: each deliberately broken rule is caught within a bounded number of seeds.

use wolfpack::core::Mutation;
use wolfpack::sim::{run, Params};

/// Every mutation must be caught within this many seeds.
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
fn gum_no_replay_is_caught() {
    let caught = first_caught(Mutation::GumNoReplay);
    assert!(
        caught.is_some(),
        "a dropped half-done update went unnoticed"
    );
}

#[test]
fn ack_before_log_is_caught() {
    let caught = first_caught(Mutation::AckBeforeLog);
    assert!(
        caught.is_some(),
        "acknowledging before the log write went unnoticed"
    );
}

#[test]
fn no_locker_succession_is_caught() {
    let caught = first_caught(Mutation::NoLockerSuccession);
    assert!(caught.is_some(), "two lockers went unnoticed");
}

#[test]
fn replay_keeps_duplicate_is_caught() {
    let caught = first_caught(Mutation::ReplayKeepsDuplicate);
    assert!(caught.is_some(), "the wrong duplicate won unnoticed");
}

#[test]
fn no_resource_lease_defence_is_caught() {
    let caught = first_caught(Mutation::NoResourceLeaseDefence);
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, text)| text.contains("resource lease")),
        "{caught:?}"
    );
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
