//! What the runner knows of one resource: the spec it runs under, its state, what the monitor
//! is doing with it, and its failures.

use super::history::FailureHistory;
use super::State;
use crate::core::catalog::ResourceSpec;
use crate::monitor::protocol::Operation;

/// Why the runner stopped trying a resource on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GiveUp {
    /// More failures within its period than its restart threshold allows.
    Threshold,
    /// Its start was rejected: retrying the same configuration cannot help.
    Configuration,
}

#[derive(Clone, Debug)]
pub(super) struct ResourceRun {
    pub name: String,
    /// The group slot it runs in.
    pub slot: u8,
    /// As the catalog last stated it for this slot (its type and parameters are what the next
    /// start sends; its dependencies order starts and stops).
    pub spec: ResourceSpec,
    /// False once the catalog removed it or moved it to another group: it is stopped, then
    /// forgotten or moved.
    pub in_group: bool,
    /// The spec in the group it moved to, applied once it is down.
    pub moving_to: Option<(u8, ResourceSpec)>,
    pub state: State,
    /// Why it is in its state, for `ctl` and transitions.
    pub reason: String,
    /// The one operation sent to the monitor and not answered yet.
    pub outstanding: Option<Operation>,
    /// Whether the monitor may hold it: from the moment a start is sent until the monitor
    /// confirms it offline.
    pub held: bool,
    /// After `OfflineNotConfirmed`: when to ask the monitor again.
    pub stop_retry_at_ms: Option<u64>,
    /// Stops in a row answered `OfflineNotConfirmed` since the monitor last confirmed it
    /// offline, and the last answer's reason: Blocked from `STOP_ATTEMPTS_MAX` on.
    pub stops_unconfirmed: u32,
    pub stop_failure: Option<String>,
    pub looks_alive_due_ms: Option<u64>,
    pub is_alive_due_ms: Option<u64>,
    pub failures: FailureHistory,
    pub last_failure: Option<String>,
    pub gave_up: Option<GiveUp>,
    /// The catalog's cleanup generation last acted on.
    pub cleanup_seen: u64,
    /// Its type or parameters changed while the monitor may hold it under the old ones: it is
    /// stopped (its dependents first) and, once down, started with the new ones.
    pub restart_owed: bool,
}

impl ResourceRun {
    pub fn new(spec: ResourceSpec, slot: u8) -> ResourceRun {
        ResourceRun {
            name: spec.name.clone(),
            slot,
            cleanup_seen: spec.cleanup,
            spec,
            in_group: true,
            moving_to: None,
            state: State::Offline,
            reason: "not started".to_string(),
            outstanding: None,
            held: false,
            stop_retry_at_ms: None,
            stops_unconfirmed: 0,
            stop_failure: None,
            looks_alive_due_ms: None,
            is_alive_due_ms: None,
            failures: FailureHistory::default(),
            last_failure: None,
            gave_up: None,
            restart_owed: false,
        }
    }

    /// Nothing of it can be running: the monitor does not hold it and nothing is outstanding.
    pub fn is_down(&self) -> bool {
        !self.held && self.outstanding.is_none()
    }

    /// A failed resource the monitor may still hold (a Blocked one is): it must be stopped
    /// before it may run.
    pub fn is_failed_and_held(&self) -> bool {
        matches!(self.state, State::Failed | State::Blocked) && !self.is_down()
    }

    /// Its stop failed (`STOP_ATTEMPTS_MAX` answers in a row did not confirm it offline).
    pub fn stop_failed(&self) -> bool {
        self.stops_unconfirmed >= super::STOP_ATTEMPTS_MAX
    }

    /// The monitor confirmed it offline: nothing of it is held any more, and a failed stop is
    /// over.
    pub fn confirmed_offline(&mut self) {
        self.held = false;
        self.stop_retry_at_ms = None;
        self.stops_unconfirmed = 0;
        self.stop_failure = None;
    }

    /// The per-operation timeout for the monitor; 0 s, like none, means the monitor's default
    /// (an operation given no time at all would always time out).
    pub fn timeout_ms(&self) -> Option<u32> {
        self.spec
            .timeout_s
            .filter(|seconds| *seconds > 0)
            .map(|seconds| seconds.saturating_mul(1000))
    }

    /// The timeout the monitor applies to `operation`, for failure reasons.
    pub fn effective_timeout_ms(&self, operation: Operation) -> u32 {
        self.timeout_ms()
            .unwrap_or_else(|| operation.timeout_ms_default())
    }

    pub fn restart_period_ms(&self) -> u64 {
        u64::from(self.spec.restart_period_s).saturating_mul(1000)
    }

    pub fn restart_threshold(&self) -> usize {
        usize::try_from(self.spec.restart_threshold).unwrap_or(usize::MAX)
    }

    pub fn recent_failures(&self, now_ms: u64) -> usize {
        self.failures.count(self.restart_period_ms(), now_ms)
    }

    /// When a resource given up for its threshold may be tried again: once a new failure would
    /// be restarted in place (or, with a threshold of 0, once none counts any more).
    pub fn retry_at_ms(&self, now_ms: u64) -> Option<u64> {
        if self.gave_up != Some(GiveUp::Threshold) {
            return None;
        }
        let limit = self.restart_threshold().max(1);
        Some(
            self.failures
                .falls_below_at(limit, self.restart_period_ms(), now_ms)
                .unwrap_or(now_ms),
        )
    }

    /// Forgets its failures (`resource cleanup`, or a fresh hold of its group's decision).
    pub fn forget_failures(&mut self) {
        self.failures.forget();
        self.gave_up = None;
    }

    /// Schedules both checks from `now_ms` (after a start, or both after an IsAlive); an
    /// interval of 0 s disables that check.
    pub fn schedule_checks(&mut self, now_ms: u64, looks_alive: bool, is_alive: bool) {
        let due = |seconds: u32| {
            (seconds > 0).then(|| now_ms.saturating_add(u64::from(seconds).saturating_mul(1000)))
        };
        if looks_alive {
            self.looks_alive_due_ms = due(self.spec.looks_alive_s);
        }
        if is_alive {
            self.is_alive_due_ms = due(self.spec.is_alive_s);
        }
    }

    pub fn clear_checks(&mut self) {
        self.looks_alive_due_ms = None;
        self.is_alive_due_ms = None;
    }
}
