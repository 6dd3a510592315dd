//! What `ctl resources` and `ctl groups` show, and when `tick` next has something to do.

use super::{GroupStatus, ResourceStatus, Runner};

impl Runner {
    /// Every resource this runner knows, its group, state, and last failure reason; failure
    /// counts as of the last input.
    pub fn resource_states(&self) -> Vec<ResourceStatus> {
        self.resource_states_at(self.last_now_ms)
    }

    /// `resource_states` with the failure counts as of `now_ms`.
    pub fn resource_states_at(&self, now_ms: u64) -> Vec<ResourceStatus> {
        self.resources
            .values()
            .map(|resource| ResourceStatus {
                resource: resource.name.clone(),
                group: self.group_name(resource.slot),
                slot: resource.slot,
                state: resource.state,
                reason: resource.reason.clone(),
                last_failure: resource.last_failure.clone(),
                recent_failures: resource.recent_failures(now_ms),
            })
            .collect()
    }

    /// Every group this runner knows (in the catalog, held here, or still stopping).
    pub fn group_states(&self) -> Vec<GroupStatus> {
        self.groups
            .values()
            .map(|group| GroupStatus {
                group: group.display_name(),
                slot: group.slot,
                held_here: self.held_slots.contains(&group.slot),
                state: group.state,
                reason: group.reason.clone(),
            })
            .collect()
    }

    /// The next time `tick` has something to do: a check falls due, a stop is to be asked
    /// again, or a given-up resource's failures expire. Never a time `tick` already handled,
    /// so the event loop cannot spin on it.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let now_ms = self.last_now_ms;
        let mut deadlines: Vec<u64> = Vec::new();
        for resource in self.resources.values() {
            deadlines.extend(resource.stop_retry_at_ms);
            deadlines.extend(resource.retry_at_ms(now_ms));
        }
        let slots: Vec<u8> = self.groups.keys().copied().collect();
        for slot in slots {
            for (name, plan) in self.plan(slot) {
                let Some(resource) = self.resources.get(&name) else {
                    continue;
                };
                // Only checks `tick` would send: an Online resource that may keep running
                // and has nothing outstanding.
                if plan.keeps_up && resource.outstanding.is_none() {
                    deadlines.extend(resource.looks_alive_due_ms);
                    deadlines.extend(resource.is_alive_due_ms);
                }
            }
        }
        deadlines.into_iter().min()
    }
}
