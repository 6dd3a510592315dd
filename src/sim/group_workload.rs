//! The group workload (seeds with `catalog_groups`): groups added, changed, moved and removed
//! through GUM at random nodes, `filesystem` resources added to and removed from them, and
//! groups failing on their owners, so placement (moves, failback, refusals, removals) and the
//! resource leases run under every fault the seed draws. The checker's "one holder per group"
//! and "one holder per resource lease" cover it; convergence also demands the rule's placement
//! and every leased resource's lease held by its group's holder.

use super::cluster::Cluster;
use crate::core::db::{Op, Path, Update, Value};
use crate::core::{bit, ids, Input, LEASED_RESOURCE_KIND};

/// Group slots the workload uses.
const SLOTS: u64 = 4;
/// Leased resources per group, `fs-gS-K` for K in 1..=this (their names never move between
/// groups: a lease is kept until its group stops).
const FILESYSTEMS_PER_GROUP: u64 = 2;

/// Maybe changes the catalog, or fails a group on its owner, this tick.
pub fn step(cluster: &mut Cluster) {
    if !cluster.params.catalog_groups {
        return;
    }
    if cluster.prng.chance(1, 120) {
        let count = u64::from(cluster.params.node_count);
        let id = cluster.prng.range_inclusive(1, count) as u8;
        let sim_node = &cluster.nodes[usize::from(id - 1)];
        if sim_node.host.is_some() && !sim_node.paused {
            let body = random_change(cluster);
            cluster.submit(id, body);
        }
    }
    if cluster.prng.chance(1, 400) {
        fail_a_group(cluster);
    }
    super::resource_workload::step(cluster);
}

fn path(text: &str) -> Path {
    match Path::parse(text) {
        Ok(path) => path,
        Err(error) => unreachable!("a fixed path pattern parses: {error}"),
    }
}

fn random_change(cluster: &mut Cluster) -> Vec<u8> {
    let count = u64::from(cluster.params.node_count);
    let prng = &mut cluster.prng;
    let slot = prng.range_inclusive(1, SLOTS);
    let group = format!("groups/g{slot}");
    let ops = match prng.below(10) {
        0..=4 => {
            let mut preferred: Vec<u64> = (1..=count).filter(|_| prng.chance(1, 2)).collect();
            // A few swaps shuffle the order.
            for _ in 0..preferred.len() {
                let a = prng.below(preferred.len() as u64) as usize;
                let b = prng.below(preferred.len() as u64) as usize;
                preferred.swap(a, b);
            }
            let preferred: Vec<String> = preferred.iter().map(u64::to_string).collect();
            let failback = if prng.chance(1, 2) {
                "immediate"
            } else {
                "off"
            };
            let mut ops = vec![
                Op::Put {
                    path: path(&format!("{group}/slot")),
                    value: Value::U64(slot),
                },
                Op::Put {
                    path: path(&format!("{group}/preferred")),
                    value: Value::Text(preferred.join(",")),
                },
                Op::Put {
                    path: path(&format!("{group}/failback")),
                    value: Value::Text(failback.into()),
                },
            ];
            if prng.chance(1, 4) {
                let possible: Vec<u8> = (1..=count as u8).filter(|_| prng.chance(2, 3)).collect();
                if !possible.is_empty() {
                    ops.push(Op::Put {
                        path: path(&format!("{group}/possible")),
                        value: Value::NodeList(possible),
                    });
                }
            } else {
                ops.push(Op::Delete {
                    path: path(&format!("{group}/possible")),
                });
            }
            for number in 1..=FILESYSTEMS_PER_GROUP {
                if prng.chance(1, 2) {
                    ops.extend(filesystem(slot, number));
                }
            }
            ops
        }
        // A target of a group that does not exist is harmless: without a slot key the catalog
        // leaves it out.
        5..=7 => vec![Op::Put {
            path: path(&format!("{group}/target")),
            value: Value::U64(prng.range_inclusive(1, count)),
        }],
        8 => vec![Op::Delete {
            path: path(&format!("{group}/target")),
        }],
        _ if prng.chance(1, 2) => vec![Op::Delete { path: path(&group) }],
        _ => {
            let number = prng.range_inclusive(1, FILESYSTEMS_PER_GROUP);
            vec![Op::Delete {
                path: path(&format!("resources/fs-g{slot}-{number}")),
            }]
        }
    };
    match (Update { ops }).encode() {
        Ok(bytes) => bytes,
        Err(error) => unreachable!("the workload builds small valid updates: {error}"),
    }
}

