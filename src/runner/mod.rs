//! The group runner: brings the groups the core tells this node to hold online through the
//! resource monitor, watches them, restarts what fails, and gives a group up when a resource
//! that affects it keeps failing. MSCS's resource manager semantics with Pacemaker-like
//! defaults (`core::catalog` holds them).
//!
//! Deterministic and sans-IO like `core::Node`: the daemon feeds it the catalog, the core's
//! decisions, the monitor's events and the time (`now_ms`, monotonic), and drains
//! `poll_output`. No clock, thread, socket or randomness inside, so tests script the monitor.
//!
//! **How it decides.** Every input updates what is known (a resource's state, its outstanding
//! operation, whether the monitor may hold it), then `reconcile` compares every resource with
//! what it should be doing and sends what is missing. Level-triggered rather than a script per
//! situation, so a restart in place, a group given up, a role changed by the administrator and
//! a catalog change all reuse the same few rules:
//! - a resource *may run* when its group is held here and not given up, it is in the catalog,
//!   its role is online, the runner has not given up on it, it is not a failed resource still
//!   held, and every dependency is Online and may run;
//! - a held resource that may not run is stopped, but only once every dependent is down
//!   (not held, nothing outstanding): offline top-down;
//! - a down resource that may run is started (its dependencies are Online by definition):
//!   online bottom-up, independent resources concurrently;
//! - an Online resource that may run and has nothing outstanding gets its LooksAlive and
//!   IsAlive checks when due (IsAlive also counts as a LooksAlive).
//!
//! **Failures** (a failed, timed-out or rejected check, a failed or timed-out start,
//! `ResourceFailed`): the resource becomes Failed. Fewer than `restart_threshold` earlier
//! failures within `restart_period_s`: it may run again, so the rules above stop its
//! dependents, stop it if the monitor still holds it, and start it and its dependents again
//! (restart in place). Otherwise the runner gives up on it: if it affects its group, the group
//! is given up here (`GroupFailed`, then the whole group stops and `GroupStopped` follows);
//! if not, it stays Failed with its dependents offline while the group stays online, and is
//! tried again once its failures within the period fall below the threshold. A `Rejected`
//! start is a configuration failure: given up at once, no restarts. Failure timestamps expire
//! on their own, and `cleanup` (a bumped generation in the catalog) forgets them.
//!
//! **Offline is what the monitor confirms**: a `Done` for `Stop`, a failed start, or
//! `ResourceFailed`, except an `Outcome::OfflineNotConfirmed` or a `ResourceFailed` with
//! `offline_confirmed: false`, after which the runner asks again every `STOP_RETRY_MS`.
//! `GroupStopped` is emitted only once every resource of the group is confirmed offline.
//!
//! **A failed stop blocks** (Pacemaker's `on-fail=block`, or `fence` with fencing): once
//! `STOP_ATTEMPTS_MAX` stops in a row were answered `OfflineNotConfirmed`, the resource is
//! Blocked ("stop failed (why)") and so is its group. Nothing changes in what runs: the
//! resource is still held, so its dependencies stay up, no `GroupStopped` comes, and the core
//! keeps counting the group as held here, so no other node starts it. The runner keeps asking
//! every `STOP_RETRY_MS`; a stop the monitor finally confirms ends the block (the resource is
//! then Failed, and the rules above go on). With `StopFailure::Leave` the runner also asks
//! the daemon to leave the cluster (`RunnerOutput::Leave`): its watchdog then resets the node
//! before its lease runs out on the survivors (disklayout/ARBITRATION.md §6).
//!
//! **Catalog changes** take effect at once for what runs (roles, dependencies, new, removed
//! or moved resources, removed groups). A resource whose type or parameters change while the
//! monitor may hold it is restarted in place by the same rules (`restart_owed`: it may not
//! run until it is down, so its dependents stop first, then it, then all start again); the
//! rest of its group keeps running. Its timeout, restart policy and whether it affects its
//! group take effect at its next operation or failure, and check intervals at its next check
//! (an OCF agent learns a changed interval, OCF_RESKEY_CRM_meta_interval, at its next start:
//! the monitor is told intervals with the start). A dependency that names no resource of the
//! group is never satisfied. A timeout of 0 s means the monitor's default, as an absent one
//! does.
//!
//! **Driving it.** The daemon calls `set_catalog` after each applied update that changed
//! groups or resources, `group` for each of the core's `Resource` outputs, `monitor_event`
//! for every event from the monitor, and `tick` at `next_deadline_ms` (earlier is harmless);
//! after each, it drains `poll_output`. `AllStopped` (after a `StopAll` the daemon sent, at
//! shutdown) marks every resource offline, so the daemon should release the groups first.
//!
//! Files: `history.rs` (failure timestamps), `resource.rs` and `group.rs` (what is known of
//! each), `plan.rs` (who may run), `reconcile.rs` (the rules above), `commands.rs` (sending,
//! with the invariants asserted), `events.rs` (the monitor's answers), `failure.rs` (restart
//! or give up), `catalog_sync.rs` (catalog changes), `status.rs` (`ctl`'s view, deadlines).

