//! The machinery shared by the resource types that act through short-lived programs (`ocf:`,
//! `script`, `ip`, `filesystem`): each operation is a sequence of steps a `Driver` chooses one
//! at a time from the previous step's exit status and output. `Engine` runs the steps as
//! children (`children.rs`: own process group, clean environment, no shell), captures their
//! output, enforces the SIGTERM-before-the-deadline half of a timeout (the holder SIGKILLs at
//! the deadline), reaps leftovers after a confirmed stop, and cleans up after a kill.
//!
//! Invariants:
//! - Every process group the engine ever spawned stays in `groups` until it is gone, so
//!   `is_gone` cannot miss a daemon an agent left in its group (`anything` does that).
//! - `touched` is set when a start begins and cleared only when a stop sequence confirmed the
//!   resource stopped. `terminate` kills every group; if `touched`, `is_gone` then runs the
//!   stop sequence again (the cleanup: an OCF agent's `stop`, `ip addr del`, `umount`), every
//!   CLEANUP_RETRY_MS until it succeeds. So `offline` is never written for a resource that may
//!   still hold an address, a mount or a daemon outside our process groups: after a failed or
//!   timed-out start, a failed or timed-out stop, or the dead-man fence.
//! - A step's output goes to `<resource>.out` (emptied when a step starts; O_APPEND, so
//!   leftovers of earlier steps that still hold it cannot corrupt it), and its tail, at most
//!   OUTPUT_BYTES_MAX, is appended to `<resource>.log` with the step's exit when it printed
//!   something or failed. Programs never write into a pipe of the monitor, so nothing they
//!   leave running can block on a full pipe or die of SIGPIPE.
use super::{Progress, Settings};
use crate::monitor::children::{self, describe_status, RESOURCE_LOG_MODE};
use crate::monitor::constants::TERM_GRACE_MS_MAX;
use crate::monitor::constants::{CLEANUP_RETRY_MS, OUTPUT_BYTES_MAX, REAP_GRACE_MS};
use crate::monitor::constants::{REASON_OUTPUT_BYTES_MAX, STOP_TIMEOUT_MS_DEFAULT};
use crate::monitor::protocol::CheckLevel;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The operation a driver plans steps for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Before anything runs (read-only: meta-data, validation); a failure means Rejected.
    Admit,
    Start,
    Stop,
    Check(CheckLevel),
}

/// Which part of a step's output to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The last OUTPUT_BYTES_MAX bytes, also appended to the resource log.
    Tail,
    /// The first `n` bytes, not logged (an OCF agent's meta-data).
    Head(usize),
}

/// One program to run.
#[derive(Clone, Debug)]
pub struct Step {
    /// What it is, for logs and reasons ("start", "ip addr add").
    pub action: String,
    /// An absolute path.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment the program gets.
    pub environment: Vec<(String, String)>,
    pub keep: Keep,
    /// Wait this long before running it (between `umount` tries).
    pub delay: Duration,
}

impl Step {
    pub fn new(
        action: &str,
        program: PathBuf,
        args: Vec<String>,
        environment: Vec<(String, String)>,
    ) -> Step {
        Step {
            action: action.to_string(),
            program,
            args,
            environment,
            keep: Keep::Tail,
            delay: Duration::ZERO,
        }
    }
}

/// How a step ended.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// The raw wait status.
    pub status: i32,
    /// What it printed (see `Keep`).
    pub output: Vec<u8>,
}

impl StepResult {
    /// The exit code, `None` when it was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        match libc::WIFEXITED(self.status) {
            true => Some(libc::WEXITSTATUS(self.status)),
            false => None,
        }
    }

    /// "exited with status 1" etc.
    pub fn describe(&self) -> String {
        describe_status(self.status)
    }

    /// The output as one line for a failure reason: ` output: ...` (the tail, control
    /// characters replaced), or nothing when there was none.
    pub fn quote(&self) -> String {
        excerpt(&self.output)
            .map(|text| format!("; output: {text}"))
            .unwrap_or_default()
    }
}

/// The last REASON_OUTPUT_BYTES_MAX bytes of `output` as one printable line, `None` if blank.
pub fn excerpt(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.is_empty() {
        return None;
    }
    let mut start = line.len().saturating_sub(REASON_OUTPUT_BYTES_MAX);
    while !line.is_char_boundary(start) {
        start += 1;
    }
    match start {
        0 => Some(line),
        _ => Some(format!("...{}", &line[start..])),
    }
}

