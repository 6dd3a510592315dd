//! The rules of `mod.rs`, applied after every input: stop what may not run (top-down), start
//! what may (bottom-up), check what runs, then report group states and owed `GroupStopped`s.

use super::commands::due_check;
use super::plan::Plan;
use super::{Runner, RunnerOutput, State};
use crate::monitor::protocol::Operation;
use std::collections::BTreeSet;

impl Runner {
    pub(super) fn reconcile(&mut self, now_ms: u64) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        self.settle_departures();
        self.settle_restarts();
        self.expire_give_ups(now_ms);
        let slots: BTreeSet<u8> = self
            .groups
            .keys()
            .copied()
            .chain(self.resources.values().map(|resource| resource.slot))
            .collect();
        for slot in slots {
            self.drive_slot(slot, now_ms);
        }
        self.update_groups();
    }

    /// Resources removed from their group or moved to another one, once down: forgotten, or
    /// moved (keeping their failure history, which is the resource's, not the group's).
    fn settle_departures(&mut self) {
        let departed: Vec<String> = self
            .resources
            .values()
            .filter(|resource| !resource.in_group && resource.is_down())
            .map(|resource| resource.name.clone())
            .collect();
        for name in departed {
            let Some(resource) = self.resources.get_mut(&name) else {
                continue;
            };
            match resource.moving_to.take() {
                Some((slot, spec)) => {
                    resource.slot = slot;
                    resource.cleanup_seen = spec.cleanup;
                    resource.spec = spec;
                    resource.in_group = true;
                    resource.gave_up = None;
                    let group = self.group_name(slot);
                    self.set_resource_state(&name, State::Offline, format!("moved to {group}"));
                }
                None => {
                    self.resources.remove(&name);
                }
            }
        }
    }

    /// Resources owed a restart that are down now: they may start again, with their new
    /// type and parameters.
    fn settle_restarts(&mut self) {
        for resource in self.resources.values_mut() {
            if resource.restart_owed && resource.is_down() {
                resource.restart_owed = false;
            }
        }
    }

    /// Resources given up for their threshold whose failures expired enough: tried again.
    fn expire_give_ups(&mut self, now_ms: u64) {
        for resource in self.resources.values_mut() {
            if resource
                .retry_at_ms(now_ms)
                .is_some_and(|at_ms| at_ms <= now_ms)
            {
                resource.gave_up = None;
                if resource.state != State::Blocked {
                    resource.reason = "its failures expired; it may run again".to_string();
                }
            }
        }
    }

    fn drive_slot(&mut self, slot: u8, now_ms: u64) {
        let plans = self.plan(slot);
        for (name, plan) in &plans {
            let Some(resource) = self.resources.get_mut(name) else {
                continue;
            };
            // A retry that is due turns into an ordinary stop decision below.
            if resource
                .stop_retry_at_ms
                .is_some_and(|at_ms| at_ms <= now_ms)
            {
                resource.stop_retry_at_ms = None;
            }
            let keeps_holding =
                plan.may_run && matches!(resource.state, State::Online | State::OnlinePending);
            let stopping = resource.outstanding == Some(Operation::Stop);
            let retry_pending = resource.stop_retry_at_ms.is_some();
            let is_down = resource.is_down();
            let restart_of = match (resource.state, &resource.last_failure) {
                (State::Failed, Some(failure)) => Some(failure.clone()),
                _ => None,
            };
            let check = (resource.state == State::Online && resource.outstanding.is_none())
                .then(|| due_check(resource, now_ms))
                .flatten();
            if stopping {
                continue;
            }
            if !is_down && !keeps_holding {
                if !retry_pending && self.dependents_down(slot, name) {
                    let reason = self.stop_reason(name, plan);
                    self.send_stop(name, reason);
                }
            } else if is_down && !plan.may_run {
                self.settle_down_state(name, plan);
            } else if is_down {
                if self.dependents_down(slot, name) {
                    let reason = restart_of.map_or_else(
                        || "starting".to_string(),
                        |failure| format!("restarting after: {failure}"),
                    );
                    self.send_start(name, reason);
                }
            } else if let Some(level) = check {
                self.send_check(name, level);
            }
        }
    }

    /// A down resource that may not run: Offline with why, except that a failed one stays
    /// Failed (its failure is what `ctl` should show) unless its role was set offline.
    fn settle_down_state(&mut self, name: &str, plan: &Plan) {
        let Some(resource) = self.resources.get(name) else {
            return;
        };
        let role_offline = !resource.spec.role_online;
        if resource.state == State::Failed && !role_offline {
            return;
        }
        let reason = match (&plan.allowed, &plan.waiting_for) {
            (Err(why), _) => why.clone(),
            (Ok(()), Some(needed)) => format!("waiting for {needed}"),
            (Ok(()), None) => "offline".to_string(),
        };
        self.set_resource_state(name, State::Offline, reason);
    }

    /// Transitions of group states, owed `GroupStopped`s, and groups nobody needs any more.
    fn update_groups(&mut self) {
        let slots: Vec<u8> = self.groups.keys().copied().collect();
        for slot in slots {
            let all_down = self.members(slot).all(|resource| resource.is_down());
            let (to, reason) = self.group_state(slot, all_down);
            let active = self.is_active(slot);
            let held = self.held_slots.contains(&slot);
            let has_members = self.members(slot).next().is_some();
            let Some(group) = self.groups.get_mut(&slot) else {
                continue;
            };
            let from = group.state;
            group.state = to;
            group.reason = reason.clone();
            let name = group.display_name();
            if from != to {
                self.outputs.push_back(RunnerOutput::Transition {
                    group: name,
                    resource: None,
                    from,
                    to,
                    reason,
                });
            }
            if group.stop_owed && !active && all_down {
                group.stop_owed = false;
                self.outputs.push_back(RunnerOutput::GroupStopped { slot });
            }
            if !group.in_catalog && !held && !has_members && !group.stop_owed {
                self.groups.remove(&slot);
            }
        }
    }

    fn group_state(&self, slot: u8, all_down: bool) -> (State, String) {
        // First: it is what keeps the group here, whatever else holds.
        if let Some(blocked) = self.members(slot).find(|member| member.stop_failed()) {
            let why = blocked
                .stop_failure
                .as_deref()
                .unwrap_or("not confirmed offline");
            return (
                State::Blocked,
                format!("stop failed ({}: {why})", blocked.name),
            );
        }
        if let Some(reason) = self
            .groups
            .get(&slot)
            .and_then(|group| group.failed.clone())
        {
            return (State::Failed, reason);
        }
        if let Some(reason) = self.inactive_reason(slot) {
            return if all_down {
                (State::Offline, reason)
            } else {
                (State::OfflinePending, format!("stopping: {reason}"))
            };
        }
        let plans = self.plan(slot);
        let pending = plans.iter().find(|(name, plan)| {
            plan.allowed.is_ok()
                && self
                    .resources
                    .get(*name)
                    .is_some_and(|resource| resource.state != State::Online)
        });
        match pending {
            Some((name, _)) => (State::OnlinePending, format!("waiting for {name}")),
            None => (
                State::Online,
                "every resource it may run is online".to_string(),
            ),
        }
    }
}

impl Runner {
    /// Why held resource `name` is being stopped.
    fn stop_reason(&self, name: &str, plan: &Plan) -> String {
        let restarting = |name: &str| {
            self.resources
                .get(name)
                .is_some_and(|resource| resource.restart_owed)
        };
        match (&plan.allowed, &plan.waiting_for) {
            (Err(why), _) => why.clone(),
            (Ok(()), Some(needed)) if restarting(needed) => format!("{needed} is restarting"),
            (Ok(()), Some(needed)) => format!("{needed} is not online"),
            (Ok(()), None) if restarting(name) => {
                "restarting: its type or parameters changed".to_string()
            }
            (Ok(()), None) => "failed".to_string(),
        }
    }
}
