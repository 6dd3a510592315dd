//! The simulated resource monitor of one node (catalog seeds). It answers the runner's `Start`,
//! `Stop` and `Check` the way `monitor::holder` does, after delays and with outcomes the seed
//! draws, and it keeps the truth the resource checker reads: which resources may be running on
//! its node, from the moment a start is received (the real monitor writes its `online` line
//! first) until their processes are gone.
//!
//! While the run's faults last, the seed draws starts and stops that fail or time out, checks
//! that fail or time out, online resources that fail by themselves, and processes that outlive
//! SIGKILL for a while: reported "offline not confirmed" after KILL_WAIT_MS_MAX, as the real
//! monitor does, and gone some time later (a later `Stop` then answers `Success`). Once the
//! faults heal every operation succeeds, so a run can converge. A resource of type
//! `BROKEN_KIND` is always rejected, as a start with a bad configuration is.
//!
//! Time is the node's own monotonic clock in ms, like the runner's. Every draw comes from the
//! monitor's own `Prng`, seeded by the cluster when the node boots.
//!
//! The dead-man switch is the real monitor's (`monitor/server.rs`): the first command of any
//! kind arms it, and only a `Ping` restarts it, for `fence_timeout_ms`. When it runs out the
//! monitor kills everything and exits, whether it held anything or not.
//!
//! With `stuck_stops` (`Params::stuck_stops`), one killed resource in `STUCK_ONE_IN` is never
//! gone while the faults last: every stop is answered "offline not confirmed", and the dead-man
//! cannot kill it either. It stays `held` (running) until `unstick`, or until the node reboots
//! (the cluster drops the monitor).

use crate::monitor::constants::KILL_WAIT_MS_MAX;
use crate::monitor::protocol::{CheckLevel, Event, Operation, Outcome, OFFLINE_NOT_CONFIRMED};
use crate::prng::Prng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The resource type the simulated monitor always rejects (a broken configuration).
pub const BROKEN_KIND: &str = "sim-broken";
/// Longest a successful operation takes (ms), within its timeout: short next to a run.
const OPERATION_MS_MAX: u64 = 400;
/// An operation whose timeout is longer than this (ms) never times out in the simulation:
/// waiting out a default start timeout of a minute would outlast the run.
const SIMULATED_TIMEOUT_MS_MAX: u64 = 5_000;
/// Longest processes outlive SIGKILL (ms): past KILL_WAIT_MS_MAX, so that some are reported
/// "offline not confirmed" and gone later.
const LINGER_MS_MAX: u64 = 7_000;
/// How late the real monitor's loop may notice that a report is due (its loop sleeps at most
/// LOOP_SLEEP_MS_MAX); a stop of a resource still cleaning up is answered this late at most.
const LOOP_MS_MAX: u64 = 250;
/// With `stuck_stops`, one cleanup in so many never ends by itself.
pub const STUCK_ONE_IN: u64 = 3;
/// The cleanup time of a stuck resource: never, within any run (and far from overflowing).
const STUCK_MS: u64 = u64::MAX / 4;

/// How an operation under way ends.
#[derive(Clone, Debug)]
enum Ending {
    Success,
    /// Failed or timed out (`outcome`); everything is then killed, and the processes are gone
    /// `cleanup_ms` later.
    Killed {
        outcome: Outcome,
        cleanup_ms: u64,
    },
}

/// What a held resource is doing.
#[derive(Clone, Debug)]
enum Phase {
    /// A start received at `since_ms` ends at `due_ms`.
    Starting {
        since_ms: u64,
        due_ms: u64,
        ending: Ending,
    },
    /// Started and idle; fails by itself at `fails_at_ms`, if set (while faults last).
    Online { fails_at_ms: Option<u64> },
    Checking {
        level: CheckLevel,
        since_ms: u64,
        due_ms: u64,
        outcome: Outcome,
        fails_at_ms: Option<u64>,
    },
    /// A graceful stop received at `since_ms` ends at `due_ms`; `owed` are reports that go
    /// out with the stop's (a cancelled start's answer), `stops` how many stops share it.
    Stopping {
        since_ms: u64,
        due_ms: u64,
        ending: Ending,
        owed: Vec<Event>,
        stops: usize,
    },
    /// Stopped or killed; the processes are gone at `gone_ms`. The reports go out once they
    /// are gone, or as "offline not confirmed" at `unconfirmed_at_ms` (KILL_WAIT_MS_MAX after
    /// the kill) if they are not.
    Cleaning {
        gone_ms: u64,
        unconfirmed_at_ms: u64,
        reports: Vec<Event>,
    },
}

