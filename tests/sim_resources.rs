//! The simulator's catalog seeds run the real group runner against a simulated resource
//! monitor: they must actually exercise it (starts, stops, checks, failures, processes that
//! outlive SIGKILL, groups given up, dead-man fences), run clean, and replay exactly.

use std::collections::BTreeMap;
use wolfpack::core::Mutation;
use wolfpack::sim::{run, Params};

/// The catalog seeds among the first `seeds_max`.
fn catalog_seeds(seeds_max: u64) -> Vec<u64> {
    (1..=seeds_max)
        .filter(|seed| Params::from_seed(*seed, None, Mutation::None).catalog_groups)
        .collect()
}

/// Runs `seeds`: the violations found, and the resource totals.
fn run_share(seeds: &[u64]) -> (Vec<String>, BTreeMap<&'static str, u64>) {
    let mut failing = Vec::new();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in seeds {
        let (report, _) = run(Params::from_seed(*seed, None, Mutation::None));
        if let Some(violation) = report.violations.first() {
            failing.push(format!(
                "seed {seed}: {} (wolfpack simulate --seed {seed})",
                violation.description
            ));
        }
        for (what, count) in report.resources {
            *totals.entry(what).or_insert(0) += count;
        }
    }
    (failing, totals)
}

#[test]
fn catalog_seeds_run_resources_through_every_path_without_violations() {
    let seeds = catalog_seeds(200);
    assert!(seeds.len() >= 30, "{} catalog seeds", seeds.len());
    // Each seed is independent and deterministic: one share per core.
    let threads = std::thread::available_parallelism().map_or(2, |count| count.get());
    let shares: Vec<Vec<u64>> = (0..threads)
        .map(|index| seeds.iter().copied().skip(index).step_by(threads).collect())
        .collect();
    let results: Vec<(Vec<String>, BTreeMap<&'static str, u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || run_share(&share)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a seed panicked"))
            .collect()
    });
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failing = Vec::new();
    for (share_failing, share_totals) in results {
        failing.extend(share_failing);
        for (what, count) in share_totals {
            *totals.entry(what).or_insert(0) += count;
        }
    }
    assert!(failing.is_empty(), "{failing:#?}");
    for what in [
        "starts",
        "stops",
        "checks",
        "started",
        "stopped",
        "start failed or cancelled",
        "start timed out",
        "check failed or timed out",
        "failed while online",
        "offline not confirmed",
        "rejected",
        "groups given up by a runner",
        "monitors fenced",
    ] {
        assert!(
            totals.get(what).is_some_and(|count| *count > 0),
            "no '{what}' in {} catalog seeds: {totals:?}",
            seeds.len()
        );
    }
}

#[test]
fn a_catalog_seed_replays_exactly() {
    let seed = catalog_seeds(20)
        .into_iter()
        .next()
        .expect("a catalog seed among the first 20");
    let (first, _) = run(Params::from_seed(seed, None, Mutation::None));
    let (again, _) = run(Params::from_seed(seed, None, Mutation::None));
    assert!(first
        .resources
        .get("starts")
        .is_some_and(|count| *count > 0));
    assert_eq!(first.digest, again.digest);
    assert_eq!(first.steps, again.steps);
    assert_eq!(first.resources, again.resources);
}
