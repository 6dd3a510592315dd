//! What a failure does: restart in place while the threshold allows, otherwise give the
//! resource up, and its group with it if it affects the group. The restart itself is no
//! script: a Failed resource that may run again is stopped and started by the rules of
//! `reconcile.rs` like any other. A failed stop blocks instead (`stop_failed`).

use super::resource::GiveUp;
use super::{Runner, RunnerMutation, RunnerOutput, State, StopFailure, STOP_ATTEMPTS_MAX};

impl Runner {
    /// `name` failed with `reason`; `still_held` says whether the monitor may still hold it
    /// (a failed check: it must be stopped before it can start again).
    pub(super) fn resource_failed(
        &mut self,
        name: &str,
        reason: String,
        still_held: bool,
        now_ms: u64,
    ) {
        let Some(resource) = self.resources.get_mut(name) else {
            return;
        };
        resource.held = still_held;
        resource.last_failure = Some(reason.clone());
        resource.clear_checks();
        let period_ms = resource.restart_period_ms();
        let threshold = resource.restart_threshold();
        let failures = resource
            .failures
            .record(period_ms, now_ms, threshold.saturating_add(1));
        let slot = resource.slot;
        let in_group = resource.in_group;
        let affects_group = resource.spec.affects_group;
        let period_s = resource.spec.restart_period_s;
        if !in_group || !self.is_active(slot) {
            // Its group is stopping anyway: nothing to restart or give up.
            return self.set_resource_state(name, State::Failed, reason);
        }
        if failures <= threshold {
            let why = format!(
                "restarting in place (failure {failures} of {threshold} allowed in {period_s} s): \
                 {reason}"
            );
            return self.set_resource_state(name, State::Failed, why);
        }
        let why = format!(
            "resource {name} failed {failures} times in {period_s} s (threshold {threshold}): \
             {reason}"
        );
        self.give_up(name, GiveUp::Threshold, why, affects_group);
    }

    /// A start was rejected (unknown type, missing agent, bad parameters, failing
    /// validate-all): retrying the same configuration cannot help, so no restarts. The monitor
    /// changed nothing, so nothing is held.
    pub(super) fn configuration_failed(&mut self, name: &str, reason: String) {
        let Some(resource) = self.resources.get_mut(name) else {
            return;
        };
        resource.held = false;
        resource.last_failure = Some(format!("start rejected: {reason}"));
        let affects_group = resource.spec.affects_group;
        let (in_group, slot) = (resource.in_group, resource.slot);
        let active = in_group && self.is_active(slot);
        let why = format!("resource {name} cannot start: {reason}");
        if active {
            self.give_up(name, GiveUp::Configuration, why, affects_group);
        } else {
            self.set_resource_state(name, State::Failed, why);
        }
    }

    fn give_up(&mut self, name: &str, give_up: GiveUp, why: String, affects_group: bool) {
        let Some(resource) = self.resources.get_mut(name) else {
            return;
        };
        resource.gave_up = Some(give_up);
        let slot = resource.slot;
        self.set_resource_state(name, State::Failed, why.clone());
        if affects_group {
            self.fail_group(slot, why);
        }
    }

    /// The stop of `name` failed (`STOP_ATTEMPTS_MAX` answers in a row, the last one's reason
    /// in `stop_failure`): it may still run, so it is Blocked, and stays held until the monitor
    /// confirms it offline; under `StopFailure::Leave` the node leaves the cluster too.
    pub(super) fn stop_failed(&mut self, name: &str) {
        let Some(resource) = self.resources.get_mut(name) else {
            return;
        };
        assert!(
            resource.held,
            "{name} blocked while the monitor holds nothing of it"
        );
        assert!(resource.stop_failed());
        let reason = resource.stop_failure.clone().unwrap_or_default();
        if self.mutation == RunnerMutation::FailedStopReleases {
            // Broken on purpose: given up as stopped, though it may still run.
            resource.confirmed_offline();
            let why = format!("taken as stopped after its stop failed ({reason})");
            return self.set_resource_state(name, State::Failed, why);
        }
        resource.last_failure = Some(format!("stop failed: {reason}"));
        self.set_resource_state(name, State::Blocked, format!("stop failed ({reason})"));
        if self.stop_failure == StopFailure::Leave && !self.leave_asked {
            self.leave_asked = true;
            let reason =
                format!("the stop of resource {name} failed {STOP_ATTEMPTS_MAX} times ({reason})");
            self.outputs.push_back(RunnerOutput::Leave { reason });
        }
    }
}
