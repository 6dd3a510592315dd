//! Failures: restart in place, the threshold, its period, timeouts, rejected starts,
//! resources that do not affect their group, cleanup.

use super::bench::{edit, one_group, resource, Bench};
use crate::monitor::protocol::{Event, Operation, Outcome};
use crate::runner::State;

/// ip ← web, both online.
fn web(threshold: u32, period_s: u32) -> Bench {
    let mut web = resource("web", "g", &["ip"]);
    web.restart_threshold = threshold;
    web.restart_period_s = period_s;
    let mut bench = Bench::new(one_group(vec![resource("ip", "g", &[]), web]));
    bench.hold(1, true);
    bench.settle();
    assert_eq!(bench.group_state(1), State::Online);
    bench
}

#[test]
fn restart_in_place_then_group_failed_after_the_threshold() {
    let mut bench = web(3, 900);
    for restart in 1..=3 {
        bench.now_ms += 1_000;
        bench.fail("web");
        assert_eq!(
            bench.state("web"),
            State::OnlinePending,
            "restart {restart}"
        );
        assert_eq!(bench.pending(), ["start web"], "ip is not touched");
        bench.answer("web", Outcome::Success);
        assert_eq!(bench.group_state(1), State::Online);
    }
    bench.now_ms += 1_000;
    bench.fail("web");
    assert_eq!(
        bench.group_failures(1),
        ["resource web failed 4 times in 900 s (threshold 3): exit code 7 (not running)"]
    );
    assert_eq!(bench.state("web"), State::Failed);
    assert_eq!(bench.group_state(1), State::Failed);
    assert_eq!(bench.pending(), ["stop ip"], "the rest of the group stops");
    assert_eq!(bench.group_stopped_count(1), 0);
    bench.answer("ip", Outcome::Success);
    assert_eq!(bench.group_stopped_count(1), 1);
    assert_eq!(
        bench.group_state(1),
        State::Failed,
        "failed here until the core decides"
    );
    assert!(bench.pending().is_empty());

    // The core moves the group away, then back: a fresh try.
    bench.hold(1, false);
    assert_eq!(
        bench.group_stopped_count(1),
        2,
        "every group(false) is answered"
    );
    bench.hold(1, true);
    bench.settle();
    assert_eq!(bench.group_state(1), State::Online);
    assert_eq!(bench.state("web"), State::Online);
}

#[test]
fn failed_dependency_restarts_its_dependents_too() {
    let mut bench = web(3, 900);
    bench.take_commands();
    bench.fail("ip");
    assert_eq!(
        bench.pending(),
        ["stop web"],
        "dependents stop before ip restarts"
    );
    assert_eq!(bench.state("ip"), State::Failed);
    bench.settle();
    assert_eq!(bench.take_commands(), ["stop web", "start ip", "start web"]);
    assert_eq!(bench.group_state(1), State::Online);
}

#[test]
fn failed_check_stops_dependents_then_the_resource_then_restarts_bottom_up() {
    let mut bench = web(3, 900);
    bench.take_commands();
    bench.advance(60_000);
    assert_eq!(bench.pending(), ["is-alive ip", "is-alive web"]);
    bench.answer("web", Outcome::Success);
    bench.answer("ip", Outcome::Failed("no carrier".to_string()));
    assert_eq!(bench.state("ip"), State::Failed);
    assert!(bench
        .reason("ip")
        .contains("is-alive check failed: no carrier"));
    bench.settle();
    assert_eq!(
        bench.take_commands(),
        [
            "is-alive ip",
            "is-alive web",
            "stop web",
            "stop ip",
            "start ip",
            "start web"
        ]
    );
    assert_eq!(bench.group_state(1), State::Online);
}

#[test]
fn failures_expire_after_the_period() {
    let mut bench = web(1, 60);
    bench.fail("web");
    bench.settle();
    assert_eq!(
        bench.state("web"),
        State::Online,
        "first failure: restarted"
    );
    bench.now_ms += 60_000;
    bench.fail("web");
    bench.settle();
    assert_eq!(bench.state("web"), State::Online, "the first one expired");
    assert!(bench.group_failures(1).is_empty());
    bench.now_ms += 59_999;
    bench.fail("web");
    assert_eq!(bench.group_failures(1).len(), 1, "two within 60 s");
}

#[test]
fn timed_out_start_is_a_failure_naming_the_timeout() {
    let mut ip = resource("ip", "g", &[]);
    ip.timeout_s = Some(5);
    ip.restart_threshold = 1;
    let mut bench = Bench::new(one_group(vec![ip]));
    bench.hold(1, true);
    bench.answer("ip", Outcome::TimedOut);
    assert_eq!(bench.pending(), ["start ip"], "restarted once");
    bench.answer("ip", Outcome::TimedOut);
    assert_eq!(
        bench.group_failures(1),
        ["resource ip failed 2 times in 900 s (threshold 1): start timed out after 5000 ms"]
    );
    assert_eq!(
        bench.group_stopped_count(1),
        1,
        "a timed-out start is offline: nothing left to stop"
    );
}

