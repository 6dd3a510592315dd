//! The holder against a resource type whose processes outlive SIGKILL until the test lets them
//! go (a process in uninterruptible sleep, an address or a mount that will not go away): every
//! report sent before the resource is gone must say in its type that it may still run
//! (`OfflineNotConfirmed`, `offline_confirmed: false`), whatever its operation's outcome was,
//! and the `offline` line must wait until it is gone.
//!
//! The same resource type, with a journal of the stops and kills, shows the order in which
//! everything stops (`StopAll`, the dead-man fence) and what the fence does when its budget is
//! spent.

use super::Holder;
use crate::monitor::constants::{FENCE_GRACE_MS, KILL_WAIT_MS_MAX};
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

/// What the resources of one bench were asked, in order: "stop NAME MS" (MS: the timeout it
/// was given) and "kill NAME".
type Journal = Rc<RefCell<Vec<String>>>;

/// A resource whose processes survive `terminate` until its script says they are gone.
struct Stubborn {
    name: String,
    script: Rc<Script>,
    pending: Option<Pending>,
    journal: Journal,
}

impl Resource for Stubborn {
    fn start(&mut self, _now: Instant, _timeout: Duration) -> Progress {
        self.pending = Some(Pending::Start);
        self.script.start.borrow().clone()
    }
    fn stop(&mut self, _now: Instant, timeout: Duration) -> Progress {
        let entry = format!("stop {} {}", self.name, timeout.as_millis());
        self.journal.borrow_mut().push(entry);
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
        self.journal
            .borrow_mut()
            .push(format!("kill {}", self.name));
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
    journal: Journal,
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
            journal: Journal::default(),
        }
    }

    fn start(&mut self, script: &Rc<Script>, timeout_ms: Option<u32>) {
        self.start_named("web", &[], script, timeout_ms);
    }

    /// Starts `name`, which needs `depends`.
    fn start_named(
        &mut self,
        name: &str,
        depends: &[&str],
        script: &Rc<Script>,
        timeout_ms: Option<u32>,
    ) {
        let resource = Box::new(Stubborn {
            name: name.to_string(),
            script: Rc::clone(script),
            pending: None,
            journal: Rc::clone(&self.journal),
        });
        let depends: Vec<String> = depends.iter().map(|needed| needed.to_string()).collect();
        self.holder
            .admit_created(name, resource, &depends, timeout_ms, self.now);
    }

    /// What the resources were asked since the last call.
    fn asked(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.journal.borrow_mut())
    }

    /// The resources of the `offline` lines, in order.
    fn offline_order(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.strip_suffix(" offline"))
            .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("resource=")))
            .map(str::to_string)
            .collect()
    }

    /// A step of the fence `milliseconds` later; true when it is over.
    fn fence_after(&mut self, milliseconds: u64) -> bool {
        self.now += Duration::from_millis(milliseconds);
        self.holder.step_fence(self.now)
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

/// A resource that starts at once and whose stop runs until the test says it is over.
fn online_until_stopped() -> Rc<Script> {
    Script::new(Progress::Finished(Ok(())), Progress::Pending)
}

/// Lets a resource's stop finish: it succeeds and nothing of it runs any more.
fn let_go(script: &Script) {
    *script.stop.borrow_mut() = Progress::Finished(Ok(()));
    script.gone.set(true);
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|word| word.to_string()).collect()
}

/// web needs app, app needs db; log needs nothing. The fence stops web and log at once, app
/// only once web is gone, db only once app is gone, each told what is left of the budget; and
/// nothing is killed when every stop ends within it.
#[test]
fn the_fence_stops_top_down_along_the_dependencies_within_its_budget() {
    let mut bench = Bench::new();
    let scripts: Vec<Rc<Script>> = (0..4).map(|_| online_until_stopped()).collect();
    let [db, app, web, log] = [0, 1, 2, 3].map(|index| Rc::clone(&scripts[index]));
    bench.start_named("db", &[], &db, None);
    bench.start_named("app", &["db"], &app, None);
    bench.start_named("web", &["app"], &web, None);
    bench.start_named("log", &[], &log, None);
    bench.asked();

    let grace = FENCE_GRACE_MS;
    bench.holder.begin_fence(bench.now);
    assert_eq!(
        bench.asked(),
        words(&[&format!("stop log {grace}"), &format!("stop web {grace}")]),
        "what nothing needs stops at once, in parallel"
    );
    assert!(!bench.fence_after(10));
    assert_eq!(bench.asked(), Vec::<String>::new(), "app waits for web");
    let_go(&log);
    assert!(!bench.fence_after(10));
    assert_eq!(
        bench.asked(),
        Vec::<String>::new(),
        "an independent resource going holds nothing back"
    );
    let_go(&web);
    assert!(!bench.fence_after(10));
    assert_eq!(bench.asked(), words(&[&format!("stop app {}", grace - 30)]));
    assert!(!bench.fence_after(50));
    assert_eq!(bench.asked(), Vec::<String>::new(), "db waits for app");
    let_go(&app);
    assert!(!bench.fence_after(10));
    assert_eq!(bench.asked(), words(&[&format!("stop db {}", grace - 90)]));
    let_go(&db);
    assert!(bench.fence_after(10), "over once nothing is left");
    assert_eq!(bench.offline_order(), words(&["log", "web", "app", "db"]));
    assert!(bench.holder.held.is_empty());
}

