//! `wolfpack simulate --seed N | --seeds A..B [--nodes N] [--mutate NAME]`.
//!
//! Prints one line per failing seed with the command that reproduces it, a summary for sweeps
//! (seeds per second, faults injected by kind), and last, exactly `seeds=N violations=V`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{run, Params};
use crate::core::Mutation;
use crate::runner::RunnerMutation;

/// The seed being run, for the panic hook.
static CURRENT_SEED: AtomicU64 = AtomicU64::new(0);

/// Runs the command; returns the exit status (0 clean, 1 violations, 2 usage).
pub fn run_simulate(args: &[String]) -> i32 {
    let mut options = getopts::Options::new();
    options.optopt("", "seed", "run one seed", "N");
    options.optopt("", "seeds", "run seeds A..B (inclusive)", "A..B");
    options.optopt(
        "",
        "nodes",
        "node count (default: drawn from the seed)",
        "N",
    );
    options.optopt("", "mutate", "break one rule on purpose", "NAME");
    options.optflag("v", "verbose", "print one line per seed");
    options.optflag(
        "",
        "failover-timeline",
        "per seed: the two-node failover after a crash of the quorum owner, in ticks",
    );
    let matches = match options.parse(args) {
        Ok(matches) => matches,
        Err(error) => {
            eprintln!("wolfpack simulate: {error}");
            return 2;
        }
    };
    if let Some(extra) = matches.free.first() {
        eprintln!("wolfpack simulate: unexpected argument '{extra}'");
        return 2;
    }
    let seeds = match (matches.opt_str("seed"), matches.opt_str("seeds")) {
        (Some(seed), None) => match seed.parse::<u64>() {
            Ok(seed) => seed..=seed,
            Err(_) => return usage(&format!("--seed: not a number: '{seed}'")),
        },
        (None, Some(range)) => match parse_range(&range) {
            Some(range) => range,
            None => return usage(&format!("--seeds: expected A..B, got '{range}'")),
        },
        _ => return usage("give exactly one of --seed N or --seeds A..B"),
    };
    let nodes = match matches.opt_str("nodes").map(|text| text.parse::<u8>()) {
        None => None,
        Some(Ok(count)) if (1..=64).contains(&count) => Some(count),
        Some(_) => return usage("--nodes: expected 1..=64"),
    };
    if matches.opt_present("failover-timeline") {
        if matches.opt_present("nodes") || matches.opt_present("mutate") {
            return usage("--failover-timeline: two nodes, no mutation (no --nodes, no --mutate)");
        }
        return failover_timelines(seeds);
    }
    let mutation_name = matches.opt_str("mutate");
    let mutation =
        match mutation_name.as_deref() {
            None => Mutations::default(),
            Some(name) => match (Mutation::from_name(name), RunnerMutation::from_name(name)) {
                (Some(core), _) => Mutations {
                    core,
                    runner: RunnerMutation::None,
                },
                (None, Some(runner)) => Mutations {
                    core: Mutation::None,
                    runner,
                },
                (None, None) => return usage(
                    "--mutate: expected no-majority-rule, no-lease-wait, no-prune, stale-epoch, \
                     gum-no-replay, ack-before-log, no-locker-succession, replay-keeps-duplicate, \
                     no-resource-lease-defence, fence-ack-any-requester, form-across-ownerships, \
                     recovery-keeps-applied-position, half-without-quorum-epoch, \
                     membership-outlives-quorum, hand-back-held-alone, \
                     install-ignores-judged-views, acknowledged-epoch-is-a-view, \
                     newer-incarnation-confirms, late-joiner-status-counts, \
                     runner-stop-unconfirmed, runner-start-before-dependencies or \
                     runner-failed-stop-releases",
                ),
            },
        };
    let outcome = sweep(
        seeds,
        nodes,
        mutation,
        mutation_name.as_deref(),
        matches.opt_present("verbose"),
    );
    if outcome.violations > 0 {
        1
    } else {
        0
    }
}

