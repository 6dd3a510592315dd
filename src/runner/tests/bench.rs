//! A scripted fake monitor and a bench that wires it to a runner. The fake keeps the real
//! monitor's contract (a stop cancels a pending start or check, which is answered first;
//! `OfflineNotConfirmed` leaves the resource held) and checks the runner's side of it on
//! every command: no start of a held resource or before its dependencies are online at the
//! monitor, no stop while a dependent is held, no second stop, checks only of online ones.

use crate::core::catalog::{self, Catalog, Failback, GroupSpec, ResourceSpec};
use crate::monitor::protocol::{Command, Event, Operation, Outcome};
use crate::runner::{Runner, RunnerOutput, State};
use std::collections::{BTreeMap, VecDeque};

pub const NOT_CONFIRMED: &str = "processes survived SIGKILL; offline not confirmed";

/// A resource as the fake monitor holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Starting,
    Online,
    Checking,
    Stopping,
    /// A start or stop answered `OfflineNotConfirmed`: still held, no operation.
    Lingering,
}

#[derive(Default)]
pub struct FakeMonitor {
    pub held: BTreeMap<String, Held>,
    /// Operations awaiting an answer, oldest first.
    pub pending: Vec<(String, Operation)>,
    /// Every command received.
    pub commands: Vec<Command>,
    /// Answers due at once (cancelled starts and checks).
    pub answers: VecDeque<Event>,
}

impl FakeMonitor {
    pub fn receive(&mut self, command: &Command, catalog: &Catalog) {
        self.commands.push(command.clone());
        match command {
            Command::Start { resource, .. } => {
                assert!(
                    !self.held.contains_key(resource),
                    "start of {resource}, held as {:?}",
                    self.held.get(resource)
                );
                for needed in catalog
                    .resource(resource)
                    .map_or(&[][..], |s| &s.depends[..])
                {
                    assert!(
                        matches!(self.held.get(needed), Some(Held::Online | Held::Checking)),
                        "start of {resource} while {needed} is not online at the monitor"
                    );
                }
                self.held.insert(resource.clone(), Held::Starting);
                self.pending.push((resource.clone(), Operation::Start));
            }
            Command::Stop { resource, .. } => {
                for dependent in dependents(catalog, resource) {
                    assert!(
                        !self.held.contains_key(&dependent),
                        "stop of {resource} while its dependent {dependent} is held"
                    );
                }
                match self.held.get(resource) {
                    Some(Held::Stopping) => panic!("second stop of {resource}"),
                    Some(Held::Starting | Held::Checking) => self.cancel(resource),
                    _ => {}
                }
                self.held.insert(resource.clone(), Held::Stopping);
                self.pending.push((resource.clone(), Operation::Stop));
            }
            Command::Check {
                resource, level, ..
            } => {
                assert_eq!(
                    self.held.get(resource),
                    Some(&Held::Online),
                    "check of {resource}"
                );
                self.held.insert(resource.clone(), Held::Checking);
                self.pending
                    .push((resource.clone(), Operation::Check(*level)));
            }
            other => panic!("the runner sent {other:?}"),
        }
    }

    /// A stop cancels the pending start or check, answered before the stop.
    fn cancel(&mut self, resource: &str) {
        let Some(index) = self
            .pending
            .iter()
            .position(|(name, operation)| name == resource && *operation != Operation::Stop)
        else {
            return;
        };
        let (_, operation) = self.pending.remove(index);
        self.answers.push_back(Event::Done {
            resource: resource.to_string(),
            operation,
            outcome: Outcome::Failed("cancelled by stop".to_string()),
            elapsed_ms: 0,
        });
    }

    /// Answers the pending operation at `index` with `outcome`.
    pub fn resolve(&mut self, index: usize, outcome: Outcome) -> Event {
        let (resource, operation) = self.pending.remove(index);
        match (operation, &outcome) {
            (Operation::Start, Outcome::Success) | (Operation::Check(_), _) => {
                self.held.insert(resource.clone(), Held::Online);
            }
            (Operation::Start | Operation::Stop, Outcome::OfflineNotConfirmed(_)) => {
                self.held.insert(resource.clone(), Held::Lingering);
            }
            _ => {
                self.held.remove(&resource);
            }
        }
        Event::Done {
            resource,
            operation,
            outcome,
            elapsed_ms: 0,
        }
    }