/// app needs db, and app's stop outlasts the budget: at its end both are killed, app first,
/// although db never began to stop; the fence then waits until they are gone, or reports the
/// survivors once KILL_WAIT_MS_MAX has passed.
#[test]
fn a_spent_fence_budget_kills_what_still_runs_dependents_first() {
    let mut bench = Bench::new();
    let (db, app) = (online_until_stopped(), online_until_stopped());
    bench.start_named("db", &[], &db, None);
    bench.start_named("app", &["db"], &app, None);
    bench.asked();

    bench.holder.begin_fence(bench.now);
    assert_eq!(
        bench.asked(),
        words(&[&format!("stop app {FENCE_GRACE_MS}")])
    );
    assert!(!bench.fence_after(FENCE_GRACE_MS - 1));
    assert_eq!(
        bench.asked(),
        Vec::<String>::new(),
        "db still waits for app"
    );
    assert!(!bench.fence_after(1));
    assert_eq!(
        bench.asked(),
        words(&["kill app", "kill db"]),
        "the budget is spent: everything left is killed, dependents first"
    );
    app.gone.set(true);
    assert!(!bench.fence_after(10));
    assert_eq!(
        bench.asked(),
        Vec::<String>::new(),
        "a kill is never followed by a stop"
    );
    assert_eq!(bench.offline_order(), words(&["app"]));
    // db outlives SIGKILL: the fence gives up waiting and reports it.
    assert!(!bench.fence_after(KILL_WAIT_MS_MAX - 20));
    assert!(bench.fence_after(10));
    assert_eq!(bench.holder.held.keys().collect::<Vec<_>>(), ["db"]);
    assert_eq!(
        bench.offline_order(),
        words(&["app"]),
        "no offline line while it runs"
    );
}

/// What the daemon was stopping already when the fence began goes on at once, whatever needs
/// it (the daemon orders its own stops); a resource needing one that is not held, or itself,
/// is not held back.
#[test]
fn the_fence_holds_back_only_what_a_held_dependent_needs() {
    let mut bench = Bench::new();
    let (db, app, lone) = (
        online_until_stopped(),
        online_until_stopped(),
        online_until_stopped(),
    );
    bench.start_named("db", &[], &db, None);
    bench.start_named("app", &["db"], &app, None);
    bench.start_named("lone", &["gone-already", "lone"], &lone, None);
    bench.holder.stop("db", Some(60_000), bench.now);
    assert_eq!(bench.asked(), words(&["stop db 60000"]));
    bench.holder.begin_fence(bench.now);
    let mut asked = bench.asked();
    asked.sort();
    let grace = FENCE_GRACE_MS;
    assert_eq!(
        asked,
        words(&[
            &format!("stop app {grace}"),
            &format!("stop db {grace}"),
            &format!("stop lone {grace}")
        ])
    );
}

/// `StopAll` goes top-down too, each stop with its default timeout, and `AllStopped` follows
/// the last one.
#[test]
fn stop_all_stops_dependents_before_what_they_need() {
    let mut bench = Bench::new();
    let (db, app) = (online_until_stopped(), online_until_stopped());
    bench.start_named("db", &[], &db, None);
    bench.start_named("app", &["db"], &app, None);
    bench.asked();
    bench.events();

    bench.holder.stop_all(bench.now);
    assert_eq!(bench.asked(), words(&["stop app 20000"]));
    bench.advance(1_000);
    assert_eq!(bench.asked(), Vec::<String>::new(), "db waits for app");
    let_go(&app);
    bench.advance(10);
    assert_eq!(bench.asked(), words(&["stop db 20000"]));
    let_go(&db);
    bench.advance(10);
    let stopped: Vec<String> = bench
        .events()
        .iter()
        .map(|event| match event {
            Event::Done {
                resource,
                operation: Operation::Stop,
                outcome: Outcome::Success,
                ..
            } => format!("stopped {resource}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(stopped, words(&["stopped app", "stopped db", "AllStopped"]));
    assert_eq!(bench.offline_order(), words(&["app", "db"]));
}

/// A cycle (the catalog refuses one) must not hold its members back for ever: when nothing is
/// on its way down and nothing may begin, everything left begins.
#[test]
fn a_dependency_cycle_stops_at_once() {
    let mut bench = Bench::new();
    let (left, right) = (online_until_stopped(), online_until_stopped());
    bench.start_named("left", &["right"], &left, None);
    bench.start_named("right", &["left"], &right, None);
    bench.asked();
    bench.holder.stop_all(bench.now);
    assert_eq!(
        bench.asked(),
        words(&["stop left 20000", "stop right 20000"])
    );

    let mut bench = Bench::new();
    let (left, right) = (online_until_stopped(), online_until_stopped());
    bench.start_named("left", &["right"], &left, None);
    bench.start_named("right", &["left"], &right, None);
    bench.asked();
    bench.holder.begin_fence(bench.now);
    let grace = FENCE_GRACE_MS;
    assert_eq!(
        bench.asked(),
        words(&[
            &format!("stop left {grace}"),
            &format!("stop right {grace}")
        ])
    );
}