/// What the driver wants next.
#[derive(Debug)]
pub enum Next {
    Run(Step),
    Done(Result<(), String>),
}

/// A resource type's part: which steps an operation takes. The engine calls `begin` for an
/// operation and then `step_done` with the result of each step `Run` asked for, in order.
pub trait Driver {
    fn begin(&mut self, op: Op, timeout: Duration) -> Next;
    fn step_done(&mut self, result: StepResult) -> Next;
    /// Programs to leave running after a successful start (announcements); they are killed
    /// when the resource stops, and their exits are not waited for.
    fn after_start(&mut self) -> Vec<Step> {
        Vec::new()
    }
}

/// The step that is running or about to.
#[derive(Debug)]
struct Active {
    pid: i32,
    status: Option<i32>,
    keep: Keep,
    action: String,
    /// SIGTERMed before the deadline: its exit no longer counts.
    abandoned: bool,
}

#[derive(Debug)]
struct Run {
    op: Op,
    /// When the running step gets SIGTERM.
    term_at: Instant,
    /// Cleanup only: when the try is given up (the holder enforces the other deadlines).
    kill_at: Option<Instant>,
    active: Option<Active>,
    delayed: Option<(Instant, Step)>,
    /// The stop sequence succeeded; leftovers got SIGTERM at this instant.
    reaping_since: Option<Instant>,
    /// The run's result, handed out by the next `advance`.
    outcome: Option<Result<(), String>>,
}

/// A resource run by a `Driver`.
pub struct Engine<D: Driver> {
    driver: D,
    settings: Settings,
    capture_path: PathBuf,
    groups: Vec<i32>,
    detached: Vec<i32>,
    run: Option<Run>,
    touched: bool,
    /// Set by `terminate` when a cleanup is owed: the next try's time.
    cleanup_at: Option<Instant>,
}

fn term_grace(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_millis(TERM_GRACE_MS_MAX))
}

impl<D: Driver> Engine<D> {
    pub fn new(driver: D, settings: Settings) -> Engine<D> {
        let capture_path = settings.log_path.with_extension("out");
        Engine {
            driver,
            settings,
            capture_path,
            groups: Vec::new(),
            detached: Vec::new(),
            run: None,
            touched: false,
            cleanup_at: None,
        }
    }

    /// Begins `op`; the previous run, if any, must be over or abandoned.
    pub fn begin(&mut self, op: Op, now: Instant, timeout: Duration) -> Progress {
        self.begin_run(op, now, timeout, false);
        self.advance(now)
    }

    fn begin_run(&mut self, op: Op, now: Instant, timeout: Duration, cleanup: bool) {
        if op == Op::Start {
            self.touched = true;
        }
        if op == Op::Stop {
            for pgid in std::mem::take(&mut self.detached) {
                // Only a group still alive: a vanished one's id could be a stranger's by now.
                if children::group_exists(pgid) {
                    children::signal_group(pgid, libc::SIGKILL);
                }
            }
        }
        let next = self.driver.begin(op, timeout);
        self.run = Some(Run {
            op,
            term_at: now + timeout.saturating_sub(term_grace(timeout)),
            kill_at: cleanup.then(|| now + timeout),
            active: None,
            delayed: None,
            reaping_since: None,
            outcome: None,
        });
        self.apply(next, now);
    }

    /// Whether an operation (or a cleanup) is under way.
    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Whether the running operation is `op`.
    pub fn is_running_op(&self, op: Op) -> bool {
        self.run.as_ref().is_some_and(|run| run.op == op)
    }

    /// Continues the running operation.
    pub fn poll(&mut self, now: Instant) -> Progress {
        self.advance(now)
    }

    /// Kills the running step, forgetting the operation.
    pub fn abandon(&mut self) {
        if let Some(active) = self.run.take().and_then(|run| run.active) {
            children::signal_group(active.pid, libc::SIGKILL);
        }
    }

    /// Stop: continues a stop or cleanup under way, else abandons what runs and begins one.
    pub fn stop(&mut self, now: Instant, timeout: Duration) -> Progress {
        if self.is_running_op(Op::Stop) {
            return self.advance(now);
        }
        self.abandon();
        self.cleanup_at = None;
        self.begin(Op::Stop, now, timeout)
    }

