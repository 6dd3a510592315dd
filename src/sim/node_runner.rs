//! The daemon's group side, simulated (catalog seeds): each node's `runner::Runner`, driven the
//! way `src/node/daemon/groups.rs` drives it, with a `SimMonitor` in place of the monitor
//! process. The core's `Resource` outputs and catalog changes go to the runner; the runner's
//! commands go to the monitor, whose answers come back when due; `GroupStopped` and
//! `GroupFailed` go to the core. This replaces the fixed 0 to 3 tick stop of the other seeds.
//!
//! The monitor runs on while its node is paused (it is its own process): operations finish,
//! resources fail, and its dead-man switch fires once the core's `ArmDeadman` time passes
//! while it holds anything. A fenced monitor kills everything and exits, and a daemon whose
//! monitor is gone exits too: the node restarts (at once, or when it resumes). A crash kills
//! the monitor's resources at once (its socket closes).

use super::cluster::Cluster;
use super::monitor_sim::{SimMonitor, Start};
use super::resource_checker::{self, NodeTruth};
use crate::core::catalog::Catalog;
use crate::core::{bit, Input};
use crate::monitor::protocol::{confirms_offline, Command, Event, Operation, Outcome};
use crate::runner::{Runner, RunnerMutation, RunnerOutput};
use std::collections::VecDeque;

/// How long a node refuses a group its runner gave up (ms), drawn per failure. Shorter than
/// the daemon's (the longest restart period of the group's resources) so that a run can
/// converge within its bound; the core's refusal logic is the same whatever the length.
const REFUSE_MS_MIN: u64 = 500;
const REFUSE_MS_MAX: u64 = 4_000;

/// What the runner tells the core; stepped once the outputs being routed are done, as the
/// daemon's loop handles them in order.
#[derive(Clone, Copy, Debug)]
enum ForCore {
    GroupStopped(u8),
    GroupFailed(u8),
}

/// A node's runner, its monitor, and what the sim must remember between them.
pub struct NodeRunner {
    pub runner: Runner,
    pub monitor: SimMonitor,
    /// The catalog the runner was last given (what it acts on).
    catalog: Catalog,
    /// The core's groups as its outputs and inputs say: online, and stopping until
    /// `GroupStopped` reached it (its `Status::online_groups` and `stopping_groups`).
    core_online: u64,
    core_stopping: u64,
    for_core: VecDeque<ForCore>,
    /// `runner.next_deadline_ms()` as of its last input (it changes only with one, and is
    /// costly to compute every tick).
    next_deadline_ms: Option<u64>,
}

impl NodeRunner {
    pub fn new(node_id: u8, seed: u64, mutation: RunnerMutation) -> NodeRunner {
        let mut runner = Runner::new(node_id);
        runner.set_mutation(mutation);
        NodeRunner {
            runner,
            monitor: SimMonitor::new(seed),
            catalog: Catalog::default(),
            core_online: 0,
            core_stopping: 0,
            for_core: VecDeque::new(),
            next_deadline_ms: None,
        }
    }

    /// The groups the core holds (online, or stopping and not confirmed).
    pub fn core_holding(&self) -> u64 {
        self.core_online | self.core_stopping
    }
}

/// What one round of draining a runner produced for the cluster.
#[derive(Default)]
struct Drained {
    violations: Vec<String>,
    log: Vec<String>,
    /// What happened, for the report's totals.
    counts: Vec<&'static str>,
}

impl Cluster {
    fn faulty(&self) -> bool {
        self.tick < self.params.ticks_faulty
    }

    /// The core's `Resource { group, online }` on node `id`.
    pub(super) fn runner_group(&mut self, id: u8, group: u8, online: bool) {
        let now_ms = self.local_ms(id);
        let sim_node = &mut self.nodes[usize::from(id - 1)];
        let Some(node_runner) = sim_node.runner.as_mut() else {
            return;
        };
        if online {
            node_runner.core_online |= bit(group);
            sim_node.online |= bit(group);
        } else {
            node_runner.core_online &= !bit(group);
            node_runner.core_stopping |= bit(group);
        }
        self.resource_checker.holding_changed = true;
        node_runner.runner.group(group, online, now_ms);
        self.pump_runner(id);
    }

