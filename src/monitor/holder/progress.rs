//! How the held resources move on between commands: polling pending operations, deadlines,
//! failures noticed without being asked, and cleanups that end in the `offline` line. See
//! `mod.rs` for the life of a resource; the dead-man fence is `fence.rs`.
use super::{done, Holder, Report, State};
use crate::monitor::constants::KILL_WAIT_MS_MAX;
use crate::monitor::event_log::Transition;
use crate::monitor::protocol::{Event, Operation, Outcome, OFFLINE_NOT_CONFIRMED};
use crate::monitor::resource::Progress;
use std::time::{Duration, Instant};

impl Holder {
    /// Moves every resource on: polls pending operations, enforces deadlines, notices
    /// failures, finishes cleanups.
    pub fn advance(&mut self, now: Instant) {
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
                State::Admitting { deadline, .. }
                | State::Starting { deadline, .. }
                | State::Checking { deadline, .. }
                | State::Stopping { deadline, .. } => now >= *deadline,
                State::Online | State::Cleaning { .. } => false,
            };
            if progress == Progress::Pending && overdue {
                self.time_out(&name, now);
            }
            self.settle(&name, progress, now);
        }
        if self.stopping_all {
            self.stop_ready(now);
        }
        if self.stopping_all && self.held.is_empty() {
            self.out.push(Event::AllStopped);
            self.stopping_all = false;
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
                State::Admitting { deadline, .. }
                | State::Starting { deadline, .. }
                | State::Checking { deadline, .. }
                | State::Stopping { deadline, .. } => Some(*deadline),
                State::Online | State::Cleaning { .. } => None,
            })
            .min()
    }

    fn time_out(&mut self, name: &str, now: Instant) {
        let Some(held) = self.held.get_mut(name) else {
            return;
        };
        let state = std::mem::replace(&mut held.state, State::Online);
        held.state = match state {
            State::Admitting { since, deadline } => {
                let waited = deadline.saturating_duration_since(since).as_millis();
                let reason = format!("not admitted within the start timeout ({waited} ms)");
                return self.reject_admission(name, since, reason);
            }
            State::Checking { level, since, .. } => {
                held.resource.cancel_check();
                self.out.push(done(
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
    pub(super) fn settle(&mut self, name: &str, progress: Progress, now: Instant) {
        let Some(held) = self.held.get_mut(name) else {
            return;
        };
        if let State::Cleaning { since, reports } = &mut held.state {
            if held.resource.is_gone() {
                if let Err(error) = self.log.record(name, Transition::Offline) {
                    log::error!("resource={name}: cannot write the offline line: {error}");
                }
                emit_gone(name, std::mem::take(reports), &mut self.out);
                self.held.remove(name);
            } else if now.duration_since(*since) >= Duration::from_millis(KILL_WAIT_MS_MAX)
                && !reports.is_empty()
            {
                let reason = format!(
                    "processes survived SIGKILL or the cleanup stop has not succeeded yet; \
                     {OFFLINE_NOT_CONFIRMED}"
                );
                log::error!("resource={name}: {reason}");
                // Outcomes set earlier (a stop that succeeded or timed out, a failed or killed
                // start, a failure noticed while online) were true of the operation, not of the
                // processes: each must now say that the resource may still run, or the daemon
                // would count it offline while it runs.
                emit_not_confirmed(name, std::mem::take(reports), &reason, &mut self.out);
            }
            return;
        }
        let Progress::Finished(result) = progress else {
            return;
        };
        if let State::Admitting { since, deadline } = held.state {
            return match result {
                Ok(()) => self.admitted(name, since, deadline, now),
                Err(reason) => self.reject_admission(name, since, reason),
            };
        }
        let state = std::mem::replace(&mut held.state, State::Online);
        held.state = match (state, result) {
            (State::Starting { since, .. }, Ok(())) => {
                self.out
                    .push(done(name, Operation::Start, Outcome::Success, since));
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
                self.out
                    .push(done(name, Operation::Check(level), outcome, since));
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
            self.settle(name, Progress::Pending, now);
        }
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

/// Sends the reports of a resource that is gone: each as it is, confirming it offline.
fn emit_gone(name: &str, reports: Vec<Report>, out: &mut Vec<Event>) {
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
                offline_confirmed: true,
            },
        });
    }
}

/// Sends the reports of a resource that may still run: each says so in its type
/// (`OfflineNotConfirmed`, `offline_confirmed: false`), whatever its outcome would have been,
/// with `unconfirmed_reason` appended to the reason for humans (the whole reason for an outcome
/// not known yet). `Rejected` goes as it is: it changed nothing.
fn emit_not_confirmed(
    name: &str,
    reports: Vec<Report>,
    unconfirmed_reason: &str,
    out: &mut Vec<Event>,
) {
    let with_ending = |what: &str| format!("{what}; {unconfirmed_reason}");
    for report in reports {
        out.push(match report {
            Report::Done {
                operation,
                since,
                outcome,
            } => {
                let outcome = match outcome {
                    None => Outcome::OfflineNotConfirmed(unconfirmed_reason.to_string()),
                    Some(Outcome::Success) => Outcome::OfflineNotConfirmed(with_ending(&format!(
                        "{} succeeded",
                        operation.name()
                    ))),
                    Some(Outcome::TimedOut) => Outcome::OfflineNotConfirmed(with_ending(&format!(
                        "{} timed out and was killed",
                        operation.name()
                    ))),
                    Some(Outcome::Failed(why)) => Outcome::OfflineNotConfirmed(with_ending(&why)),
                    Some(unchanged @ (Outcome::Rejected(_) | Outcome::OfflineNotConfirmed(_))) => {
                        unchanged
                    }
                };
                done(name, operation, outcome, since)
            }
            Report::Failed(why) => Event::ResourceFailed {
                resource: name.to_string(),
                reason: with_ending(&why),
                offline_confirmed: false,
            },
        });
    }
}