#[test]
fn rejected_start_fails_the_group_without_restarts() {
    let mut bench = Bench::new(one_group(vec![
        resource("ip", "g", &[]),
        resource("db", "g", &[]),
        resource("web", "g", &["ip"]),
    ]));
    bench.hold(1, true);
    bench.answer("db", Outcome::Success);
    bench.answer("ip", Outcome::Rejected("unknown type 'nope'".to_string()));
    assert_eq!(
        bench.group_failures(1),
        ["resource ip cannot start: unknown type 'nope'"]
    );
    assert_eq!(bench.state("ip"), State::Failed);
    assert_eq!(bench.pending(), ["stop db"]);
    bench.answer("db", Outcome::Success);
    assert_eq!(bench.group_stopped_count(1), 1);
    assert!(
        bench.pending().is_empty(),
        "no restart of a configuration failure"
    );
}

#[test]
fn resource_not_affecting_the_group_stays_failed_then_is_retried_once_its_failures_expire() {
    let mut extra = resource("extra", "g", &["ip"]);
    extra.affects_group = false;
    extra.restart_threshold = 0;
    extra.restart_period_s = 100;
    let mut catalog = one_group(vec![
        resource("ip", "g", &[]),
        extra,
        resource("report", "g", &["extra"]),
    ]);
    // No checks, so the only deadline is the retry.
    for spec in &mut catalog.resources {
        spec.looks_alive_s = 0;
        spec.is_alive_s = 0;
    }
    let mut bench = Bench::new(catalog);
    bench.hold(1, true);
    bench.settle();
    assert_eq!(bench.runner.next_deadline_ms(), None);
    bench.fail("extra");
    assert_eq!(bench.pending(), ["stop report"]);
    bench.settle();
    assert_eq!(bench.state("extra"), State::Failed);
    assert_eq!(bench.state("report"), State::Offline);
    assert_eq!(bench.reason("report"), "waiting for extra");
    assert_eq!(
        bench.group_state(1),
        State::Online,
        "the group stays online"
    );
    assert!(bench.group_failures(1).is_empty());
    // No cleanup needed: once the failure expires it is tried again.
    let failed_ms = bench.now_ms;
    assert_eq!(bench.runner.next_deadline_ms(), Some(failed_ms + 100_000));
    bench.advance(99_999);
    assert!(bench.pending().is_empty());
    bench.advance(1);
    assert_eq!(bench.pending(), ["start extra"]);
    bench.settle();
    assert_eq!(bench.state("extra"), State::Online);
    assert_eq!(bench.state("report"), State::Online);
}

#[test]
fn cleanup_forgets_failures_and_retries_a_failed_resource() {
    let mut extra = resource("extra", "g", &[]);
    extra.affects_group = false;
    let catalog = one_group(vec![resource("ip", "g", &[]), extra]);
    let mut bench = Bench::new(catalog.clone());
    bench.hold(1, true);
    bench.answer("extra", Outcome::Rejected("bad parameter".to_string()));
    bench.settle();
    assert_eq!(bench.state("extra"), State::Failed);
    assert_eq!(bench.group_state(1), State::Online);
    bench.advance(3_600_000);
    bench.settle();
    assert_eq!(
        bench.state("extra"),
        State::Failed,
        "no timed retry of a configuration failure"
    );
    bench.set_catalog(edit(&catalog, "extra", |spec| spec.cleanup = 1));
    assert_eq!(bench.pending(), ["start extra"]);
    bench.answer("extra", Outcome::Success);
    let status = bench.runner.resource_states();
    assert!(status
        .iter()
        .all(|resource| resource.last_failure.is_none()));
}

#[test]
fn events_for_unknown_resources_or_operations_are_ignored_and_counted() {
    let mut bench = web(3, 900);
    let before = bench.runner.resource_states();
    let stray = [
        Event::ResourceFailed {
            resource: "nobody".to_string(),
            reason: "gone".to_string(),
            offline_confirmed: true,
        },
        Event::Done {
            resource: "web".to_string(),
            operation: Operation::Stop,
            outcome: Outcome::Success,
            elapsed_ms: 1,
        },
    ];
    for event in &stray {
        bench.runner.monitor_event(event, bench.now_ms);
        bench.pump();
    }
    assert_eq!(bench.runner.ignored_events(), 2);
    assert_eq!(bench.runner.resource_states(), before);
    assert!(bench.pending().is_empty());
}