    /// The core's `ResourceLease` on node `id`: a filesystem may run only under its lease.
    pub(super) fn runner_lease(&mut self, id: u8, resource: &str, held: bool) {
        let now_ms = self.local_ms(id);
        let sim_node = &mut self.nodes[usize::from(id - 1)];
        let Some(node_runner) = sim_node.runner.as_mut() else {
            return;
        };
        node_runner.runner.set_lease(resource, held, now_ms);
        self.pump_runner(id);
    }

    /// The core's catalog changed on node `id`: the runner follows it, and resources running
    /// stop requiring dependencies the catalog dropped.
    pub(super) fn runner_catalog_changed(&mut self, id: u8) {
        let now_ms = self.local_ms(id);
        let sim_node = &mut self.nodes[usize::from(id - 1)];
        let (Some(node), Some(node_runner)) = (sim_node.node.as_ref(), sim_node.runner.as_mut())
        else {
            return;
        };
        node_runner.catalog = node.catalog().clone();
        let NodeRunner {
            runner,
            monitor,
            catalog,
            ..
        } = node_runner;
        monitor.catalog_changed(|name| catalog.resource(name).map(|spec| spec.depends.as_slice()));
        runner.set_catalog(catalog, now_ms);
        self.pump_runner(id);
    }

    /// Every tick: each monitor moves on (paused nodes' too), fences when its dead-man time
    /// passed, and hands its events to a running node's runner, which is ticked when due.
    pub(super) fn advance_runners(&mut self) {
        for id in 1..=self.params.node_count {
            let monitor_runs = self.advance_monitor(id);
            if monitor_runs && !self.nodes[usize::from(id - 1)].paused {
                self.feed_runner(id);
            }
        }
    }

    /// Moves node `id`'s monitor on to its clock and fires its dead-man switch if due; false
    /// when it has no monitor or the monitor fenced.
    fn advance_monitor(&mut self, id: u8) -> bool {
        let faulty = self.faulty();
        let now_ms = self.local_ms(id);
        let sim_node = &mut self.nodes[usize::from(id - 1)];
        let deadman_due = sim_node
            .deadman_stop_at_ms
            .is_some_and(|stop_ms| now_ms >= stop_ms);
        let Some(node_runner) = sim_node.runner.as_mut() else {
            return false;
        };
        if node_runner.monitor.is_fenced() {
            return false;
        }
        node_runner.monitor.advance(now_ms, faulty);
        let made_to_fail = node_runner.monitor.take_made_to_fail();
        self.resource_checker.made_to_fail.extend(made_to_fail);
        // The core re-arms the dead-man while its lease is renewed; past that time, a monitor
        // whose node holds a group or a resource fences, as the daemon's would (nothing
        // re-armed it). A node holding nothing loses nothing by it.
        let holds = node_runner.core_holding() != 0 || node_runner.monitor.holds_anything();
        if !(deadman_due && holds) {
            return true;
        }
        node_runner.monitor.fence();
        sim_node.online = 0;
        let paused = sim_node.paused;
        self.report.deadman_stops += 1;
        *self.report.resources.entry("monitors fenced").or_insert(0) += 1;
        if self.trace {
            println!("tick={} node={id} monitor fenced (dead-man)", self.tick);
        }
        if !paused {
            self.restart_after_fence(id);
        }
        false
    }

    /// Hands node `id`'s runner its monitor's events and ticks it when due.
    fn feed_runner(&mut self, id: u8) {
        let now_ms = self.local_ms(id);
        let Some(node_runner) = self.nodes[usize::from(id - 1)].runner.as_mut() else {
            return;
        };
        let tick_due = node_runner
            .next_deadline_ms
            .is_some_and(|due_ms| due_ms <= now_ms);
        if !tick_due && !node_runner.monitor.has_events() {
            return;
        }
        if tick_due {
            node_runner.runner.tick(now_ms);
        }
        self.pump_runner(id);
        self.deliver_to_core(id);
    }

    /// A node whose monitor fenced: its daemon exits, and is started again.
    pub(super) fn restart_after_fence(&mut self, id: u8) {
        self.crash(id);
        self.boot(id);
    }

