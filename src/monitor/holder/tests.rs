//! The holder against a resource type whose processes outlive SIGKILL until the test lets them
//! go (a process in uninterruptible sleep, an address or a mount that will not go away): every
//! report sent before the resource is gone must say in its type that it may still run
//! (`OfflineNotConfirmed`, `offline_confirmed: false`), whatever its operation's outcome was,
//! and the `offline` line must wait until it is gone.

use super::Holder;
use crate::monitor::constants::KILL_WAIT_MS_MAX;
use crate::monitor::event_log::EventLog;
use crate::monitor::protocol::{CheckLevel, Event, Operation, Outcome, OFFLINE_NOT_CONFIRMED};
use crate::monitor::resource::{Progress, Resource};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a test scripts of its fake resource, shared with the holder's boxed copy.
struct Script {
    /// What `start` (and `poll` while starting) answers.
    start: RefCell<Progress>,
    /// What `stop` (and `poll` while stopping) answers.
    stop: RefCell<Progress>,
    /// A failure `failure` reports once, as if its process had exited.
    failure: RefCell<Option<String>>,
    /// Whether nothing of it runs any more: only the test sets it, SIGKILL does not.
    gone: Cell<bool>,
}

impl Script {
    fn new(start: Progress, stop: Progress) -> Rc<Script> {
        Rc::new(Script {
            start: RefCell::new(start),
            stop: RefCell::new(stop),
            failure: RefCell::new(None),
            gone: Cell::new(false),
        })
    }
}

#[derive(Clone, Copy)]
enum Pending {
    Start,
    Stop,
}

/// A resource whose processes survive `terminate` until its script says they are gone.
struct Stubborn {
    script: Rc<Script>,
    pending: Option<Pending>,
}

impl Resource for Stubborn {
    fn start(&mut self, _now: Instant, _timeout: Duration) -> Progress {
        self.pending = Some(Pending::Start);
        self.script.start.borrow().clone()
    }
    fn stop(&mut self, _now: Instant, _timeout: Duration) -> Progress {
        self.pending = Some(Pending::Stop);
        self.script.stop.borrow().clone()
    }
    fn check(&mut self, _level: CheckLevel, _now: Instant, _timeout: Duration) -> Progress {
        Progress::Finished(Ok(()))
    }
    fn poll(&mut self, _now: Instant) -> Progress {
        match self.pending {
            Some(Pending::Start) => self.script.start.borrow().clone(),
            Some(Pending::Stop) => self.script.stop.borrow().clone(),
            None => Progress::Pending,
        }
    }
    fn observe_exit(&mut self, _pid: i32, _status: i32) -> bool {
        false
    }
    fn failure(&mut self) -> Option<String> {
        self.script.failure.borrow_mut().take()
    }
    fn cancel_check(&mut self) {}
    fn terminate(&mut self) {
        // SIGKILL is sent; the processes are in uninterruptible sleep and stay.
        self.pending = None;
    }
    fn is_gone(&mut self) -> bool {
        self.script.gone.get()
    }
}

/// A holder writing its event log to a fresh file, and the file.
struct Bench {
    holder: Holder,
    log_path: PathBuf,
    now: Instant,
}

impl Bench {
    fn new() -> Bench {
        static RUN: AtomicU64 = AtomicU64::new(0);
        let log_path = std::env::temp_dir().join(format!(
            "wolfpack-holder-test-{}-{}.log",
            std::process::id(),
            RUN.fetch_add(1, Ordering::SeqCst)
        ));
        let log = EventLog::open(&log_path, 1).expect("the temporary directory is writable");
        Bench {
            holder: Holder::new(1, std::env::temp_dir(), log),
            log_path,
            now: Instant::now(),
        }
    }

    fn start(&mut self, script: &Rc<Script>, timeout_ms: Option<u32>) {
        let resource = Box::new(Stubborn {
            script: Rc::clone(script),
            pending: None,
        });
        self.holder
            .admit_created("web", resource, timeout_ms, self.now);
    }

    fn advance(&mut self, milliseconds: u64) {
        self.now += Duration::from_millis(milliseconds);
        self.holder.advance(self.now);
    }

    fn events(&mut self) -> Vec<Event> {
        self.holder.take_events()
    }

