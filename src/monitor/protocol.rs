//! The messages between the node daemon and its resource monitor: `Command`s down, `Event`s up.
//! `codec.rs` turns them into frames.
//!
//! Contract (the daemon relies on it):
//! - Only `Ping` resets the monitor's fence deadline (and feeds the watchdog); it is answered by
//!   a `Pong` with the same sequence number. Other commands never extend the deadline, so a
//!   daemon whose core stopped renewing its lease cannot keep resources alive by checking them.
//! - `Start`, `Stop` and `Check` are answered by exactly one `Done` for that resource and
//!   operation. `StopAll` (and `Shutdown`) produce one `Done` with `Operation::Stop` per resource
//!   it stops, then `AllStopped`.
//! - After a `Done` for `Start` with `Failed` or `TimedOut`, after any `Done` for `Stop`, and
//!   after `ResourceFailed`, the monitor no longer holds the resource, its `offline` line is in
//!   the event log, and its processes are gone. The one exception is a report that says
//!   otherwise in its type: a `Done` with `OfflineNotConfirmed`, a `ResourceFailed` with
//!   `offline_confirmed: false` (processes in uninterruptible sleep, or a resource whose
//!   cleanup stop has not succeeded yet: an address, a mount or an agent's service that may
//!   still be there); then `offline` waits until they are gone and the monitor keeps retrying
//!   the cleanup. Every such report sent before the resource is gone says so, whatever its
//!   outcome would have been: a start or stop that succeeded, failed or timed out is answered
//!   `OfflineNotConfirmed`. Readers decide by these types, never by the text (whose ending
//!   OFFLINE_NOT_CONFIRMED is for humans). The monitor sends nothing when the resource is
//!   finally gone: a later `Stop` is answered `Success` then.
//! - `Rejected` means the command changed nothing (unknown type, bad parameters, a missing OCF
//!   agent, a required parameter its meta-data declares, a failing validate-all, another
//!   operation pending on that resource, a `StopAll` under way). For `ocf:` resources the
//!   meta-data and validate-all run before the `online` line, so their `Rejected` can come
//!   after a while. `Stop` is never rejected: a pending start or check is cancelled (answered
//!   `Failed` "cancelled by stop"; a start still being admitted is answered
//!   `Rejected("cancelled by stop before it began")`) and a second `Stop` shares the first one's
//!   outcome.
//! - A `Check` that fails or times out leaves the resource held and online: the daemon decides
//!   (restart, fail over) and sends `Stop`. A `Start` of a resource already online succeeds.
//! - When the monitor stops everything on its own account (`StopAll`, `Shutdown`, the dead-man
//!   fence), it stops top-down along the dependencies each `Start` named: a resource begins to
//!   stop only once no other held resource that named it is held any more; independent
//!   resources stop in parallel. The fence does so within FENCE_GRACE_MS and then kills
//!   whatever still runs, out of order. A dependency cycle (the catalog refuses one) is stopped
//!   all at once when nothing else is on its way down. A `Stop` is never held back: the daemon
//!   orders its own stops.
use super::constants::START_TIMEOUT_MS_DEFAULT;
use super::constants::{IS_ALIVE_TIMEOUT_MS_DEFAULT, LOOKS_ALIVE_TIMEOUT_MS_DEFAULT};
use super::constants::{RESOURCE_NAME_BYTES_MAX, STOP_TIMEOUT_MS_DEFAULT};

/// A message from the daemon to the monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// "I am alive": resets the fence deadline, feeds the watchdog, answered by `Pong`.
    Ping { sequence: u64 },
    /// Bring `resource` online as a `kind` (e.g. `process`) with `params`. `depends` names the
    /// resources it needs (each at most once; names not held, or its own, are ignored): when
    /// the monitor stops everything, it stops `resource` before any of them.
    Start {
        resource: String,
        kind: String,
        params: Vec<(String, String)>,
        depends: Vec<String>,
        timeout_ms: Option<u32>,
    },
    /// Take `resource` offline gracefully; unknown resources are already offline (`Success`).
    Stop {
        resource: String,
        timeout_ms: Option<u32>,
    },
    /// Health check of an online resource.
    Check {
        resource: String,
        level: CheckLevel,
        timeout_ms: Option<u32>,
    },
    /// Stop every held resource gracefully; then `AllStopped`.
    StopAll,
    /// `StopAll`, then close the watchdog with its magic character and exit 0.
    Shutdown,
}

