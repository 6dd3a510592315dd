//! The host's side of groups: the core says which groups this node holds
//! (`Output::Resource`), and this file makes it so. Catalog groups go through the group runner
//! (`crate::runner`: dependencies, checks, restarts, failures); built-in test groups
//! (`--test-group`) start their one `process` resource directly. The runner's answers go back
//! to the core: `GroupStopped` (every resource confirmed offline), `GroupFailed` (give the
//! group up) and `Leave` (a stop failed: leave the cluster, `StopFailure::Leave`).

use super::{Host, HostOutput};
use crate::core::catalog::{Refusal, FAILURES_KEPT_MAX, REFUSAL_REASON_MAX};
use crate::core::db::{Op, Path, Update, Value};
use crate::core::{self, Input};
use crate::monitor::{self, Command, Operation, Outcome};
use crate::runner::RunnerOutput;

/// How long a node refuses a group that failed on it when its resources name no restart
/// period (ms).
const REFUSE_MS_DEFAULT: u64 = 60_000;

impl Host {
    /// The core's decision about group `slot` here.
    pub(super) fn group(&mut self, slot: u8, online: bool, now_ms: u64) {
        let bit = core::bit(slot);
        self.holding = if online {
            self.holding | bit
        } else {
            self.holding & !bit
        };
        self.outputs.push_back(HostOutput::Group { slot, online });
        if self.is_test_group(slot) {
            self.test_group(slot, online);
        } else {
            self.runner.group(slot, online, now_ms);
            self.runner_moved = true;
        }
    }

    pub(super) fn runner_output(&mut self, output: RunnerOutput, now_ms: u64) {
        match output {
            RunnerOutput::Monitor(command) => self.outputs.push_back(HostOutput::Monitor(command)),
            RunnerOutput::Transition {
                group,
                resource,
                from,
                to,
                reason,
            } => self.outputs.push_back(HostOutput::Transition {
                group,
                resource,
                from,
                to,
                reason,
            }),
            // Only a stop the core is waiting for: a stop superseded by a later start, or one
            // the runner did on its own (the group left the catalog), is none of its business.
            RunnerOutput::GroupStopped { slot } => {
                if self.core.stopping_groups() & core::bit(slot) != 0 {
                    self.core.step(Input::GroupStopped { group: slot });
                }
            }
            RunnerOutput::GroupFailed { slot, reason } => {
                let refuse_ms = self.refuse_ms(slot);
                self.outputs.push_back(HostOutput::GroupFailed {
                    slot,
                    reason: reason.clone(),
                    refuse_ms,
                });
                self.core.step(Input::GroupFailed {
                    group: slot,
                    refuse_ms,
                });
                self.record_group_failure(slot, &reason, refuse_ms, now_ms);
            }
            // A stop failed under `StopFailure::Leave`: the shutdown path, for good in this
            // run. The blocked group stays stopping and unconfirmed, so the core writes no
            // non-member slot and no fence acknowledgement, renews no lease, and the host pings
            // the monitor no more (`keep_monitor_armed`): its dead-man fires, the watchdog
            // resets the node, and the survivors confirm it stopped by its lease's expiry.
            RunnerOutput::Leave { reason } => {
                self.outputs.push_back(HostOutput::Leaving { reason });
                self.core.step(Input::Admin(core::AdminCommand::Leave));
            }
        }
    }

    /// Whether a monitor resource is a test group's (`group-N`), not the runner's.
    pub fn is_test_group_resource(&self, resource: &str) -> bool {
        test_group_of(resource).is_some_and(|slot| self.is_test_group(slot))
    }

    /// Whether group `slot` is a built-in test group (`--test-group`).
    pub fn is_test_group(&self, slot: u8) -> bool {
        (1..=64).contains(&slot) && self.config.core.builtin_groups & core::bit(slot) != 0
    }

    /// A node refuses a group that failed on it for the longest restart period of its
    /// resources: by then their failure counts have expired too.
    fn refuse_ms(&self, slot: u8) -> u64 {
        let catalog = self.core.catalog();
        let refuse_ms = match catalog.group_by_slot(slot) {
            None => REFUSE_MS_DEFAULT,
            Some(group) => catalog
                .resources
                .iter()
                .filter(|resource| resource.group == group.name)
                .map(|resource| u64::from(resource.restart_period_s) * 1000)
                .max()
                .unwrap_or(REFUSE_MS_DEFAULT),
        };
        refuse_ms.min(self.config.refuse_ms_max)
    }

