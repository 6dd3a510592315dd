//! Checkers with teeth: each deliberately broken rule is caught within a bounded number of seeds.

use wolfpack::core::disk_records::Timing;
use wolfpack::core::Mutation;
use wolfpack::runner::{RunnerMutation, StopFailure};
use wolfpack::sim::{run, Params, Violation, ViolationKind, STUCK_SETTLE_TICKS_MAX};

/// Every mutation must be caught within this many seeds.
const SEEDS_TO_CATCH_MAX: u64 = 60;
/// The bug classes issue 13's fresh seeds found hide in rarer schedules: their mutations must
/// be caught within this many seeds.
const RARE_SEEDS_TO_CATCH_MAX: u64 = 300;

fn first_caught(mutation: Mutation) -> Option<(u64, Violation)> {
    first_caught_within(mutation, SEEDS_TO_CATCH_MAX, None)
}

fn first_caught_within(
    mutation: Mutation,
    seeds: u64,
    nodes: Option<u8>,
) -> Option<(u64, Violation)> {
    (1..=seeds).find_map(|seed| {
        let (report, _) = run(Params::from_seed(seed, nodes, mutation));
        report
            .violations
            .first()
            .map(|violation| (seed, violation.clone()))
    })
}

/// Rare: since each node's wall clock advances (issue 17) the first default seed that catches it
/// is 344 (then 874, 1960 of 3000).
#[test]
fn a_fence_acknowledgement_of_another_requester_taken_for_ours_is_caught() {
    let caught = first_caught_within(Mutation::FenceAckAnyRequester, 1000, None);
    assert!(
        caught.as_ref().is_some_and(|(_, violation)| matches!(
            violation.kind,
            ViolationKind::GroupOnlineTwice | ViolationKind::FalseConfirmationPeerStopped
        )),
        "{caught:?}"
    );
}

/// On the two-node box, where the seed found it. Since the simulator runs the daemon's host
/// (issue 15) a node paused past the fence timeout restarts when its monitor spares nothing,
/// so only the seeds whose monitors spare idle nodes (`Params::idle_monitors_fence`) resume a
/// stale former: the first two-node seed that catches it is 12714 (of 15,000 searched).
#[test]
fn a_form_completed_across_two_quorum_ownerships_is_caught() {
    let caught = caught_on_mix_before_late_packets(Mutation::FormAcrossOwnerships, 12714, Some(2));
    assert!(caught.is_some(), "a stale form went unnoticed");
}

#[test]
fn a_half_that_stabilizes_before_the_quorum_record_names_its_epoch_is_caught() {
    let caught = first_caught_within(
        Mutation::HalfWithoutQuorumEpoch,
        RARE_SEEDS_TO_CATCH_MAX,
        None,
    );
    assert!(
        caught.as_ref().is_some_and(
            |(_, violation)| violation.kind == ViolationKind::QuorumRecordMissesHalfEpoch
        ),
        "{caught:?}"
    );
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
            .is_some_and(|(_, violation)| violation.kind == ViolationKind::GroupOnlineTwice),
        "{caught:?}"
    );
}

#[test]
fn no_prune_is_caught() {
    let caught = first_caught(Mutation::NoPrune);
    assert!(
        caught.as_ref().is_some_and(
            |(_, violation)| violation.kind == ViolationKind::DecidedMembershipNotConnected
        ),
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

/// Since the simulator runs the daemon's host (issue 15) the first seed that catches it is 69.
#[test]
fn replay_keeps_duplicate_is_caught() {
    let caught = first_caught_within(
        Mutation::ReplayKeepsDuplicate,
        RARE_SEEDS_TO_CATCH_MAX,
        None,
    );
    assert!(caught.is_some(), "the wrong duplicate won unnoticed");
}

/// The first seed within the bound whose run with the runner's `mutation` breaks an invariant.
/// Only catalog seeds run the runner, so the others are skipped.
fn first_caught_in_runner(mutation: RunnerMutation) -> Option<(u64, Violation)> {
    (1..=SEEDS_TO_CATCH_MAX).find_map(|seed| {
        let mut params = Params::from_seed(seed, None, Mutation::None);
        if !params.catalog_groups {
            return None;
        }
        params.runner_mutation = mutation;
        let (report, _) = run(params);
        report
            .violations
            .first()
            .map(|violation| (seed, violation.clone()))
    })
}

/// A resource found running without its group, on two nodes, or without a dependency: what a
/// runner that lets a resource outlive its stop is caught by.
fn runs_where_it_must_not(kind: ViolationKind) -> bool {
    matches!(
        kind,
        ViolationKind::ResourceRunsWithoutItsGroup
            | ViolationKind::ResourceRunsOnTwoNodes
            | ViolationKind::ResourceRunsWithoutItsDependency
    )
}

#[test]
fn a_runner_that_takes_a_stop_as_confirmed_when_sent_is_caught() {
    let caught = first_caught_in_runner(RunnerMutation::StopUnconfirmed);
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, violation)| runs_where_it_must_not(violation.kind)),
        "{caught:?}"
    );
}

