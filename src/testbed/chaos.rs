//! `wolfpack testbed chaos`: a seeded random fault schedule on real nodes, then heal and check.
//!
//! Per cluster size (2 nodes + disk, 5 nodes by default): build a bed, start every node with
//! one service group per node, start the prober, then until the duration is over run cycles:
//! one fault, held for a random time, undone. The faults are the simulator's mix
//! (`src/sim/workload.rs`) as far as real nodes allow: kill (the daemon alone), crash (the
//! whole node at once), a graceful leave (SIGTERM, started again at the heal), a crash of
//! every node at once (rarely), daemon pause, short whole-node freeze (with `--watchdog`, half
//! of them beyond the lease: the node's watchdog must crash it first), symmetric or one-way
//! partition, link down, disk stall, message loss and message duplication (nftables). A
//! quarter of the cycles then wait for the cluster to converge, the others go on while it is
//! still recovering. At the end everything is healed and the run checks the event log
//! (overlaps, with each crashed node's intervals closed at its crash), the samples (two names
//! in one round), that every group is online on exactly one node (stuck groups), and that
//! every database update a writer saw acknowledged during the faults is on every node (lost
//! updates).
//!
//! The seed decides every choice (fault, victims, times); real timing still differs between
//! runs, so a seed reproduces a schedule, not an interleaving. `actions.log` in the run
//! directory (kept when a check fails) has the schedule with CLOCK_MONOTONIC times, next to
//! `events.log` and the node logs.
use super::bed::{sleep_ms, Bed, BedOptions, GroupSource};
use super::faults::Direction;
use super::{samples, writer};
use crate::prng::Prng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Waits for convergence: generous, a loaded 2-core machine must not fail a correct run.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(60);
/// The longest whole-node freeze in the schedule without a watchdog: shorter than the lease
/// expiry (1000 ms), so a frozen node never loses its groups; a longer freeze needs a hardware
/// watchdog to be safe (the `freeze-node` scenario shows it).
const FREEZE_MS_MAX: u64 = 800;
/// With `--watchdog`, half the freezes last this long instead: past the 1000 ms lease expiry,
/// so the node's watchdog crashes it before the others take its groups over.
const FREEZE_BEYOND_LEASE_MS: (u64, u64) = (1100, 2500);

pub struct ChaosOptions {
    pub seed: u64,
    pub duration_s: u64,
    pub cluster_sizes: Vec<u8>,
    pub second_network: bool,
    pub binary: PathBuf,
    pub verbose: bool,
    /// A watchdog of this timeout (ms) on every node (`watchdog.rs`), and freezes beyond the
    /// lease in the schedule.
    pub watchdog_ms: Option<u64>,
}

/// What the checks found, summed over the clusters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosOutcome {
    pub cycles: u64,
    /// Event-log overlaps plus rounds in which the client got two names for one group.
    pub overlaps: u64,
    pub double_answers: u64,
    /// Acknowledged database updates missing on some node after the heal.
    pub lost_updates: u64,
    /// Database updates acknowledged during the run.
    pub updates_acknowledged: u64,
    pub stuck_groups: u64,
    /// Nodes crashed by their watchdog (with `--watchdog`).
    pub watchdog_crashes: u64,
}

impl ChaosOutcome {
    pub fn clean(&self) -> bool {
        self.overlaps == 0 && self.lost_updates == 0 && self.stuck_groups == 0
    }

    /// The last line of a run, exactly this shape.
    pub fn final_line(&self) -> String {
        format!(
            "cycles={} overlaps={} lost_updates={} stuck_groups={}",
            self.cycles, self.overlaps, self.lost_updates, self.stuck_groups
        )
    }
}

