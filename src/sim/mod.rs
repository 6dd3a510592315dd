//! The seeded simulator (FoundationDB / TigerBeetle VOPR style): one seed decides everything
//! (node count, networks, loss, delay, duplication, partitions, crashes, pauses, disk latency,
//! errors and torn writes, clock drift within the bound the design assumes) and drives the
//! same `core::Node` as production. `checker.rs` runs after every step; after
//! `ticks_faulty` every fault heals and the cluster must converge within `converge_ticks_max`.

pub mod checker;
pub mod cli;
pub mod cluster;
pub mod disk;
pub mod group_workload;
pub mod gum_checker;
pub mod gum_workload;
pub mod monitor_sim;
pub mod network;
pub mod node_monitor;
pub mod resource_checker;
pub mod resource_workload;
pub mod timeline;
pub mod workload;

use std::collections::BTreeMap;

use crate::core::disk_records::Timing;
use crate::core::timeout::{DISK_IO_LATENCY_MAX_MS, TICK_MS};
use crate::core::Mutation;
use crate::prng::Prng;
use crate::runner::{RunnerMutation, StopFailure};
pub use checker::{Violation, ViolationKind};
use cluster::Cluster;
use disk::DiskParams;
use network::NetworkParams;
use workload::FaultKind;

/// Everything a seed decides.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    pub node_count: u8,
    pub networks: Vec<u8>,
    pub network: NetworkParams,
    pub disk: DiskParams,
    /// Mean ticks between fault starts.
    pub fault_interval_ticks: u64,
    pub fault_duration_ticks_max: u64,
    pub garbage_per_mille: u64,
    pub ticks_faulty: u64,
    pub converge_ticks_max: u64,
    pub mutation: Mutation,
    /// Chance per tick (per mille) that some node submits a database update.
    pub update_per_mille: u64,
    /// Chance per tick (per 100,000) that every node crashes at once (a partition in time).
    pub crash_all_per_100k: u64,
    /// A small shared disk: the log ring wraps and checkpoints happen within one run.
    pub small_disk: bool,
    /// Groups come from the replicated catalog (added, moved, removed by the workload, and
    /// failing on their owners) instead of one built-in group per node.
    pub catalog_groups: bool,
    /// A rule of the group runner broken on purpose (catalog seeds; `--mutate runner-...`).
    pub runner_mutation: RunnerMutation,
    /// The resource workload also moves resources between groups (catalog seeds), which the
    /// runner cannot do safely yet: only the test that shows it sets this.
    pub workload_moves_resources: bool,
    /// Coordinators waiting for their install's acknowledgements are cut off now and then
    /// (`workload::cut_a_deciding_coordinator`). Off only to replay a seed in the mix it was
    /// found in, before this fault existed.
    pub cut_deciding_coordinators: bool,
    /// Partitions are now and then partial: two sides that reach each other only through one
    /// bridge node (`FaultKind::Bridge`). Drawn after the other knobs.
    pub bridges: bool,
    /// The monitors' dead-man fires whether or not anything is held, as the real one does, so
    /// a node paused past `fence_timeout` restarts when it resumes. When false (half the
    /// seeds) a monitor fences only while its node holds something, and an idle node resumes
    /// with everything it knew before the pause: a harsher world than production's, in which
    /// the core's own rules (ARBITRATION.md) must keep a stale node safe without that help.
    pub idle_monitors_fence: bool,
    /// Each node's hardware watchdog (real ms), fed by its monitor on each ping, or none (half
    /// the seeds). With one, freezes of a whole node (daemon, monitor and resources) may last
    /// several lease expiries; without, they stay shorter than the resources' stop budget.
    pub watchdog_ms: Option<u64>,
    /// What a failed stop does on every node (`wolfpack node --stop-failure`): `Leave` only
    /// with a watchdog, as the daemon enforces (half the catalog seeds that have one).
    pub stop_failure: StopFailure,
    /// While the faults last, the simulated monitors now and then fail to stop a killed
    /// resource at all (`monitor_sim::STUCK_ONE_IN`): a hung agent, an address that cannot be
    /// removed. It runs on until its node reboots (a watchdog reset, a crash), or, under
    /// `StopFailure::Block`, until an administrator fixes it, `STUCK_FIX_TICKS` after the
    /// faults heal. Half the
    /// catalog seeds with a watchdog: without one, a node that loses its lease leaves such a
    /// resource running (ARBITRATION.md §6; `tests/sim_mutations.rs` shows the checker sees it).
    pub stuck_stops: bool,
}