#[test]
fn a_runner_that_starts_before_the_dependencies_is_caught() {
    let caught = first_caught_in_runner(RunnerMutation::StartBeforeDependencies);
    assert!(
        caught.as_ref().is_some_and(|(_, violation)| matches!(
            violation.kind,
            ViolationKind::ResourceStartedBeforeItsDependency
                | ViolationKind::ResourceRunsWithoutItsDependency
        )),
        "{caught:?}"
    );
}

/// Catalog seeds in which every node has a watchdog and the simulated monitors now and then
/// fail to stop a resource at all (`Params::stuck_stops`), under `stop_failure`.
fn stuck_stop_params(seed: u64, stop_failure: StopFailure) -> Option<Params> {
    let mut params = Params::from_seed(seed, None, Mutation::None);
    if !params.catalog_groups {
        return None;
    }
    if !params.stuck_stops {
        params.stuck_stops = true;
        params.converge_ticks_max += STUCK_SETTLE_TICKS_MAX;
    }
    params.stop_failure = stop_failure;
    params.watchdog_ms = Some(Timing::default().watchdog_timeout_max_ms());
    Some(params)
}

/// The block keeps the group held: a runner that takes a failed stop as confirmed once its
/// retries are spent (the obvious fix of issue 17 that is wrong) lets the group start elsewhere
/// while the resource may still run.
#[test]
fn a_runner_that_takes_a_failed_stop_as_confirmed_is_caught() {
    let caught = (1..=SEEDS_TO_CATCH_MAX).find_map(|seed| {
        let mut params = stuck_stop_params(seed, StopFailure::Block)?;
        params.runner_mutation = RunnerMutation::FailedStopReleases;
        first_violation(params).map(|violation| (seed, violation))
    });
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, violation)| runs_where_it_must_not(violation.kind)),
        "{caught:?}"
    );
}

/// `StopFailure::Leave` is safe only with a watchdog (ARBITRATION.md §6): on the same seeds
/// with the watchdog, nothing is found; without it, a node that leaves on a failed stop lets
/// its monitor fence, which cannot stop the resource, and its daemon exit, so the resource runs
/// on without its group (and then beside the survivors' start of it).
#[test]
fn leaving_on_a_failed_stop_is_safe_with_a_watchdog_and_caught_without_one() {
    let mut left = 0;
    for seed in 1..=SEEDS_TO_CATCH_MAX {
        let Some(params) = stuck_stop_params(seed, StopFailure::Leave) else {
            continue;
        };
        let (report, _) = run(params);
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        left += report
            .resources
            .get("nodes left on a failed stop")
            .copied()
            .unwrap_or(0);
    }
    assert!(
        left > 0,
        "no node left on a failed stop: the seeds test nothing"
    );
    let caught = (1..=SEEDS_TO_CATCH_MAX).find_map(|seed| {
        let mut params = stuck_stop_params(seed, StopFailure::Leave)?;
        params.watchdog_ms = None;
        first_violation(params).map(|violation| (seed, violation))
    });
    assert!(
        caught.as_ref().is_some_and(|(_, violation)| matches!(
            violation.kind,
            ViolationKind::ResourceRunsWithoutItsGroup | ViolationKind::ResourceRunsOnTwoNodes
        )),
        "{caught:?}"
    );
}

/// A known gap, kept visible: a resource moved from a group held by one node to a group held
/// by another is stopped by the first while the second may already start it, since nothing
/// orders the two runners. Until the catalog forbids such a move (or the core orders it), the
/// workload does not draw one; this test shows the checker finds the double run when it does.
#[test]
fn a_resource_moved_between_groups_on_two_nodes_runs_on_both_and_is_caught() {
    // Rarer than a broken rule: both groups must be held by different nodes when it moves.
    const MOVE_SEEDS_MAX: u64 = 120;
    let caught = (1..=MOVE_SEEDS_MAX).find_map(|seed| {
        let mut params = Params::from_seed(seed, None, Mutation::None);
        if !params.catalog_groups {
            return None;
        }
        params.workload_moves_resources = true;
        let (report, _) = run(params);
        report
            .violations
            .iter()
            .find(|violation| violation.kind == ViolationKind::ResourceRunsOnTwoNodes)
            .map(|violation| (seed, violation.clone()))
    });
    assert!(caught.is_some(), "no double run found");
}

#[test]
fn no_resource_lease_defence_is_caught() {
    let caught = first_caught(Mutation::NoResourceLeaseDefence);
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, violation)| violation.kind == ViolationKind::ResourceLeaseHeldTwice),
        "{caught:?}"
    );
}