/// Prints each seed's failover timeline and the median and maximum of each step.
fn failover_timelines(seeds: std::ops::RangeInclusive<u64>) -> i32 {
    use super::timeline::{quorum_owner_crash, Timeline};
    let mut timelines: Vec<Timeline> = Vec::new();
    for seed in seeds {
        match quorum_owner_crash(seed) {
            Some(timeline) => {
                print!("{}", timeline.render());
                timelines.push(timeline);
            }
            None => {
                println!("seed {seed}: no quiet two-node cluster with a group on its quorum owner")
            }
        }
    }
    println!(
        "ticks after the crash over {} seeds (10 ms each):",
        timelines.len()
    );
    let names = Timeline::default().steps().map(|(name, _)| name);
    let mut never_online = 0;
    for (index, name) in names.into_iter().enumerate() {
        let mut ticks: Vec<u64> = timelines
            .iter()
            .filter_map(|timeline| timeline.steps()[index].1)
            .collect();
        ticks.sort_unstable();
        let missing = timelines.len() - ticks.len();
        if name == "group online" {
            never_online = missing;
        }
        let never = if missing > 0 {
            format!("  (never in {missing})")
        } else {
            String::new()
        };
        match (ticks.get(ticks.len() / 2), ticks.last()) {
            (Some(median), Some(max)) => {
                println!("  {name:<22} median {median:>5}  max {max:>5}{never}")
            }
            _ => println!("  {name:<22} never"),
        }
    }
    i32::from(never_online > 0 || timelines.is_empty())
}

fn usage(message: &str) -> i32 {
    eprintln!("wolfpack simulate: {message}");
    2
}

fn parse_range(text: &str) -> Option<std::ops::RangeInclusive<u64>> {
    let (low, high) = text.split_once("..")?;
    let low = low.parse::<u64>().ok()?;
    let high = high.parse::<u64>().ok()?;
    (low <= high).then_some(low..=high)
}

/// The rules a sweep breaks on purpose: the core's, the group runner's (catalog seeds).
#[derive(Clone, Copy, Debug)]
pub struct Mutations {
    pub core: Mutation,
    pub runner: RunnerMutation,
}

impl Default for Mutations {
    fn default() -> Mutations {
        Mutations {
            core: Mutation::None,
            runner: RunnerMutation::None,
        }
    }
}

/// Totals of a sweep.
#[derive(Clone, Debug, Default)]
pub struct SweepOutcome {
    pub seeds: u64,
    pub violations: u64,
    pub failing_seeds: Vec<u64>,
}

