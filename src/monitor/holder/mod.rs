//! The table of resources a monitor holds, and the life of each: which operation is pending,
//! its deadline, and the reports owed to the daemon. `server.rs` feeds it commands, reaped
//! children and the time; it answers with `Event`s.
//!
//! Life of a resource: absent → Starting → Online ⇄ Checking; any of these → Stopping →
//! Cleaning → absent. Cleaning waits until `is_gone`, then writes the `offline` line, then sends
//! the reports; so every `Done`/`ResourceFailed` that ends a resource's life follows its
//! `offline` line, and an `online` line precedes its first process.
//!
//! Stopping everything (`StopAll`, and the dead-man fence in `fence.rs`) goes top-down along
//! the dependencies each `Start` named (`order.rs`): a resource begins to stop only once no
//! other held resource needs it.
mod fence;
mod order;
mod progress;
#[cfg(test)]
mod tests;

use super::constants::RESOURCES_MAX;
use super::event_log::{EventLog, Transition};
use super::protocol::{CheckLevel, Event, Operation, Outcome};
use super::resource::{self, Resource, Settings};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A report owed to the daemon when a resource's life ends.
enum Report {
    /// A `Done` for `operation`, whose command arrived at `since`; `None` until known.
    Done {
        operation: Operation,
        since: Instant,
        outcome: Option<Outcome>,
    },
    /// A `ResourceFailed`.
    Failed(String),
}

/// Where a held resource is in its life; every state but `Online` has work under way.
enum State {
    /// `Start` arrived at `since`; the type checks, changing nothing, that it can start.
    /// `deadline` is the start's (admission counts against the start timeout).
    Admitting { since: Instant, deadline: Instant },
    /// Started and idle: watched for failures, open to checks.
    Online,
    /// `Start` arrived at `since`; past `deadline` everything is killed (TimedOut).
    Starting { since: Instant, deadline: Instant },
    /// A check arrived at `since`; past `deadline` it is abandoned (TimedOut), still online.
    Checking {
        level: CheckLevel,
        since: Instant,
        deadline: Instant,
    },
    /// A graceful stop; past `deadline` everything is killed and its reports say TimedOut.
    Stopping {
        deadline: Instant,
        reports: Vec<Report>,
    },
    /// Everything was stopped or killed at `since`; waiting until nothing of it runs.
    Cleaning {
        since: Instant,
        reports: Vec<Report>,
    },
}

/// One held resource: its type's instance, its state, and what it needs.
struct Held {
    resource: Box<dyn Resource>,
    state: State,
    /// The resources its `Start` named as needed, itself left out: when everything stops, it
    /// stops before any of them that is held.
    depends: BTreeSet<String>,
}

/// Every resource this monitor holds. Iteration is in name order, so runs are reproducible.
pub struct Holder {
    held: BTreeMap<String, Held>,
    node_id: u8,
    resource_log_dir: PathBuf,
    /// See `Settings::ocf_state_dir`.
    pub ocf_state_dir: Option<PathBuf>,
    log: EventLog,
    /// Events for the daemon, in the order they happened; `take_events` hands them over.
    out: Vec<Event>,
    /// Set by `StopAll` until every resource is gone; `Start` is refused meanwhile.
    stopping_all: bool,
    /// The dead-man fence under way, once it has begun (nothing else runs then).
    fencing: Option<fence::Fencing>,
}

fn deadline_after(now: Instant, operation: Operation, timeout_ms: Option<u32>) -> Instant {
    let milliseconds = timeout_ms.unwrap_or(operation.timeout_ms_default());
    now + Duration::from_millis(u64::from(milliseconds))
}

fn done(resource: &str, operation: Operation, outcome: Outcome, since: Instant) -> Event {
    let elapsed_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
    Event::Done {
        resource: resource.to_string(),
        operation,
        outcome,
        elapsed_ms,
    }
}

impl Holder {
    pub fn new(node_id: u8, resource_log_dir: PathBuf, log: EventLog) -> Holder {
        Holder {
            held: BTreeMap::new(),
            node_id,
            resource_log_dir,
            ocf_state_dir: None,
            log,
            out: Vec::new(),
            stopping_all: false,
            fencing: None,
        }
    }

    /// Whether a `StopAll` is still under way.
    pub fn is_stopping_all(&self) -> bool {
        self.stopping_all
    }

    /// `Ping`: answered in order with the other events.
    pub fn pong(&mut self, sequence: u64) {
        self.out.push(Event::Pong { sequence });
    }