    /// Whether node `id`'s monitor fenced (its daemon must exit when it next runs).
    pub(super) fn monitor_fenced(&self, id: u8) -> bool {
        self.nodes[usize::from(id - 1)]
            .runner
            .as_ref()
            .is_some_and(|node_runner| node_runner.monitor.is_fenced())
    }

    /// Drains node `id`'s runner: commands to the monitor, the monitor's due answers back, until
    /// neither has anything more; what is for the core waits in `for_core`.
    pub(super) fn pump_runner(&mut self, id: u8) {
        let now_ms = self.local_ms(id);
        let faulty = self.faulty();
        let Some(node_runner) = self.nodes[usize::from(id - 1)].runner.as_mut() else {
            return;
        };
        let mut drained = Drained::default();
        loop {
            let mut moved = false;
            while let Some(output) = node_runner.runner.poll_output() {
                moved = true;
                route_runner_output(id, node_runner, output, now_ms, faulty, &mut drained);
            }
            // One event at a time, its outputs routed before the next is read: what the
            // runner asked while it still believed the earlier state reaches the monitor
            // before the monitor's next news does, as in the daemon (`drain_runner` after each
            // monitor event).
            if let Some(event) = node_runner.monitor.next_event() {
                moved = true;
                drained.counts.push(event_kind(&event));
                drained.log.push(format!("{id} monitor {event:?}"));
                node_runner.runner.monitor_event(&event, now_ms);
            }
            if !moved {
                break;
            }
        }
        node_runner.next_deadline_ms = node_runner.runner.next_deadline_ms();
        let made_to_fail = node_runner.monitor.take_made_to_fail();
        self.resource_checker.made_to_fail.extend(made_to_fail);
        for text in drained.log {
            self.fold_digest(format_args!("{text}"));
            if self.trace {
                println!("tick={} node={text}", self.tick);
            }
        }
        for description in drained.violations {
            self.resource_violation(description);
        }
        for kind in drained.counts {
            *self.report.resources.entry(kind).or_insert(0) += 1;
        }
    }

    /// Steps node `id`'s core with what its runner said, in order.
    pub(super) fn deliver_to_core(&mut self, id: u8) {
        loop {
            let index = usize::from(id - 1);
            let Some(node_runner) = self.nodes[index].runner.as_mut() else {
                return;
            };
            let Some(for_core) = node_runner.for_core.pop_front() else {
                return;
            };
            match for_core {
                ForCore::GroupStopped(group) => {
                    // As the daemon: only a stop the core is waiting for.
                    if node_runner.core_stopping & bit(group) == 0 {
                        continue;
                    }
                    node_runner.core_stopping &= !bit(group);
                    self.nodes[index].online &= !bit(group);
                    self.resource_checker.holding_changed = true;
                    self.step(id, Input::GroupStopped { group });
                }
                ForCore::GroupFailed(group) => {
                    let refuse_ms = self.prng.range_inclusive(REFUSE_MS_MIN, REFUSE_MS_MAX);
                    self.report.count_gum("groups failed by the runner");
                    self.step(id, Input::GroupFailed { group, refuse_ms });
                }
            }
        }
    }

    /// The instant resource invariants over every live node, when anything they read changed
    /// (after most steps nothing did: checking only then is the same and much cheaper).
    pub(super) fn check_resources(&mut self) {
        let mut changed = std::mem::take(&mut self.resource_checker.holding_changed);
        for sim_node in &mut self.nodes {
            if let Some(node_runner) = sim_node.runner.as_mut() {
                changed |= node_runner.monitor.take_changed();
            }
        }
        if !changed {
            return;
        }
        let truths: Vec<NodeTruth<'_>> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(index, sim_node)| {
                let node_runner = sim_node.runner.as_ref()?;
                Some(NodeTruth {
                    node: index as u8 + 1,
                    monitor: &node_runner.monitor,
                    core_holding: node_runner.core_holding(),
                })
            })
            .collect();
        let violations = resource_checker::check_instant(&truths);
        for description in violations {
            self.resource_violation(description);
        }
    }

    fn resource_violation(&mut self, description: String) {
        if self.checker.violations.len() < 16 {
            self.checker.violations.push(super::checker::Violation {
                tick: self.tick,
                description,
            });
        }
    }
}