/// Puts leased resource `fs-gSLOT-NUMBER` into group `gSLOT`.
fn filesystem(slot: u64, number: u64) -> Vec<Op> {
    let resource = format!("resources/fs-g{slot}-{number}");
    let text = |key: &str, value: String| Op::Put {
        path: path(&format!("{resource}/{key}")),
        value: Value::Text(value),
    };
    vec![
        text("group", format!("g{slot}")),
        text("type", LEASED_RESOURCE_KIND.to_string()),
        text(
            "params/device",
            format!("/dev/disk/by-label/g{slot}-{number}"),
        ),
        text("params/directory", format!("/srv/g{slot}-{number}")),
        text("params/fstype", "ext4".to_string()),
    ]
}

/// A group fails on the node holding it: that node refuses it for a while.
fn fail_a_group(cluster: &mut Cluster) {
    let holders: Vec<(u8, u8)> = (1..=cluster.params.node_count)
        .flat_map(|id| {
            let online = cluster.nodes[usize::from(id - 1)].online;
            ids(online).map(move |group| (id, group))
        })
        .collect();
    if holders.is_empty() {
        return;
    }
    let (id, group) = holders[cluster.prng.below(holders.len() as u64) as usize];
    let sim_node = &cluster.nodes[usize::from(id - 1)];
    if sim_node.host.is_none() || sim_node.paused {
        return;
    }
    let refuse_ms = cluster.prng.range_inclusive(500, 4000);
    cluster.report.count_gum("groups failed");
    cluster.step(id, Input::GroupFailed { group, refuse_ms });
}

/// Convergence with catalog groups: every group online on exactly one node (checked by the
/// caller), the set online is the catalog's, and each sits where the rule puts it when every
/// node is a member: the move target if possible, else (failback immediate) the first
/// possible preferred node, else any possible node.
pub fn placed_as_the_rule_says(cluster: &Cluster, online: u64) -> bool {
    let Some(node) = cluster.nodes.iter().find_map(|sim_node| sim_node.core()) else {
        return false;
    };
    let catalog = node.catalog();
    if online != catalog.slots() {
        return false;
    }
    let all = cluster.all_nodes();
    catalog.groups.iter().all(|group| {
        let holder = (1..=cluster.params.node_count)
            .find(|id| cluster.nodes[usize::from(id - 1)].online & bit(group.slot) != 0);
        let Some(holder) = holder else {
            return false;
        };
        let possible = if group.possible == 0 {
            all
        } else {
            group.possible & all
        };
        if possible & bit(holder) == 0 {
            return false;
        }
        if group.target != 0 && possible & bit(group.target) != 0 {
            return holder == group.target;
        }
        let first_preferred = group
            .preferred
            .iter()
            .copied()
            .find(|id| possible & bit(*id) != 0);
        match (group.failback, first_preferred) {
            (crate::core::catalog::Failback::Immediate, Some(first)) => holder == first,
            _ => true,
        }
    })
}

/// Convergence with leased resources: the lease of each leased resource of a group is held by
/// the node that holds the group online, and by no other node.
pub fn leases_held_by_the_holders(cluster: &Cluster) -> bool {
    let Some(node) = cluster.nodes.iter().find_map(|sim_node| sim_node.core()) else {
        return false;
    };
    let catalog = node.catalog();
    let leased = catalog
        .resources
        .iter()
        .filter(|resource| resource.kind == LEASED_RESOURCE_KIND);
    leased.into_iter().all(|resource| {
        let Some(group) = catalog.group(&resource.group) else {
            return true;
        };
        let holders: Vec<u8> = (1..=cluster.params.node_count)
            .filter(|id| {
                let sim_node = &cluster.nodes[usize::from(id - 1)];
                sim_node.leases.contains_key(&resource.name)
            })
            .collect();
        let group_holder = (1..=cluster.params.node_count)
            .find(|id| cluster.nodes[usize::from(id - 1)].online & bit(group.slot) != 0);
        match group_holder {
            Some(holder) => holders == [holder],
            None => holders.is_empty(),
        }
    })
}