    pub fn observe_exit(&mut self, pid: i32, status: i32) -> bool {
        if let Some(active) = self.run.as_mut().and_then(|run| run.active.as_mut()) {
            if active.pid == pid && active.status.is_none() {
                active.status = Some(status);
                return true;
            }
        }
        self.groups.contains(&pid)
    }

    /// SIGKILLs everything and, if the resource may hold anything outside its process groups,
    /// owes a cleanup (see the module invariants).
    pub fn terminate(&mut self) {
        self.run = None;
        self.detached.clear();
        self.groups.retain(|&pgid| children::group_exists(pgid));
        for &pgid in &self.groups {
            children::signal_group(pgid, libc::SIGKILL);
        }
        if self.touched {
            self.cleanup_at = Some(Instant::now());
        }
    }

    /// Whether nothing of the resource can run or be held any more; drives the cleanup.
    pub fn is_gone(&mut self) -> bool {
        let now = Instant::now();
        if self.run.is_some() {
            // A cleanup, or (during the dead-man fence, which polls nothing) a graceful stop.
            if let Progress::Finished(result) = self.advance(now) {
                self.cleanup_done(result, now);
            }
        } else if self.run.is_none() && self.cleanup_at.is_some_and(|at| now >= at) {
            self.groups.retain(|&pgid| children::group_exists(pgid));
            if self.groups.is_empty() {
                let timeout = Duration::from_millis(u64::from(STOP_TIMEOUT_MS_DEFAULT));
                log::info!(
                    "resource={}: cleanup: stopping it again",
                    self.settings.resource
                );
                self.begin_run(Op::Stop, now, timeout, true);
                if let Progress::Finished(result) = self.advance(now) {
                    self.cleanup_done(result, now);
                }
            }
        }
        self.groups.retain(|&pgid| children::group_exists(pgid));
        self.groups.is_empty() && self.run.is_none() && self.cleanup_at.is_none()
    }

    fn cleanup_done(&mut self, result: Result<(), String>, now: Instant) {
        match result {
            Ok(()) => self.cleanup_at = None,
            Err(_) if !self.touched => self.cleanup_at = None,
            Err(reason) => {
                log::error!(
                    "resource={}: cleanup failed, retrying in {CLEANUP_RETRY_MS} ms: {reason}",
                    self.settings.resource
                );
                for &pgid in &self.groups {
                    children::signal_group(pgid, libc::SIGKILL);
                }
                self.cleanup_at = Some(now + Duration::from_millis(CLEANUP_RETRY_MS));
            }
        }
    }

    fn apply(&mut self, next: Next, now: Instant) {
        match next {
            Next::Run(step) if step.delay > Duration::ZERO => {
                if let Some(run) = self.run.as_mut() {
                    run.delayed = Some((now + step.delay, step));
                }
            }
            Next::Run(step) => {
                if let Err(reason) = self.spawn(step) {
                    self.finish(Err(reason), now);
                }
            }
            Next::Done(result) => self.finish(result, now),
        }
    }

    /// Records the run's result; a successful stop first reaps the leftovers.
    fn finish(&mut self, result: Result<(), String>, now: Instant) {
        let Some(op) = self.run.as_ref().map(|run| run.op) else {
            return;
        };
        match (op, result) {
            (Op::Stop, Ok(())) => {
                self.touched = false;
                self.groups.retain(|&pgid| children::group_exists(pgid));
                for &pgid in &self.groups {
                    children::signal_group(pgid, libc::SIGTERM);
                }
                if let Some(run) = self.run.as_mut() {
                    run.reaping_since = Some(now);
                }
            }
            (op, result) => {
                if op == Op::Start && result.is_ok() {
                    self.start_detached();
                }
                if let Some(run) = self.run.as_mut() {
                    run.outcome = Some(result);
                }
            }
        }
    }

