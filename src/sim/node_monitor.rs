//! Each node's resource monitor, simulated (`SimMonitor`), between the node's host and the
//! resource checker. The host (`crate::host::Host`, the daemon's own) sends it commands
//! (`HostOutput::Monitor`): starts, stops and checks from the runner or for a test group, and
//! pings by the dead-man rule. Its answers go back to the host when due, one at a time, each
//! routed before the next is read, as the daemon reads its monitor's socket.
//!
//! The monitor runs on while its node is paused (it is its own process): operations finish,
//! resources fail, and its dead-man fences once `fence_timeout_ms` pass with no ping. A fenced
//! monitor kills everything and exits, and a daemon whose monitor is gone exits too: the node
//! restarts (at once, or when it resumes). A crash kills the monitor's resources at once (its
//! socket closes).
//!
//! Test groups' resources (`group-N`, seeds without a catalog) never fail by themselves: no
//! runner would restart them, and those seeds test the protocol, not resource failures.

use super::checker::{Finding, ViolationKind};
use super::cluster::Cluster;
use super::monitor_sim::{SimMonitor, Start};
use super::resource_checker::{self, NodeTruth};
use crate::monitor::protocol::{Command, Event, Operation, Outcome};

impl Cluster {
    fn faulty(&self) -> bool {
        self.tick < self.params.ticks_faulty
    }

    /// Whether node `id`'s monitor draws failures now.
    fn monitor_faulty(&self) -> bool {
        self.params.catalog_groups && self.faulty()
    }

    /// Every tick: each monitor moves on (paused nodes' too), fences when its dead-man ran
    /// out, and hands its events to a running node's host.
    pub(super) fn advance_monitors(&mut self) {
        for id in 1..=self.params.node_count {
            if self.advance_monitor(id) && !self.nodes[usize::from(id - 1)].paused {
                self.deliver_monitor_events(id);
            }
        }
    }

    /// Moves node `id`'s monitor on to its clock and fires its dead-man switch if due; false
    /// when it has no monitor or the monitor fenced.
    fn advance_monitor(&mut self, id: u8) -> bool {
        let faulty = self.monitor_faulty();
        let now_ms = self.local_ms(id);
        let sim_node = &mut self.nodes[usize::from(id - 1)];
        let Some(monitor) = sim_node.monitor.as_mut() else {
            return false;
        };
        if monitor.is_fenced() || sim_node.frozen {
            return false;
        }
        monitor.advance(now_ms, faulty);
        let made_to_fail = monitor.take_made_to_fail();
        self.resource_checker.made_to_fail.extend(made_to_fail);
        if !monitor.fence_due(now_ms) {
            return true;
        }
        let held_anything = monitor.holds_anything();
        let core_holds = sim_node
            .host
            .as_ref()
            .is_some_and(|host| host.holding_groups() != 0);
        if !(self.params.idle_monitors_fence || held_anything || core_holds) {
            return true;
        }
        monitor.fence();
        sim_node.online = 0;
        let paused = sim_node.paused;
        // Every filesystem is unmounted: its leases count until their validity ends, not
        // while they are "in use".
        let leases = std::mem::take(&mut sim_node.leases);
        for (resource, valid_until_ms) in leases {
            self.report.count_lease("stopped by the dead-man");
            self.linger(id, resource, valid_until_ms);
        }
        if held_anything {
            self.report.deadman_stops += 1;
        }
        *self.report.resources.entry("monitors fenced").or_insert(0) += 1;
        if self.trace {
            println!("tick={} node={id} monitor fenced (dead-man)", self.tick);
        }
        // A paused daemon exits when it resumes; a watchdog due resets the machine now.
        let survivors = self.nodes[usize::from(id - 1)]
            .monitor
            .as_ref()
            .is_some_and(SimMonitor::holds_anything);
        if !paused || (survivors && self.watchdog_due(id)) {
            self.restart_after_fence(id);
        }
        false
    }

    /// A node whose monitor fenced: its daemon exits, and is started again. What the fence
    /// could not kill (a stuck resource) runs on, unless the watchdog resets the machine now
    /// (it does, ARBITRATION.md rule 5: `W ≤ F/(1 + ρ)`): then the node stays down, its fenced
    /// monitor still holding those resources, until it reboots (the watchdog, if late, or a
    /// crash; heal boots it).
    pub(super) fn restart_after_fence(&mut self, id: u8) {
        let index = usize::from(id - 1);
        let survivors = self.nodes[index]
            .monitor
            .as_ref()
            .is_some_and(SimMonitor::holds_anything);
        if survivors && !self.watchdog_due(id) {
            *self
                .report
                .resources
                .entry("resources outliving their daemon")
                .or_insert(0) += 1;
            let monitor = self.nodes[index].monitor.take();
            self.crash(id);
            self.nodes[index].monitor = monitor;
            return;
        }
        if survivors {
            *self.report.resources.entry("watchdog resets").or_insert(0) += 1;
        }
        self.crash(id);
        self.boot(id);
    }