    /// Appends this failure's wall-clock time to `groups/G/failures`, so every coordinator
    /// counts it against the group's failover threshold, and records this node's refusal
    /// (`groups/G/refused/N`: until when, and why), so every node shows it, this node honours
    /// it after a restart, and a cleanup clears it everywhere. A
    /// concurrent change makes the update fail its precondition: the failure is then not
    /// counted, which errs toward moving the group once more, never toward stranding it; the
    /// refusal still holds in this run's memory (`core::placement`).
    fn record_group_failure(&mut self, slot: u8, reason: &str, refuse_ms: u64, now_ms: u64) {
        let Some(group) = self.core.catalog().group_by_slot(slot).cloned() else {
            return;
        };
        let not_recorded = |why: String| HostOutput::FailureNotRecorded {
            group: group.name.clone(),
            why,
        };
        let Some((unix_s, at_ms)) = self.wall_clock else {
            let why = "the wall clock is not known yet".to_string();
            self.outputs.push_back(not_recorded(why));
            return;
        };
        let now_s = unix_s + now_ms.saturating_sub(at_ms) / 1000;
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
        let me = self.config.core.node_id;
        let paths = Path::parse(&format!("groups/{}/failures", group.name)).and_then(|failures| {
            Ok((
                failures,
                Path::parse(&format!("groups/{}/refused/{me}", group.name))?,
            ))
        });
        let (path, refused) = match paths {
            Ok(paths) => paths,
            Err(error) => return self.outputs.push_back(not_recorded(error.to_string())),
        };
        let refusal = Refusal {
            node: me,
            until_s: now_s + refuse_ms.div_ceil(1000),
            reason: cut_at_char_boundary(reason, REFUSAL_REASON_MAX).to_string(),
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
                Op::Put {
                    path: refused,
                    value: Value::Text(refusal.render()),
                },
            ],
        };
        let body = match update.encode() {
            Ok(body) => body,
            Err(error) => return self.outputs.push_back(not_recorded(error.to_string())),
        };
        match self.core.submit(body.clone()) {
            Ok(request_id) => {
                self.own_requests.insert(request_id);
                self.outputs
                    .push_back(HostOutput::Proposed { request_id, body });
            }
            Err(error) => self.outputs.push_back(not_recorded(error.to_string())),
        }
    }

    /// A built-in test group: one `process` resource named `group-N`.
    fn test_group(&mut self, group: u8, online: bool) {
        let resource = test_group_resource(group);
        let command = self
            .config
            .test_groups
            .iter()
            .find(|(id, _)| *id == group)
            .map(|(_, command)| command.clone());
        match (online, command) {
            (true, Some(command)) => self.outputs.push_back(HostOutput::Monitor(Command::Start {
                resource,
                kind: "process".into(),
                params: vec![("command".into(), command)],
                depends: Vec::new(),
                timeout_ms: None,
            })),
            (true, None) => {}
            (false, Some(_)) => {
                self.stopping_test_resources.insert(resource.clone());
                self.outputs.push_back(HostOutput::Monitor(Command::Stop {
                    resource,
                    timeout_ms: None,
                }));
            }
            // Nothing runs for this group here: stopped as soon as asked.
            (false, None) => self.core.step(Input::GroupStopped { group }),
        }
    }

    /// The monitor's news of a test group's resource. A failed stop may have left processes
    /// running, and a failure not confirmed offline may have too: then the resource stays
    /// stopping, so no fence acknowledgement claims otherwise (the survivors then wait for
    /// this node's lease to expire).
    pub(super) fn test_group_event(&mut self, event: &monitor::Event) {
        let (resource, confirmed_offline) = match event {
            monitor::Event::Done {
                resource,
                operation: Operation::Stop,
                outcome: Outcome::Success,
                ..
            } => (resource, true),
            monitor::Event::ResourceFailed {
                resource,
                offline_confirmed,
                ..
            } => (resource, *offline_confirmed),
            _ => return,
        };
        if !confirmed_offline {
            return;
        }
        self.stopping_test_resources.remove(resource);
        if let Some(group) = test_group_of(resource) {
            if self.core.stopping_groups() & core::bit(group) != 0 {
                self.core.step(Input::GroupStopped { group });
            }
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The monitor resource of test group `group`.
pub fn test_group_resource(group: u8) -> String {
    format!("group-{group}")
}

/// The group of a test group's resource (`group-N`), whatever the configuration.
pub fn test_group_of(resource: &str) -> Option<u8> {
    resource
        .strip_prefix("group-")
        .and_then(|id| id.parse::<u8>().ok())
}
