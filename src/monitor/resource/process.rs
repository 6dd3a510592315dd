//! The `process` resource type: a command kept running.
//!
//! Parameters: `command` (required; run by `sh -c`), `ready` (optional; a command `start`
//! repeats every READY_RETRY_MS until it exits 0, so the resource counts as online only once
//! it serves), `check` (optional; run by `IsAlive`, which passes when it exits 0).
//!
//! - start: spawns the command as the leader of its own process group; online at once, or once
//!   `ready` succeeds. The main process exiting during start fails the start.
//! - LooksAlive: the main process has not exited (it is reaped, so a zombie does not count).
//! - IsAlive: LooksAlive, then `check` if given.
//! - stop: SIGTERM to every group it started (the holder SIGKILLs at the stop timeout); done when every
//!   group this resource started is gone.
//! - failure: the main process exited without being asked.
//!
//! Invariant: every process group this resource ever spawned stays in `groups` until
//! `group_exists` says it is gone, so `is_gone` cannot miss a straggler.
use super::{param, reject_unknown, Progress, Resource, Settings};
use crate::monitor::children::{self, describe_status, succeeded};
use crate::monitor::constants::READY_RETRY_MS;
use crate::monitor::protocol::CheckLevel;
use std::time::{Duration, Instant};

/// What the pending operation is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Start: waiting for `ready` to pass; the next try is at `retry_at` when none runs.
    Starting {
        retry_at: Instant,
    },
    /// Stop: waiting for every group to be gone.
    Stopping,
    /// IsAlive: waiting for `check`.
    Checking,
}

/// A running helper command (`ready` or `check`).
#[derive(Clone, Copy, Debug)]
struct Helper {
    pid: i32,
    status: Option<i32>,
}

/// A `process` resource.
pub struct ProcessResource {
    command: String,
    ready: Option<String>,
    check: Option<String>,
    settings: Settings,
    /// The main process (and group) once spawned.
    main_pid: Option<i32>,
    /// The main process's wait status once reaped.
    main_status: Option<i32>,
    helper: Option<Helper>,
    /// Every process group spawned and not yet confirmed gone.
    groups: Vec<i32>,
    phase: Phase,
}

const KNOWN: [&str; 3] = ["command", "ready", "check"];

/// The parameter rules of `process`, touching nothing: the catalog applies them when an
/// administrator adds a resource, so a resource the monitor would reject is refused then.
pub fn check_params(params: &[(String, String)]) -> Result<(), String> {
    reject_unknown("process", params, &KNOWN)?;
    match param(params, "command") {
        Some(command) if !command.trim().is_empty() => Ok(()),
        _ => Err("process: the parameter 'command' is required".to_string()),
    }
}

impl ProcessResource {
    /// Validates the parameters; nothing runs yet.
    pub fn new(params: &[(String, String)], settings: Settings) -> Result<Self, String> {
        check_params(params)?;
        let text = |key: &str| param(params, key).map(str::to_string);
        Ok(ProcessResource {
            command: text("command").unwrap_or_default(),
            ready: text("ready"),
            check: text("check"),
            settings,
            main_pid: None,
            main_status: None,
            helper: None,
            groups: Vec::new(),
            phase: Phase::Idle,
        })
    }

    fn spawn(&mut self, script: &str) -> Result<i32, String> {
        let node_id = self.settings.node_id.to_string();
        let environment = [
            ("WOLFPACK_RESOURCE", self.settings.resource.as_str()),
            ("WOLFPACK_NODE_ID", node_id.as_str()),
        ];
        let pid = children::spawn_shell(script, &self.settings.log_path, &environment)
            .map_err(|error| format!("cannot run '{script}': {error}"))?;
        self.groups.retain(|&pgid| children::group_exists(pgid));
        self.groups.push(pid);
        Ok(pid)
    }

    fn spawn_helper(&mut self, script: &str) -> Result<(), String> {
        let pid = self.spawn(script)?;
        self.helper = Some(Helper { pid, status: None });
        Ok(())
    }

    fn kill_helper(&mut self) {
        if let Some(helper) = self.helper.take() {
            children::signal_group(helper.pid, libc::SIGKILL);
        }
    }

    fn main_alive(&self) -> Result<(), String> {
        match (self.main_pid, self.main_status) {
            (Some(_), None) => Ok(()),
            (_, Some(status)) => Err(format!("the process {}", describe_status(status))),
            (None, None) => Err("the process was never started".to_string()),
        }
    }

