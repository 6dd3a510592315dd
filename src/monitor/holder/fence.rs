//! The dead-man fence: with the daemon gone (silent for the fence timeout, its socket closed, a
//! signal), stop every held resource within FENCE_GRACE_MS, top-down along the dependencies
//! (`order.rs`), kill what still runs when that budget is spent, and write `offline` for every
//! resource confirmed gone.
//!
//! Why top-down: a dependency pulled from under a running dependent is what a normal stop never
//! does (a document root unmounted under a serving web server, a database's disk under the
//! database). Why a budget, whatever the stop timeouts say: once the daemon has been silent for
//! the fence timeout, the other nodes are counting down this node's lease and will start these
//! resources when it expires (ARBITRATION.md rule 5; §4 "Stopping" on how long a stop may
//! take). The order only shares out the budget the fence always had: each stop is told what is
//! left of it, and at its end everything still running is killed at once, whatever the order
//! (dependents first, microseconds apart), so ordering never makes the fence longer. A killed
//! service recovers like after a crash, which failover must survive anyway.
//!
//! `begin_fence` and `step_fence` take the time, so the holder's tests drive the fence on a
//! clock of their own; `fence` runs them on the real one.
use super::{Holder, State};
use crate::monitor::children;
use crate::monitor::constants::{FENCE_GRACE_MS, KILL_WAIT_MS_MAX};
use crate::monitor::event_log::Transition;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often the blocking fence looks again (reaps children, checks what is gone).
const FENCE_POLL_MS: u64 = 5;

/// A fence under way.
pub(super) struct Fencing {
    /// When the graceful part is over: what still runs is killed then.
    budget_end: Instant,
    /// When the fence stops waiting for killed resources to be gone.
    kill_end: Instant,
    /// The resources the fence began to stop, or found on their way down already; only these
    /// are asked whether they are gone (an idle resource of a type that acts through programs
    /// runs no process, so `is_gone` means something only after a stop or a kill).
    stopping: BTreeSet<String>,
    /// Whether the budget was spent and everything left was killed.
    killed: bool,
}

impl Holder {
    /// The whole fence, on the real clock: blocks until every resource is gone or
    /// KILL_WAIT_MS_MAX after the kill, then returns the names that survived. It blocks: with
    /// the daemon gone there is nobody to answer.
    pub fn fence(&mut self) -> Vec<String> {
        self.begin_fence(Instant::now());
        loop {
            for (pid, status) in children::reap_exited() {
                self.observe_exit(pid, status);
            }
            if self.step_fence(Instant::now()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(FENCE_POLL_MS));
        }
        self.held.keys().cloned().collect()
    }

    /// Begins the fence at `now`: drops what is still being admitted, lets what is already
    /// stopping go on, and begins the stop of every resource nothing else needs.
    pub(super) fn begin_fence(&mut self, now: Instant) {
        // A resource still being admitted has not run anything: dropped without a line.
        self.held.retain(|_, held| match held.state {
            State::Admitting { .. } => {
                held.resource.terminate();
                false
            }
            _ => true,
        });
        let budget_end = now + Duration::from_millis(FENCE_GRACE_MS);
        self.fencing = Some(Fencing {
            budget_end,
            kill_end: budget_end + Duration::from_millis(KILL_WAIT_MS_MAX),
            stopping: BTreeSet::new(),
            killed: false,
        });
        // Asked to stop before the fence (by the daemon, which orders its stops, or a cleanup
        // after a kill): on its way down already, so it goes on at once.
        let going: Vec<String> = self
            .held
            .iter()
            .filter(|(_, held)| {
                matches!(held.state, State::Stopping { .. } | State::Cleaning { .. })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in going {
            self.begin_fence_stop(&name, now);
        }
        self.step_fence(now);
    }

    /// Moves the fence on at `now`: writes `offline` for what is gone, begins the stops that
    /// are no longer held back, and kills everything left once the budget is spent. True when
    /// the fence is over: nothing left, or the wait after the kill ran out.
    pub(super) fn step_fence(&mut self, now: Instant) -> bool {
        let Some(fencing) = &self.fencing else {
            return true;
        };
        let (budget_end, kill_end) = (fencing.budget_end, fencing.kill_end);
        if !fencing.killed && now >= budget_end {
            self.kill_the_rest();
        }
        self.remove_gone();
        let killed = self.fencing.as_ref().is_some_and(|fencing| fencing.killed);
        if !killed {
            let stopping = self
                .fencing
                .as_ref()
                .map(|fencing| fencing.stopping.clone())
                .unwrap_or_default();
            for name in self.ready_to_stop(|name, _| stopping.contains(name)) {
                self.begin_fence_stop(&name, now);
            }
        }
        self.held.is_empty() || now >= kill_end
    }

    /// Begins the graceful stop of `name`, told what is left of the budget.
    fn begin_fence_stop(&mut self, name: &str, now: Instant) {
        let Some(fencing) = self.fencing.as_mut() else {
            return;
        };
        let left = fencing.budget_end.saturating_duration_since(now);
        fencing.stopping.insert(name.to_string());
        if let Some(held) = self.held.get_mut(name) {
            held.resource.stop(now, left);
        }
    }

    /// The budget is spent: SIGKILL (and owe a cleanup for) everything still held, dependents
    /// first. What had not begun to stop was held back by a dependent still running.
    fn kill_the_rest(&mut self) {
        let order = self.top_down();
        let Some(fencing) = self.fencing.as_mut() else {
            return;
        };
        fencing.killed = true;
        if order.is_empty() {
            return;
        }
        let held_back: Vec<&String> = order
            .iter()
            .filter(|name| !fencing.stopping.contains(*name))
            .collect();
        match held_back.is_empty() {
            true => log::error!("fence: {FENCE_GRACE_MS} ms spent; killing {order:?}"),
            false => log::error!(
                "fence: {FENCE_GRACE_MS} ms spent; killing {order:?}, out of order: \
                 {held_back:?} never began to stop (a dependent still ran)"
            ),
        }
        for name in &order {
            if let Some(held) = self.held.get_mut(name) {
                held.resource.terminate();
            }
            fencing.stopping.insert(name.clone());
        }
    }

    /// Writes `offline` for, and drops, every stopping resource that is gone.
    fn remove_gone(&mut self) {
        let Some(fencing) = &self.fencing else {
            return;
        };
        let stopping: Vec<String> = fencing.stopping.iter().cloned().collect();
        for name in stopping {
            let Some(held) = self.held.get_mut(&name) else {
                continue;
            };
            if !held.resource.is_gone() {
                continue;
            }
            if let Err(error) = self.log.record(&name, Transition::Offline) {
                log::error!("resource={name}: cannot write the offline line: {error}");
            }
            self.held.remove(&name);
        }
    }
}