    /// Every stuck resource is gone from now on (`Params::stuck_stops`).
    pub(super) fn unstick_stops(&mut self) {
        for id in 1..=self.params.node_count {
            let now_ms = self.local_ms(id);
            if let Some(monitor) = self.nodes[usize::from(id - 1)].monitor.as_mut() {
                monitor.unstick(now_ms);
            }
        }
    }

    /// Whether node `id`'s monitor fenced (its daemon must exit when it next runs).
    pub(super) fn monitor_fenced(&self, id: u8) -> bool {
        self.nodes[usize::from(id - 1)]
            .monitor
            .as_ref()
            .is_some_and(|monitor| monitor.is_fenced())
    }

    /// Hands node `id`'s host its monitor's due events, one at a time (each one's outputs
    /// routed, which may bring more events, before the next is read).
    pub(super) fn deliver_monitor_events(&mut self, id: u8) {
        let index = usize::from(id - 1);
        loop {
            let now_ms = self.local_ms(id);
            let sim_node = &mut self.nodes[index];
            if sim_node.paused || sim_node.host.is_none() {
                return;
            }
            let Some(event) = sim_node.monitor.as_mut().and_then(|m| m.next_event()) else {
                return;
            };
            *self.report.resources.entry(event_kind(&event)).or_insert(0) += 1;
            if !matches!(event, Event::Pong { .. }) {
                self.fold_digest(format_args!("{id} monitor {event:?}"));
                if self.trace {
                    println!("tick={} node={id} monitor {event:?}", self.tick);
                }
            }
            if let Some(host) = self.nodes[index].host.as_mut() {
                host.monitor_event(now_ms, &event);
            }
            self.drain(id);
        }
    }