/// Convergence bound after the last fault heals, in ticks (12 s). Worst case, summed from the
/// timeouts (`core::timeout`), with disk operations of at most 10 ticks:
/// a stuck regroup gives up (442); the lowest searching node waits to form, after a lost
/// challenge at most (281); its challenge runs a lease expiry plus four disk operations (141)
/// and makes its epoch durable (20); the others join in one round (60); a new owner confirms a
/// previous holder stopped by a fence acknowledgement or a lease expiry (141) and starts its
/// own lease through the mailbox check (30): 1115 ticks; then a leased filesystem of the group
/// gets its lease: a probe, a read, a challenge, the defence window and a renew interval, the
/// final read with the claim check, the claim (161): 1276 ticks. The sweeps observe at most
/// ~730 (~620 before resource leases).
pub const CONVERGE_TICKS_MAX: u64 = 1300;

/// Under `StopFailure::Block`, how long after the faults heal the stuck stops are fixed
/// (`Params::stuck_stops`): long enough for a resource stuck just before the heal to block.
pub const STUCK_FIX_TICKS: u64 = 1500;

/// What seeds with stuck stops add to the bound. Under `StopFailure::Leave` a resource stuck
/// just before the heal blocks `KILL_WAIT_MS_MAX` plus `STOP_ATTEMPTS_MAX` retries later (after
/// at most 3 s of timeout: 3 + 5 + 5 × 1.25 = 14.3 s), then its node leaves and its watchdog
/// resets it within the fence timeout, and only then does the cluster converge as above (19 s):
/// the bound holds about 14 s more. Under `StopFailure::Block` the stop is fixed
/// `STUCK_FIX_TICKS` after the heal, confirmed at the next retry (1.25 s), and the group comes
/// online where it is or moves (as after any stop, within the resource bound): 16.3 s more.
pub const STUCK_SETTLE_TICKS_MAX: u64 = 1700;

/// What catalog seeds add to the bound (6 s), for their resources. Worst case after the heal,
/// from the simulated monitor's limits (`monitor_sim.rs`) and the workload's timeouts (3 s at
/// most): a stop begun just before the heal times out (3 s), its processes outlive SIGKILL
/// (7 s at most), the runner learns it at its next retry (1 s), the rest of the group stops
/// top-down (4 quick stops, 1.6 s), and the next owner starts it bottom-up (5 quick starts,
/// 2 s): 14.6 s. The core converges meanwhile, so 18 s cover both. The sweeps observe at most
/// ~1100 ticks.
pub const RESOURCE_SETTLE_TICKS_MAX: u64 = 600;