/// Runs every cluster size in turn and prints a summary per cluster.
pub fn run(options: &ChaosOptions) -> Result<ChaosOutcome, String> {
    let mut total = ChaosOutcome::default();
    for &nodes in &options.cluster_sizes {
        let outcome = run_cluster(options, nodes)?;
        total.cycles += outcome.cycles;
        total.overlaps += outcome.overlaps;
        total.double_answers += outcome.double_answers;
        total.stuck_groups += outcome.stuck_groups;
        total.lost_updates += outcome.lost_updates;
        total.updates_acknowledged += outcome.updates_acknowledged;
        total.watchdog_crashes += outcome.watchdog_crashes;
    }
    Ok(total)
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL of the daemon alone: its monitor fences its services and acknowledges.
    Kill(u8),
    /// The whole node at once (daemon, monitor, services), as a machine losing power: no
    /// fence acknowledgement, the survivors wait for its lease. Restarted at the heal.
    Crash(u8),
    /// A graceful leave (SIGTERM: stop the groups, non-member slot, tell the members, exit);
    /// started again at the heal.
    Leave(u8),
    PauseDaemon(u8),
    FreezeNode(u8),
    Partition(u64, Direction),
    LinkDown(u8, u8),
    /// Every disk operation of the node waits for the whole hold time.
    StallDisk(u8),
    /// The nodes of the mask each drop that percentage of the cluster datagrams they get.
    Loss(u64, u64),
    /// The nodes of the mask each send that percentage of their cluster datagrams twice.
    Duplicate(u64, u64),
    /// Every node crashes at once (a power loss of the room) and restarts at the heal: the
    /// cluster re-forms from the disk alone, with every acknowledged update.
    CrashAll,
}

impl Fault {
    fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill",
            Fault::Crash(_) => "crash",
            Fault::Leave(_) => "leave",
            Fault::PauseDaemon(_) => "pause",
            Fault::FreezeNode(_) => "freeze",
            Fault::Partition(_, Direction::Symmetric) => "partition",
            Fault::Partition(_, Direction::OneWay) => "one-way",
            Fault::LinkDown(..) => "link-down",
            Fault::StallDisk(_) => "disk-stall",
            Fault::Loss(..) => "loss",
            Fault::Duplicate(..) => "duplication",
            Fault::CrashAll => "crash-all",
        }
    }
}

/// One cycle in this many (on average) crashes every node at once.
const CRASH_ALL_ONE_IN: u64 = 40;

fn choose(prng: &mut Prng, bed: &Bed, nodes: u8) -> Fault {
    let victim = 1 + prng.below(u64::from(nodes)) as u8;
    // Crashes and freezes need the cgroup freezer.
    let whole_nodes = bed.can_freeze();
    if whole_nodes && prng.chance(1, CRASH_ALL_ONE_IN) {
        return Fault::CrashAll;
    }
    let kinds = if whole_nodes { 11 } else { 9 };
    match prng.below(kinds) {
        0 => Fault::Kill(victim),
        1 => Fault::Leave(victim),
        2 => Fault::PauseDaemon(victim),
        3 => Fault::Partition(prng.next_u64(), Direction::Symmetric),
        4 => Fault::Partition(prng.next_u64(), Direction::OneWay),
        5 => Fault::LinkDown(victim, prng.below(u64::from(bed.networks())) as u8),
        6 => Fault::StallDisk(victim),
        7 => Fault::Loss(prng.next_u64(), prng.range_inclusive(5, 60)),
        8 => Fault::Duplicate(prng.next_u64(), prng.range_inclusive(10, 100)),
        9 => Fault::Crash(victim),
        _ => Fault::FreezeNode(victim),
    }
}

/// Splits the nodes into two non-empty sides from `bits`.
fn sides(bits: u64, nodes: u8) -> (Vec<u8>, Vec<u8>) {
    let mask = 1 + bits % ((1u64 << nodes) - 2);
    (1..=nodes).partition(|node| mask & (1 << (node - 1)) != 0)
}

/// A non-empty set of the nodes (possibly all) from `bits`.
fn some_nodes(bits: u64, nodes: u8) -> Vec<u8> {
    let mask = 1 + bits % ((1u64 << nodes) - 1);
    (1..=nodes)
        .filter(|node| mask & (1 << (node - 1)) != 0)
        .collect()
}

