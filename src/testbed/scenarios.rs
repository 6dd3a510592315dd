//! One fault against the holder of a group, measured: what the netns test and the failover
//! benchmark run. The bed must be started, converged and probing.
use super::bed::{sleep_ms, Bed};
use super::faults::Direction;
use super::micros;
use std::time::Duration;

/// A fault aimed at a group's current holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// SIGKILL of the holder's daemon.
    Kill,
    /// SIGSTOP of the holder's daemon (its monitor fences it).
    PauseDaemon,
    /// The holder's whole node frozen (cgroup freezer) for `FROZEN_MS`, beyond its lease.
    FreezeNode,
    /// The holder cut from every other node, both ways.
    PartitionSymmetric,
    /// The other nodes stop hearing the holder; it still hears them.
    PartitionOneWay,
    /// Every shared-disk operation of the holder waits `DISK_STALL_MS`: it cannot renew its
    /// lease, so it must stop its groups and the others take them over.
    DiskStall,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill",
            Scenario::PauseDaemon => "pause-daemon",
            Scenario::FreezeNode => "freeze-node",
            Scenario::PartitionSymmetric => "partition",
            Scenario::PartitionOneWay => "partition-one-way",
            Scenario::DiskStall => "disk-stall",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        [
            Scenario::Kill,
            Scenario::PauseDaemon,
            Scenario::FreezeNode,
            Scenario::PartitionSymmetric,
            Scenario::PartitionOneWay,
            Scenario::DiskStall,
        ]
        .into_iter()
        .find(|scenario| scenario.name() == name)
    }
}

/// How long a whole node stays frozen: beyond the 1000 ms lease expiry, so the others take
/// its groups while it cannot run.
pub const FROZEN_MS: u64 = 2500;
/// How long a partition is held: the losing side must notice, stop, and the winner take over.
pub const PARTITION_MS: u64 = 4000;
/// How long the holder's disk stalls: three lease expiries (1000 ms).
pub const DISK_STALL_MS: u64 = 3000;
/// Generous waits (a loaded 2-core machine must not fail a correct run).
const DEADLINE: Duration = Duration::from_secs(60);

/// One fault, from injection to a converged cluster.
#[derive(Clone, Debug)]
pub struct Trial {
    pub scenario: Scenario,
    pub group: u8,
    pub victim: u8,
    pub fault_us: u64,
    pub healed_us: u64,
    /// Who held the group when the fault was healed.
    pub holder_at_heal: Option<u8>,
}

/// The node holding `group` (waiting until exactly one does).
pub fn holder(bed: &mut Bed, group: u8) -> Result<u8, String> {
    bed.wait_groups_placed(DEADLINE)?;
    bed.holders()
        .get(&group)
        .and_then(|nodes| nodes.first().copied())
        .ok_or(format!("group {group} is not online"))
}

/// Injects `scenario` against `group`'s holder, waits for the group to be served elsewhere
/// (or, for partitions, for the hold time), heals and waits for convergence.
pub fn trial(bed: &mut Bed, scenario: Scenario, group: u8) -> Result<Trial, String> {
    let victim = holder(bed, group)?;
    let others: Vec<u8> = (1..=bed.options.nodes).filter(|&n| n != victim).collect();
    let fault_us = micros();
    match scenario {
        Scenario::Kill => bed.kill(victim)?,
        Scenario::PauseDaemon => bed.pause(victim)?,
        Scenario::FreezeNode => bed.freeze(victim)?,
        Scenario::PartitionSymmetric => bed.partition(&[victim], &others, Direction::Symmetric)?,
        Scenario::PartitionOneWay => bed.partition(&[victim], &others, Direction::OneWay)?,
        Scenario::DiskStall => bed.stall_disk(victim, DISK_STALL_MS)?,
    }
    match scenario {
        Scenario::Kill | Scenario::PauseDaemon => {
            bed.wait_for(
                &format!("group {group} to leave node {victim}"),
                DEADLINE,
                |bed| {
                    bed.holders()
                        .get(&group)
                        .is_some_and(|nodes| nodes.len() == 1 && nodes[0] != victim)
                },
            )?;
            sleep_ms(300)?;
        }
        Scenario::FreezeNode => sleep_ms(FROZEN_MS)?,
        Scenario::DiskStall => {
            // The stall lasts its whole time even when the group moved sooner.
            bed.wait_for(
                &format!("group {group} to leave node {victim} (its disk stalled)"),
                DEADLINE,
                |bed| {
                    bed.holders()
                        .get(&group)
                        .is_some_and(|nodes| nodes.len() == 1 && nodes[0] != victim)
                },
            )?;
            let stalled_ms = (micros().saturating_sub(fault_us)) / 1000;
            sleep_ms(DISK_STALL_MS.saturating_sub(stalled_ms))?;
        }
        Scenario::PartitionSymmetric | Scenario::PartitionOneWay => sleep_ms(PARTITION_MS)?,
    }
    let holder_at_heal = bed
        .holders()
        .get(&group)
        .and_then(|nodes| (nodes.len() == 1).then(|| nodes[0]));
    let healed_us = micros();
    bed.converge(DEADLINE)?;
    sleep_ms(300)?;
    Ok(Trial {
        scenario,
        group,
        victim,
        fault_us,
        healed_us,
        holder_at_heal,
    })
}

/// When another node than `victim` first brought a resource online after `after_us` (the
/// monitors' event log): the first takeover of what the victim held.
pub fn first_takeover_us(bed: &Bed, victim: u8, after_us: u64) -> Option<u64> {
    let text = std::fs::read_to_string(bed.event_log()).unwrap_or_default();
    text.lines()
        .filter_map(super::overlap::parse_line)
        .filter(|line| line.online && line.node != victim && line.at > after_us)
        .map(|line| line.at)
        .min()
}

/// One line on what the watchdogs did during `trial`, relative to the fault: when each fired
/// and its node was gone, and when another node first took over (the crash must come first).
pub fn watchdog_summary(bed: &Bed, trial: &Trial) -> String {
    let relative = |at: u64| at as f64 / 1000.0 - trial.fault_us as f64 / 1000.0;
    let fired = bed.watchdog_crashes();
    let takeover = first_takeover_us(bed, trial.victim, trial.fault_us);
    let mut line = format!("watchdog_crashes={}", fired.len());
    for fired in &fired {
        line.push_str(&format!(
            " (node {} fired after {:.1} ms unfed at +{:.1} ms, crashed by +{:.1} ms)",
            fired.node,
            fired.unfed_us as f64 / 1000.0,
            relative(fired.fired_us),
            relative(fired.crashed_us)
        ));
    }
    match takeover {
        Some(at) => line.push_str(&format!(" first_takeover=+{:.1} ms", relative(at))),
        None => line.push_str(" first_takeover=none"),
    }
    if let (Some(fired), Some(at)) = (
        fired.iter().find(|fired| fired.node == trial.victim),
        takeover,
    ) {
        line.push_str(&format!(
            " crash_before_takeover_ms={:.1}",
            (at as f64 - fired.crashed_us as f64) / 1000.0
        ));
    }
    line
}
