//! Seeded random runs: random catalogs, random monitor outcomes and failures, random core
//! decisions and role or cleanup changes, random time. The runner's own assertions and the
//! fake monitor's checks run throughout; then every group must stop when told (each
//! `group(slot, false)` ends in `GroupStopped`), come online with a healthy monitor, and stop
//! again.

use super::bench::{edit, group, resource, Bench, Held, NOT_CONFIRMED};
use crate::core::catalog::{Catalog, ResourceSpec};
use crate::monitor::protocol::{Operation, Outcome};
use crate::runner::{RunnerOutput, State};
use std::collections::{BTreeMap, BTreeSet};

const SLOTS: [u8; 3] = [1, 2, 3];

/// xorshift64*: small and local, so the test depends on nothing else's sequence.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True `percent` times in a hundred.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len() as u64) as usize)
    }
}

fn random_catalog(rng: &mut XorShift) -> Catalog {
    let mut catalog = Catalog::default();
    for slot in SLOTS {
        let group_name = format!("g{slot}");
        catalog.groups.push(group(&group_name, slot));
        let count = rng.below(6);
        let mut names: Vec<String> = Vec::new();
        for index in 0..count {
            let name = format!("{group_name}r{index}");
            let depends: Vec<&str> = names
                .iter()
                .filter(|_| rng.percent(35))
                .map(String::as_str)
                .collect();
            let mut spec: ResourceSpec = resource(&name, &group_name, &depends);
            spec.restart_threshold = rng.below(4) as u32;
            spec.restart_period_s = 5 + rng.below(60) as u32;
            spec.looks_alive_s = rng.below(6) as u32;
            spec.is_alive_s = rng.below(20) as u32;
            spec.timeout_s = rng.percent(50).then(|| 1 + rng.below(10) as u32);
            spec.affects_group = rng.percent(65);
            spec.role_online = rng.percent(85);
            catalog.resources.push(spec);
            names.push(name);
        }
    }
    catalog
}

fn random_outcome(rng: &mut XorShift, operation: Operation) -> Outcome {
    let roll = rng.below(100);
    match operation {
        Operation::Start => match roll {
            0..=69 => Outcome::Success,
            70..=79 => Outcome::Failed("exit code 1".to_string()),
            80..=89 => Outcome::TimedOut,
            90..=94 => Outcome::Rejected("bad parameter".to_string()),
            _ => Outcome::OfflineNotConfirmed(NOT_CONFIRMED.to_string()),
        },
        Operation::Stop => match roll {
            0..=74 => Outcome::Success,
            75..=89 => Outcome::OfflineNotConfirmed(NOT_CONFIRMED.to_string()),
            90..=94 => Outcome::TimedOut,
            _ => Outcome::Failed("stop script failed, cleaned up".to_string()),
        },
        Operation::Check(_) => match roll {
            0..=84 => Outcome::Success,
            85..=92 => Outcome::Failed("not running".to_string()),
            93..=97 => Outcome::TimedOut,
            _ => Outcome::Rejected("not held".to_string()),
        },
    }
}

/// What the random run tracks beside the bench.
struct Tracker {
    /// Slots told `group(false)` and not yet answered with `GroupStopped`.
    owed: BTreeSet<u8>,
    /// How many reports were looked at.
    seen: usize,
    /// The last state of each (group, resource) by its transitions.
    states: BTreeMap<(String, Option<String>), State>,
}

impl Tracker {
    /// Looks at the new reports: transitions must chain, and `GroupStopped` pays a debt.
    fn observe(&mut self, bench: &Bench) {
        for report in &bench.reports[self.seen..] {
            match report {
                RunnerOutput::GroupStopped { slot } => {
                    self.owed.remove(slot);
                }
                RunnerOutput::Transition {
                    group,
                    resource,
                    from,
                    to,
                    ..
                } => {
                    assert_ne!(from, to, "a transition changes the state");
                    let key = (group.clone(), resource.clone());
                    let last = self.states.insert(key, *to).unwrap_or(State::Offline);
                    assert_eq!(last, *from, "{group}/{resource:?}: transitions must chain");
                }
                _ => {}
            }
        }
        self.seen = bench.reports.len();
        if let Some(deadline_ms) = bench.runner.next_deadline_ms() {
            assert!(
                deadline_ms > bench.now_ms,
                "a deadline tick already handled"
            );
        }
    }
}