/// How long a fault is held before the heal. A freeze stays shorter than the lease (see
/// `FREEZE_MS_MAX`), except with a watchdog, where half the freezes outlast it. Otherwise two thirds of the holds are short (100 to 700 ms: a partition or
/// loss healed around the 300 ms detection, a node back while the others still take it over)
/// and a third long (700 ms to 2.5 s, as before: past the 1 s lease, so takeovers, fences and
/// stalls beyond the lease complete while the fault lasts).
fn hold_ms(prng: &mut Prng, fault: Fault, watchdog: bool) -> u64 {
    match fault {
        Fault::FreezeNode(_) if watchdog && prng.chance(1, 2) => {
            prng.range_inclusive(FREEZE_BEYOND_LEASE_MS.0, FREEZE_BEYOND_LEASE_MS.1)
        }
        Fault::FreezeNode(_) => prng.range_inclusive(200, FREEZE_MS_MAX),
        _ if prng.chance(2, 3) => prng.range_inclusive(100, 700),
        _ => prng.range_inclusive(700, 2500),
    }
}

/// Applies `fault`; false when it was skipped because its victim was not running (still
/// restarting after an earlier fault), which is not an error.
fn apply(bed: &mut Bed, fault: Fault, hold_ms: u64) -> Result<bool, String> {
    let nodes = bed.options.nodes;
    let running = |bed: &mut Bed, node: u8| bed.daemon_pid(node).is_some();
    match fault {
        Fault::Kill(node) if running(bed, node) => bed.kill(node)?,
        Fault::Crash(node) if running(bed, node) => {
            bed.crash(node)?;
        }
        Fault::Leave(node) if running(bed, node) => bed.leave(node)?,
        Fault::PauseDaemon(node) if running(bed, node) => bed.pause(node)?,
        // So is one whose admin socket is not up yet (just restarted).
        Fault::StallDisk(node) if running(bed, node) => {
            if let Err(error) = bed.stall_disk(node, hold_ms) {
                bed.note(&format!("disk stall skipped: {error}"));
                return Ok(false);
            }
        }
        Fault::FreezeNode(node) => bed.freeze(node)?,
        Fault::Partition(bits, direction) => {
            let (a, b) = sides(bits, nodes);
            bed.partition(&a, &b, direction)?;
        }
        Fault::LinkDown(node, network) => bed.link(node, network, false)?,
        Fault::Loss(bits, percent) => bed.lose_messages(&some_nodes(bits, nodes), percent)?,
        Fault::Duplicate(bits, percent) => {
            bed.duplicate_messages(&some_nodes(bits, nodes), percent)?
        }
        Fault::CrashAll => {
            let all: Vec<u8> = (1..=nodes).collect();
            bed.crash_all(&all)?;
        }
        _ => {
            bed.note("skipped: the victim's daemon is not running");
            return Ok(false);
        }
    }
    Ok(true)
}