    /// The helper's verdict once it has exited: Some(passed).
    fn helper_verdict(&mut self) -> Option<bool> {
        let status = self.helper.and_then(|helper| helper.status)?;
        self.kill_helper(); // Its group may hold stragglers.
        Some(succeeded(status))
    }
}

impl Resource for ProcessResource {
    fn start(&mut self, now: Instant, _timeout: Duration) -> Progress {
        assert!(self.main_pid.is_none(), "a process resource starts once");
        let command = self.command.clone();
        match self.spawn(&command) {
            Ok(pid) => self.main_pid = Some(pid),
            Err(reason) => return Progress::Finished(Err(reason)),
        }
        if self.ready.is_none() {
            return Progress::Finished(Ok(()));
        }
        self.phase = Phase::Starting { retry_at: now };
        self.poll(now)
    }

    fn stop(&mut self, now: Instant, _timeout: Duration) -> Progress {
        self.kill_helper();
        for &pgid in &self.groups {
            children::signal_group(pgid, libc::SIGTERM);
        }
        self.phase = Phase::Stopping;
        self.poll(now)
    }

    fn check(&mut self, level: CheckLevel, now: Instant, _timeout: Duration) -> Progress {
        if let Err(reason) = self.main_alive() {
            return Progress::Finished(Err(reason));
        }
        let script = match (level, &self.check) {
            (CheckLevel::LooksAlive, _) | (CheckLevel::IsAlive, None) => {
                return Progress::Finished(Ok(()))
            }
            (CheckLevel::IsAlive, Some(script)) => script.clone(),
        };
        if let Err(reason) = self.spawn_helper(&script) {
            return Progress::Finished(Err(reason));
        }
        self.phase = Phase::Checking;
        self.poll(now)
    }

    fn poll(&mut self, now: Instant) -> Progress {
        let progress = match self.phase {
            Phase::Idle => return Progress::Pending,
            Phase::Starting { retry_at } => {
                if let Err(reason) = self.main_alive() {
                    return self.finish(Err(format!("{reason} during start")));
                }
                match self.helper_verdict() {
                    Some(true) => Progress::Finished(Ok(())),
                    Some(false) => {
                        let retry_at = now + Duration::from_millis(READY_RETRY_MS);
                        self.phase = Phase::Starting { retry_at };
                        Progress::Pending
                    }
                    None if self.helper.is_none() && now >= retry_at => {
                        let ready = self.ready.clone().unwrap_or_default();
                        match self.spawn_helper(&ready) {
                            Ok(()) => Progress::Pending,
                            Err(reason) => Progress::Finished(Err(reason)),
                        }
                    }
                    None => Progress::Pending,
                }
            }
            Phase::Stopping => match self.is_gone() {
                true => Progress::Finished(Ok(())),
                false => Progress::Pending,
            },
            Phase::Checking => match self.helper_verdict() {
                Some(true) => Progress::Finished(Ok(())),
                Some(false) => Progress::Finished(Err("the check command failed".to_string())),
                None => Progress::Pending,
            },
        };
        self.finish_if_done(progress)
    }

    fn observe_exit(&mut self, pid: i32, status: i32) -> bool {
        if self.main_pid == Some(pid) && self.main_status.is_none() {
            self.main_status = Some(status);
            return true;
        }
        match &mut self.helper {
            Some(helper) if helper.pid == pid => {
                helper.status = Some(status);
                true
            }
            _ => false,
        }
    }

    fn failure(&mut self) -> Option<String> {
        assert_eq!(
            self.phase,
            Phase::Idle,
            "failure is asked only between operations"
        );
        self.main_alive().err()
    }

    fn cancel_check(&mut self) {
        self.kill_helper();
        self.phase = Phase::Idle;
    }

    fn terminate(&mut self) {
        self.helper = None;
        for &pgid in &self.groups {
            children::signal_group(pgid, libc::SIGKILL);
        }
        self.phase = Phase::Idle;
    }

    fn is_gone(&mut self) -> bool {
        self.groups.retain(|&pgid| children::group_exists(pgid));
        self.groups.is_empty()
    }
}

impl ProcessResource {
    fn finish(&mut self, result: Result<(), String>) -> Progress {
        self.kill_helper();
        self.phase = Phase::Idle;
        Progress::Finished(result)
    }

    fn finish_if_done(&mut self, progress: Progress) -> Progress {
        match progress {
            Progress::Finished(result) => self.finish(result),
            Progress::Pending => Progress::Pending,
        }
    }
}