/// A `Start` command, with what the sim knows of it besides: the group slot the runner runs
/// the resource in and its dependencies, from the runner's catalog.
#[derive(Clone, Copy, Debug)]
pub struct Start<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub timeout_ms: Option<u32>,
    pub slot: u8,
    pub depends: &'a [String],
}

/// A resource the monitor holds: it may be running on this node.
#[derive(Clone, Debug)]
pub struct HeldResource {
    /// The group slot the runner started it for.
    pub slot: u8,
    /// Its dependencies that it has required without a break since it started (a catalog
    /// change drops those it no longer needs; a dependency that failed by itself is dropped
    /// too, since it left without anyone stopping it): each must be running on this node.
    pub required: BTreeSet<String>,
    phase: Phase,
}

impl HeldResource {
    /// Started successfully and not being stopped: what a dependent may rely on.
    pub fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Online { .. } | Phase::Checking { .. })
    }

    /// Killed, and never going by itself: nothing but a reboot ends it.
    pub fn is_stuck(&self) -> bool {
        matches!(self.phase, Phase::Cleaning { gone_ms, .. } if gone_ms >= STUCK_MS)
    }
}

/// The monitor of one simulated node.
pub struct SimMonitor {
    prng: Prng,
    held: BTreeMap<String, HeldResource>,
    /// Events due, oldest first, waiting for the daemon to read them (not while it is paused).
    ready: VecDeque<Event>,
    /// Resources this monitor made fail (a failed or timed-out start or check, a failure while
    /// online, a rejected configuration): the only ones convergence may find Failed.
    made_to_fail: BTreeSet<String>,
    /// Resources that failed by themselves whose `ResourceFailed` the runner has not read
    /// yet: a start of a dependent may still be on its way, and is no fault of the runner's.
    unread_failures: BTreeSet<String>,
    /// Set by the dead-man: everything was killed and the monitor exited.
    fenced: bool,
    /// Set whenever what may be running changes (a resource held, let go, or moved on): the
    /// checker need not look again before it is.
    changed: bool,
    fence_timeout_ms: u64,
    /// When the dead-man fences if no `Ping` comes first (None: no command yet).
    fence_deadline_ms: Option<u64>,
    /// Killed resources may be stuck (see the module docs).
    stuck_stops: bool,
}

impl SimMonitor {
    pub fn new(seed: u64, fence_timeout_ms: u64, stuck_stops: bool) -> SimMonitor {
        SimMonitor {
            prng: Prng::new(seed),
            held: BTreeMap::new(),
            ready: VecDeque::new(),
            made_to_fail: BTreeSet::new(),
            unread_failures: BTreeSet::new(),
            fenced: false,
            changed: false,
            fence_timeout_ms,
            fence_deadline_ms: None,
            stuck_stops,
        }
    }

    /// A command arrived: a `Ping` restarts the dead-man, the first command of any kind arms it.
    pub fn heard(&mut self, now_ms: u64, is_ping: bool) {
        if is_ping || self.fence_deadline_ms.is_none() {
            self.fence_deadline_ms = Some(now_ms + self.fence_timeout_ms);
        }
    }

    /// When the dead-man fires unless pinged before (`None`: not armed yet).
    pub fn fence_deadline_ms(&self) -> Option<u64> {
        self.fence_deadline_ms
    }

    /// Whether the dead-man ran out (no `Ping` for `fence_timeout_ms`).
    pub fn fence_due(&self, now_ms: u64) -> bool {
        self.fence_deadline_ms
            .is_some_and(|deadline_ms| now_ms >= deadline_ms)
    }

    /// Every resource that may be running here, by name.
    pub fn held(&self) -> &BTreeMap<String, HeldResource> {
        &self.held
    }

