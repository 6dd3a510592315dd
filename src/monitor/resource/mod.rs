//! Resource types: the `Resource` trait every type implements, and `create`, which maps a type
//! name from a `Start` command to an implementation:
//!
//! | kind                 | module          | what it holds                                        |
//! |----------------------|-----------------|------------------------------------------------------|
//! | `process`            | `process.rs`    | a command kept running (its own process group)       |
//! | `ocf:PROVIDER:AGENT` | `ocf.rs`        | whatever an unmodified OCF resource agent manages    |
//! | `script`             | `script.rs`     | start/stop/status commands                           |
//! | `ip`                 | `ip.rs`         | an IPv4/IPv6 address on an interface, announced      |
//! | `filesystem`         | `filesystem.rs` | a mounted filesystem                                 |
//!
//! `process` keeps its main process as a child; the others act through short-lived programs run
//! by `engine.rs`, which gives them their timeouts, output capture and cleanup.
//!
//! Contract between a type and the monitor's `holder.rs`:
//! - Operations never block. `admit`, `start`, `stop` and `check` begin one and return
//!   `Progress`; while it is `Pending`, the holder calls `poll` after every reaped child and at
//!   least every LOOP_SLEEP_MS_MAX. At most one operation is pending at a time.
//! - `admit` runs before the `online` line is written and must change nothing (an OCF agent's
//!   meta-data and validate-all); its failure answers the `Start` with `Rejected`, and the
//!   holder then calls `terminate` and drops the resource without an `offline` line.
//! - The holder enforces timeouts: it calls `terminate` (admit, start and stop) or
//!   `cancel_check`. Each operation is told its timeout (OCF agents get it as
//!   OCF_RESKEY_CRM_meta_timeout; programs get SIGTERM shortly before it).
//! - `terminate` must undo everything at once (SIGKILL, remove the address), even mid-operation,
//!   and `is_gone` must be true only when nothing of the resource can run any more: the
//!   `offline` event-log line depends on it.
//! - `stop` finishes `Ok` only once `is_gone` holds.
use super::protocol::CheckLevel;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod engine;
pub mod filesystem;
pub mod ip;
pub mod ocf;
pub mod process;
pub mod script;

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
    /// HA_RSCTMP and HA_VARRUN for OCF agents (their state and pid files), when this node's
    /// must differ from the agents' defaults: nodes of a testbed share one filesystem.
    pub ocf_state_dir: Option<PathBuf>,
}

/// One resource instance held by the monitor. See the module docs for the contract.
pub trait Resource {
    /// Begins checking, without changing anything, that the resource can start; a failure
    /// rejects the `Start`. Most types decide everything in `create` and pass at once.
    fn admit(&mut self, _now: Instant, _timeout: Duration) -> Progress {
        Progress::Finished(Ok(()))
    }
    /// Begins bringing the resource online. The `online` event-log line is already written.
    fn start(&mut self, now: Instant, timeout: Duration) -> Progress;
    /// Begins a graceful stop (cancelling a pending start or check).
    fn stop(&mut self, now: Instant, timeout: Duration) -> Progress;
    /// Begins a health check of an online resource.
    fn check(&mut self, level: CheckLevel, now: Instant, timeout: Duration) -> Progress;
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
        "script" => Ok(Box::new(script::new(params, settings)?)),
        "ip" => Ok(Box::new(ip::new(params, settings)?)),
        "filesystem" => Ok(Box::new(filesystem::new(params, settings)?)),
        _ if kind.starts_with("ocf:") => Ok(Box::new(ocf::new(kind, params, settings)?)),
        _ => Err(format!("unknown resource type '{kind}'")),
    }
}

/// The parameter rules of type `kind` (the part of `create` that touches nothing: an unknown
/// type, a missing, unknown or malformed parameter). The catalog calls it when an
/// administrator adds a resource, so what the monitor would reject is refused then.
pub fn check_params(kind: &str, params: &[(String, String)]) -> Result<(), String> {
    match kind {
        "process" => process::check_params(params),
        "script" => script::check_params(params),
        "ip" => ip::check_params(params).map(drop),
        "filesystem" => filesystem::check_params(params).map(drop),
        _ if kind.starts_with("ocf:") => ocf::check_params(kind, params).map(drop),
        _ => Err(format!("unknown resource type '{kind}'")),
    }
}

impl<D: engine::Driver> Resource for engine::Engine<D> {
    fn admit(&mut self, now: Instant, timeout: Duration) -> Progress {
        self.begin(engine::Op::Admit, now, timeout)
    }
    fn start(&mut self, now: Instant, timeout: Duration) -> Progress {
        self.begin(engine::Op::Start, now, timeout)
    }
    fn stop(&mut self, now: Instant, timeout: Duration) -> Progress {
        engine::Engine::stop(self, now, timeout)
    }
    fn check(&mut self, level: CheckLevel, now: Instant, timeout: Duration) -> Progress {
        self.begin(engine::Op::Check(level), now, timeout)
    }
    fn poll(&mut self, now: Instant) -> Progress {
        engine::Engine::poll(self, now)
    }
    fn observe_exit(&mut self, pid: i32, status: i32) -> bool {
        engine::Engine::observe_exit(self, pid, status)
    }
    fn failure(&mut self) -> Option<String> {
        None // These types fail only through checks, which the daemon schedules.
    }
    fn cancel_check(&mut self) {
        self.abandon();
    }
    fn terminate(&mut self) {
        engine::Engine::terminate(self);
    }
    fn is_gone(&mut self) -> bool {
        engine::Engine::is_gone(self)
    }
}

/// `value` of parameter `key`, if given.
pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

/// The first parameter not in `known`, as an error for `kind`.
pub fn reject_unknown(
    kind: &str,
    params: &[(String, String)],
    known: &[&str],
) -> Result<(), String> {
    match params
        .iter()
        .find(|(key, _)| !known.contains(&key.as_str()))
    {
        Some((key, _)) => Err(format!("{kind}: unknown parameter '{key}'")),
        None => Ok(()),
    }
}

/// `program` as an absolute path: itself if it has a '/', else the first executable file of
/// that name in PROGRAM_PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &std::path::Path| {
        std::fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return (path.is_absolute() && executable(&path)).then_some(path);
    }
    if program.is_empty() {
        return None;
    }
    crate::monitor::constants::PROGRAM_PATH
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|path| executable(path))
}

/// The environment of programs that are not OCF agents: PATH and LC_ALL=C (stable messages).
pub fn plain_environment() -> Vec<(String, String)> {
    vec![
        (
            "PATH".to_string(),
            crate::monitor::constants::PROGRAM_PATH.to_string(),
        ),
        ("LC_ALL".to_string(), "C".to_string()),
    ]
}
