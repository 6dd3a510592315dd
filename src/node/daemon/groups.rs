//! What `ctl groups|resources` show of this node's groups beside the catalog. Running them is
//! the host's business (`src/host/groups.rs`).

use super::Daemon;
use crate::core;
use crate::node::catalog_commands::{GroupRuntime, ResourceRuntime, Runtime};
use crate::node::event_record::iso8601_utc_ms;
use crate::runner::State;

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
        let groups = self.host.runner().group_states();
        let resources = self.host.runner().resource_states();
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let refusing_here = status.refusing_groups;
        Runtime {
            configured_nodes: configured,
            group: Box::new(move |group| {
                let owner = owners
                    .get(usize::from(group.slot) - 1)
                    .copied()
                    .filter(|owner| *owner != 0 && member);
                let here = groups.iter().find(|state| state.slot == group.slot);
                let refused =
                    refusals(group, now_s, me, refusing_here & core::bit(group.slot) != 0);
                let blocked = here.filter(|run| run.state == State::Blocked);
                // A failed stop first: whoever owns the group in the table, it is held here.
                let state = if let Some(run) = blocked {
                    Some(describe(run.state.name(), &run.reason))
                } else if let Some(reason) = self.host.core().group_blocked(group.slot) {
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
                        (None, _) if refused.is_empty() => {
                            Some("offline: no node may host it now".to_string())
                        }
                        (None, _) => Some(format!(
                            "offline: no node may host it now ({refused}; `ctl group cleanup \
                             {}` clears)",
                            group.name
                        )),
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
}

/// The refusals of `group` in force at wall-clock `now_s`, each with its node, when it ends and
/// why: the records every node reads from the catalog, and this node's own refusal when it is
/// not recorded (the wall clock was unknown, or the update did not land).
fn refusals(group: &core::catalog::GroupSpec, now_s: u64, me: u8, refused_here: bool) -> String {
    let mut said: Vec<String> = group
        .refusals
        .iter()
        .filter(|refusal| refusal.until_s > now_s)
        .map(|refusal| {
            let until_ms = i64::try_from(refusal.until_s.saturating_mul(1000)).unwrap_or(i64::MAX);
            format!(
                "refused on node {} until {} (in {} s): {}",
                refusal.node,
                iso8601_utc_ms(until_ms),
                refusal.until_s - now_s,
                refusal.reason
            )
        })
        .collect();
    let recorded_here = group.refused_at(now_s) & core::bit(me) != 0;
    if refused_here && !recorded_here {
        said.push(format!(
            "refused on node {me} (not recorded; see `ctl events`)"
        ));
    }
    said.join("; ")
}

impl Daemon {
    /// Groups blocked here by a failed stop, and why (`ctl status`).
    pub(super) fn blocked_groups(&self) -> Vec<(String, String)> {
        self.host
            .runner()
            .group_states()
            .into_iter()
            .filter(|group| group.state == State::Blocked)
            .map(|group| (group.group, group.reason))
            .collect()
    }
}

fn describe(state: &str, reason: &str) -> String {
    if reason.is_empty() {
        state.to_string()
    } else {
        format!("{state}: {reason}")
    }
}
