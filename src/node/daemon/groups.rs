//! The daemon's side of groups: the core says which groups this node holds
//! (`Output::Resource`), and this file makes it so. Catalog groups go through the group runner
//! (`crate::runner`: dependencies, checks, restarts, failures), built-in test groups
//! (`--test-group`) start their one process directly. The runner's outputs come back here:
//! monitor commands, transitions for the event log, and the two answers the core needs,
//! `GroupStopped` (every resource confirmed offline) and `GroupFailed` (give the group up).

use super::Daemon;
use crate::core::catalog::FAILURES_KEPT_MAX;
use crate::core::db::{Op, Path, Update, Value};
use crate::core::{self, Input};
use crate::monitor;
use crate::node::catalog_commands::{GroupRuntime, ResourceRuntime, Runtime};
use crate::node::event_record::Transition;
use crate::runner::RunnerOutput;

/// How long a node refuses a group that failed on it when its resources name no restart
/// period (ms).
const REFUSE_MS_DEFAULT: u64 = 60_000;

impl Daemon {
    /// What `ctl groups|resources` show beside the catalog: each group's owner in this epoch's
    /// table and its state (the runner's when it runs here, the owner's node otherwise, or why
    /// it stays failed), each resource's state here.
    pub(super) fn catalog_runtime(&self, status: &core::Status) -> Runtime<'_> {
        let configured =
            (self.config.nodes.iter()).fold(0, |bits, node| bits | core::bit(node.node_id));
        let owners = status.owners.clone();
        let me = self.options.node_id;
        let member = status.stabilized && status.members & core::bit(me) != 0;
        let groups = self.runner.group_states();
        let resources = self.runner.resource_states();
        Runtime {
            configured_nodes: configured,
            group: Box::new(move |group| {
                let owner = owners
                    .get(usize::from(group.slot) - 1)
                    .copied()
                    .filter(|owner| *owner != 0 && member);
                let here = groups.iter().find(|state| state.slot == group.slot);
                let state = if let Some(reason) = self.core.group_blocked(group.slot) {
                    Some(format!("failed: {reason}"))
                } else if !member {
                    Some("unknown: this node is not a member".to_string())
                } else {
                    match (owner, here) {
                        (Some(owner), Some(run)) if owner == me => {
                            Some(describe(run.state.name(), &run.reason))
                        }
                        (Some(owner), _) if owner == me => Some("online-pending".to_string()),
                        (Some(owner), _) => Some(format!("on node {owner}")),
                        (None, _) => Some("offline: no node may host it now".to_string()),
                    }
                };
                GroupRuntime { owner, state }
            }),
            resource: Box::new(move |resource| {
                let state = resources
                    .iter()
                    .find(|state| state.resource == resource.name)
                    .map(|run| {
                        let mut text = describe(run.state.name(), &run.reason);
                        if let Some(failure) = &run.last_failure {
                            text.push_str(&format!(" (last failure: {failure})"));
                        }
                        text
                    });
                ResourceRuntime { state }
            }),
        }
    }

    /// The core's decision about group `slot` here.
    pub(super) fn group(&mut self, slot: u8, online: bool, now_ms: u64) {
        let bit = core::bit(slot);
        self.holding = if online {
            self.holding | bit
        } else {
            self.holding & !bit
        };
        let transition = if online { "online" } else { "offline" };
        log::info!(
            "node={} epoch={} group slot {slot} {transition} (core)",
            self.options.node_id,
            self.core.epoch()
        );
        if self.is_test_group(slot) {
            self.test_group(slot, online);
        } else {
            self.runner.group(slot, online, now_ms);
            self.drain_runner(now_ms);
        }
    }

    /// Whether a monitor resource is a test group's (`group-N`), not the runner's.
    pub(super) fn is_test_group_resource(&self, resource: &str) -> bool {
        resource
            .strip_prefix("group-")
            .and_then(|id| id.parse::<u8>().ok())
            .is_some_and(|slot| self.is_test_group(slot))
    }

    fn is_test_group(&self, slot: u8) -> bool {
        !self.options.test_groups.is_empty()
            && self.config.nodes.iter().any(|node| node.node_id == slot)
    }

    /// The catalog changed in the replica: the runner follows it.
    pub(super) fn catalog_changed(&mut self, now_ms: u64) {
        let catalog = self.core.catalog().clone();
        for problem in &catalog.problems {
            log::warn!("node={} catalog: {problem}", self.options.node_id);
        }
        self.runner.set_catalog(&catalog, now_ms);
        self.drain_runner(now_ms);
    }

    /// A monitor event about a resource of the runner's (not a test group's).
    pub(super) fn runner_monitor_event(&mut self, event: &monitor::Event, now_ms: u64) {
        self.runner.monitor_event(event, now_ms);
        self.drain_runner(now_ms);
    }

    pub(super) fn runner_tick(&mut self, now_ms: u64) {
        self.runner.tick(now_ms);
        self.drain_runner(now_ms);
    }

    pub(super) fn drain_runner(&mut self, now_ms: u64) {
        while let Some(output) = self.runner.poll_output() {
            match output {
                RunnerOutput::Monitor(command) => {
                    if let Err(error) = self.monitor.send(&command) {
                        log::error!(
                            "node={} cannot reach the resource monitor: {error}",
                            self.options.node_id
                        );
                    }
                }
                RunnerOutput::Transition {
                    group,
                    resource,
                    from,
                    to,
                    reason,
                } => {
                    let subject = match &resource {
                        Some(resource) => format!("resource {group}/{resource}"),
                        None => format!("group {group}"),
                    };
                    log::info!(
                        "node={} epoch={} {subject} {from} -> {to}: {reason}",
                        self.options.node_id,
                        self.core.epoch()
                    );
                    self.events.push_transition(&Transition {
                        group,
                        resource,
                        from: from.name().to_string(),
                        to: to.name().to_string(),
                        reason,
                    });
                }
                RunnerOutput::GroupStopped { slot } => {
                    if self.core.stopping_groups() & core::bit(slot) != 0 {
                        self.core.step(Input::GroupStopped { group: slot });
                    }
                }
                RunnerOutput::GroupFailed { slot, reason } => {
                    log::warn!(
                        "node={} group slot {slot} failed here: {reason}",
                        self.options.node_id
                    );
                    let refuse_ms = self.refuse_ms(slot);
                    self.core.step(Input::GroupFailed {
                        group: slot,
                        refuse_ms,
                    });
                    self.record_group_failure(slot);
                }
            }
        }
        let _ = now_ms;
    }

    /// A node refuses a group that failed on it for the longest restart period of its
    /// resources: by then their failure counts have expired too.
    fn refuse_ms(&self, slot: u8) -> u64 {
        let catalog = self.core.catalog();
        let Some(group) = catalog.group_by_slot(slot) else {
            return REFUSE_MS_DEFAULT;
        };
        catalog
            .resources
            .iter()
            .filter(|resource| resource.group == group.name)
            .map(|resource| u64::from(resource.restart_period_s) * 1000)
            .max()
            .unwrap_or(REFUSE_MS_DEFAULT)
    }

    /// Appends this failure's wall-clock time to `groups/G/failures`, so every coordinator
    /// counts it against the group's failover threshold. A concurrent change makes the update
    /// fail its precondition: the failure is then not counted, which errs toward moving the
    /// group once more, never toward stranding it.
    fn record_group_failure(&mut self, slot: u8) {
        let Some(group) = self.core.catalog().group_by_slot(slot).cloned() else {
            return;
        };
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let since = now_s.saturating_sub(u64::from(group.failover_period_s));
        let mut failures: Vec<u64> = group
            .failures
            .iter()
            .copied()
            .filter(|at| *at > since)
            .collect();
        failures.push(now_s);
        let keep_from = failures.len().saturating_sub(FAILURES_KEPT_MAX);
        let text: Vec<String> = failures[keep_from..].iter().map(u64::to_string).collect();
        let Ok(path) = Path::parse(&format!("groups/{}/failures", group.name)) else {
            return;
        };
        let version = self.core.database().version(&path);
        let update = Update {
            ops: vec![
                Op::Require {
                    path: path.clone(),
                    version,
                },
                Op::Put {
                    path,
                    value: Value::Text(text.join(",")),
                },
            ],
        };
        match update.encode() {
            Ok(body) => {
                if let Err(error) = self.core.submit(body) {
                    log::warn!(
                        "node={} cannot record the failure of group {}: {error}",
                        self.options.node_id,
                        group.name
                    );
                }
            }
            Err(error) => log::warn!(
                "node={} cannot record the failure of group {}: {error}",
                self.options.node_id,
                group.name
            ),
        }
    }

    /// A built-in test group: one `process` resource named `group-N`.
    fn test_group(&mut self, group: u8, online: bool) {
        let resource = format!("group-{group}");
        let command = self
            .options
            .test_groups
            .iter()
            .find(|(id, _)| *id == group)
            .map(|(_, command)| command.clone());
        let has_command = command.is_some();
        let sent = match (online, command) {
            (true, Some(command)) => self.monitor.send(&monitor::Command::Start {
                resource: resource.clone(),
                kind: "process".into(),
                params: vec![("command".into(), command)],
                timeout_ms: None,
            }),
            (false, command) => {
                if command.is_some() {
                    self.stopping.insert(resource.clone());
                }
                self.monitor.send(&monitor::Command::Stop {
                    resource: resource.clone(),
                    timeout_ms: None,
                })
            }
            (true, None) => Ok(()),
        };
        if let Err(error) = sent {
            log::error!(
                "node={} cannot reach the resource monitor: {error}",
                self.options.node_id
            );
        }
        if !online && !has_command {
            // Nothing runs for this group here: stopped as soon as asked.
            self.core.step(Input::GroupStopped { group });
        }
        let transition = if online { "online" } else { "offline" };
        self.events.push(format!("group {group} {transition} here"));
    }

    /// The monitor confirmed a test group's resource offline: if the core asked for that
    /// stop, tell it.
    pub(super) fn test_group_stopped(&mut self, resource: &str) {
        let group = resource
            .strip_prefix("group-")
            .and_then(|id| id.parse::<u8>().ok());
        if let Some(group) = group {
            if self.core.stopping_groups() & core::bit(group) != 0 {
                self.core.step(Input::GroupStopped { group });
            }
        }
    }
}

fn describe(state: &str, reason: &str) -> String {
    if reason.is_empty() {
        state.to_string()
    } else {
        format!("{state}: {reason}")
    }
}