impl Params {
    /// Draws every knob from `seed` (swarm testing); `node_count` overrides the drawn count.
    pub fn from_seed(seed: u64, node_count: Option<u8>, mutation: Mutation) -> Params {
        let mut prng = Prng::new(seed);
        let drawn_count = if prng.chance(1, 5) {
            prng.range_inclusive(9, 16)
        } else {
            prng.range_inclusive(1, 8)
        };
        let node_count = node_count.unwrap_or(drawn_count as u8);
        assert!((1..=64).contains(&node_count));
        let networks_max = prng.range_inclusive(1, 3);
        let networks = (0..node_count)
            .map(|_| prng.range_inclusive(1, networks_max) as u8)
            .collect();
        let mut params = Params {
            seed,
            node_count,
            networks,
            network: NetworkParams {
                loss_per_mille: prng.range_inclusive(0, 150),
                duplicate_per_mille: prng.range_inclusive(0, 50),
                delay_ticks_max: prng.range_inclusive(1, 5),
                late_per_mille: 0,
            },
            disk: DiskParams {
                latency_ticks_max: prng.range_inclusive(1, DISK_IO_LATENCY_MAX_MS / TICK_MS),
                error_per_mille: prng.range_inclusive(0, 30),
                torn_per_mille: 500,
            },
            fault_interval_ticks: prng.range_inclusive(30, 300),
            fault_duration_ticks_max: prng.range_inclusive(50, 600),
            garbage_per_mille: prng.range_inclusive(0, 20),
            ticks_faulty: prng.range_inclusive(600, 1500),
            converge_ticks_max: CONVERGE_TICKS_MAX,
            mutation,
            update_per_mille: if prng.chance(1, 8) {
                0
            } else {
                prng.range_inclusive(5, 400)
            },
            crash_all_per_100k: if prng.chance(1, 3) {
                prng.range_inclusive(10, 100)
            } else {
                0
            },
            small_disk: prng.chance(1, 2),
            // Drawn last, so the knobs above stay what earlier seeds had.
            catalog_groups: prng.chance(1, 3),
            runner_mutation: RunnerMutation::None,
            workload_moves_resources: false,
            cut_deciding_coordinators: true,
            bridges: false,
            idle_monitors_fence: prng.chance(1, 2),
            watchdog_ms: prng
                .chance(1, 2)
                .then(|| Timing::default().watchdog_timeout_max_ms()),
            stop_failure: StopFailure::Block,
            stuck_stops: false,
        };
        // Drawn after every other knob, so they stay what earlier seeds had.
        if prng.chance(1, 2) {
            params.network.late_per_mille = prng.range_inclusive(1, 40);
        }
        params.bridges = prng.chance(1, 2);
        if params.catalog_groups && params.watchdog_ms.is_some() {
            params.stuck_stops = prng.chance(1, 2);
            if prng.chance(1, 2) {
                params.stop_failure = StopFailure::Leave;
            }
        }
        if mutation == Mutation::WatchdogTimeoutTooLong {
            params.watchdog_ms = Some(3 * u64::from(Timing::default().lease_expiry_ms));
        }
        if params.catalog_groups {
            params.converge_ticks_max += RESOURCE_SETTLE_TICKS_MAX;
        }
        if params.stuck_stops {
            params.converge_ticks_max += STUCK_SETTLE_TICKS_MAX;
        }
        params
    }
}

/// What happened in one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub steps: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub garbage_injected: u64,
    pub deadman_stops: u64,
    pub stabilizations: u64,
    pub partitions_detected: u64,
    /// Lost peers confirmed stopped, by how (fence, expiry, ...).
    pub peers_stopped_by: BTreeMap<&'static str, u64>,
    /// Nodes leaving a membership, by reason.
    pub leaves_by_reason: BTreeMap<&'static str, u64>,
    pub converge_ticks: Option<u64>,
    pub violations: Vec<Violation>,
    pub messages_dropped_by_nodes: u64,
    /// Disk blocks the nodes rejected (torn or corrupt: failed CRC or checks).
    pub disk_records_rejected: u64,
    /// Writes a crash cut (`disk::tear`): a control record then reads as its old or new copy.
    pub disk_writes_torn: u64,
    /// FNV-1a over every event and resource change, in order: equal digests, equal runs.
    pub digest: u64,
    /// GUM: updates submitted, acknowledged, applied (events), numbers reused after their
    /// only appliers were gone, takeovers completed, checkpoints written, snapshots installed.
    pub gum: BTreeMap<&'static str, u64>,
    /// Resource leases: announced held, taken back, held at a crash, unavailable.
    pub leases: BTreeMap<&'static str, u64>,
    /// Catalog seeds: the runners' commands and the simulated monitors' answers, by kind.
    pub resources: BTreeMap<&'static str, u64>,
}

impl Report {
    /// Adds one node instance's drop counters (at its crash, or at the end of the run).
    pub fn add_dropped(&mut self, dropped: &crate::core::DropCounters) {
        self.messages_dropped_by_nodes +=
            dropped.undecodable + dropped.unknown_node + dropped.stale + dropped.unexpected;
        self.disk_records_rejected += dropped.disk_records_invalid;
    }

    pub fn count_fault(&mut self, kind: &FaultKind) {
        let name = match kind {
            FaultKind::Partition { .. } => "partition",
            FaultKind::Bridge { .. } => "bridge",
            FaultKind::OneWay { .. } => "one-way",
            FaultKind::NetworkDown { .. } => "network-down",
            FaultKind::Crash { .. } => "crash",
            FaultKind::Pause { .. } => "pause",
            FaultKind::Freeze { .. } => "freeze",
            FaultKind::Leave { .. } => "leave",
        };
        *self.faults.entry(name).or_insert(0) += 1;
    }