fn hold(bench: &mut Bench, tracker: &mut Tracker, slot: u8, online: bool) {
    if online {
        tracker.owed.remove(&slot);
    } else {
        tracker.owed.insert(slot);
    }
    bench.hold(slot, online);
}

fn random_step(rng: &mut XorShift, bench: &mut Bench, tracker: &mut Tracker) {
    let roll = rng.below(100);
    match roll {
        0..=34 => {
            if bench.monitor.pending.is_empty() {
                return;
            }
            let index = rng.below(bench.monitor.pending.len() as u64) as usize;
            let operation = bench.monitor.pending[index].1;
            let outcome = random_outcome(rng, operation);
            let event = bench.monitor.resolve(index, outcome);
            bench.runner.monitor_event(&event, bench.now_ms);
            bench.pump();
        }
        35..=42 => {
            let online: Vec<String> = bench
                .monitor
                .held
                .iter()
                .filter(|(_, held)| **held == Held::Online)
                .map(|(name, _)| name.clone())
                .collect();
            if let Some(name) = rng.pick(&online).cloned() {
                bench.fail(&name);
            }
        }
        43..=52 => {
            let slot = SLOTS[rng.below(SLOTS.len() as u64) as usize];
            let online = rng.percent(60);
            hold(bench, tracker, slot, online);
        }
        53..=57 => {
            let names: Vec<String> = bench
                .catalog
                .resources
                .iter()
                .map(|r| r.name.clone())
                .collect();
            if let Some(name) = rng.pick(&names).cloned() {
                let flip_role = rng.percent(50);
                let changed = edit(&bench.catalog, &name, |spec| {
                    if flip_role {
                        spec.role_online = !spec.role_online;
                    } else {
                        spec.cleanup += 1;
                    }
                });
                bench.set_catalog(changed);
            }
        }
        _ => {
            let step_ms = rng.below(3_000);
            bench.advance(step_ms);
        }
    }
}

/// Answers everything with success and lets time pass (stop retries) until `done` holds.
fn converge(bench: &mut Bench, tracker: &mut Tracker, done: impl Fn(&Bench, &Tracker) -> bool) {
    for _ in 0..2_000 {
        if done(bench, tracker) {
            return;
        }
        if let Some((resource, _)) = bench.monitor.pending.first().cloned() {
            bench.answer(&resource, Outcome::Success);
        } else {
            bench.advance(1_000);
        }
        tracker.observe(bench);
    }
    panic!(
        "did not converge: pending {:?}, owed {:?}, groups {:?}",
        bench.pending(),
        tracker.owed,
        bench.runner.group_states()
    );
}

fn run(seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut bench = Bench::new(random_catalog(&mut rng));
    let mut tracker = Tracker {
        owed: BTreeSet::new(),
        seen: 0,
        states: BTreeMap::new(),
    };
    for _ in 0..1_500 {
        random_step(&mut rng, &mut bench, &mut tracker);
        tracker.observe(&bench);
    }

    for slot in SLOTS {
        hold(&mut bench, &mut tracker, slot, false);
    }
    tracker.observe(&bench);
    converge(&mut bench, &mut tracker, |bench, tracker| {
        tracker.owed.is_empty() && bench.monitor.held.is_empty()
    });

    for slot in SLOTS {
        hold(&mut bench, &mut tracker, slot, true);
    }
    converge(&mut bench, &mut tracker, |bench, _| {
        bench.monitor.pending.is_empty()
            && SLOTS
                .iter()
                .all(|slot| bench.group_state(*slot) == State::Online)
    });

    for slot in SLOTS {
        hold(&mut bench, &mut tracker, slot, false);
    }
    converge(&mut bench, &mut tracker, |bench, tracker| {
        tracker.owed.is_empty() && bench.monitor.held.is_empty()
    });
}

#[test]
fn random_monitor_outcomes_keep_the_invariants_and_every_stop_ends() {
    for seed in 1..=60 {
        let outcome = std::panic::catch_unwind(|| run(seed));
        assert!(outcome.is_ok(), "seed {seed} failed (see the panic above)");
    }
}
