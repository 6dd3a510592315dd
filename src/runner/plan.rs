//! Which resources of a group may run now, dependencies first. Computed afresh from what is
//! known at every input (groups are small), so no rule depends on how a situation arose.

use super::resource::ResourceRun;
use super::{Runner, State};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// Whether it may run as far as configuration and decisions go (group held and not given
    /// up, in the catalog, role online, not given up, every dependency so too); why not.
    pub allowed: Result<(), String>,
    /// Allowed, not a failed resource still held, and every dependency is Online and may
    /// stay so: it may be started now, or stay running.
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

    /// The plan of every member of `slot`. Members are planned once their dependencies are
    /// (a dependency that is no member cannot hold anything up); members left unplanned are in
    /// a dependency cycle and never run.
    pub(super) fn plan(&self, slot: u8) -> BTreeMap<String, Plan> {
        let members: Vec<&ResourceRun> = self.members(slot).collect();
        let group_reason = self.inactive_reason(slot);
        let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
        loop {
            let ready = members.iter().find(|member| {
                !plans.contains_key(&member.name)
                    && member.spec.depends.iter().all(|needed| {
                        plans.contains_key(needed) || !members.iter().any(|m| &m.name == needed)
                    })
            });
            let Some(member) = ready else { break };
            let plan = plan_one(member, &members, &plans, group_reason.as_deref());
            plans.insert(member.name.clone(), plan);
        }
        for member in members {
            plans.entry(member.name.clone()).or_insert_with(|| Plan {
                allowed: Err("in a dependency cycle".to_string()),
                may_run: false,
                keeps_up: false,
                waiting_for: None,
            });
        }
        plans
    }
}

fn plan_one(
    member: &ResourceRun,
    members: &[&ResourceRun],
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
    let may_run = allowed.is_ok() && !member.is_failed_and_held() && waiting_for.is_none();
    Plan {
        allowed,
        may_run,
        keeps_up: may_run && member.state == State::Online,
        waiting_for,
    }
}

fn allowed(
    member: &ResourceRun,
    members: &[&ResourceRun],
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
            .iter()
            .any(|other| &other.name == needed && other.in_group);
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
