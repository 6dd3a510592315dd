//! The monitor's answers. An answer counts only for the operation outstanding on its
//! resource; anything else (an unknown resource, the answer to a start or check that a stop
//! cancelled) is ignored and counted.

use super::{Runner, State, STOP_RETRY_MS};
use crate::monitor::protocol::{CheckLevel, Event, Operation, Outcome};

impl Runner {
    pub(super) fn on_monitor_event(&mut self, event: &Event, now_ms: u64) {
        match event {
            Event::Done {
                resource,
                operation,
                outcome,
                ..
            } => self.on_done(resource, *operation, outcome, now_ms),
            Event::ResourceFailed {
                resource,
                reason,
                offline_confirmed,
            } => self.on_resource_failed(resource, reason, *offline_confirmed, now_ms),
            Event::AllStopped => self.on_all_stopped(),
            // The daemon's keep-alive, not about resources.
            Event::Pong { .. } => {}
        }
    }

    fn on_done(&mut self, name: &str, operation: Operation, outcome: &Outcome, now_ms: u64) {
        let Some(resource) = self.resources.get_mut(name) else {
            self.ignored_events += 1;
            return;
        };
        if resource.outstanding != Some(operation) {
            self.ignored_events += 1;
            return;
        }
        resource.outstanding = None;
        match operation {
            Operation::Start => self.on_start_done(name, outcome, now_ms),
            Operation::Stop => self.on_stop_done(name, outcome, now_ms),
            Operation::Check(level) => self.on_check_done(name, level, outcome, now_ms),
        }
    }

    fn on_start_done(&mut self, name: &str, outcome: &Outcome, now_ms: u64) {
        let timeout_ms = match self.resources.get(name) {
            Some(resource) => resource.effective_timeout_ms(Operation::Start),
            None => return,
        };
        match outcome {
            Outcome::Success => {
                if let Some(resource) = self.resources.get_mut(name) {
                    resource.schedule_checks(now_ms, true, true);
                }
                self.set_resource_state(name, State::Online, "started".to_string());
            }
            Outcome::Failed(reason) => {
                self.resource_failed(name, format!("start failed: {reason}"), false, now_ms);
            }
            // Still held: the stop that follows the failure learns when it is gone.
            Outcome::OfflineNotConfirmed(reason) => {
                self.resource_failed(name, format!("start failed: {reason}"), true, now_ms);
            }
            Outcome::TimedOut => {
                let reason = format!("start timed out after {timeout_ms} ms");
                self.resource_failed(name, reason, false, now_ms);
            }
            Outcome::Rejected(reason) => self.configuration_failed(name, reason.clone()),
        }
    }

    fn on_stop_done(&mut self, name: &str, outcome: &Outcome, now_ms: u64) {
        let Some(resource) = self.resources.get_mut(name) else {
            return;
        };
        let reason = match outcome {
            Outcome::OfflineNotConfirmed(reason) => {
                // Still held: the monitor keeps cleaning up; ask again later to learn when it
                // is done.
                resource.stop_retry_at_ms = Some(now_ms.saturating_add(STOP_RETRY_MS));
                resource.stops_unconfirmed = resource.stops_unconfirmed.saturating_add(1);
                resource.stop_failure = Some(reason.clone());
                if resource.stop_failed() {
                    return self.stop_failed(name);
                }
                resource.reason = format!("stop: {reason}");
                return;
            }
            Outcome::Success => "stopped".to_string(),
            Outcome::Failed(reason) => format!("stopped after a failed stop: {reason}"),
            Outcome::TimedOut => "stopped (killed after the stop timed out)".to_string(),
            Outcome::Rejected(reason) => format!("stop rejected, taken as stopped: {reason}"),
        };
        resource.confirmed_offline();
        match resource.state {
            State::Blocked => {
                let why = format!("stopped after its stop failed: {reason}");
                self.set_resource_state(name, State::Failed, why);
            }
            State::Failed => {}
            _ => self.set_resource_state(name, State::Offline, reason),
        }
    }

    fn on_check_done(&mut self, name: &str, level: CheckLevel, outcome: &Outcome, now_ms: u64) {
        let (check, timeout_ms) = match self.resources.get(name) {
            Some(resource) => {
                let check = Operation::Check(level);
                (check.name(), resource.effective_timeout_ms(check))
            }
            None => return,
        };
        let reason = match outcome {
            Outcome::Success => {
                if let Some(resource) = self.resources.get_mut(name) {
                    let is_alive = level == CheckLevel::IsAlive;
                    resource.schedule_checks(now_ms, true, is_alive);
                }
                return;
            }
            // The monitor never answers a check `OfflineNotConfirmed`; either way the resource
            // is still held.
            Outcome::Failed(reason) | Outcome::OfflineNotConfirmed(reason) => {
                format!("{check} check failed: {reason}")
            }
            Outcome::TimedOut => format!("{check} check timed out after {timeout_ms} ms"),
            // "not held" or "busy": either way the resource is not healthy as the runner
            // believed; the stop that follows confirms where it stands.
            Outcome::Rejected(reason) => format!("{check} check rejected: {reason}"),
        };
        // A check leaves the resource held and online at the monitor: it is stopped first.
        self.resource_failed(name, reason, true, now_ms);
    }

    /// The resource stopped by itself (its process exited): it is offline already, unless
    /// the monitor could not confirm it (`offline`).
    fn on_resource_failed(&mut self, name: &str, reason: &str, offline: bool, now_ms: u64) {
        let Some(resource) = self.resources.get_mut(name) else {
            self.ignored_events += 1;
            return;
        };
        match (resource.outstanding, resource.state) {
            // Being stopped anyway: its stop's answer settles it.
            (Some(Operation::Stop), _) => {}
            (Some(Operation::Check(_)) | None, State::Online) => {
                // The monitor reports exits only of resources with nothing pending (its
                // holder watches only idle online ones), so no check answer is still coming;
                // were one to come, it would match nothing and be ignored.
                resource.outstanding = None;
                self.resource_failed(name, reason.to_string(), !offline, now_ms);
            }
            // Failed and waiting for its dependents to stop before its own stop: the stop is
            // no longer needed, and the failure was counted already. (A Blocked one waits for
            // its next stop, whose answer says the same.)
            (None, State::Failed) if resource.held && offline => resource.confirmed_offline(),
            (None, State::Failed) if resource.held => {}
            // A start's failure is reported by the start's answer; anything else is stale.
            _ => self.ignored_events += 1,
        }
    }

    /// After a `StopAll` (the daemon giving up on everything): the monitor holds nothing.
    fn on_all_stopped(&mut self) {
        let names: Vec<String> = self.resources.keys().cloned().collect();
        for name in names {
            let Some(resource) = self.resources.get_mut(&name) else {
                continue;
            };
            resource.confirmed_offline();
            resource.outstanding = None;
            resource.clear_checks();
            match resource.state {
                State::Failed => {}
                State::Blocked => {
                    let why = "stopped by stop-all after its stop failed".to_string();
                    self.set_resource_state(&name, State::Failed, why);
                }
                _ => {
                    let why = "stopped by stop-all".to_string();
                    self.set_resource_state(&name, State::Offline, why);
                }
            }
        }
    }
}