/// Rule 5 (ARBITRATION.md) checked where it is kept: the simulated monitor refuses a ping of a
/// node holding groups whose leases end sooner than the fence timeout (the dead-man and a
/// watchdog it feeds would outlast them). Before that check no overlap showed the mutation in
/// 15,000 seeds; now about one seed in fifteen does.
#[test]
fn feeding_the_watchdog_past_the_lease_is_caught() {
    let caught = first_caught(Mutation::WatchdogFeedPastLease);
    assert!(
        caught
            .as_ref()
            .is_some_and(|(_, violation)| violation.kind == ViolationKind::DeadmanPastLeaseAtPing),
        "{caught:?}"
    );
}

/// Rule 5 at a start: the simulated monitor refuses a start whose dead-man, armed by the last
/// ping (maybe an idle one just before), runs past the end of the node's leases. Two-node seed
/// 103 is the first of 1..3000 that catches it (924 in the default mix).
#[test]
fn starting_a_group_near_the_lease_deadline_is_caught() {
    let caught = caught_on_mix_before_late_packets(Mutation::StartNearDeadline, 103, Some(2));
    assert!(
        caught
            .as_ref()
            .is_some_and(|violation| violation.kind == ViolationKind::DeadmanPastLeaseAtStart),
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

/// Classes issue 13's sweeps found hide in schedules that random faults make about once in tens
/// of thousands of seeds: their mutations are caught on a seed found by searching (each also
/// runs clean unmutated, `tests/sim_seeds.rs`), not within a few hundred random seeds.
/// `newer-incarnation-confirms` and `acknowledged-epoch-is-a-view` have no such seed in the
/// current mix (searched 1..27,000 default and 1..50,000 two-node, and 1..20,000 two-node,
/// after late packets and bridges joined the mix): sweeps run them with `--mutate`, and the
/// watchdog's other mutation is caught by a directed scenario (`tests/sim_scenarios.rs`).
fn caught_on_mix(
    mutation: Mutation,
    seed: u64,
    nodes: Option<u8>,
    cut_deciding_coordinators: bool,
) -> Option<Violation> {
    let mut params = Params::from_seed(seed, nodes, mutation);
    params.cut_deciding_coordinators = cut_deciding_coordinators;
    first_violation(params)
}

fn first_violation(params: Params) -> Option<Violation> {
    let (report, _) = run(params);
    report.violations.first().cloned()
}

/// As `caught_on_mix`, in the mix before late packets and bridges joined it (issue 13): where
/// the seeds found before them still reach their schedules.
fn caught_on_mix_before_late_packets(
    mutation: Mutation,
    seed: u64,
    nodes: Option<u8>,
) -> Option<Violation> {
    let mut params = Params::from_seed(seed, nodes, mutation);
    params.network.late_per_mille = 0;
    params.bridges = false;
    first_violation(params)
}

/// The first two-node seed that catches it since the simulator runs the daemon's host (issue
/// 15): 63851 (the seed that found it, 254398, changed schedule; 1..63850 do not catch it).
#[test]
fn a_group_handed_back_to_a_node_still_stopping_it_counted_as_held_alone_is_caught() {
    let caught = caught_on_mix_before_late_packets(Mutation::HandBackHeldAlone, 63851, Some(2));
    assert!(
        caught
            .as_ref()
            .is_some_and(|violation| violation.kind == ViolationKind::GroupOnlineTwice),
        "{caught:?}"
    );
}

/// Found once partitions could be partial (`FaultKind::Bridge`): a bridge node answers both
/// sides' coordinators, and under the mutation it acknowledges the second install, judged from
/// a status it sent before it acknowledged the first. The succession check sees the second
/// membership stabilize without half of the first. Default-mix seed 4656 (1..4655 do not catch
/// it, 19200 and 24251 also do; before bridges, 1..15,000 did not).
#[test]
fn an_install_judged_without_the_membership_a_member_acknowledged_is_caught() {
    let caught = caught_on_mix(Mutation::InstallIgnoresJudgedViews, 4656, None, true);
    assert!(
        caught
            .as_ref()
            .is_some_and(|violation| violation.kind == ViolationKind::MembershipWithoutSuccession),
        "{caught:?}"
    );
}

/// A joiner's status that arrives after its sender joined must not start a round that decides
/// from it: found on two-node seed 13363 when late packets joined the mix, where the mutation
/// (the rule before) puts one group on both nodes (1..13362 do not catch it). Balanced
/// placement and the wall clock's reports (issue 17) changed that seed's schedule; a sweep of
/// the mutation found 11408150 (ten minutes of two-node seeds from 1 found none).
#[test]
fn a_late_joiner_status_counted_as_current_is_caught() {
    let caught = caught_on_mix(Mutation::LateJoinerStatusCounts, 11408150, Some(2), true);
    assert!(
        caught
            .as_ref()
            .is_some_and(|violation| violation.kind == ViolationKind::GroupOnlineTwice),
        "{caught:?}"
    );
}