/// Runs every seed, printing failures and the summary; the last line is `seeds=N violations=V`.
pub fn sweep(
    seeds: std::ops::RangeInclusive<u64>,
    nodes: Option<u8>,
    mutation: Mutations,
    mutation_name: Option<&str>,
    verbose: bool,
) -> SweepOutcome {
    let started = Instant::now();
    let mut outcome = SweepOutcome::default();
    // A core assertion aborts the process (panic = "abort" in release): say which seed first.
    let reproduce_suffix = format!(
        "{}{}",
        nodes
            .map(|count| format!(" --nodes {count}"))
            .unwrap_or_default(),
        mutation_name
            .map(|name| format!(" --mutate {name}"))
            .unwrap_or_default()
    );
    let default_hook = std::sync::Arc::new(std::panic::take_hook());
    let hook_for_panics = default_hook.clone();
    std::panic::set_hook(Box::new(move |info| {
        let seed = CURRENT_SEED.load(Ordering::SeqCst);
        println!("seed={seed} panicked: {info}");
        println!("  reproduce: wolfpack simulate --seed {seed}{reproduce_suffix}");
        hook_for_panics(info);
    }));
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut stopped_by: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut leaves_by: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut gum: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut leases: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut resources: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut garbage, mut converge_max, mut steps) = (0u64, 0u64, 0u64);
    let (mut datagrams_dropped, mut blocks_rejected) = (0u64, 0u64);
    for seed in seeds {
        CURRENT_SEED.store(seed, Ordering::SeqCst);
        let mut params = Params::from_seed(seed, nodes, mutation.core);
        params.runner_mutation = mutation.runner;
        let node_count = params.node_count;
        let (report, _) = run(params);
        outcome.seeds += 1;
        for (kind, count) in &report.faults {
            *faults.entry(kind).or_insert(0) += count;
        }
        garbage += report.garbage_injected;
        for (how, count) in &report.peers_stopped_by {
            *stopped_by.entry(how).or_insert(0) += count;
        }
        for (reason, count) in &report.leaves_by_reason {
            *leaves_by.entry(reason).or_insert(0) += count;
        }
        for (what, count) in &report.gum {
            *gum.entry(what).or_insert(0) += count;
        }
        for (what, count) in &report.leases {
            *leases.entry(what).or_insert(0) += count;
        }
        for (what, count) in &report.resources {
            *resources.entry(what).or_insert(0) += count;
        }
        datagrams_dropped += report.messages_dropped_by_nodes;
        blocks_rejected += report.disk_records_rejected;
        steps += report.steps;
        converge_max = converge_max.max(report.converge_ticks.unwrap_or(0));
        if verbose {
            println!(
                "seed={seed} nodes={node_count} steps={} faults={:?} converged_after_ticks={:?} violations={} digest={:016x}",
                report.steps,
                report.faults,
                report.converge_ticks,
                report.violations.len(),
                report.digest
            );
        }
        if let Some(first) = report.violations.first() {
            outcome.violations += report.violations.len() as u64;
            outcome.failing_seeds.push(seed);
            let mut command = format!("wolfpack simulate --seed {seed}");
            if let Some(nodes) = nodes {
                command.push_str(&format!(" --nodes {nodes}"));
            }
            if let Some(name) = mutation_name {
                command.push_str(&format!(" --mutate {name}"));
            }
            println!(
                "seed={seed} nodes={node_count} violation at tick {}: {}",
                first.tick, first.description
            );
            println!("  reproduce: {command}");
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    if outcome.seeds > 1 {
        println!(
            "seeds/s={:.1} steps={steps} converge_ticks_max_seen={converge_max}",
            outcome.seeds as f64 / seconds
        );
        let kinds: Vec<String> = faults
            .iter()
            .map(|(kind, count)| format!("{kind}={count}"))
            .collect();
        println!("faults: {} garbage-datagrams={garbage}", kinds.join(" "));
        println!("dropped by nodes: datagrams={datagrams_dropped} disk-blocks={blocks_rejected}");
        let stopped: Vec<String> = stopped_by
            .iter()
            .map(|(how, count)| format!("{how}={count}"))
            .collect();
        println!("lost peers confirmed stopped: {}", stopped.join(", "));
        let leaves: Vec<String> = leaves_by
            .iter()
            .map(|(why, count)| format!("{why}={count}"))
            .collect();
        println!("left a membership: {}", leaves.join(", "));
        let gum: Vec<String> = gum
            .iter()
            .map(|(what, count)| format!("{what}={count}"))
            .collect();
        println!("global updates: {}", gum.join(", "));
        let leases: Vec<String> = leases
            .iter()
            .map(|(what, count)| format!("{what}={count}"))
            .collect();
        println!("resource leases: {}", leases.join(", "));
        let resources: Vec<String> = resources
            .iter()
            .map(|(what, count)| format!("{what}={count}"))
            .collect();
        println!("resources (catalog seeds): {}", resources.join(", "));
    }
    println!("seeds={} violations={}", outcome.seeds, outcome.violations);
    drop(std::panic::take_hook());
    let _ = default_hook;
    outcome
}
