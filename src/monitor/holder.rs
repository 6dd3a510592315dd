//! The table of resources a monitor holds, and the life of each: which operation is pending,
//! its deadline, and the reports owed to the daemon. `server.rs` feeds it commands, reaped
//! children and the time; it answers with `Event`s.
//!
//! Life of a resource: absent → Starting → Online ⇄ Checking; any of these → Stopping →
//! Cleaning → absent. Cleaning waits until `is_gone`, then writes the `offline` line, then sends
//! the reports; so every `Done`/`ResourceFailed` that ends a resource's life follows its
//! `offline` line, and an `online` line precedes its first process.
use super::constants::{FENCE_GRACE_MS, KILL_WAIT_MS_MAX, RESOURCES_MAX};
use super::event_log::{EventLog, Transition};
use super::protocol::{CheckLevel, Event, Operation, Outcome};
use super::resource::{self, Progress, Resource, Settings};
use std::collections::BTreeMap;
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

enum State {
    Online,
    Starting {
        since: Instant,
        deadline: Instant,
    },
    Checking {
        level: CheckLevel,
        since: Instant,
        deadline: Instant,
    },
    Stopping {
        deadline: Instant,
        reports: Vec<Report>,
    },
    Cleaning {
        since: Instant,
        reports: Vec<Report>,
    },
}

struct Held {
    resource: Box<dyn Resource>,
    state: State,
}