    /// `resource`, online, exits by itself.
    pub fn fail(&mut self, resource: &str) -> Event {
        assert_eq!(self.held.get(resource), Some(&Held::Online));
        self.held.remove(resource);
        Event::ResourceFailed {
            resource: resource.to_string(),
            reason: "exit code 7 (not running)".to_string(),
            offline_confirmed: true,
        }
    }

    pub fn position(&self, resource: &str) -> Option<usize> {
        self.pending.iter().position(|(name, _)| name == resource)
    }
}

/// The resources of `resource`'s group that depend on it, by the catalog.
fn dependents(catalog: &Catalog, resource: &str) -> Vec<String> {
    let Some(spec) = catalog.resource(resource) else {
        return Vec::new();
    };
    catalog
        .resources
        .iter()
        .filter(|other| other.group == spec.group && other.depends.iter().any(|d| d == resource))
        .map(|other| other.name.clone())
        .collect()
}

pub struct Bench {
    pub runner: Runner,
    pub monitor: FakeMonitor,
    pub catalog: Catalog,
    pub now_ms: u64,
    /// Every output but monitor commands, in order.
    pub reports: Vec<RunnerOutput>,
}

impl Bench {
    pub fn new(catalog: Catalog) -> Bench {
        let mut bench = Bench {
            runner: Runner::new(1),
            monitor: FakeMonitor::default(),
            catalog: Catalog::default(),
            now_ms: 1_000,
            reports: Vec::new(),
        };
        bench.set_catalog(catalog);
        bench
    }

    /// Drains the runner, feeding commands to the fake and its immediate answers back.
    pub fn pump(&mut self) {
        loop {
            while let Some(output) = self.runner.poll_output() {
                match output {
                    RunnerOutput::Monitor(command) => self.monitor.receive(&command, &self.catalog),
                    report => {
                        self.check_report(&report);
                        self.reports.push(report);
                    }
                }
            }
            match self.monitor.answers.pop_front() {
                Some(event) => self.runner.monitor_event(&event, self.now_ms),
                None => return,
            }
        }
    }

    /// `GroupStopped` only once the monitor holds nothing of the group.
    fn check_report(&self, report: &RunnerOutput) {
        if let RunnerOutput::GroupStopped { slot } = report {
            for status in self.runner.resource_states() {
                if status.slot == *slot {
                    assert!(
                        !self.monitor.held.contains_key(&status.resource),
                        "GroupStopped {slot} while the monitor holds {}",
                        status.resource
                    );
                }
            }
        }
    }

    pub fn set_catalog(&mut self, catalog: Catalog) {
        self.catalog = catalog;
        self.runner.set_catalog(&self.catalog, self.now_ms);
        self.pump();
    }

    pub fn hold(&mut self, slot: u8, online: bool) {
        self.runner.group(slot, online, self.now_ms);
        self.pump();
    }

    /// Answers the oldest pending operation of `resource`.
    pub fn answer(&mut self, resource: &str, outcome: Outcome) {
        let index = self
            .monitor
            .position(resource)
            .unwrap_or_else(|| panic!("nothing pending for {resource}: {:?}", self.pending()));
        let event = self.monitor.resolve(index, outcome);
        self.runner.monitor_event(&event, self.now_ms);
        self.pump();
    }

    /// `resource` exits by itself.
    pub fn fail(&mut self, resource: &str) {
        let event = self.monitor.fail(resource);
        self.runner.monitor_event(&event, self.now_ms);
        self.pump();
    }

    /// Answers every pending operation with success, oldest first, until none is left.
    pub fn settle(&mut self) {
        for _ in 0..1_000 {
            let Some((resource, _)) = self.monitor.pending.first().cloned() else {
                return;
            };
            self.answer(&resource, Outcome::Success);
        }
        panic!("the runner does not settle: {:?}", self.pending());
    }

    pub fn advance(&mut self, milliseconds: u64) {
        self.now_ms += milliseconds;
        self.runner.tick(self.now_ms);
        self.pump();
    }

    /// The pending operations as "start web", oldest first.
    pub fn pending(&self) -> Vec<String> {
        self.monitor
            .pending
            .iter()
            .map(|(resource, operation)| format!("{} {resource}", operation.name()))
            .collect()
    }

