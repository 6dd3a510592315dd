//! Resource types: the `Resource` trait every type implements, and `create`, which maps a type
//! name from a `Start` command to an implementation. Today: `process`. The resources issue adds
//! `ocf:PROVIDER:AGENT`, `ip`, `filesystem` and `script` as further arms of `create`; the ones
//! that run programs build on `children.rs` like `process` does.
//!
//! Contract between a type and the monitor's `holder.rs`:
//! - Operations never block. `start`, `stop` and `check` begin one and return `Progress`; while
//!   it is `Pending`, the holder calls `poll` after every reaped child and at least every
//!   LOOP_SLEEP_MS_MAX. At most one operation is pending at a time.
//! - The holder enforces timeouts: it calls `terminate` (start and stop) or `cancel_check`.
//! - `terminate` must undo everything at once (SIGKILL, remove the address), even mid-operation,
//!   and `is_gone` must be true only when nothing of the resource can run any more: the
//!   `offline` event-log line depends on it.
//! - `stop` finishes `Ok` only once `is_gone` holds.
use super::protocol::CheckLevel;
use std::path::PathBuf;
use std::time::Instant;

pub mod process;

/// How an operation is going.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not finished; poll again later.
    Pending,
    /// Finished, with the reason when it failed.
    Finished(Result<(), String>),
}

/// What every resource type gets from the monitor.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The resource's name, passed to programs as WOLFPACK_RESOURCE.
    pub resource: String,
    /// The node id, passed to programs as WOLFPACK_NODE_ID.
    pub node_id: u8,
    /// The file the resource's programs write their output to.
    pub log_path: PathBuf,
}

/// One resource instance held by the monitor. See the module docs for the contract.
pub trait Resource {
    /// Begins bringing the resource online. The `online` event-log line is already written.
    fn start(&mut self, now: Instant) -> Progress;
    /// Begins a graceful stop (cancelling a pending start or check).
    fn stop(&mut self, now: Instant) -> Progress;
    /// Begins a health check of an online resource.
    fn check(&mut self, level: CheckLevel, now: Instant) -> Progress;
    /// Continues the pending operation.
    fn poll(&mut self, now: Instant) -> Progress;
    /// Offers a reaped child's exit; true when it was one of this resource's.
    fn observe_exit(&mut self, pid: i32, status: i32) -> bool;
    /// Why an online resource with no operation pending has failed on its own, if it has.
    fn failure(&mut self) -> Option<String>;
    /// Abandons a pending check, killing what it started; the resource stays online.
    fn cancel_check(&mut self);
    /// Kills everything of the resource now.
    fn terminate(&mut self);
    /// Whether nothing of the resource can run any more.
    fn is_gone(&mut self) -> bool;
}

/// Makes a resource of type `kind` from its parameters, or says why it cannot (an unknown
/// type, a missing or unknown parameter). Nothing runs yet.
pub fn create(
    kind: &str,
    params: &[(String, String)],
    settings: Settings,
) -> Result<Box<dyn Resource>, String> {
    match kind {
        "process" => Ok(Box::new(process::ProcessResource::new(params, settings)?)),
        _ => Err(format!("unknown resource type '{kind}'")),
    }
}