    pub fn holds_anything(&self) -> bool {
        !self.held.is_empty()
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Whether an event waits for the daemon.
    pub fn has_events(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next event for the daemon, if one is due.
    pub fn next_event(&mut self) -> Option<Event> {
        let event = self.ready.pop_front()?;
        if let Event::ResourceFailed { resource, .. } = &event {
            self.unread_failures.remove(resource);
        }
        Some(event)
    }

    /// Whether what may be running changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Whether `name` failed by itself and the runner has not read it yet.
    pub fn failure_unread(&self, name: &str) -> bool {
        self.unread_failures.contains(name)
    }

    /// The resources made to fail since the last call.
    pub fn take_made_to_fail(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.made_to_fail)
    }

    /// `Start`: held from now on (the `online` line comes first), answered at once when
    /// rejected or already online, otherwise when the drawn ending comes.
    pub fn start(&mut self, start: &Start<'_>, now_ms: u64, faulty: bool) {
        let Start {
            name,
            kind,
            timeout_ms,
            slot,
            depends,
        } = *start;
        if let Some(held) = self.held.get(name) {
            let outcome = match held.phase {
                Phase::Online { .. } => Outcome::Success,
                _ => Outcome::Rejected("busy: another operation is pending".to_string()),
            };
            return self.answer(name, Operation::Start, outcome, now_ms, now_ms);
        }
        if kind == BROKEN_KIND {
            self.made_to_fail.insert(name.to_string());
            let outcome = Outcome::Rejected(format!("unknown resource type '{kind}'"));
            return self.answer(name, Operation::Start, outcome, now_ms, now_ms);
        }
        let timeout_ms = effective_timeout_ms(Operation::Start, timeout_ms);
        let (delay_ms, ending) = self.draw_ending(timeout_ms, faulty, 8);
        let phase = Phase::Starting {
            since_ms: now_ms,
            due_ms: now_ms + delay_ms,
            ending,
        };
        // A dependency whose own failure the runner has not read yet cannot be required.
        let required = depends
            .iter()
            .filter(|needed| !self.unread_failures.contains(*needed))
            .cloned()
            .collect();
        let held = HeldResource {
            slot,
            required,
            phase,
        };
        self.held.insert(name.to_string(), held);
        self.changed = true;
    }

    /// `Stop`: never rejected; an absent resource is already offline. A pending start is
    /// cancelled (answered with the stop), a pending check at once.
    pub fn stop(&mut self, name: &str, timeout_ms: Option<u32>, now_ms: u64, faulty: bool) {
        let Some(held) = self.held.get(name) else {
            return self.answer(name, Operation::Stop, Outcome::Success, now_ms, now_ms);
        };
        let mut owed = Vec::new();
        match held.phase.clone() {
            Phase::Stopping {
                since_ms,
                due_ms,
                ending,
                owed,
                stops,
            } => {
                // A second stop shares the first one's outcome.
                let phase = Phase::Stopping {
                    since_ms,
                    due_ms,
                    ending,
                    owed,
                    stops: stops + 1,
                };
                return self.set_phase(name, phase);
            }
            Phase::Cleaning {
                gone_ms,
                unconfirmed_at_ms,
                mut reports,
            } => {
                // Answered with the reports still owed; if they already went out as "not
                // confirmed", the monitor's next loop answers this one the same way, unless
                // the processes are gone by then.
                let unconfirmed_at_ms = if reports.is_empty() {
                    now_ms + self.prng.range_inclusive(0, LOOP_MS_MAX)
                } else {
                    unconfirmed_at_ms
                };
                reports.push(done(
                    name,
                    Operation::Stop,
                    Outcome::Success,
                    now_ms,
                    now_ms,
                ));
                let phase = Phase::Cleaning {
                    gone_ms,
                    unconfirmed_at_ms,
                    reports,
                };
                return self.set_phase(name, phase);
            }
            Phase::Starting { since_ms, .. } => owed.push(done(
                name,
                Operation::Start,
                Outcome::Failed("cancelled by stop".to_string()),
                since_ms,
                now_ms,
            )),
            Phase::Checking {
                level, since_ms, ..
            } => {
                let outcome = Outcome::Failed("cancelled by stop".to_string());
                self.answer(name, Operation::Check(level), outcome, since_ms, now_ms);
            }
            Phase::Online { .. } => {}
        }
        let timeout_ms = effective_timeout_ms(Operation::Stop, timeout_ms);
        let (delay_ms, ending) = self.draw_ending(timeout_ms, faulty, 4);
        let phase = Phase::Stopping {
            since_ms: now_ms,
            due_ms: now_ms + delay_ms,
            ending,
            owed,
            stops: 1,
        };
        self.set_phase(name, phase);
    }

    /// `Check` of an online resource; anything else is rejected, as the real monitor does.
    pub fn check(
        &mut self,
        name: &str,
        level: CheckLevel,
        timeout_ms: Option<u32>,
        now_ms: u64,
        faulty: bool,
    ) {
        let operation = Operation::Check(level);
        let fails_at_ms = match self.held.get(name).map(|held| &held.phase) {
            Some(Phase::Online { fails_at_ms }) => *fails_at_ms,
            Some(_) => {
                let busy = Outcome::Rejected("busy: another operation is pending".to_string());
                return self.answer(name, operation, busy, now_ms, now_ms);
            }
            None => {
                let absent = Outcome::Rejected("not held".to_string());
                return self.answer(name, operation, absent, now_ms, now_ms);
            }
        };
        let timeout_ms = effective_timeout_ms(operation, timeout_ms);
        let roll = self.prng.below(100);
        let (delay_ms, outcome) = if faulty && roll < 5 {
            let delay_ms = self
                .prng
                .range_inclusive(0, OPERATION_MS_MAX.min(timeout_ms));
            (delay_ms, Outcome::Failed("check: exit code 1".to_string()))
        } else if faulty && roll < 8 && timeout_ms <= SIMULATED_TIMEOUT_MS_MAX {
            (timeout_ms, Outcome::TimedOut)
        } else {
            let delay_ms = self
                .prng
                .range_inclusive(0, OPERATION_MS_MAX.min(timeout_ms));
            (delay_ms, Outcome::Success)
        };
        let phase = Phase::Checking {
            level,
            since_ms: now_ms,
            due_ms: now_ms + delay_ms,
            outcome,
            fails_at_ms,
        };
        self.set_phase(name, phase);
    }

    /// Moves every resource on to `now_ms`: operations end, online resources fail, cleanups
    /// finish or are reported "offline not confirmed".
    pub fn advance(&mut self, now_ms: u64, faulty: bool) {
        let names: Vec<String> = self.held.keys().cloned().collect();
        for name in names {
            // Each pass moves one phase on; a cleanup that ends at once takes a second one.
            for _ in 0..4 {
                if !self.advance_one(&name, now_ms, faulty) {
                    break;
                }
            }
        }
    }

    /// Moves `name` on by one phase if something is due; true if it did.
    fn advance_one(&mut self, name: &str, now_ms: u64, faulty: bool) -> bool {
        let Some(held) = self.held.get(name) else {
            return false;
        };
        match held.phase.clone() {
            Phase::Starting {
                since_ms,
                due_ms,
                ending,
            } if due_ms <= now_ms => {
                match ending {
                    Ending::Success => {
                        self.answer(name, Operation::Start, Outcome::Success, since_ms, due_ms);
                        let fails_at_ms = self.draw_failure_time(due_ms, faulty);
                        self.set_phase(name, Phase::Online { fails_at_ms });
                    }
                    Ending::Killed {
                        outcome,
                        cleanup_ms,
                    } => {
                        self.made_to_fail.insert(name.to_string());
                        let report = done(name, Operation::Start, outcome, since_ms, due_ms);
                        self.clean_up(name, due_ms, cleanup_ms, vec![report]);
                    }
                }
                true
            }
            Phase::Online {
                fails_at_ms: Some(fails_at_ms),
            } if fails_at_ms <= now_ms => {
                if !faulty {
                    // The faults healed: it keeps running.
                    self.set_phase(name, Phase::Online { fails_at_ms: None });
                    return false;
                }
                self.made_to_fail.insert(name.to_string());
                self.unread_failures.insert(name.to_string());
                self.excuse_dependents(name);
                let cleanup_ms = self.draw_cleanup_ms();
                // Sent as it is once the processes are gone (else `not_confirmed` says so).
                let report = Event::ResourceFailed {
                    resource: name.to_string(),
                    reason: "exit code 7 (not running)".to_string(),
                    offline_confirmed: true,
                };
                self.clean_up(name, fails_at_ms, cleanup_ms, vec![report]);
                true
            }
            Phase::Checking {
                level,
                since_ms,
                due_ms,
                outcome,
                fails_at_ms,
            } if due_ms <= now_ms => {
                if outcome != Outcome::Success {
                    self.made_to_fail.insert(name.to_string());
                }
                self.answer(name, Operation::Check(level), outcome, since_ms, due_ms);
                self.set_phase(name, Phase::Online { fails_at_ms });
                true
            }
            Phase::Stopping {
                since_ms,
                due_ms,
                ending,
                mut owed,
                stops,
            } if due_ms <= now_ms => {
                let (outcome, cleanup_ms) = match ending {
                    Ending::Success => (Outcome::Success, 0),
                    Ending::Killed {
                        outcome,
                        cleanup_ms,
                    } => (outcome, cleanup_ms),
                };
                for _ in 0..stops {
                    owed.push(done(
                        name,
                        Operation::Stop,
                        outcome.clone(),
                        since_ms,
                        due_ms,
                    ));
                }
                self.clean_up(name, due_ms, cleanup_ms, owed);
                true
            }
            Phase::Cleaning {
                gone_ms,
                unconfirmed_at_ms,
                reports,
            } => {
                if gone_ms <= now_ms {
                    self.held.remove(name);
                    self.changed = true;
                    self.ready.extend(reports);
                    return false;
                }
                if unconfirmed_at_ms <= now_ms && !reports.is_empty() {
                    // The processes survive: every report says so (the monitor's contract).
                    self.ready.extend(reports.into_iter().map(not_confirmed));
                    let phase = Phase::Cleaning {
                        gone_ms,
                        unconfirmed_at_ms,
                        reports: Vec::new(),
                    };
                    self.set_phase(name, phase);
                }
                false
            }
            _ => false,
        }
    }

    /// The dead-man switch: everything is killed at once and the monitor exits (the daemon,
    /// whose monitor is gone, exits too). A stuck resource survives it: it stays `held`.
    pub fn fence(&mut self) {
        self.held.retain(|_, held| held.is_stuck());
        self.changed = true;
        self.ready.clear();
        self.unread_failures.clear();
        self.fenced = true;
    }

    /// Stuck resources are gone from `now_ms` on (what kept them was fixed); a later `Stop`
    /// confirms it.
    pub fn unstick(&mut self, now_ms: u64) {
        for held in self.held.values_mut() {
            match &mut held.phase {
                Phase::Cleaning { gone_ms, .. } if *gone_ms >= STUCK_MS => *gone_ms = now_ms,
                // A start or stop under way that was drawn to get stuck.
                Phase::Starting {
                    ending: Ending::Killed { cleanup_ms, .. },
                    ..
                }
                | Phase::Stopping {
                    ending: Ending::Killed { cleanup_ms, .. },
                    ..
                } if *cleanup_ms >= STUCK_MS => *cleanup_ms = 0,
                _ => continue,
            }
            self.changed = true;
        }
    }

    /// A catalog change: each resource keeps requiring only the dependencies `depends_of`
    /// still names for it (None: no longer in the catalog; the runner stops it under the spec
    /// it had, so what it required stays).
    pub fn catalog_changed<'a>(&mut self, depends_of: impl Fn(&str) -> Option<&'a [String]>) {
        for (name, held) in &mut self.held {
            if let Some(depends) = depends_of(name) {
                held.required.retain(|needed| depends.contains(needed));
                self.changed = true;
            }
        }
    }