    /// Every command sent so far as "start web", then forgets them.
    pub fn take_commands(&mut self) -> Vec<String> {
        std::mem::take(&mut self.monitor.commands)
            .iter()
            .map(describe)
            .collect()
    }

    pub fn state(&self, resource: &str) -> State {
        self.status(resource).0
    }

    pub fn reason(&self, resource: &str) -> String {
        self.status(resource).1
    }

    fn status(&self, resource: &str) -> (State, String) {
        self.runner
            .resource_states()
            .into_iter()
            .find(|status| status.resource == resource)
            .map(|status| (status.state, status.reason))
            .unwrap_or_else(|| panic!("no resource {resource}"))
    }

    pub fn group_state(&self, slot: u8) -> State {
        self.runner
            .group_states()
            .into_iter()
            .find(|status| status.slot == slot)
            .map_or(State::Offline, |status| status.state)
    }

    pub fn group_stopped_count(&self, slot: u8) -> usize {
        self.reports
            .iter()
            .filter(|report| **report == RunnerOutput::GroupStopped { slot })
            .count()
    }

    pub fn group_failures(&self, slot: u8) -> Vec<String> {
        self.reports
            .iter()
            .filter_map(|report| match report {
                RunnerOutput::GroupFailed { slot: s, reason } if *s == slot => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    /// The states group `slot` went through, from its transitions.
    pub fn group_path(&self, slot: u8) -> Vec<State> {
        let name = self
            .catalog
            .group_by_slot(slot)
            .map_or_else(|| format!("slot-{slot}"), |group| group.name.clone());
        self.reports
            .iter()
            .filter_map(|report| match report {
                RunnerOutput::Transition {
                    group,
                    resource: None,
                    to,
                    ..
                } if *group == name => Some(*to),
                _ => None,
            })
            .collect()
    }
}

pub fn describe(command: &Command) -> String {
    match command {
        Command::Start { resource, .. } => format!("start {resource}"),
        Command::Stop { resource, .. } => format!("stop {resource}"),
        Command::Check {
            resource, level, ..
        } => format!("{} {resource}", Operation::Check(*level).name()),
        other => format!("{other:?}"),
    }
}

/// A `process` resource of `group` with the catalog's defaults.
pub fn resource(name: &str, group: &str, depends: &[&str]) -> ResourceSpec {
    ResourceSpec {
        name: name.to_string(),
        group: group.to_string(),
        kind: "process".to_string(),
        params: vec![("command".to_string(), format!("serve {name}"))],
        depends: depends.iter().map(|needed| needed.to_string()).collect(),
        restart_threshold: catalog::RESTART_THRESHOLD_DEFAULT,
        restart_period_s: catalog::RESTART_PERIOD_S_DEFAULT,
        looks_alive_s: catalog::LOOKS_ALIVE_S_DEFAULT,
        is_alive_s: catalog::IS_ALIVE_S_DEFAULT,
        timeout_s: None,
        affects_group: true,
        role_online: true,
        cleanup: 0,
    }
}

pub fn group(name: &str, slot: u8) -> GroupSpec {
    GroupSpec {
        name: name.to_string(),
        slot,
        preferred: Vec::new(),
        possible: 0,
        failback: Failback::Off,
        failover_threshold: catalog::FAILOVER_THRESHOLD_DEFAULT,
        failover_period_s: catalog::FAILOVER_PERIOD_S_DEFAULT,
        target: 0,
        failures: Vec::new(),
        refusals: Vec::new(),
        cleanup: 0,
    }
}

/// Group "g" in slot 1 with `resources`.
pub fn one_group(resources: Vec<ResourceSpec>) -> Catalog {
    Catalog {
        groups: vec![group("g", 1)],
        resources,
        problems: Vec::new(),
    }
}

/// Changes resource `name` of `catalog` with `change`.
pub fn edit(catalog: &Catalog, name: &str, change: impl FnOnce(&mut ResourceSpec)) -> Catalog {
    let mut edited = catalog.clone();
    if let Some(spec) = edited.resources.iter_mut().find(|spec| spec.name == name) {
        change(spec);
    }
    edited
}