    fn advance(&mut self, now: Instant) -> Progress {
        loop {
            let Some(run) = self.run.as_mut() else {
                return Progress::Pending;
            };
            if let Some(result) = run.outcome.take() {
                self.run = None;
                return Progress::Finished(result);
            }
            if let Some(since) = run.reaping_since {
                self.groups.retain(|&pgid| children::group_exists(pgid));
                if self.groups.is_empty() {
                    self.run = None;
                    return Progress::Finished(Ok(()));
                }
                if now >= since + Duration::from_millis(REAP_GRACE_MS) {
                    for &pgid in &self.groups {
                        children::signal_group(pgid, libc::SIGKILL);
                    }
                }
                return Progress::Pending;
            }
            if let Some((at, _)) = &run.delayed {
                if now < *at {
                    return Progress::Pending;
                }
                if let Some((_, step)) = run.delayed.take() {
                    if let Err(reason) = self.spawn(step) {
                        self.finish(Err(reason), now);
                    }
                }
                continue;
            }
            let Some(active) = run.active.as_mut() else {
                self.run = None;
                return Progress::Finished(Err("no step to wait for".to_string()));
            };
            if run.kill_at.is_some_and(|at| now >= at) {
                children::signal_group(active.pid, libc::SIGKILL);
                let reason = format!("{} did not finish in time", active.action);
                self.run = None;
                return Progress::Finished(Err(reason));
            }
            match active.status {
                Some(status) if !active.abandoned => {
                    let Some(active) = run.active.take() else {
                        continue;
                    };
                    let result = self.collect(&active, status);
                    let next = self.driver.step_done(result);
                    self.apply(next, now);
                }
                _ => {
                    if !active.abandoned && now >= run.term_at {
                        log::warn!(
                            "resource={}: {} near its timeout: SIGTERM",
                            self.settings.resource,
                            active.action
                        );
                        children::signal_group(active.pid, libc::SIGTERM);
                        active.abandoned = true;
                    }
                    return Progress::Pending;
                }
            }
        }
    }

    fn spawn(&mut self, step: Step) -> Result<(), String> {
        let cannot = |error: io::Error| format!("cannot run {}: {error}", step.program.display());
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(RESOURCE_LOG_MODE)
            .open(&self.capture_path)
            .map_err(cannot)?;
        output.set_len(0).map_err(cannot)?;
        let pid = children::spawn_program(&step.program, &step.args, &step.environment, output)
            .map_err(cannot)?;
        self.groups.retain(|&pgid| children::group_exists(pgid));
        self.groups.push(pid);
        if let Some(run) = self.run.as_mut() {
            run.active = Some(Active {
                pid,
                status: None,
                keep: step.keep,
                action: step.action,
                abandoned: false,
            });
        }
        Ok(())
    }

    /// Runs the driver's programs that outlive a start; a failure is logged, not fatal.
    fn start_detached(&mut self) {
        for step in self.driver.after_start() {
            let spawned = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(RESOURCE_LOG_MODE)
                .open(&self.settings.log_path)
                .and_then(|log| {
                    children::spawn_program(&step.program, &step.args, &step.environment, log)
                });
            match spawned {
                Ok(pid) => {
                    self.groups.push(pid);
                    self.detached.push(pid);
                }
                Err(error) => log::warn!(
                    "resource={}: cannot run {}: {error}",
                    self.settings.resource,
                    step.action
                ),
            }
        }
    }

    /// The step's result with its output; logs it (see the module invariants).
    fn collect(&mut self, active: &Active, status: i32) -> StepResult {
        let limit = match active.keep {
            Keep::Tail => OUTPUT_BYTES_MAX,
            Keep::Head(bytes) => bytes,
        };
        let output = read_output(&self.capture_path, active.keep, limit)
            .unwrap_or_else(|error| format!("(cannot read the output: {error})").into_bytes());
        let result = StepResult { status, output };
        let failed = !children::succeeded(status);
        if active.keep == Keep::Tail && (failed || !result.output.is_empty()) {
            let mut text = format!("--- {}: {}\n", active.action, result.describe()).into_bytes();
            text.extend_from_slice(&result.output);
            if !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            let logged = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(RESOURCE_LOG_MODE)
                .open(&self.settings.log_path)
                .and_then(|mut log| log.write_all(&text));
            if let Err(error) = logged {
                log::warn!(
                    "resource={}: cannot write its log: {error}",
                    self.settings.resource
                );
            }
        }
        result
    }
}

impl<D: Driver> Drop for Engine<D> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.capture_path);
    }
}

/// Reads the kept part of a step's output file.
fn read_output(path: &std::path::Path, keep: Keep, limit: usize) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    let limit = limit as u64;
    if keep == Keep::Tail && length > limit {
        file.seek(SeekFrom::Start(length - limit))?;
    }
    let mut output = Vec::new();
    file.take(limit).read_to_end(&mut output)?;
    Ok(output)
}