mod catalog_sync;
mod commands;
mod events;
mod failure;
mod group;
mod history;
mod mutation;
mod plan;
mod reconcile;
mod resource;
mod status;

#[cfg(test)]
mod tests;

use crate::core::catalog::Catalog;
use crate::monitor::protocol::{Command, Event};
use group::GroupRun;
pub use mutation::RunnerMutation;
use resource::ResourceRun;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// After a stop answered `OfflineNotConfirmed`, how long before the runner asks again. The
/// monitor keeps cleaning up on its own (every `CLEANUP_RETRY_MS`); asking again is only how
/// the runner learns that it finished, so once a second is plenty.
pub const STOP_RETRY_MS: u64 = 1_000;

/// Stops in a row answered `OfflineNotConfirmed` after which the stop counts as failed and the
/// resource is Blocked. The monitor answers so only `KILL_WAIT_MS_MAX` (5 s) after it killed
/// the resource, retrying the cleanup stop meanwhile, and then once per `STOP_RETRY_MS`: so a
/// resource blocks about 10 s after its stop or start was killed. Longer than processes in
/// uninterruptible sleep usually linger, short enough that the group is not silently stuck.
pub const STOP_ATTEMPTS_MAX: u32 = 5;

/// What a node does when a stop failed (`STOP_ATTEMPTS_MAX`): the resource may still run here,
/// so the group must not start anywhere else until this node is confirmed stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopFailure {
    /// Keep the group here, Blocked, with the reason shown, until the monitor confirms the
    /// stop or an administrator intervenes. No other node starts it meanwhile.
    #[default]
    Block,
    /// Block, and leave the cluster at once (`RunnerOutput::Leave`): the node stops renewing
    /// its lease and pinging its monitor, so its watchdog resets it, and the survivors take the
    /// group over once its lease expired on disk. Only with a watchdog: without one the
    /// resource could still run when they do.
    Leave,
}

impl StopFailure {
    /// The name `wolfpack node --stop-failure` takes and `ctl status` shows.
    pub fn name(self) -> &'static str {
        match self {
            StopFailure::Block => "block",
            StopFailure::Leave => "leave",
        }
    }

    pub fn from_name(name: &str) -> Option<StopFailure> {
        match name {
            "block" => Some(StopFailure::Block),
            "leave" => Some(StopFailure::Leave),
            _ => None,
        }
    }
}

/// The state of a resource or of a group, as `ctl` shows it and transitions log it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Offline,
    OnlinePending,
    Online,
    OfflinePending,
    Failed,
    /// Its stop failed: it may still run, and stays held here (see `StopFailure`).
    Blocked,
}

impl State {
    /// The lower-case name used in logs and by `ctl`.
    pub fn name(self) -> &'static str {
        match self {
            State::Offline => "offline",
            State::OnlinePending => "online-pending",
            State::Online => "online",
            State::OfflinePending => "offline-pending",
            State::Failed => "failed",
            State::Blocked => "blocked",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// What the runner asks of the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerOutput {
    /// Send this to the resource monitor.
    Monitor(Command),
    /// A resource or group changed state; the daemon logs it with node, epoch and both clocks.
    Transition {
        group: String,
        resource: Option<String>,
        from: State,
        to: State,
        reason: String,
    },
    /// After `group(slot, false)`, after `GroupFailed`, or after the group left the catalog:
    /// every resource of the group is confirmed offline by the monitor.
    GroupStopped { slot: u8 },
    /// This node gave up on the group (a resource that affects its group exceeded its restart
    /// threshold, or cannot start at all). The runner is already stopping the rest of the
    /// group top-down; `GroupStopped` follows. The daemon tells the core, which moves the group
    /// elsewhere.
    GroupFailed { slot: u8, reason: String },
    /// A stop failed under `StopFailure::Leave`: leave the cluster now, for good in this run.
    /// Asked once; the resource stays Blocked and its group held here (never `GroupStopped`
    /// while it may run), so the node holds a group without a lease and pings its monitor no
    /// more: the monitor's dead-man fires and the watchdog resets the node.
    Leave { reason: String },
}

/// One resource as `ctl resources` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceStatus {
    pub resource: String,
    /// The group it runs in (its last known name).
    pub group: String,
    pub slot: u8,
    pub state: State,
    /// Why it is in that state: "waiting for db", "role offline", a failure.
    pub reason: String,
    /// The last failure, kept until a cleanup.
    pub last_failure: Option<String>,
    /// Failures within its restart period, as of the last input.
    pub recent_failures: usize,
}