    /// `failed` left by itself: its dependents no longer require it (the runner stops them).
    fn excuse_dependents(&mut self, failed: &str) {
        for held in self.held.values_mut() {
            held.required.remove(failed);
            self.changed = true;
        }
    }

    /// Everything of `name` was stopped or killed at `killed_ms`; gone `cleanup_ms` later.
    fn clean_up(&mut self, name: &str, killed_ms: u64, cleanup_ms: u64, reports: Vec<Event>) {
        let phase = Phase::Cleaning {
            gone_ms: killed_ms + cleanup_ms,
            unconfirmed_at_ms: killed_ms + KILL_WAIT_MS_MAX,
            reports,
        };
        self.set_phase(name, phase);
    }

    fn set_phase(&mut self, name: &str, phase: Phase) {
        if let Some(held) = self.held.get_mut(name) {
            held.phase = phase;
            self.changed = true;
        }
    }

    fn answer(&mut self, name: &str, operation: Operation, outcome: Outcome, since: u64, at: u64) {
        self.ready
            .push_back(done(name, operation, outcome, since, at));
    }

    /// How a start or stop ends and after how long: mostly success within the timeout; while
    /// faults last, sometimes a failure (percent `fail_percent`) or a timeout, both followed
    /// by a cleanup that may outlast SIGKILL.
    fn draw_ending(&mut self, timeout_ms: u64, faulty: bool, fail_percent: u64) -> (u64, Ending) {
        let quick_ms = self
            .prng
            .range_inclusive(0, OPERATION_MS_MAX.min(timeout_ms));
        if !faulty {
            return (quick_ms, Ending::Success);
        }
        let roll = self.prng.below(100);
        if roll < fail_percent {
            let cleanup_ms = self.draw_cleanup_ms();
            let outcome = Outcome::Failed("exit code 1".to_string());
            (
                quick_ms,
                Ending::Killed {
                    outcome,
                    cleanup_ms,
                },
            )
        } else if roll < fail_percent + 4 && timeout_ms <= SIMULATED_TIMEOUT_MS_MAX {
            let cleanup_ms = self.draw_cleanup_ms();
            let outcome = Outcome::TimedOut;
            (
                timeout_ms,
                Ending::Killed {
                    outcome,
                    cleanup_ms,
                },
            )
        } else {
            (quick_ms, Ending::Success)
        }
    }

