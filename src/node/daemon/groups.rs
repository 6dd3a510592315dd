//! What `ctl groups|resources` show of this node's groups beside the catalog. Running them is
//! the host's business (`src/host/groups.rs`).

use super::Daemon;
use crate::core;
use crate::node::catalog_commands::{GroupRuntime, ResourceRuntime, Runtime};
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
        Runtime {
            configured_nodes: configured,
            group: Box::new(move |group| {
                let owner = owners
                    .get(usize::from(group.slot) - 1)
                    .copied()
                    .filter(|owner| *owner != 0 && member);
                let here = groups.iter().find(|state| state.slot == group.slot);
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
                        (None, _) => Some("offline: no node may host it now".to_string()),
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