/// Every resource this monitor holds. Iteration is in name order, so runs are reproducible.
pub struct Holder {
    held: BTreeMap<String, Held>,
    node_id: u8,
    resource_log_dir: PathBuf,
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
    pub fn new(node_id: u8, resource_log_dir: PathBuf) -> Holder {
        Holder {
            held: BTreeMap::new(),
            node_id,
            resource_log_dir,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// `Start`: writes the `online` line, then begins the start.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        name: &str,
        kind: &str,
        params: &[(String, String)],
        timeout_ms: Option<u32>,
        now: Instant,
        log: &mut EventLog,
        out: &mut Vec<Event>,
    ) {
        let reject = |reason: String| done(name, Operation::Start, Outcome::Rejected(reason), now);
        if let Some(held) = self.held.get(name) {
            out.push(match held.state {
                State::Online => done(name, Operation::Start, Outcome::Success, now),
                _ => reject("busy: another operation is pending".to_string()),
            });
            return;
        }
        if self.held.len() >= RESOURCES_MAX {
            return out.push(reject(format!(
                "the monitor holds {RESOURCES_MAX} resources"
            )));
        }
        let settings = Settings {
            resource: name.to_string(),
            node_id: self.node_id,
            log_path: self.resource_log_dir.join(format!("{name}.log")),
        };
        let mut resource = match resource::create(kind, params, settings) {
            Ok(resource) => resource,
            Err(reason) => return out.push(reject(reason)),
        };
        if let Err(error) = log.record(name, Transition::Online) {
            return out.push(reject(format!("cannot write the event log: {error}")));
        }
        let deadline = deadline_after(now, Operation::Start, timeout_ms);
        let progress = resource.start(now);
        let state = State::Starting {
            since: now,
            deadline,
        };
        self.held.insert(name.to_string(), Held { resource, state });
        self.settle(name, progress, now, log, out);
    }

    /// `Stop`: an absent resource is already offline.
    pub fn stop(
        &mut self,
        name: &str,
        timeout_ms: Option<u32>,
        now: Instant,
        log: &mut EventLog,
        out: &mut Vec<Event>,
    ) {
        let Some(held) = self.held.get_mut(name) else {
            return out.push(done(name, Operation::Stop, Outcome::Success, now));
        };
        let stop_report = Report::Done {
            operation: Operation::Stop,
            since: now,
            outcome: None,
        };
        let mut reports = Vec::new();
        match &mut held.state {
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
                out.push(done(
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
        let progress = held.resource.stop(now);
        held.state = State::Stopping { deadline, reports };
        self.settle(name, progress, now, log, out);
    }

    /// `Check` of an online resource.
    pub fn check(
        &mut self,
        name: &str,
        level: CheckLevel,
        timeout_ms: Option<u32>,
        now: Instant,
        log: &mut EventLog,
        out: &mut Vec<Event>,
    ) {
        let operation = Operation::Check(level);
        let Some(held) = self.held.get_mut(name) else {
            return out.push(done(
                name,
                operation,
                Outcome::Rejected("not held".to_string()),
                now,
            ));
        };
        if !matches!(held.state, State::Online) {
            let reason = "busy: another operation is pending".to_string();
            return out.push(done(name, operation, Outcome::Rejected(reason), now));
        }
        let deadline = deadline_after(now, operation, timeout_ms);
        let progress = held.resource.check(level, now);
        held.state = State::Checking {
            level,
            since: now,
            deadline,
        };
        self.settle(name, progress, now, log, out);
    }

    /// `StopAll`: a `Stop` with the default timeout for every resource not already stopping.
    pub fn stop_all(&mut self, now: Instant, log: &mut EventLog, out: &mut Vec<Event>) {
        let names: Vec<String> = self.held.keys().cloned().collect();
        for name in names {
            let stopping = matches!(
                self.held.get(&name).map(|held| &held.state),
                Some(State::Stopping { .. } | State::Cleaning { .. })
            );
            if !stopping {
                self.stop(&name, None, now, log, out);
            }
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

    /// Moves every resource on: polls pending operations, enforces deadlines, notices
    /// failures, finishes cleanups.
    pub fn advance(&mut self, now: Instant, log: &mut EventLog, out: &mut Vec<Event>) {
        let names: Vec<String> = self.held.keys().cloned().collect();
        for name in names {
            let Some(held) = self.held.get_mut(&name) else {
                continue;
            };
            let progress = match &held.state {
                State::Online => match held.resource.failure() {
                    Some(reason) => {
                        held.resource.terminate();
                        let reports = vec![Report::Failed(reason)];
                        held.state = State::Cleaning {
                            since: now,
                            reports,
                        };
                        Progress::Pending
                    }
                    None => continue,
                },
                State::Cleaning { .. } => Progress::Pending,
                _ => held.resource.poll(now),
            };
            let overdue = match &held.state {
                State::Starting { deadline, .. }
                | State::Checking { deadline, .. }
                | State::Stopping { deadline, .. } => now >= *deadline,
                State::Online | State::Cleaning { .. } => false,
            };
            if progress == Progress::Pending && overdue {
                self.time_out(&name, now, out);
            }
            self.settle(&name, progress, now, log, out);
        }
    }

    /// Whether any operation or cleanup is under way (the event loop then wakes more often).
    pub fn is_busy(&self) -> bool {
        self.held
            .values()
            .any(|held| !matches!(held.state, State::Online))
    }

    /// The earliest operation deadline, for the event loop's sleep.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held
            .values()
            .filter_map(|held| match &held.state {
                State::Starting { deadline, .. }
                | State::Checking { deadline, .. }
                | State::Stopping { deadline, .. } => Some(*deadline),
                State::Online | State::Cleaning { .. } => None,
            })
            .min()
    }

    fn time_out(&mut self, name: &str, now: Instant, out: &mut Vec<Event>) {
        let Some(held) = self.held.get_mut(name) else {
            return;
        };
        let state = std::mem::replace(&mut held.state, State::Online);
        held.state = match state {
            State::Checking { level, since, .. } => {
                held.resource.cancel_check();
                out.push(done(
                    name,
                    Operation::Check(level),
                    Outcome::TimedOut,
                    since,
                ));
                State::Online
            }
            State::Starting { since, .. } => {
                held.resource.terminate();
                let report = Report::Done {
                    operation: Operation::Start,
                    since,
                    outcome: Some(Outcome::TimedOut),
                };
                State::Cleaning {
                    since: now,
                    reports: vec![report],
                }
            }
            State::Stopping { mut reports, .. } => {
                held.resource.terminate();
                fill(&mut reports, Outcome::TimedOut);
                State::Cleaning {
                    since: now,
                    reports,
                }
            }
            other => other,
        };
    }

    /// Applies an operation's progress to its resource's state.
    fn settle(
        &mut self,
        name: &str,
        progress: Progress,
        now: Instant,
        log: &mut EventLog,
        out: &mut Vec<Event>,
    ) {
        let Some(held) = self.held.get_mut(name) else {
            return;
        };
        if let State::Cleaning { since, reports } = &mut held.state {
            if held.resource.is_gone() {
                if let Err(error) = log.record(name, Transition::Offline) {
                    log::error!("resource={name}: cannot write the offline line: {error}");
                }
                emit(name, std::mem::take(reports), out);
                self.held.remove(name);
            } else if now.duration_since(*since) >= Duration::from_millis(KILL_WAIT_MS_MAX)
                && !reports.is_empty()
            {
                let reason = "processes survived SIGKILL; offline not confirmed".to_string();
                log::error!("resource={name}: {reason}");
                fill(reports, Outcome::Failed(reason));
                emit(name, std::mem::take(reports), out);
            }
            return;
        }
        let Progress::Finished(result) = progress else {
            return;
        };
        let state = std::mem::replace(&mut held.state, State::Online);
        held.state = match (state, result) {
            (State::Starting { since, .. }, Ok(())) => {
                out.push(done(name, Operation::Start, Outcome::Success, since));
                State::Online
            }
            (State::Starting { since, .. }, Err(reason)) => {
                held.resource.terminate();
                let report = Report::Done {
                    operation: Operation::Start,
                    since,
                    outcome: Some(Outcome::Failed(reason)),
                };
                State::Cleaning {
                    since: now,
                    reports: vec![report],
                }
            }
            (State::Checking { level, since, .. }, result) => {
                let outcome = result.map_or_else(Outcome::Failed, |()| Outcome::Success);
                out.push(done(name, Operation::Check(level), outcome, since));
                State::Online
            }
            (State::Stopping { mut reports, .. }, result) => {
                if result.is_err() {
                    held.resource.terminate();
                }
                fill(
                    &mut reports,
                    result.map_or_else(Outcome::Failed, |()| Outcome::Success),
                );
                State::Cleaning {
                    since: now,
                    reports,
                }
            }
            (other, _) => other,
        };
        if matches!(held.state, State::Cleaning { .. }) {
            self.settle(name, Progress::Pending, now, log, out);
        }
    }

    /// The dead-man stop: SIGTERM everything, SIGKILL what is left after FENCE_GRACE_MS, wait
    /// up to KILL_WAIT_MS_MAX, and write `offline` for every resource confirmed gone. Blocks:
    /// the daemon is gone, so nothing else matters. Returns the names that survived.
    pub fn fence(&mut self, log: &mut EventLog) -> Vec<String> {
        let start = Instant::now();
        for held in self.held.values_mut() {
            held.resource.stop(start);
        }
        let grace_end = start + Duration::from_millis(FENCE_GRACE_MS);
        let kill_end = grace_end + Duration::from_millis(KILL_WAIT_MS_MAX);
        let mut killed = false;
        while !self.held.is_empty() && Instant::now() < kill_end {
            for (pid, status) in super::children::reap_exited() {
                self.observe_exit(pid, status);
            }
            if !killed && Instant::now() >= grace_end {
                self.held
                    .values_mut()
                    .for_each(|held| held.resource.terminate());
                killed = true;
            }
            self.held.retain(|name, held| {
                let gone = held.resource.is_gone();
                if gone {
                    if let Err(error) = log.record(name, Transition::Offline) {
                        log::error!("resource={name}: cannot write the offline line: {error}");
                    }
                }
                !gone
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        self.held.keys().cloned().collect()
    }
}

/// Sets every still-unknown `Done` outcome.
fn fill(reports: &mut [Report], outcome: Outcome) {
    for report in reports {
        if let Report::Done {
            outcome: slot @ None,
            ..
        } = report
        {
            *slot = Some(outcome.clone());
        }
    }
}

fn emit(name: &str, reports: Vec<Report>, out: &mut Vec<Event>) {
    for report in reports {
        out.push(match report {
            Report::Done {
                operation,
                since,
                outcome,
            } => done(name, operation, outcome.unwrap_or(Outcome::Success), since),
            Report::Failed(reason) => Event::ResourceFailed {
                resource: name.to_string(),
                reason,
            },
        });
    }
}
