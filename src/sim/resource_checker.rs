//! Resource invariants (catalog seeds), read from the simulated monitors' truth after every
//! step:
//! - a resource runs on at most one node at any instant;
//! - a resource runs only while each dependency it has required since it started runs on the
//!   same node (a dependency that failed by itself excuses its dependents until the runner
//!   stops them; a catalog change that drops a dependency stops requiring it);
//! - a resource runs only on a node whose core holds its group (online, or stopping and not
//!   yet told `GroupStopped`);
//! - a resource is started only once each of its dependencies is online on that node (started
//!   and not being stopped), checked when the start reaches the monitor; a dependency that
//!   just failed by itself, its report not yet read by the runner, excuses the start.
//!
//! Convergence (`converged`): every resource of every placed group whose role is online, and
//! whose dependencies are all in its group with role online, runs on the group's holder and
//! is up, unless the holder's runner gave it up (more failures in its restart period than its
//! threshold, or a rejected start) and a monitor made it fail during the run (`made_to_fail`),
//! or one of its dependencies is so excused; nothing else runs anywhere.
//!
//! Why the workload never moves a resource between groups: the runner of the old group's
//! holder stops it while the new group's holder may start it at once (nothing orders the two
//! nodes), so it would run on two nodes for the length of the stop. The first invariant
//! catches that (`tests/sim_mutations.rs` shows it); the catalog's rules must forbid such a
//! move, or the core must order it, before the workload may draw one.

use super::checker::{Finding, ViolationKind};
use super::cluster::Cluster;
use super::monitor_sim::SimMonitor;
use crate::core::bit;
use crate::core::catalog::Catalog;
use crate::runner::{ResourceStatus, State};
use std::collections::{BTreeMap, BTreeSet};

/// What the checker remembers across steps.
#[derive(Debug, Default)]
pub struct ResourceChecker {
    /// Every resource a monitor made fail during the run.
    pub made_to_fail: BTreeSet<String>,
    /// Some core's groups changed since the last check (the monitors keep their own flag).
    pub holding_changed: bool,
}

/// One live node as the checker sees it.
pub struct NodeTruth<'a> {
    pub node: u8,
    pub monitor: &'a SimMonitor,
    /// The groups its core holds: online, or stopping and not confirmed stopped.
    pub core_holding: u64,
}