/// How thorough a health check is (MSCS's two polls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckLevel {
    /// Cheap and frequent: does the resource still exist?
    LooksAlive,
    /// Thorough: does it work (e.g. the check command succeeds)?
    IsAlive,
}

/// The operation a `Done` reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Start,
    Stop,
    Check(CheckLevel),
}

impl Operation {
    /// The timeout an operation gets when its command names none.
    pub fn timeout_ms_default(self) -> u32 {
        match self {
            Operation::Start => START_TIMEOUT_MS_DEFAULT,
            Operation::Stop => STOP_TIMEOUT_MS_DEFAULT,
            Operation::Check(CheckLevel::LooksAlive) => LOOKS_ALIVE_TIMEOUT_MS_DEFAULT,
            Operation::Check(CheckLevel::IsAlive) => IS_ALIVE_TIMEOUT_MS_DEFAULT,
        }
    }

    /// The lower-case name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Check(CheckLevel::LooksAlive) => "looks-alive",
            Operation::Check(CheckLevel::IsAlive) => "is-alive",
        }
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// It ran and failed; the reason is for humans. After a start or a stop, the resource is
    /// confirmed gone; after a check, it stays online.
    Failed(String),
    /// It exceeded its timeout. After a start or a stop, everything it started was SIGKILLed
    /// and is confirmed gone; after a check, the resource stays online.
    TimedOut,
    /// A start or a stop (never a check) is over, whatever it would otherwise have answered,
    /// but the resource may still run: its processes outlived SIGKILL or its cleanup stop has
    /// not succeeded yet. The monitor still holds it and keeps cleaning up; a later `Stop`
    /// answers `Success` once it is gone. The reason (for humans) ends in
    /// OFFLINE_NOT_CONFIRMED.
    OfflineNotConfirmed(String),
    /// Refused before anything changed (busy, unknown type, bad parameters, not held).
    Rejected(String),
}

/// A message from the monitor to the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The answer to `Ping { sequence }`.
    Pong { sequence: u64 },
    /// An operation on `resource` finished.
    Done {
        resource: String,
        operation: Operation,
        outcome: Outcome,
        elapsed_ms: u64,
    },
    /// An online resource failed without being asked (its process exited). It is offline now
    /// if `offline_confirmed`; otherwise it may still run and the monitor keeps cleaning up.
    ResourceFailed {
        resource: String,
        reason: String,
        offline_confirmed: bool,
    },
    /// `StopAll` or `Shutdown` finished: the monitor holds nothing.
    AllStopped,
}

/// How the reason of a report that does not confirm the resource offline ends, for humans
/// (logs, `ctl`, the event log). Only the types (`Outcome::OfflineNotConfirmed`,
/// `ResourceFailed::offline_confirmed`) carry the fact.
pub const OFFLINE_NOT_CONFIRMED: &str = "offline not confirmed";

/// Whether `name` may name a resource: 1 to 64 bytes of `[A-Za-z0-9_.-]`, not starting with
/// '.'. Names become log file names, so this keeps them from escaping the log directory.
pub fn is_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= RESOURCE_NAME_BYTES_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

/// Whether `key` may be a parameter key: 1 to 64 bytes of `[A-Za-z0-9_]` (it becomes part of
/// an environment variable name for OCF agents, `OCF_RESKEY_key`, so it is spelled as the
/// agent's meta-data spells it: SAPInstance's `InstanceName`).
pub fn is_param_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= super::constants::PARAM_KEY_BYTES_MAX
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}
