//! The resource workload (catalog seeds): resources added to, changed in and removed from the
//! catalog's groups through GUM at random nodes, so the group runner on every node runs real
//! dependencies under every fault the seed draws. Dependencies form chains and diamonds; some
//! resources do not affect their group, some have their role set offline, a few are of a type
//! the simulated monitor rejects (a broken configuration, never one that affects its group:
//! that group could never stay anywhere).
//!
//! Resource `gS-rI` always belongs to group `gS` (slot S) and depends only on resources of the
//! same group with a lower index, so no cycle can form. Resources never move between groups
//! unless `Params::workload_moves_resources` asks for it: see `resource_checker.rs` for why
//! that lets one run on two nodes.

use super::cluster::Cluster;
use super::monitor_sim::BROKEN_KIND;
use crate::core::db::{Op, Path, Update, Value};
use crate::prng::Prng;

/// The group slots `group_workload` uses.
const GROUP_SLOTS: u64 = 4;
/// Resources per group at most (`gS-r0` to `gS-r4`).
const RESOURCES_PER_GROUP: u64 = 5;
/// Chance per tick that some node submits a resource change, one in this many: enough that
/// most groups get a few resources within a run of 600 to 1500 ticks.
const CHANGE_ONE_IN_TICKS: u64 = 12;

/// Maybe changes a resource of the catalog, this tick.
pub fn step(cluster: &mut Cluster) {
    if !cluster.prng.chance(1, CHANGE_ONE_IN_TICKS) {
        return;
    }
    let id = cluster
        .prng
        .range_inclusive(1, u64::from(cluster.params.node_count)) as u8;
    let sim_node = &cluster.nodes[usize::from(id - 1)];
    // Mostly the groups that node's catalog has (resources of other groups are left out).
    let known_slots: Vec<u64> = sim_node.core().map_or_else(Vec::new, |node| {
        node.catalog()
            .groups
            .iter()
            .map(|group| u64::from(group.slot))
            .filter(|slot| (1..=GROUP_SLOTS).contains(slot))
            .collect()
    });
    let prng = &mut cluster.prng;
    let slot = match prng.below(known_slots.len() as u64 + 1) {
        0 => prng.range_inclusive(1, GROUP_SLOTS),
        pick => known_slots[pick as usize - 1],
    };
    let moves = cluster.params.workload_moves_resources;
    let body = random_change(prng, slot, moves);
    let sim_node = &cluster.nodes[usize::from(id - 1)];
    if sim_node.host.is_none() || sim_node.paused {
        return;
    }
    if let Some(body) = body {
        cluster.submit(id, body);
    }
}

fn path(text: &str) -> Option<Path> {
    Path::parse(text).ok()
}

fn put(ops: &mut Vec<Op>, text: &str, value: Value) {
    if let Some(path) = path(text) {
        ops.push(Op::Put { path, value });
    }
}

/// One change of one resource, encoded; None if it could not be (never expected: the paths
/// are fixed patterns and the update is small).
fn random_change(prng: &mut Prng, slot: u64, moves: bool) -> Option<Vec<u8>> {
    let index = prng.below(RESOURCES_PER_GROUP);
    let name = format!("g{slot}-r{index}");
    let key = |field: &str| format!("resources/{name}/{field}");
    let mut ops = Vec::new();
    match prng.below(10) {
        0..=6 if moves && prng.chance(1, 2) => moved_resource(prng, slot, &name, &mut ops),
        0..=6 => whole_resource(prng, slot, index, &name, &mut ops),
        7 => {
            let role = if prng.chance(1, 3) {
                "offline"
            } else {
                "online"
            };
            put(&mut ops, &key("role"), Value::Text(role.into()));
        }
        8 if prng.chance(1, 2) => {
            let depends = dependencies(prng, slot, index);
            put(&mut ops, &key("depends"), Value::Text(depends));
        }
        8 => {
            // `resource cleanup`: the runners forget its failures.
            let generation = prng.range_inclusive(1, 1_000_000);
            put(&mut ops, &key("cleanup"), Value::U64(generation));
        }
        _ => ops.extend(path(&format!("resources/{name}")).map(|path| Op::Delete { path })),
    }
    if ops.is_empty() {
        return None;
    }
    (Update { ops }).encode().ok()
}

/// Every key of resource `name` (so it replaces whatever was there before).
fn whole_resource(prng: &mut Prng, slot: u64, index: u64, name: &str, ops: &mut Vec<Op>) {
    let key = |field: &str| format!("resources/{name}/{field}");
    let broken = prng.chance(1, 25);
    let kind = if broken { BROKEN_KIND } else { "process" };
    // Short restart periods mostly, so a resource given up is tried again within the run;
    // now and then the default's length, so one given up stays Failed to the end.
    let restart_period_s = if prng.chance(1, 5) {
        900
    } else {
        prng.range_inclusive(2, 12)
    };
    let affects_group = !broken && prng.chance(7, 10);
    let role = if prng.chance(1, 10) {
        "offline"
    } else {
        "online"
    };
    put(ops, &key("group"), Value::Text(format!("g{slot}")));
    put(ops, &key("type"), Value::Text(kind.into()));
    put(
        ops,
        &key("params/command"),
        Value::Text(format!("serve {name}")),
    );
    let depends = dependencies(prng, slot, index);
    put(ops, &key("depends"), Value::Text(depends));
    put(
        ops,
        &key("restart-threshold"),
        Value::U64(prng.range_inclusive(0, 3)),
    );
    put(ops, &key("restart-period"), Value::U64(restart_period_s));
    put(
        ops,
        &key("looksalive"),
        Value::U64(prng.range_inclusive(1, 3)),
    );
    put(ops, &key("isalive"), Value::U64(prng.range_inclusive(2, 8)));
    // Always a timeout of a few seconds: a timed-out operation then fits in a run.
    put(ops, &key("timeout"), Value::U64(prng.range_inclusive(1, 3)));
    put(ops, &key("affects-group"), Value::Bool(affects_group));
    put(ops, &key("role"), Value::Text(role.into()));
}

/// `name` put into another group than its own, with no dependencies so that it can start
/// there (`Params::workload_moves_resources`: a gap the checkers expose, not a normal run).
fn moved_resource(prng: &mut Prng, slot: u64, name: &str, ops: &mut Vec<Op>) {
    let key = |field: &str| format!("resources/{name}/{field}");
    let other = (slot + prng.range_inclusive(1, GROUP_SLOTS - 1) - 1) % GROUP_SLOTS + 1;
    put(ops, &key("group"), Value::Text(format!("g{other}")));
    put(ops, &key("type"), Value::Text("process".into()));
    put(
        ops,
        &key("params/command"),
        Value::Text(format!("serve {name}")),
    );
    put(ops, &key("depends"), Value::Text(String::new()));
    put(ops, &key("role"), Value::Text("online".into()));
}

/// The dependencies of `gS-rI` among lower indexes, as the catalog writes them ("a,b"):
/// a chain link, two links (with the chain below, a diamond), the root (a star: with the
/// chain, diamonds again), or any subset.
fn dependencies(prng: &mut Prng, slot: u64, index: u64) -> String {
    let name = |lower: u64| format!("g{slot}-r{lower}");
    if index == 0 {
        return String::new();
    }
    let lower: Vec<u64> = match prng.below(4) {
        0 => vec![index - 1],
        1 if index >= 2 => vec![index - 2, index - 1],
        1 | 2 => vec![0],
        _ => (0..index).filter(|_| prng.chance(2, 5)).collect(),
    };
    lower.into_iter().map(name).collect::<Vec<_>>().join(",")
}
