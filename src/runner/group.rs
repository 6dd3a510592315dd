//! What the runner knows of one group slot, and the core's decisions about it.

use super::{Runner, State};

#[derive(Clone, Debug)]
pub(super) struct GroupRun {
    pub slot: u8,
    /// Its name in the catalog (the last known one once it left), None if never known.
    pub name: Option<String>,
    pub in_catalog: bool,
    /// Set when this node gave the group up (`GroupFailed`); the reason.
    pub failed: Option<String>,
    /// A `GroupStopped` is owed once everything of the group is confirmed offline.
    pub stop_owed: bool,
    /// As last reported in a transition.
    pub state: State,
    pub reason: String,
}

impl GroupRun {
    pub fn new(slot: u8) -> GroupRun {
        GroupRun {
            slot,
            name: None,
            in_catalog: false,
            failed: None,
            stop_owed: false,
            state: State::Offline,
            reason: "not held here".to_string(),
        }
    }

    /// The name transitions and `ctl` use.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("slot-{}", self.slot))
    }
}

impl Runner {
    /// Whether the group's resources may run: held here, in the catalog, not given up.
    pub(super) fn is_active(&self, slot: u8) -> bool {
        self.inactive_reason(slot).is_none()
    }

    /// Why the group's resources may not run, if they may not.
    pub(super) fn inactive_reason(&self, slot: u8) -> Option<String> {
        let Some(group) = self.groups.get(&slot) else {
            return Some("group not in the catalog".to_string());
        };
        if let Some(reason) = &group.failed {
            return Some(format!("group given up here: {reason}"));
        }
        if !group.in_catalog {
            return Some("group not in the catalog".to_string());
        }
        if !self.held_slots.contains(&slot) {
            return Some("group not held here".to_string());
        }
        None
    }

    pub(super) fn group_name(&self, slot: u8) -> String {
        self.groups
            .get(&slot)
            .map_or_else(|| format!("slot-{slot}"), GroupRun::display_name)
    }

    /// The core's decision about `slot`.
    pub(super) fn decide_group(&mut self, slot: u8, online: bool) {
        let was_held = self.held_slots.contains(&slot);
        let group = self
            .groups
            .entry(slot)
            .or_insert_with(|| GroupRun::new(slot));
        if online {
            let given_up = group.failed.is_some();
            // A new decision to hold it supersedes a stop still under way.
            group.stop_owed = false;
            group.failed = None;
            self.held_slots.insert(slot);
            if !was_held || given_up {
                // A fresh hold: everything of the group gets a new try here. The failure
                // history stays, so a resource that just failed past its threshold here
                // fails the group again at its next failure within the period.
                for resource in self.resources.values_mut() {
                    if resource.slot == slot {
                        resource.gave_up = None;
                    }
                }
            }
        } else {
            // Owed even if it was not held: the daemon may wait for it.
            group.stop_owed = true;
            group.failed = None;
            self.held_slots.remove(&slot);
        }
    }

    /// Gives the group up on this node: `GroupFailed` now, `GroupStopped` once it is down.
    pub(super) fn fail_group(&mut self, slot: u8, reason: String) {
        let Some(group) = self.groups.get_mut(&slot) else {
            return;
        };
        if group.failed.is_some() {
            return;
        }
        group.failed = Some(reason.clone());
        group.stop_owed = true;
        self.outputs
            .push_back(super::RunnerOutput::GroupFailed { slot, reason });
    }
}