    pub fn count_gum(&mut self, name: &'static str) {
        *self.gum.entry(name).or_insert(0) += 1;
    }

    pub fn count_lease(&mut self, name: &'static str) {
        *self.leases.entry(name).or_insert(0) += 1;
    }
}

/// Runs one seed to the end (convergence, or the bound) and reports.
pub fn run(params: Params) -> (Report, Cluster) {
    let mut prng = Prng::new(params.seed ^ 0x5EED_5EED_5EED_5EED);
    let mut cluster = Cluster::new(params, &mut prng);
    let boot_ticks = 200;
    loop {
        if cluster.tick >= cluster.params.ticks_faulty
            && cluster.tick < cluster.params.ticks_faulty + 1
        {
            heal(&mut cluster);
        }
        // Late booters come up during the first ticks.
        if cluster.tick < boot_ticks && cluster.prng.chance(1, 50) {
            let id = cluster
                .prng
                .range_inclusive(1, u64::from(cluster.params.node_count))
                as u8;
            if cluster.nodes[usize::from(id - 1)].host.is_none()
                && cluster.nodes[usize::from(id - 1)].incarnation == 0
            {
                cluster.boot(id);
            }
        }
        if cluster.tick == cluster.params.ticks_faulty + STUCK_FIX_TICKS
            && cluster.params.stop_failure == StopFailure::Block
        {
            // A blocked group stays where it is until its stop succeeds: some time after the
            // faults, an administrator fixes what made it fail and the next cleanups succeed.
            cluster.unstick_stops();
        }
        workload::inject(&mut cluster);
        if cluster.tick < cluster.params.ticks_faulty {
            gum_workload::submit(&mut cluster);
            group_workload::step(&mut cluster);
        }
        cluster.run_tick();
        let healed_at = cluster.params.ticks_faulty + 1;
        if cluster.tick > healed_at && cluster.converged() {
            cluster.report.converge_ticks = Some(cluster.tick - healed_at);
            break;
        }
        if cluster.tick > healed_at + cluster.params.converge_ticks_max {
            let violation = Violation {
                tick: cluster.tick,
                kind: ViolationKind::NoConvergence,
                description: format!(
                    "no convergence within {} ticks after faults healed",
                    cluster.params.converge_ticks_max
                ),
            };
            cluster.checker.violations.push(violation);
            if cluster.trace {
                if let Some(node) = cluster.nodes.iter().find_map(|n| n.core()) {
                    println!("catalog: {:?}", node.catalog());
                }
                for sim_node in &cluster.nodes {
                    let status = sim_node.core().map(|node| node.status());
                    println!(
                        "paused={} online={:#b} {status:?}",
                        sim_node.paused, sim_node.online
                    );
                }
            }
            break;
        }
        if !cluster.checker.violations.is_empty() {
            break;
        }
    }
    let mut report = cluster.report.clone();
    report.violations = cluster.checker.violations.clone();
    report.disk_writes_torn = cluster.disk.torn;
    report
        .gum
        .insert("applied (events)", cluster.gum_checker.applied_events);
    report.gum.insert(
        "numbers reused after a takeover",
        cluster.gum_checker.reused_numbers,
    );
    for sim_node in &cluster.nodes {
        if let Some(node) = sim_node.core() {
            report.add_dropped(&node.status().dropped);
        }
    }
    (report, cluster)
}

/// Ends every fault: partitions heal, crashed nodes restart, paused nodes resume, never-booted
/// nodes boot; loss, duplication and disk errors stop.
fn heal(cluster: &mut Cluster) {
    let faults = std::mem::take(&mut cluster.faults);
    for fault in faults {
        cluster.apply_fault(&fault.kind, false);
    }
    cluster.network.heal();
    cluster.disk.params.error_per_mille = 0;

    for id in 1..=cluster.params.node_count {
        if cluster.nodes[usize::from(id - 1)].host.is_none() {
            cluster.boot(id);
        }
    }
    cluster.refresh_links();
}