    /// How long killed processes take to go: mostly at once, sometimes a while, sometimes
    /// past KILL_WAIT_MS_MAX (then "offline not confirmed"); with `stuck_stops`, now and then
    /// never.
    fn draw_cleanup_ms(&mut self) -> u64 {
        if self.stuck_stops && self.prng.chance(1, STUCK_ONE_IN) {
            return STUCK_MS;
        }
        match self.prng.below(100) {
            0..=69 => 0,
            70..=89 => self.prng.range_inclusive(1, KILL_WAIT_MS_MAX - 1),
            _ => self.prng.range_inclusive(KILL_WAIT_MS_MAX, LINGER_MS_MAX),
        }
    }

    /// When a resource that came online at `online_ms` fails by itself, if it does.
    fn draw_failure_time(&mut self, online_ms: u64, faulty: bool) -> Option<u64> {
        (faulty && self.prng.chance(1, 4))
            .then(|| online_ms + self.prng.range_inclusive(200, 10_000))
    }
}

/// The timeout the real monitor applies (the command's, or the operation's default).
fn effective_timeout_ms(operation: Operation, timeout_ms: Option<u32>) -> u64 {
    u64::from(timeout_ms.unwrap_or_else(|| operation.timeout_ms_default()))
}

fn done(resource: &str, operation: Operation, outcome: Outcome, since: u64, at: u64) -> Event {
    Event::Done {
        resource: resource.to_string(),
        operation,
        outcome,
        elapsed_ms: at.saturating_sub(since),
    }
}