/// One runner output of node `id`: a command to its monitor (checked first), a transition
/// for the digest, or something for the core.
fn route_runner_output(
    id: u8,
    node_runner: &mut NodeRunner,
    output: RunnerOutput,
    now_ms: u64,
    faulty: bool,
    drained: &mut Drained,
) {
    match output {
        RunnerOutput::Monitor(command) => {
            drained.counts.push(match command {
                Command::Start { .. } => "starts",
                Command::Stop { .. } => "stops",
                Command::Check { .. } => "checks",
                _ => "other commands",
            });
            drained.log.push(format!("{id} runner {command:?}"));
            to_monitor(id, node_runner, &command, now_ms, faulty, drained);
        }
        RunnerOutput::Transition {
            group,
            resource,
            to,
            reason,
            ..
        } => drained
            .log
            .push(format!("{id} {group}/{resource:?} {to}: {reason}")),
        RunnerOutput::GroupStopped { slot } => {
            node_runner.for_core.push_back(ForCore::GroupStopped(slot));
        }
        RunnerOutput::GroupFailed { slot, reason } => {
            drained.counts.push("groups given up by a runner");
            drained
                .log
                .push(format!("{id} runner gave up slot {slot}: {reason}"));
            node_runner.for_core.push_back(ForCore::GroupFailed(slot));
        }
    }
}

fn to_monitor(
    id: u8,
    node_runner: &mut NodeRunner,
    command: &Command,
    now_ms: u64,
    faulty: bool,
    drained: &mut Drained,
) {
    let monitor = &mut node_runner.monitor;
    match command {
        Command::Start {
            resource,
            kind,
            timeout_ms,
            ..
        } => {
            let catalog = &node_runner.catalog;
            let spec = catalog.resource(resource);
            let depends = spec.map_or(&[][..], |spec| spec.depends.as_slice());
            // Slot 0 (a resource of no group in the runner's catalog) is never held: the
            // checker reports it.
            let slot = spec
                .and_then(|spec| catalog.group(&spec.group))
                .map_or(0, |group| group.slot);
            let violations = resource_checker::check_start(id, resource, depends, monitor);
            drained.violations.extend(violations);
            let start = Start {
                name: resource,
                kind,
                timeout_ms: *timeout_ms,
                slot,
                depends,
            };
            monitor.start(&start, now_ms, faulty);
        }
        Command::Stop {
            resource,
            timeout_ms,
        } => monitor.stop(resource, *timeout_ms, now_ms, faulty),
        Command::Check {
            resource,
            level,
            timeout_ms,
        } => monitor.check(resource, *level, *timeout_ms, now_ms, faulty),
        // The runner never sends these (the daemon does, for its own reasons).
        Command::Ping { .. } | Command::StopAll | Command::Shutdown => {
            drained
                .violations
                .push(format!("node {id}: the runner sent {command:?}"));
        }
    }
}

/// A monitor event's kind, for the report's totals.
fn event_kind(event: &Event) -> &'static str {
    match event {
        Event::Done {
            outcome: Outcome::Failed(reason),
            ..
        }
        | Event::ResourceFailed { reason, .. }
            if !confirms_offline(reason) =>
        {
            "offline not confirmed"
        }
        Event::Done {
            operation, outcome, ..
        } => match (operation, outcome) {
            (_, Outcome::Rejected(_)) => "rejected",
            (Operation::Start, Outcome::Success) => "started",
            (Operation::Start, Outcome::Failed(_)) => "start failed or cancelled",
            (Operation::Start, Outcome::TimedOut) => "start timed out",
            (Operation::Stop, Outcome::Success) => "stopped",
            (Operation::Stop, _) => "stop failed or timed out",
            (Operation::Check(_), Outcome::Success) => "checked",
            (Operation::Check(_), _) => "check failed or timed out",
        },
        Event::ResourceFailed { .. } => "failed while online",
        Event::Pong { .. } | Event::AllStopped => "other events",
    }
}