    /// The events produced since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.out)
    }

    /// `Start`: writes the `online` line, then begins the start. `depends` is kept for when
    /// everything stops (see `order.rs`).
    pub fn start(
        &mut self,
        name: &str,
        kind: &str,
        params: &[(String, String)],
        depends: &[String],
        timeout_ms: Option<u32>,
        now: Instant,
    ) {
        let reject = |reason: String| done(name, Operation::Start, Outcome::Rejected(reason), now);
        if let Some(held) = self.held.get(name) {
            self.out.push(match held.state {
                State::Online => done(name, Operation::Start, Outcome::Success, now),
                _ => reject("busy: another operation is pending".to_string()),
            });
            return;
        }
        if self.stopping_all {
            return self.out.push(reject("stopping all resources".to_string()));
        }
        if self.held.len() >= RESOURCES_MAX {
            return self.out.push(reject(format!(
                "the monitor holds {RESOURCES_MAX} resources"
            )));
        }
        let settings = Settings {
            resource: name.to_string(),
            node_id: self.node_id,
            log_path: self.resource_log_dir.join(format!("{name}.log")),
            ocf_state_dir: self.ocf_state_dir.clone(),
        };
        match resource::create(kind, params, settings) {
            Ok(resource) => self.admit_created(name, resource, depends, timeout_ms, now),
            Err(reason) => self.out.push(reject(reason)),
        }
    }

    /// Takes a freshly created resource into the table and begins its admission. Split from
    /// `start` so the holder's tests can hand it a resource type of their own.
    fn admit_created(
        &mut self,
        name: &str,
        mut resource: Box<dyn Resource>,
        depends: &[String],
        timeout_ms: Option<u32>,
        now: Instant,
    ) {
        let deadline = deadline_after(now, Operation::Start, timeout_ms);
        let progress = resource.admit(now, deadline.saturating_duration_since(now));
        let state = State::Admitting {
            since: now,
            deadline,
        };
        let depends = depends
            .iter()
            .filter(|needed| *needed != name)
            .cloned()
            .collect();
        let held = Held {
            resource,
            state,
            depends,
        };
        self.held.insert(name.to_string(), held);
        self.settle(name, progress, now);
    }

    /// Drops a resource whose admission failed (nothing of it ran; no line is written).
    pub(super) fn reject_admission(&mut self, name: &str, since: Instant, reason: String) {
        if let Some(mut held) = self.held.remove(name) {
            held.resource.terminate();
        }
        self.out.push(done(
            name,
            Operation::Start,
            Outcome::Rejected(reason),
            since,
        ));
    }

    /// Admission passed: writes the `online` line, then begins the start.
    pub(super) fn admitted(&mut self, name: &str, since: Instant, deadline: Instant, now: Instant) {
        if let Err(error) = self.log.record(name, Transition::Online) {
            let reason = format!("cannot write the event log: {error}");
            return self.reject_admission(name, since, reason);
        }
        let Some(held) = self.held.get_mut(name) else {
            return;
        };
        let progress = held
            .resource
            .start(now, deadline.saturating_duration_since(now));
        held.state = State::Starting { since, deadline };
        self.settle(name, progress, now);
    }

    /// `Stop`: an absent resource is already offline.
    pub fn stop(&mut self, name: &str, timeout_ms: Option<u32>, now: Instant) {
        let Some(held) = self.held.get_mut(name) else {
            return self
                .out
                .push(done(name, Operation::Stop, Outcome::Success, now));
        };
        let stop_report = Report::Done {
            operation: Operation::Stop,
            since: now,
            outcome: None,
        };
        let mut reports = Vec::new();
        let timeout =
            deadline_after(now, Operation::Stop, timeout_ms).saturating_duration_since(now);
        match &mut held.state {
            State::Admitting { since, .. } => {
                let since = *since;
                let reason = "cancelled by stop before it began".to_string();
                self.reject_admission(name, since, reason);
                return self
                    .out
                    .push(done(name, Operation::Stop, Outcome::Success, now));
            }
            State::Stopping {
                reports: pending, ..
            }
            | State::Cleaning {
                reports: pending, ..
            } => {
                return pending.push(stop_report);
            }
            State::Starting { since, .. } => reports.push(Report::Done {
                operation: Operation::Start,
                since: *since,
                outcome: Some(Outcome::Failed("cancelled by stop".to_string())),
            }),
            State::Checking { level, since, .. } => {
                held.resource.cancel_check();
                self.out.push(done(
                    name,
                    Operation::Check(*level),
                    Outcome::Failed("cancelled by stop".to_string()),
                    *since,
                ));
            }
            State::Online => {}
        }
        reports.push(stop_report);
        let deadline = deadline_after(now, Operation::Stop, timeout_ms);
        let progress = held.resource.stop(now, timeout);
        held.state = State::Stopping { deadline, reports };
        self.settle(name, progress, now);
    }

    /// `Check` of an online resource.
    pub fn check(&mut self, name: &str, level: CheckLevel, timeout_ms: Option<u32>, now: Instant) {
        let operation = Operation::Check(level);
        let Some(held) = self.held.get_mut(name) else {
            return self.out.push(done(
                name,
                operation,
                Outcome::Rejected("not held".to_string()),
                now,
            ));
        };
        if !matches!(held.state, State::Online) {
            let reason = "busy: another operation is pending".to_string();
            return self
                .out
                .push(done(name, operation, Outcome::Rejected(reason), now));
        }
        let deadline = deadline_after(now, operation, timeout_ms);
        let timeout = deadline.saturating_duration_since(now);
        let progress = held.resource.check(level, now, timeout);
        held.state = State::Checking {
            level,
            since: now,
            deadline,
        };
        self.settle(name, progress, now);
    }

    /// `StopAll`: a `Stop` with the default timeout for every resource not already stopping,
    /// top-down: each once no other held resource needs it (`advance` stops the rest as their
    /// dependents go). `AllStopped` follows once none is left.
    pub fn stop_all(&mut self, now: Instant) {
        self.stopping_all = true;
        self.stop_ready(now);
    }

    /// While `StopAll` is under way: stops every resource not stopping yet that no other held
    /// resource needs any more.
    fn stop_ready(&mut self, now: Instant) {
        let is_going = |_: &str, held: &Held| {
            matches!(held.state, State::Stopping { .. } | State::Cleaning { .. })
        };
        for name in self.ready_to_stop(is_going) {
            self.stop(&name, None, now);
        }
    }

    /// Hands a reaped child to the resource it belongs to (orphans belong to nobody).
    pub fn observe_exit(&mut self, pid: i32, status: i32) {
        for held in self.held.values_mut() {
            if held.resource.observe_exit(pid, status) {
                return;
            }
        }
    }
}