/// One group as `ctl groups` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub group: String,
    pub slot: u8,
    /// Whether the core told this node to hold it.
    pub held_here: bool,
    pub state: State,
    pub reason: String,
}

/// The group runner of one node.
pub struct Runner {
    node_id: u8,
    /// The core's decisions: the slots this node is to hold.
    held_slots: BTreeSet<u8>,
    /// Every group the runner knows of (in the catalog, held, or still stopping), by slot.
    groups: BTreeMap<u8, GroupRun>,
    /// Every resource in the catalog for a known group, or still stopping, by name.
    resources: BTreeMap<String, ResourceRun>,
    outputs: VecDeque<RunnerOutput>,
    /// Monitor events that matched nothing outstanding (an unknown resource, the answer to a
    /// cancelled operation); counted so that a steady stream of them shows in the metrics.
    ignored_events: u64,
    /// The latest `now_ms` of any input, for what is asked without a time (`ctl`, deadlines).
    last_now_ms: u64,
    /// `filesystem` resources whose shared-disk lease this node holds (the core's
    /// `Output::ResourceLease`): only these may be started, and one whose lease goes is stopped.
    leases_held: BTreeSet<String>,
    /// What a failed stop does besides blocking.
    stop_failure: StopFailure,
    /// `RunnerOutput::Leave` was asked (once per run of the node).
    leave_asked: bool,
    /// A rule broken on purpose (the simulator's mutation tests); `None` everywhere else.
    mutation: RunnerMutation,
}

impl Runner {
    pub fn new(node_id: u8) -> Runner {
        Runner {
            node_id,
            held_slots: BTreeSet::new(),
            leases_held: BTreeSet::new(),
            groups: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: VecDeque::new(),
            ignored_events: 0,
            last_now_ms: 0,
            stop_failure: StopFailure::Block,
            leave_asked: false,
            mutation: RunnerMutation::None,
        }
    }

    /// What a failed stop does besides blocking (`StopFailure::Block` unless set).
    pub fn set_stop_failure(&mut self, stop_failure: StopFailure) {
        self.stop_failure = stop_failure;
    }

    /// Breaks one rule on purpose, for the simulator's mutation tests.
    pub fn set_mutation(&mut self, mutation: RunnerMutation) {
        self.mutation = mutation;
    }

    pub fn node_id(&self) -> u8 {
        self.node_id
    }

    /// The catalog after an applied database update (only called when groups or resources
    /// changed).
    pub fn set_catalog(&mut self, catalog: &Catalog, now_ms: u64) {
        self.apply_catalog(catalog);
        self.reconcile(now_ms);
    }

    /// The core's decision: hold group `slot` here (true) or not (false). Calling it with
    /// `true` for a group given up here tries it afresh; calling it before the stop of an
    /// earlier `false` finished supersedes that stop (no `GroupStopped` for it).
    pub fn group(&mut self, slot: u8, online: bool, now_ms: u64) {
        self.decide_group(slot, online);
        self.reconcile(now_ms);
    }

    pub fn monitor_event(&mut self, event: &Event, now_ms: u64) {
        self.on_monitor_event(event, now_ms);
        self.reconcile(now_ms);
    }

    /// The core's `ResourceLease`: a `filesystem` resource may run only while its lease is
    /// held here; losing it stops the resource (dependents first) at once.
    pub fn set_lease(&mut self, resource: &str, held: bool, now_ms: u64) {
        if held {
            self.leases_held.insert(resource.to_string());
        } else {
            self.leases_held.remove(resource);
        }
        self.reconcile(now_ms);
    }

    pub fn tick(&mut self, now_ms: u64) {
        self.reconcile(now_ms);
    }

    pub fn poll_output(&mut self) -> Option<RunnerOutput> {
        self.outputs.pop_front()
    }

    /// Monitor events ignored so far (unknown resources, answers to cancelled operations).
    pub fn ignored_events(&self) -> u64 {
        self.ignored_events
    }
}
