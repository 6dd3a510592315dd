//! Sending operations to the monitor, each guarded by the invariant it must keep. These are
//! `assert!`s, not `debug_assert!`s: they are cheap, and breaking one would start a service
//! before what it needs, or pull something out from under a running service.

use super::resource::ResourceRun;
use super::{Runner, RunnerMutation, RunnerOutput, State};
use crate::core::catalog::ResourceSpec;
use crate::monitor::protocol::{CheckLevel, Command, Operation};
use crate::monitor::resource::ocf;

impl Runner {
    pub(super) fn send_start(&mut self, name: &str, reason: String) {
        let Some(resource) = self.resources.get(name) else {
            return;
        };
        assert!(
            resource.outstanding.is_none() && !resource.held,
            "start of {name}, which the monitor may still hold or has an operation pending"
        );
        let checks_dependencies = self.mutation != RunnerMutation::StartBeforeDependencies;
        for needed in resource.spec.depends.iter().filter(|_| checks_dependencies) {
            let online = self
                .members(resource.slot)
                .any(|other| &other.name == needed && other.state == State::Online);
            assert!(
                online,
                "start of {name} while its dependency {needed} is not online"
            );
        }
        let command = Command::Start {
            resource: name.to_string(),
            kind: resource.spec.kind.clone(),
            params: start_params(&resource.spec),
            depends: resource.spec.depends.clone(),
            timeout_ms: resource.timeout_ms(),
        };
        self.outputs.push_back(RunnerOutput::Monitor(command));
        if let Some(resource) = self.resources.get_mut(name) {
            resource.outstanding = Some(Operation::Start);
            resource.held = true;
            resource.clear_checks();
        }
        self.set_resource_state(name, State::OnlinePending, reason);
    }

    /// Stops `name` (cancelling a pending start or check: the monitor never rejects a stop).
    pub(super) fn send_stop(&mut self, name: &str, reason: String) {
        let Some(resource) = self.resources.get(name) else {
            return;
        };
        assert!(
            resource.outstanding != Some(Operation::Stop),
            "second stop of {name} while one is pending"
        );
        let slot = resource.slot;
        if let Some(dependent) = self.dependents(slot, name).find(|other| !other.is_down()) {
            panic!(
                "stop of {name} while its dependent {} is not offline",
                dependent.name
            );
        }
        let command = Command::Stop {
            resource: name.to_string(),
            timeout_ms: resource.timeout_ms(),
        };
        self.outputs.push_back(RunnerOutput::Monitor(command));
        if let Some(resource) = self.resources.get_mut(name) {
            resource.outstanding = Some(Operation::Stop);
            resource.stop_retry_at_ms = None;
            resource.clear_checks();
            if self.mutation == RunnerMutation::StopUnconfirmed {
                // Broken on purpose: offline without the monitor's word.
                resource.outstanding = None;
                resource.held = false;
            }
        }
        match self.resources.get(name).map(|resource| resource.state) {
            // A blocked resource keeps why its stop failed while it is asked again.
            Some(State::Blocked) => {}
            // A failed resource stays Failed while it is being stopped, so `ctl` keeps showing
            // why.
            Some(State::Failed) => {
                if let Some(resource) = self.resources.get_mut(name) {
                    resource.reason = reason;
                }
            }
            _ => self.set_resource_state(name, State::OfflinePending, reason),
        }
    }

    pub(super) fn send_check(&mut self, name: &str, level: CheckLevel) {
        let Some(resource) = self.resources.get(name) else {
            return;
        };
        assert!(
            resource.outstanding.is_none() && resource.held && resource.state == State::Online,
            "check of {name}, which is not online or has an operation pending"
        );
        let command = Command::Check {
            resource: name.to_string(),
            level,
            timeout_ms: resource.timeout_ms(),
        };
        self.outputs.push_back(RunnerOutput::Monitor(command));
        if let Some(resource) = self.resources.get_mut(name) {
            resource.outstanding = Some(Operation::Check(level));
        }
    }

    /// Sets a resource's state and reason; a change of state is reported as a transition.
    pub(super) fn set_resource_state(&mut self, name: &str, to: State, reason: String) {
        let Some(resource) = self.resources.get_mut(name) else {
            return;
        };
        let from = resource.state;
        resource.state = to;
        resource.reason = reason.clone();
        if from != to {
            let slot = resource.slot;
            let group = self.group_name(slot);
            self.outputs.push_back(RunnerOutput::Transition {
                group,
                resource: Some(name.to_string()),
                from,
                to,
                reason,
            });
        }
    }
}

/// What a start of `spec` sends: its parameters, and for an OCF agent the intervals it is
/// checked at, which the agent is told as OCF_RESKEY_CRM_meta_interval (the monitor's own
/// parameters, `monitor::resource::ocf`; a parameter of that name in the catalog, which only a
/// hand edit can put there, is replaced).
pub(super) fn start_params(spec: &ResourceSpec) -> Vec<(String, String)> {
    let mut params = spec.params.clone();
    if spec.kind.starts_with("ocf:") {
        let intervals = [
            (ocf::PARAM_LOOKS_ALIVE_INTERVAL, spec.looks_alive_s),
            (ocf::PARAM_IS_ALIVE_INTERVAL, spec.is_alive_s),
        ];
        params.retain(|(key, _)| !intervals.iter().any(|(own, _)| key == own));
        for (key, seconds) in intervals {
            let milliseconds = u64::from(seconds).saturating_mul(1000);
            params.push((key.to_string(), milliseconds.to_string()));
        }
    }
    params
}

/// The check due first for an Online resource at `now_ms`, if any. IsAlive is the more
/// thorough one, so when both are due it goes first (and counts as a LooksAlive too).
pub(super) fn due_check(resource: &ResourceRun, now_ms: u64) -> Option<CheckLevel> {
    let due = |at: Option<u64>| at.is_some_and(|at_ms| at_ms <= now_ms);
    if due(resource.is_alive_due_ms) {
        Some(CheckLevel::IsAlive)
    } else if due(resource.looks_alive_due_ms) {
        Some(CheckLevel::LooksAlive)
    } else {
        None
    }
}