/// `event` as the monitor sends it while the processes survive (see `monitor::protocol`).
fn not_confirmed(event: Event) -> Event {
    let unconfirmed =
        |what: &str| format!("{what}; processes survived SIGKILL; {OFFLINE_NOT_CONFIRMED}");
    match event {
        Event::Done {
            resource,
            operation,
            outcome,
            elapsed_ms,
        } => {
            let reason = match outcome {
                Outcome::Success => unconfirmed(&format!("{} succeeded", operation.name())),
                Outcome::TimedOut => unconfirmed(&format!("{} timed out", operation.name())),
                Outcome::Failed(why) => unconfirmed(&why),
                // Changed nothing, or says so already: true as it is.
                unchanged @ (Outcome::Rejected(_) | Outcome::OfflineNotConfirmed(_)) => {
                    return Event::Done {
                        resource,
                        operation,
                        outcome: unchanged,
                        elapsed_ms,
                    }
                }
            };
            Event::Done {
                resource,
                operation,
                outcome: Outcome::OfflineNotConfirmed(reason),
                elapsed_ms,
            }
        }
        Event::ResourceFailed {
            resource, reason, ..
        } => Event::ResourceFailed {
            resource,
            reason: unconfirmed(&reason),
            offline_confirmed: false,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `event` tells the runner that nothing of its resource runs any more.
    fn claims_offline(event: &Event) -> Option<&str> {
        match event {
            Event::Done {
                resource,
                operation: Operation::Stop,
                outcome: Outcome::Success | Outcome::Failed(_) | Outcome::TimedOut,
                ..
            }
            | Event::Done {
                resource,
                operation: Operation::Start,
                outcome: Outcome::Failed(_),
                ..
            }
            | Event::Done {
                resource,
                operation: Operation::Start,
                outcome: Outcome::TimedOut,
                ..
            } => Some(resource),
            Event::ResourceFailed {
                resource,
                offline_confirmed: true,
                ..
            } => Some(resource),
            _ => None,
        }
    }

    #[test]
    fn nothing_is_reported_offline_while_it_may_run_and_every_operation_is_answered() {
        let names = ["a", "b", "c"];
        let mut seen_not_confirmed = false;
        for seed in 1..=200 {
            let mut monitor = SimMonitor::new(seed, 500, false);
            let mut script = Prng::new(seed ^ 0xC0FFEE);
            let mut outstanding: BTreeMap<&str, usize> = BTreeMap::new();
            let mut now_ms = 0;
            // Faults for 15 s, commands for 20 s, then 10 s for the last answers.
            for step in 0..3_000u64 {
                let faulty = step < 1_500;
                now_ms += 10;
                if step < 2_000 && script.chance(1, 20) {
                    let name = names[script.below(3) as usize];
                    match script.below(3) {
                        0 => {
                            let start = Start {
                                name,
                                kind: "process",
                                timeout_ms: Some(2_000),
                                slot: 1,
                                depends: &[],
                            };
                            monitor.start(&start, now_ms, faulty)
                        }
                        1 => monitor.stop(name, Some(2_000), now_ms, faulty),
                        _ => monitor.check(name, CheckLevel::LooksAlive, None, now_ms, faulty),
                    }
                    *outstanding.entry(name).or_insert(0) += 1;
                }
                monitor.advance(now_ms, faulty);
                while let Some(event) = monitor.next_event() {
                    if let Some(name) = claims_offline(&event) {
                        assert!(
                            !monitor.held().contains_key(name),
                            "seed {seed}: {event:?} while {name} may run"
                        );
                    }
                    if let Event::Done { resource, .. } = &event {
                        let count = outstanding
                            .entry(resource_name(&names, resource))
                            .or_insert(0);
                        *count = count.saturating_sub(1);
                    }
                    seen_not_confirmed |= matches!(
                        &event,
                        Event::Done {
                            outcome: Outcome::OfflineNotConfirmed(_),
                            ..
                        } | Event::ResourceFailed {
                            offline_confirmed: false,
                            ..
                        }
                    );
                }
            }
            // Every command has had its answer (a stop retried after "not confirmed"
            // included), and whatever is held is up.
            assert!(
                outstanding.values().all(|count| *count == 0),
                "seed {seed}: unanswered {outstanding:?}"
            );
            assert!(
                monitor.held().values().all(HeldResource::is_up),
                "seed {seed}"
            );
        }
        assert!(seen_not_confirmed, "no seed had processes outlive SIGKILL");
    }

    fn resource_name<'a>(names: &[&'a str], resource: &str) -> &'a str {
        names
            .iter()
            .copied()
            .find(|name| *name == resource)
            .unwrap_or("?")
    }
}