    fn offline_lines(&self) -> usize {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.ends_with(" offline"))
            .count()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Whether `event` tells the daemon that the resource no longer runs (see the contract).
fn claims_offline(event: &Event) -> bool {
    match event {
        Event::Done {
            operation: Operation::Start | Operation::Stop,
            outcome,
            ..
        } => match outcome {
            Outcome::Failed(_) | Outcome::TimedOut => true,
            // A successful start claims nothing of the kind; a successful stop does.
            Outcome::Success => matches!(
                event,
                Event::Done {
                    operation: Operation::Stop,
                    ..
                }
            ),
            Outcome::OfflineNotConfirmed(_) | Outcome::Rejected(_) => false,
        },
        Event::ResourceFailed {
            offline_confirmed, ..
        } => *offline_confirmed,
        _ => false,
    }
}

/// Drives one way of ending a resource's life while its processes survive, then checks what
/// the daemon hears: nothing claims offline while they run; once they are gone, the `offline`
/// line is written and a stop is answered `Success`.
fn survivors_are_never_reported_offline(
    case: &str,
    script: Rc<Script>,
    timeout_ms: Option<u32>,
    end_life: impl FnOnce(&mut Bench),
    expected_reports: usize,
) {
    let mut bench = Bench::new();
    bench.start(&script, timeout_ms);
    end_life(&mut bench);
    let mut reports: Vec<Event> = bench.events();
    // The holder waits KILL_WAIT_MS_MAX for the processes to go, then reports anyway.
    for _ in 0..3 {
        bench.advance(KILL_WAIT_MS_MAX);
        reports.extend(bench.events());
    }
    let ending: Vec<&Event> = reports
        .iter()
        .filter(|event| {
            !matches!(
                event,
                Event::Done {
                    operation: Operation::Start,
                    outcome: Outcome::Success,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(ending.len(), expected_reports, "{case}: {reports:?}");
    for event in &ending {
        assert!(
            !claims_offline(event),
            "{case}: reported offline while its processes run: {event:?}"
        );
        // And says so to humans too.
        if let Event::Done {
            outcome: Outcome::OfflineNotConfirmed(reason),
            ..
        }
        | Event::ResourceFailed { reason, .. } = event
        {
            assert!(reason.ends_with(OFFLINE_NOT_CONFIRMED), "{case}: {reason}");
        }
    }
    assert_eq!(
        bench.offline_lines(),
        0,
        "{case}: offline line while it runs"
    );
    // The runner asks again: still not gone, still not confirmed.
    bench.holder.stop("web", None, bench.now);
    bench.advance(10);
    let again = bench.events();
    assert!(
        again.iter().all(|event| !claims_offline(event)),
        "{case}: {again:?}"
    );
    script.gone.set(true);
    bench.advance(10);
    assert_eq!(bench.offline_lines(), 1, "{case}: offline line once gone");
    bench.holder.stop("web", None, bench.now);
    let last = bench.events();
    assert!(
        last.iter().any(|event| matches!(
            event,
            Event::Done {
                operation: Operation::Stop,
                outcome: Outcome::Success,
                ..
            }
        )),
        "{case}: once gone, a stop is answered Success: {last:?}"
    );
}

#[test]
fn a_stop_that_succeeded_while_processes_survive_is_not_reported_offline() {
    let script = Script::new(Progress::Finished(Ok(())), Progress::Finished(Ok(())));
    let stop = |bench: &mut Bench| bench.holder.stop("web", None, bench.now);
    survivors_are_never_reported_offline("stop succeeded", script, None, stop, 1);
}

#[test]
fn a_stop_that_timed_out_while_processes_survive_is_not_reported_offline() {
    let script = Script::new(Progress::Finished(Ok(())), Progress::Pending);
    let stop = |bench: &mut Bench| {
        bench.holder.stop("web", Some(1_000), bench.now);
        bench.advance(1_001);
    };
    survivors_are_never_reported_offline("stop timed out", script, None, stop, 1);
}

#[test]
fn a_failed_stop_while_processes_survive_is_not_reported_offline() {
    let failed = Progress::Finished(Err("exit code 1".to_string()));
    let script = Script::new(Progress::Finished(Ok(())), failed);
    let stop = |bench: &mut Bench| bench.holder.stop("web", None, bench.now);
    survivors_are_never_reported_offline("stop failed", script, None, stop, 1);
}

#[test]
fn a_failed_start_while_processes_survive_is_not_reported_offline() {
    let failed = Progress::Finished(Err("exit code 1".to_string()));
    let script = Script::new(failed, Progress::Pending);
    survivors_are_never_reported_offline("start failed", script, None, |_| {}, 1);
}

#[test]
fn a_start_that_timed_out_while_processes_survive_is_not_reported_offline() {
    let script = Script::new(Progress::Pending, Progress::Pending);
    let wait = |bench: &mut Bench| bench.advance(1_001);
    survivors_are_never_reported_offline("start timed out", script, Some(1_000), wait, 1);
}

#[test]
fn a_start_cancelled_by_a_stop_while_processes_survive_is_not_reported_offline() {
    let script = Script::new(Progress::Pending, Progress::Finished(Ok(())));
    let stop = |bench: &mut Bench| bench.holder.stop("web", None, bench.now);
    // The cancelled start's answer and the stop's.
    survivors_are_never_reported_offline("start cancelled", script, None, stop, 2);
}

#[test]
fn a_failure_while_online_whose_processes_survive_is_not_reported_offline() {
    let script = Script::new(Progress::Finished(Ok(())), Progress::Pending);
    let script_for_failure = Rc::clone(&script);
    let failing = move |bench: &mut Bench| {
        *script_for_failure.failure.borrow_mut() = Some("exit code 7".to_string());
        bench.advance(10);
    };
    survivors_are_never_reported_offline("failed while online", script, None, failing, 1);
}