/// The instant invariants; one finding per violation.
pub fn check_instant(nodes: &[NodeTruth<'_>]) -> Vec<Finding> {
    let mut violations = Vec::new();
    let mut running_on: BTreeMap<&str, u8> = BTreeMap::new();
    for truth in nodes {
        for (name, held) in truth.monitor.held() {
            if let Some(other) = running_on.insert(name, truth.node) {
                violations.push(Finding::new(
                    ViolationKind::ResourceRunsOnTwoNodes,
                    format!(
                        "resource {name} runs on nodes {other} and {} at once",
                        truth.node
                    ),
                ));
            }
            if truth.core_holding & bit_of(held.slot) == 0 {
                violations.push(Finding::new(
                    ViolationKind::ResourceRunsWithoutItsGroup,
                    format!(
                        "resource {name} runs on node {} whose core does not hold its group (slot {})",
                        truth.node, held.slot
                    ),
                ));
            }
            for needed in &held.required {
                if !truth.monitor.held().contains_key(needed) {
                    violations.push(Finding::new(
                        ViolationKind::ResourceRunsWithoutItsDependency,
                        format!(
                            "resource {name} runs on node {} without its dependency {needed}",
                            truth.node
                        ),
                    ));
                }
            }
        }
    }
    violations
}

/// A slot's bit, and no bit for slot 0 (a resource started in no group: never held).
fn bit_of(slot: u8) -> u64 {
    if (1..=64).contains(&slot) {
        bit(slot)
    } else {
        0
    }
}

/// A start of `resource` reaching the monitor of `node`: each of `depends` must be up there,
/// unless it just failed by itself and the runner has not read that yet.
pub fn check_start(
    node: u8,
    resource: &str,
    depends: &[String],
    monitor: &SimMonitor,
) -> Vec<Finding> {
    depends
        .iter()
        .filter(|needed| !monitor.held().get(*needed).is_some_and(|held| held.is_up()))
        .filter(|needed| !monitor.failure_unread(needed))
        .map(|needed| {
            Finding::new(
                ViolationKind::ResourceStartedBeforeItsDependency,
                format!(
                    "node {node} started {resource} while its dependency {needed} was not online there"
                ),
            )
        })
        .collect()
}

/// Whether every resource runs where and as the catalog says (see the module docs). The caller
/// has checked that every node runs one catalog and every group is placed once.
pub fn converged(cluster: &Cluster) -> bool {
    let Some(catalog) = cluster
        .nodes
        .iter()
        .find_map(|sim_node| sim_node.core().map(|node| node.catalog()))
    else {
        return false;
    };
    let mut expected: BTreeMap<String, u8> = BTreeMap::new();
    let mut allowed: BTreeMap<String, u8> = BTreeMap::new();
    for group in &catalog.groups {
        let Some(holder) = (1..=cluster.params.node_count)
            .find(|id| cluster.nodes[usize::from(id - 1)].online & bit(group.slot) != 0)
        else {
            return false;
        };
        let Some(host) = cluster.nodes[usize::from(holder - 1)].host.as_ref() else {
            return false;
        };
        let given_up: BTreeSet<String> = host
            .runner()
            .resource_states_at(cluster.local_ms(holder))
            .into_iter()
            .filter(|status| is_given_up(catalog, status))
            .map(|status| status.resource)
            .collect();
        let excused = |name: &str| {
            given_up.contains(name) && cluster.resource_checker.made_to_fail.contains(name)
        };
        for spec in catalog
            .resources
            .iter()
            .filter(|spec| spec.group == group.name)
        {
            match must_run(catalog, &group.name, &spec.name, &excused, 0) {
                Some(true) => {
                    expected.insert(spec.name.clone(), holder);
                    allowed.insert(spec.name.clone(), holder);
                }
                Some(false) => {
                    allowed.insert(spec.name.clone(), holder);
                }
                None => {}
            }
        }
    }
    let mut running: BTreeMap<&str, u8> = BTreeMap::new();
    for (index, sim_node) in cluster.nodes.iter().enumerate() {
        let Some(monitor) = sim_node.monitor.as_ref() else {
            continue;
        };
        for (name, held) in monitor.held() {
            let node = index as u8 + 1;
            if allowed.get(name.as_str()) != Some(&node) || !held.is_up() {
                return false;
            }
            running.insert(name, node);
        }
    }
    expected
        .iter()
        .all(|(name, holder)| running.get(name.as_str()) == Some(holder))
}

/// Whether the runner may keep `status`'s resource given up on its node: a rejected start (its
/// state may read Offline rather than Failed, after its role went offline and back), or a give-up
/// for its threshold that still stands. A give-up stands until a new failure would be restarted
/// in place, that is until fewer than the threshold (at least one) failures count within the
/// period (`src/runner/mod.rs`, as Pacemaker keeps a resource off a node while its fail count
/// reaches the migration threshold). Not "more failures than the threshold": that differs once
/// one of them expired, or once the catalog raised the threshold after the give-up (simulator
/// seed 106618: threshold 0 raised to 1 after one failure; the runner rightly kept it down).
fn is_given_up(catalog: &Catalog, status: &ResourceStatus) -> bool {
    let threshold = catalog
        .resource(&status.resource)
        .map_or(u32::MAX, |spec| spec.restart_threshold);
    let rejected = matches!(status.state, State::Failed | State::Offline)
        && status
            .last_failure
            .as_deref()
            .is_some_and(|failure| failure.starts_with("start rejected"));
    rejected || status.recent_failures >= (threshold as usize).max(1)
}

/// Whether resource `name` of `group` must run at convergence: Some(true) it must, Some(false)
/// it may be down (excused, or a dependency excused), None it must not run at all (role
/// offline, a dependency outside the group or not allowed, a cycle).
fn must_run(
    catalog: &Catalog,
    group: &str,
    name: &str,
    excused: &impl Fn(&str) -> bool,
    depth: usize,
) -> Option<bool> {
    let spec = catalog
        .resource(name)
        .filter(|spec| spec.group == group && spec.role_online)?;
    // Deeper than the group is large: a cycle, which never runs.
    if depth > catalog.resources.len() {
        return None;
    }
    let mut must = !excused(name);
    for needed in &spec.depends {
        match must_run(catalog, group, needed, excused, depth + 1) {
            Some(true) => {}
            Some(false) => must = false,
            None => return None,
        }
    }
    Some(must)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::monitor_sim::Start;

    /// A monitor of node `node` running `started` (name, slot, depends), each started in turn
    /// once what it needs is up.
    fn monitor_running(started: &[(&str, u8, &[&str])]) -> SimMonitor {
        let mut monitor = SimMonitor::new(7, 500, false);
        let mut now_ms = 0;
        for (name, slot, depends) in started {
            let depends: Vec<String> = depends.iter().map(|name| name.to_string()).collect();
            let start = Start {
                name,
                kind: "process",
                timeout_ms: Some(1_000),
                slot: *slot,
                depends: &depends,
            };
            monitor.start(&start, now_ms, false);
            now_ms += 1_000;
            monitor.advance(now_ms, false);
        }
        monitor
    }

    #[test]
    fn each_instant_check_fires_on_a_bad_truth_and_not_on_a_good_one() {
        let one = monitor_running(&[("db", 1, &[]), ("web", 1, &["db"])]);
        let good = [NodeTruth {
            node: 1,
            monitor: &one,
            core_holding: bit(1),
        }];
        assert_eq!(check_instant(&good), Vec::<Finding>::new());

        let other = monitor_running(&[("db", 1, &[])]);
        let twice = [
            NodeTruth {
                node: 1,
                monitor: &one,
                core_holding: bit(1),
            },
            NodeTruth {
                node: 2,
                monitor: &other,
                core_holding: bit(1),
            },
        ];
        let found = check_instant(&twice);
        assert!(
            found
                .iter()
                .any(|finding| finding.kind == ViolationKind::ResourceRunsOnTwoNodes),
            "{found:?}"
        );

        let not_held = [NodeTruth {
            node: 1,
            monitor: &one,
            core_holding: bit(2),
        }];
        let found = check_instant(&not_held);
        assert!(
            found
                .iter()
                .any(|finding| finding.kind == ViolationKind::ResourceRunsWithoutItsGroup),
            "{found:?}"
        );

        let mut orphan = monitor_running(&[("db", 1, &[]), ("web", 1, &["db"])]);
        orphan.stop("db", None, 3_000, false);
        orphan.advance(5_000, false);
        let alone = [NodeTruth {
            node: 1,
            monitor: &orphan,
            core_holding: bit(1),
        }];
        let found = check_instant(&alone);
        assert!(
            found
                .iter()
                .any(|finding| finding.kind == ViolationKind::ResourceRunsWithoutItsDependency),
            "{found:?}"
        );
    }

    #[test]
    fn a_start_before_its_dependency_is_up_is_caught_and_a_dropped_dependency_is_not_required() {
        let mut monitor = monitor_running(&[("db", 1, &[])]);
        let needs_db = ["db".to_string()];
        assert!(check_start(1, "web", &needs_db, &monitor).is_empty());
        let needs_cache = ["cache".to_string()];
        let found = check_start(1, "web", &needs_cache, &monitor);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].kind,
            ViolationKind::ResourceStartedBeforeItsDependency
        );

        let web = Start {
            name: "web",
            kind: "process",
            timeout_ms: None,
            slot: 1,
            depends: &needs_db,
        };
        monitor.start(&web, 2_000, false);
        monitor.advance(3_000, false);
        // The catalog drops the dependency: the runner may now stop db before web.
        monitor.catalog_changed(|_| Some(&[]));
        monitor.stop("db", None, 3_000, false);
        monitor.advance(4_000, false);
        let truth = [NodeTruth {
            node: 1,
            monitor: &monitor,
            core_holding: bit(1),
        }];
        assert_eq!(check_instant(&truth), Vec::<Finding>::new());
    }
}
