//! The failover timeline of one directed scenario, in ticks: a quiet two-node cluster (no
//! loss, no disk errors, no other fault) converges, then the node that owns the quorum lease
//! and holds a group crashes, and the survivor must win the quorum from a dead owner (it
//! watched the record, so it claims without a challenge unless the record named one), confirm
//! it stopped, and bring its group online. `wolfpack simulate --failover-timeline` prints it;
//! `tests/sim_scenarios.rs` bounds it. Every number is simulated ticks (10 ms), not wall time.

use super::cluster::{Cluster, RecordedKind};
use super::Params;
use crate::core::{bit, Event, Mutation};
use crate::prng::Prng;

/// When each step of the failover happened, in ticks after the crash (`None`: never, within
/// `FAILOVER_TICKS_MAX`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    pub seed: u64,
    pub victim: u8,
    pub survivor: u8,
    /// The simulated disk's latency bound for this seed (each operation takes 1 to this many).
    pub disk_latency_ticks_max: u64,
    pub silence_detected: Option<u64>,
    pub regroup_started: Option<u64>,
    /// A challenge written (`None` when the survivor, watching the record, claimed without one).
    pub challenge_issued: Option<u64>,
    /// Its claim of the quorum written.
    pub claim_issued: Option<u64>,
    pub quorum_won: Option<u64>,
    /// The survivor's membership of one stabilized (its epoch confirmed in the quorum record).
    pub stabilized_alone: Option<u64>,
    pub victim_confirmed_stopped: Option<u64>,
    pub group_online: Option<u64>,
}

/// How long the scenario runs after the crash before it gives up.
pub const FAILOVER_TICKS_MAX: u64 = 3000;

/// Runs the scenario drawn from `seed` (disk latency, clock drift and offsets, and when the
/// crash falls in the renewal cycle). `None` if the quiet cluster did not converge, or its
/// quorum owner held no group.
pub fn quorum_owner_crash(seed: u64) -> Option<Timeline> {
    let mut params = Params::from_seed(seed, Some(2), Mutation::None);
    params.networks = vec![1, 1];
    params.network.loss_per_mille = 0;
    params.network.duplicate_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    params.update_per_mille = 0;
    params.crash_all_per_100k = 0;
    params.catalog_groups = false;
    let mut prng = Prng::new(seed);
    let mut cluster = Cluster::new(params, &mut prng);
    for id in 1..=2 {
        if cluster.nodes[usize::from(id - 1)].host.is_none() {
            cluster.boot(id);
        }
    }
    let converged = (0..3000).any(|_| {
        cluster.run_tick();
        cluster.converged()
    });
    if !converged {
        return None;
    }
    // Anywhere in the renewal cycles, and well past the forming's confirmation window.
    let settle_ticks = 200 + prng.below(50);
    for _ in 0..settle_ticks {
        cluster.run_tick();
    }
    let owner = (1..=2u8).find(|&id| {
        cluster.nodes[usize::from(id - 1)]
            .core()
            .is_some_and(|node| node.status().quorum_owner)
    })?;
    let victim_groups = cluster.nodes[usize::from(owner - 1)].online;
    let group = crate::core::ids(victim_groups).next()?;
    let survivor = 3 - owner;
    cluster.recorded = Some(Vec::new());
    let crash_tick = cluster.tick;
    cluster.crash(owner);
    let mut timeline = Timeline {
        seed,
        victim: owner,
        survivor,
        disk_latency_ticks_max: cluster.params.disk.latency_ticks_max,
        ..Timeline::default()
    };
    for _ in 0..FAILOVER_TICKS_MAX {
        cluster.run_tick();
        let regrouping = cluster.nodes[usize::from(survivor - 1)]
            .core()
            .is_some_and(|node| node.status().regrouping);
        if regrouping && timeline.regroup_started.is_none() {
            timeline.regroup_started = Some(cluster.tick - crash_tick);
        }
        if cluster.nodes[usize::from(survivor - 1)].online & bit(group) != 0 {
            break;
        }
    }
    let recorded = cluster.recorded.take().unwrap_or_default();
    let first = |wanted: &dyn Fn(&RecordedKind) -> bool| {
        recorded
            .iter()
            .find(|entry| entry.node == survivor && wanted(&entry.what))
            .map(|entry| entry.tick - crash_tick)
    };
    timeline.silence_detected = first(
        &|what| matches!(what, RecordedKind::Event(Event::PeerSilent { peer }) if *peer == owner),
    );
    timeline.challenge_issued = first(
        &|what| matches!(what, RecordedKind::QuorumWrite { challenger, .. } if *challenger == survivor),
    );
    timeline.claim_issued = first(
        &|what| matches!(what, RecordedKind::QuorumWrite { owner, challenger: 0 } if *owner == survivor),
    );
    timeline.quorum_won = first(&|what| {
        matches!(
            what,
            RecordedKind::Event(Event::QuorumOwner { owned: true })
        )
    });
    timeline.stabilized_alone = first(
        &|what| matches!(what, RecordedKind::Event(Event::Stabilized { members, .. }) if *members == bit(survivor)),
    );
    timeline.victim_confirmed_stopped = first(
        &|what| matches!(what, RecordedKind::Event(Event::PeerStopped { peer, .. }) if *peer == owner),
    );
    timeline.group_online = first(
        &|what| matches!(what, RecordedKind::Resource { group: g, online: true } if *g == group),
    );
    Some(timeline)
}

impl Timeline {
    /// Each step's name and tick after the crash, in the order they happen.
    pub fn steps(&self) -> [(&'static str, Option<u64>); 8] {
        [
            ("silence detected", self.silence_detected),
            ("regroup started", self.regroup_started),
            ("challenge issued", self.challenge_issued),
            ("claim issued", self.claim_issued),
            ("quorum won", self.quorum_won),
            ("stabilized alone", self.stabilized_alone),
            ("victim confirmed down", self.victim_confirmed_stopped),
            ("group online", self.group_online),
        ]
    }

    /// A header line, then one line per step, ticks after the crash.
    pub fn render(&self) -> String {
        let mut text = format!(
            "seed {} (disk latency 1..{} ticks): node {} (quorum owner, group holder) crashed at tick 0; survivor node {}\n",
            self.seed, self.disk_latency_ticks_max, self.victim, self.survivor
        );
        for (name, ticks) in self.steps() {
            let ticks = ticks.map_or("never".to_string(), |ticks| ticks.to_string());
            text.push_str(&format!("  {name:<22} {ticks:>5}\n"));
        }
        text
    }
}