fn run_cluster(options: &ChaosOptions, nodes: u8) -> Result<ChaosOutcome, String> {
    let mut bed = Bed::create(BedOptions {
        nodes,
        groups: GroupSource::TestGroups,
        second_network: options.second_network,
        binary: options.binary.clone(),
        verbose: options.verbose,
        watchdog_ms: options.watchdog_ms,
        timing: disklayout::Timing::default(),
    })?;
    println!(
        "chaos: {nodes} nodes, seed {}, {} s, run {} ({})",
        options.seed,
        options.duration_s,
        bed.names.prefix,
        bed.dir.display()
    );
    bed.start_all()?;
    bed.converge(CONVERGE_DEADLINE)?;
    bed.start_prober()?;
    let sockets: Vec<PathBuf> = (1..=nodes).map(|node| bed.socket(node)).collect();
    let writer = writer::start(sockets.clone(), options.seed ^ 0x5752_4954);
    sleep_ms(500)?;
    let mut prng = Prng::new(options.seed ^ (u64::from(nodes) << 56));
    let until = Instant::now() + Duration::from_secs(options.duration_s);
    let mut outcome = ChaosOutcome::default();
    let mut unconverged = 0;
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    while Instant::now() < until {
        let fault = choose(&mut prng, &bed, nodes);
        let hold_ms = hold_ms(&mut prng, fault, options.watchdog_ms.is_some());
        bed.note(&format!(
            "cycle {}: {fault:?} for {hold_ms} ms",
            outcome.cycles
        ));
        if apply(&mut bed, fault, hold_ms)? {
            *kinds.entry(fault.kind()).or_default() += 1;
        } else {
            *kinds.entry("skipped").or_default() += 1;
        }
        sleep_ms(hold_ms)?;
        bed.heal()?;
        outcome.cycles += 1;
        // A quarter of the cycles wait for the cluster to converge (the next fault then hits
        // a whole cluster); the others go on while it still recovers, after at most a quarter
        // of a second, so faults also hit regroups, takeovers and restarting nodes. Every heal
        // restarts what exited, so the cluster cannot wear away; the end converges and checks.
        if prng.chance(1, 4) {
            if let Err(error) = bed.converge(Duration::from_secs(30)) {
                unconverged += 1;
                bed.note(&format!("not converged: {error}"));
            }
        } else {
            sleep_ms(prng.range_inclusive(0, 250))?;
        }
    }
    let acknowledged = writer.stop();
    let converged = bed.converge(CONVERGE_DEADLINE);
    sleep_ms(1000)?;
    outcome.updates_acknowledged = acknowledged.len() as u64;
    outcome.lost_updates = writer::lost(&sockets, &acknowledged, Duration::from_secs(30));
    let samples_path = bed.stop_prober();
    let holders = bed.holders();
    outcome.stuck_groups = holders.values().filter(|nodes| nodes.len() != 1).count() as u64;
    // The monitors' event log, with the intervals of crashed nodes closed at their crash.
    let report = bed.overlap_report();
    let text = std::fs::read_to_string(&samples_path).unwrap_or_default();
    let (samples, _) = samples::parse(&text);
    let doubles = samples::double_answers(&samples);
    outcome.double_answers = doubles.len() as u64;
    outcome.overlaps = report.overlaps.len() as u64 + outcome.double_answers;
    let watchdog_crashes = bed.watchdog_crashes();
    outcome.watchdog_crashes = watchdog_crashes.len() as u64;
    let watchdog_note = match options.watchdog_ms {
        Some(timeout_ms) => format!(
            ", {} watchdog crashes (W {timeout_ms} ms; nodes {:?})",
            watchdog_crashes.len(),
            watchdog_crashes
                .iter()
                .map(|fired| fired.node)
                .collect::<Vec<u8>>()
        ),
        None => String::new(),
    };
    println!(
        "chaos: {nodes} nodes: {} cycles ({unconverged} did not converge within 30 s), faults {kinds:?}{watchdog_note}, {} online intervals, {} overlaps, {} samples, {} rounds with two answers, {} updates acknowledged, {} lost, holders {holders:?}",
        outcome.cycles,
        report.intervals.len(),
        report.overlaps.len(),
        samples.len(),
        doubles.len(),
        outcome.updates_acknowledged,
        outcome.lost_updates
    );
    for (a, b) in &report.overlaps {
        println!("  overlap: {a:?} and {b:?}");
    }
    for double in doubles.iter().take(20) {
        println!("  two answers: {double:?}");
    }
    if let Err(error) = converged {
        println!("  not converged at the end: {error}");
    }
    if !outcome.clean() {
        bed.keep_files = true;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_nodes_is_never_empty_and_reaches_all() {
        for nodes in 2..=5u8 {
            let mut all = false;
            for bits in 0..1000 {
                let chosen = some_nodes(bits, nodes);
                assert!(!chosen.is_empty(), "{bits} {nodes}");
                assert!(chosen.iter().all(|&node| (1..=nodes).contains(&node)));
                all |= chosen.len() == usize::from(nodes);
            }
            assert!(all, "{nodes}");
        }
    }

    #[test]
    fn sides_are_never_empty() {
        for bits in 0..1000 {
            for nodes in 2..=5 {
                let (a, b) = sides(bits, nodes);
                assert!(!a.is_empty() && !b.is_empty(), "{bits} {nodes}");
                assert_eq!(a.len() + b.len(), usize::from(nodes));
            }
        }
    }
}