    /// A command of node `id`'s host to its monitor (a start checked first).
    pub(super) fn send_to_monitor(&mut self, id: u8, command: Command) {
        let now_ms = self.local_ms(id);
        let faulty = self.monitor_faulty();
        let kind = match command {
            Command::Start { .. } => "starts",
            Command::Stop { .. } => "stops",
            Command::Check { .. } => "checks",
            Command::Ping { .. } => "pings",
            _ => "other commands",
        };
        *self.report.resources.entry(kind).or_insert(0) += 1;
        if !matches!(command, Command::Ping { .. }) {
            self.fold_digest(format_args!("{id} runner {command:?}"));
            if self.trace {
                println!("tick={} node={id} to monitor {command:?}", self.tick);
            }
        }
        let sim_node = &mut self.nodes[usize::from(id - 1)];
        let Some(monitor) = sim_node.monitor.as_mut() else {
            return;
        };
        if monitor.is_fenced() {
            return;
        }
        let is_ping = matches!(command, Command::Ping { .. });
        monitor.heard(now_ms, is_ping);
        if is_ping {
            sim_node.watchdog_fed_ms = self.tick * crate::core::timeout::TICK_MS;
        }
        let mut violations = Vec::new();
        match &command {
            Command::Start {
                resource,
                kind,
                timeout_ms,
                ..
            } => {
                let catalog = &sim_node.catalog;
                let spec = catalog.resource(resource);
                let depends = spec.map_or(&[][..], |spec| spec.depends.as_slice());
                // A test group's resource is its group; slot 0 (a resource of no group in the
                // runner's catalog) is never held: the checker reports it.
                let slot = crate::host::test_group_of(resource).unwrap_or_else(|| {
                    spec.and_then(|spec| catalog.group(&spec.group))
                        .map_or(0, |group| group.slot)
                });
                violations = resource_checker::check_start(id, resource, depends, monitor);
                let host = sim_node.host.as_ref();
                if let Some(finding) =
                    host.and_then(|host| start_past_lease(id, resource, host, monitor))
                {
                    violations.push(finding);
                }
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
            // The dead-man is restarted above; the host ignores the `Pong`, so none is sent.
            // ARBITRATION.md rule 5: a ping restarts the dead-man (and feeds a watchdog) for
            // `fence_timeout`, so while the node holds a group, a ping is sent only while every
            // lease covering its resources lasts that long.
            Command::Ping { .. } => {
                let host = sim_node.host.as_ref();
                if let Some(finding) = host.and_then(|host| ping_past_lease(id, host, monitor)) {
                    violations.push(finding);
                }
            }
            // The host never sends these (the daemon does, on its way out).
            Command::StopAll | Command::Shutdown => {
                violations.push(Finding::new(
                    ViolationKind::HostSentDaemonCommand,
                    format!("node {id}: the host sent {command:?}"),
                ));
            }
        }
        let made_to_fail = monitor.take_made_to_fail();
        self.resource_checker.made_to_fail.extend(made_to_fail);
        for finding in violations {
            self.resource_violation(finding);
        }
    }

    /// The instant resource invariants over every live node, when anything they read changed
    /// (after most steps nothing did: checking only then is the same and much cheaper).
    pub(super) fn check_resources(&mut self) {
        let mut changed = std::mem::take(&mut self.resource_checker.holding_changed);
        for sim_node in &mut self.nodes {
            if let Some(monitor) = sim_node.monitor.as_mut() {
                changed |= monitor.take_changed();
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
                Some(NodeTruth {
                    node: index as u8 + 1,
                    monitor: sim_node.monitor.as_ref()?,
                    core_holding: sim_node
                        .host
                        .as_ref()
                        .map_or(0, |host| host.holding_groups()),
                })
            })
            .collect();
        let violations = resource_checker::check_instant(&truths);
        for finding in violations {
            self.resource_violation(finding);
        }
    }

    pub(super) fn resource_violation(&mut self, finding: Finding) {
        if self.checker.violations.len() < 16 {
            self.checker.violations.push(finding.at(self.tick));
        }
    }
}

/// A monitor event's kind, for the report's totals.
fn event_kind(event: &Event) -> &'static str {
    match event {
        Event::Done {
            outcome: Outcome::OfflineNotConfirmed(_),
            ..
        }
        | Event::ResourceFailed {
            offline_confirmed: false,
            ..
        } => "offline not confirmed",
        Event::Done {
            operation, outcome, ..
        } => match (operation, outcome) {
            (_, Outcome::Rejected(_)) => "rejected",
            (Operation::Start, Outcome::Success) => "started",
            // (Not confirmed offline: counted above.)
            (Operation::Start, Outcome::Failed(_) | Outcome::OfflineNotConfirmed(_)) => {
                "start failed or cancelled"
            }
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

/// How far the core's clock may lag the node's when it decides: the simulator delivers a
/// tick's packets and disk completions before that tick's `Tick`, so the core judges them on
/// its previous tick, up to two ticks behind the local ms the monitor keeps. The holder's share
/// of the lease, `H`, keeps three ticks in hand for this (ARBITRATION.md §1).
const CORE_CLOCK_LAG_MS_MAX: u64 = 2 * crate::core::timeout::TICK_MS;

/// The dead-man's end and the leases' end when the first lies past the second by more than the
/// core's clock lag: should the node hang or freeze now, its resources and a watchdog fed by the
/// last ping would outlast the leases covering them (ARBITRATION.md rule 5). The leases are the
/// membership lease and every resource lease the core holds.
fn deadman_past_lease(
    host: &crate::host::Host,
    monitor: &super::monitor_sim::SimMonitor,
) -> Option<(u64, u64)> {
    let fence_deadline_ms = monitor.fence_deadline_ms()?;
    let deadline_ms = host.core().resources_deadline_ms();
    (fence_deadline_ms > deadline_ms + CORE_CLOCK_LAG_MS_MAX)
        .then_some((fence_deadline_ms, deadline_ms))
}

/// A ping of a node holding groups that restarts the dead-man past its leases' end.
fn ping_past_lease(
    id: u8,
    host: &crate::host::Host,
    monitor: &super::monitor_sim::SimMonitor,
) -> Option<Finding> {
    if host.holding_groups() == 0 {
        return None;
    }
    let (fence_deadline_ms, deadline_ms) = deadman_past_lease(host, monitor)?;
    Some(Finding::new(ViolationKind::DeadmanPastLeaseAtPing, format!(
        "node {id} pinged its monitor holding groups {:#b}: its dead-man now runs until {fence_deadline_ms} ms, past its leases' end at {deadline_ms} ms (rule 5: the dead-man and a watchdog would outlast them)",
        host.holding_groups()
    )))
}

/// A start on a node whose dead-man, armed by the last ping (maybe an idle one just before),
/// runs past its leases' end.
fn start_past_lease(
    id: u8,
    resource: &str,
    host: &crate::host::Host,
    monitor: &super::monitor_sim::SimMonitor,
) -> Option<Finding> {
    let (fence_deadline_ms, deadline_ms) = deadman_past_lease(host, monitor)?;
    Some(Finding::new(ViolationKind::DeadmanPastLeaseAtStart, format!(
        "node {id} started {resource} with its dead-man armed until {fence_deadline_ms} ms, past its leases' end at {deadline_ms} ms (rule 5: a hang now would outlast them)"
    )))
}
