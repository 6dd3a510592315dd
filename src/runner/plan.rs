//! Which resources of a group may run now, dependencies first. Computed afresh from what is
//! known at every input (groups are small), so no rule depends on how a situation arose.

use super::resource::ResourceRun;
use super::{Runner, RunnerMutation, State};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// Whether it may run as far as configuration and decisions go (group held and not given
    /// up, in the catalog, role online, not given up, every dependency so too); why not.
    pub allowed: Result<(), String>,
    /// Allowed, not a failed resource still held, not owed a restart, and every dependency
    /// is Online and may stay so: it may be started now, or stay running.
    pub may_run: bool,
    /// May run and is Online: its dependents may start or keep running.
    pub keeps_up: bool,
    /// The first dependency that is not up, when that is all that keeps it from running.
    pub waiting_for: Option<String>,
}

impl Runner {
    /// The resources running in `slot`, by name.
    pub(super) fn members(&self, slot: u8) -> impl Iterator<Item = &ResourceRun> {
        self.resources
            .values()
            .filter(move |resource| resource.slot == slot)
    }

    /// The members of `slot` that depend on `name` (by the specs they run under).
    pub(super) fn dependents<'a>(
        &'a self,
        slot: u8,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ResourceRun> {
        self.members(slot)
            .filter(move |member| member.spec.depends.iter().any(|needed| needed == name))
    }

    /// Every dependent of `name` in `slot` is down, so it may be stopped or started again.
    pub(super) fn dependents_down(&self, slot: u8, name: &str) -> bool {
        self.dependents(slot, name).all(ResourceRun::is_down)
    }

    /// The plan of every member of `slot`, dependencies first (Kahn's algorithm: linear in
    /// the group's size, whatever its order). A dependency that is no member cannot hold the
    /// order up; members left unplanned are in a dependency cycle and never run.
    pub(super) fn plan(&self, slot: u8) -> BTreeMap<String, Plan> {
        let members: BTreeMap<&str, &ResourceRun> = self
            .members(slot)
            .map(|member| (member.name.as_str(), member))
            .collect();
        // For each member, its dependencies among the members not planned yet; for each, who
        // waits for it.
        let mut unplanned_needs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut waiting: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, member) in &members {
            let needs: BTreeSet<&str> = member
                .spec
                .depends
                .iter()
                .map(String::as_str)
                .filter(|needed| members.contains_key(needed))
                .collect();
            for needed in &needs {
                waiting.entry(needed).or_default().push(name);
            }
            unplanned_needs.insert(name, needs);
        }
        let mut ready: VecDeque<&str> = unplanned_needs
            .iter()
            .filter(|(_, needs)| needs.is_empty())
            .map(|(name, _)| *name)
            .collect();
        let group_reason = self.inactive_reason(slot);
        let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
        while let Some(name) = ready.pop_front() {
            let Some(member) = members.get(name) else {
                continue;
            };
            let lease_missing =
                member.spec.kind == FILESYSTEM_KIND && !self.leases_held.contains(name);
            let group_reason = group_reason.clone().or_else(|| {
                lease_missing.then(|| "waiting for its disk lease (filesystem)".to_string())
            });
            let mut plan = plan_one(member, &members, &plans, group_reason.as_deref());
            if self.mutation == RunnerMutation::StartBeforeDependencies && plan.allowed.is_ok() {
                // Broken on purpose: dependencies that are not online hold nothing up.
                plan.waiting_for = None;
                plan.may_run = !member.is_failed_and_held();
                plan.keeps_up = plan.may_run && member.state == State::Online;
            }
            plans.insert(name.to_string(), plan);
            for dependent in waiting.get(name).into_iter().flatten() {
                if let Some(needs) = unplanned_needs.get_mut(dependent) {
                    needs.remove(name);
                    if needs.is_empty() {
                        ready.push_back(dependent);
                    }
                }
            }
        }
        for name in members.keys() {
            plans.entry((*name).to_string()).or_insert_with(|| Plan {
                allowed: Err("in a dependency cycle".to_string()),
                may_run: false,
                keeps_up: false,
                waiting_for: None,
            });
        }
        plans
    }
}

/// The resource type that runs only while its node holds the resource's lease on the shared
/// disk (`core::resource_lease`).
pub(super) const FILESYSTEM_KIND: &str = "filesystem";

fn plan_one(
    member: &ResourceRun,
    members: &BTreeMap<&str, &ResourceRun>,
    planned: &BTreeMap<String, Plan>,
    group_reason: Option<&str>,
) -> Plan {
    let allowed = allowed(member, members, planned, group_reason);
    let waiting_for = member
        .spec
        .depends
        .iter()
        .find(|needed| !planned.get(*needed).is_some_and(|plan| plan.keeps_up))
        .cloned();
    let may_run = allowed.is_ok()
        && !member.is_failed_and_held()
        && !member.restart_owed
        && waiting_for.is_none();
    Plan {
        allowed,
        may_run,
        keeps_up: may_run && member.state == State::Online,
        waiting_for,
    }
}

fn allowed(
    member: &ResourceRun,
    members: &BTreeMap<&str, &ResourceRun>,
    planned: &BTreeMap<String, Plan>,
    group_reason: Option<&str>,
) -> Result<(), String> {
    if let Some(reason) = group_reason {
        return Err(reason.to_string());
    }
    if !member.in_group {
        return Err("removed from the group".to_string());
    }
    if !member.spec.role_online {
        return Err("role offline".to_string());
    }
    if member.gave_up.is_some() {
        let failure = member.last_failure.as_deref().unwrap_or("failed");
        return Err(format!("given up: {failure}"));
    }
    for needed in &member.spec.depends {
        let in_group = members
            .get(needed.as_str())
            .is_some_and(|other| other.in_group);
        if !in_group {
            return Err(format!("waiting for {needed} (not in the group)"));
        }
        if planned
            .get(needed)
            .is_some_and(|plan| plan.allowed.is_err())
        {
            return Err(format!("waiting for {needed}"));
        }
    }
    Ok(())
}
