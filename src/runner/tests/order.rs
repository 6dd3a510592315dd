//! Start and stop order, stopping, checks.

use super::bench::{one_group, resource, Bench, NOT_CONFIRMED};
use crate::monitor::protocol::{CheckLevel, Command, Outcome};
use crate::runner::{State, STOP_RETRY_MS};

/// a ← b ← c: c needs b, b needs a.
fn chain() -> Bench {
    Bench::new(one_group(vec![
        resource("a", "g", &[]),
        resource("b", "g", &["a"]),
        resource("c", "g", &["b"]),
    ]))
}

/// base ← left, right ← top.
fn diamond() -> Bench {
    Bench::new(one_group(vec![
        resource("base", "g", &[]),
        resource("left", "g", &["base"]),
        resource("right", "g", &["base"]),
        resource("top", "g", &["left", "right"]),
    ]))
}

#[test]
fn chain_starts_bottom_up_and_stops_top_down() {
    let mut bench = chain();
    assert!(
        bench.pending().is_empty(),
        "nothing runs before the core says so"
    );
    bench.hold(1, true);
    assert_eq!(bench.pending(), ["start a"]);
    assert_eq!(bench.state("b"), State::Offline);
    assert_eq!(bench.reason("b"), "waiting for a");
    bench.answer("a", Outcome::Success);
    assert_eq!(bench.pending(), ["start b"]);
    bench.answer("b", Outcome::Success);
    assert_eq!(bench.pending(), ["start c"]);
    assert_eq!(bench.group_state(1), State::OnlinePending);
    bench.answer("c", Outcome::Success);
    assert_eq!(bench.group_state(1), State::Online);
    assert_eq!(
        bench.group_path(1),
        [State::OnlinePending, State::Online],
        "Offline → OnlinePending → Online"
    );

    bench.hold(1, false);
    assert_eq!(bench.pending(), ["stop c"]);
    assert_eq!(bench.state("c"), State::OfflinePending);
    bench.answer("c", Outcome::Success);
    assert_eq!(bench.pending(), ["stop b"]);
    bench.answer("b", Outcome::Success);
    assert_eq!(bench.pending(), ["stop a"]);
    assert_eq!(
        bench.group_stopped_count(1),
        0,
        "not before a is confirmed offline"
    );
    bench.answer("a", Outcome::Success);
    assert_eq!(bench.group_stopped_count(1), 1);
    assert_eq!(bench.group_state(1), State::Offline);
    assert_eq!(
        bench.group_path(1),
        [
            State::OnlinePending,
            State::Online,
            State::OfflinePending,
            State::Offline
        ]
    );
}

#[test]
fn diamond_starts_independent_resources_together_and_stops_in_reverse() {
    let mut bench = diamond();
    bench.hold(1, true);
    assert_eq!(bench.pending(), ["start base"]);
    bench.answer("base", Outcome::Success);
    assert_eq!(bench.pending(), ["start left", "start right"]);
    bench.answer("right", Outcome::Success);
    assert!(bench.pending() == ["start left"], "top waits for left too");
    bench.answer("left", Outcome::Success);
    assert_eq!(bench.pending(), ["start top"]);
    bench.settle();
    assert_eq!(bench.group_state(1), State::Online);

    bench.hold(1, false);
    assert_eq!(bench.pending(), ["stop top"]);
    bench.answer("top", Outcome::Success);
    assert_eq!(bench.pending(), ["stop left", "stop right"]);
    bench.answer("left", Outcome::Success);
    assert_eq!(bench.pending(), ["stop right"], "base waits for right too");
    bench.answer("right", Outcome::Success);
    assert_eq!(bench.pending(), ["stop base"]);
    bench.answer("base", Outcome::Success);
    assert_eq!(bench.group_stopped_count(1), 1);
}

#[test]
fn group_without_resources_is_online_at_once() {
    let mut bench = Bench::new(one_group(Vec::new()));
    bench.hold(1, true);
    assert_eq!(bench.group_state(1), State::Online);
    bench.hold(1, false);
    assert_eq!(bench.group_stopped_count(1), 1);
    assert_eq!(bench.group_state(1), State::Offline);
}

#[test]
fn stop_of_a_slot_never_held_is_confirmed_at_once() {
    let mut bench = chain();
    bench.hold(9, false);
    assert_eq!(bench.group_stopped_count(9), 1);
    assert!(bench.pending().is_empty());
}

#[test]
fn group_off_during_a_pending_start_cancels_it() {
    let mut bench = chain();
    bench.hold(1, true);
    bench.answer("a", Outcome::Success);
    assert_eq!(bench.pending(), ["start b"]);
    bench.hold(1, false);
    // The fake answered the cancelled start at once; the runner ignored it (not a failure).
    assert_eq!(bench.pending(), ["stop b"]);
    assert_eq!(bench.runner.ignored_events(), 1);
    bench.answer("b", Outcome::Success);
    assert_eq!(bench.pending(), ["stop a"]);
    bench.answer("a", Outcome::Success);
    assert_eq!(bench.group_stopped_count(1), 1);
    assert_eq!(bench.state("b"), State::Offline);
    assert!(bench
        .runner
        .resource_states()
        .iter()
        .all(|r| r.last_failure.is_none()));
    assert!(bench.group_failures(1).is_empty());
}

#[test]
fn stop_not_confirmed_is_asked_again_until_confirmed() {
    let mut bench = Bench::new(one_group(vec![resource("a", "g", &[])]));
    bench.hold(1, true);
    bench.settle();
    bench.hold(1, false);
    bench.answer("a", Outcome::OfflineNotConfirmed(NOT_CONFIRMED.to_string()));
    assert_eq!(bench.state("a"), State::OfflinePending);
    assert_eq!(bench.group_stopped_count(1), 0);
    assert_eq!(
        bench.runner.next_deadline_ms(),
        Some(bench.now_ms + STOP_RETRY_MS)
    );
    bench.advance(STOP_RETRY_MS - 1);
    assert!(bench.pending().is_empty(), "not before the retry is due");
    bench.advance(1);
    assert_eq!(bench.pending(), ["stop a"]);
    bench.answer("a", Outcome::OfflineNotConfirmed(NOT_CONFIRMED.to_string()));
    bench.advance(STOP_RETRY_MS);
    bench.answer("a", Outcome::Success);
    assert_eq!(bench.state("a"), State::Offline);
    assert_eq!(bench.group_stopped_count(1), 1);
}

#[test]
fn checks_run_at_their_intervals_with_the_resource_timeout() {
    let mut spec = resource("a", "g", &[]);
    spec.looks_alive_s = 5;
    spec.is_alive_s = 12;
    spec.timeout_s = Some(7);
    let mut bench = Bench::new(one_group(vec![spec]));
    bench.hold(1, true);
    bench.settle();
    let online_ms = bench.now_ms;
    assert_eq!(bench.runner.next_deadline_ms(), Some(online_ms + 5_000));
    bench.advance(4_999);
    assert!(bench.pending().is_empty());
    bench.advance(1);
    assert_eq!(bench.pending(), ["looks-alive a"]);
    assert_eq!(
        bench.runner.next_deadline_ms(),
        None,
        "nothing due while it is checked"
    );
    bench.take_commands();
    bench.answer("a", Outcome::Success);
    bench.advance(5_000);
    assert_eq!(bench.pending(), ["looks-alive a"]);
    bench.answer("a", Outcome::Success);
    bench.advance(2_000);
    assert_eq!(bench.pending(), ["is-alive a"], "IsAlive due at 12 s");
    let commands = bench.monitor.commands.clone();
    assert!(matches!(
        commands.last(),
        Some(Command::Check {
            level: CheckLevel::IsAlive,
            timeout_ms: Some(7_000),
            ..
        })
    ));
    bench.answer("a", Outcome::Success);
    assert_eq!(
        bench.runner.next_deadline_ms(),
        Some(bench.now_ms + 5_000),
        "an IsAlive counts as a LooksAlive"
    );
    assert_eq!(bench.state("a"), State::Online);
}

#[test]
fn start_carries_type_parameters_and_timeout() {
    let mut spec = resource("a", "g", &[]);
    spec.timeout_s = Some(90);
    let mut bench = Bench::new(one_group(vec![spec]));
    bench.hold(1, true);
    assert_eq!(
        bench.monitor.commands,
        [Command::Start {
            resource: "a".to_string(),
            kind: "process".to_string(),
            params: vec![("command".to_string(), "serve a".to_string())],
            depends: vec![],
            timeout_ms: Some(90_000),
        }]
    );
}

/// The monitor stops everything on its own (the dead-man fence, `StopAll`) top-down only if
/// each `Start` tells it what the resource needs.
#[test]
fn start_carries_the_dependencies() {
    let mut bench = diamond();
    bench.hold(1, true);
    for name in ["base", "left", "right", "top"] {
        bench.answer(name, Outcome::Success);
    }
    let depends: Vec<(String, Vec<String>)> = bench
        .monitor
        .commands
        .iter()
        .filter_map(|command| match command {
            Command::Start {
                resource, depends, ..
            } => Some((resource.clone(), depends.clone())),
            _ => None,
        })
        .collect();
    let named = |name: &str, needs: &[&str]| {
        let needs = needs.iter().map(|needed| needed.to_string()).collect();
        (name.to_string(), needs)
    };
    assert_eq!(
        depends,
        [
            named("base", &[]),
            named("left", &["base"]),
            named("right", &["base"]),
            named("top", &["left", "right"]),
        ]
    );
}

#[test]
fn a_filesystem_starts_only_with_its_disk_lease_and_stops_when_the_lease_goes() {
    let mut disk = resource("data", "g", &[]);
    disk.kind = "filesystem".to_string();
    let mut bench = Bench::new(one_group(vec![disk, resource("app", "g", &["data"])]));
    bench.hold(1, true);
    assert!(bench.pending().is_empty(), "no mount without the lease");
    assert_eq!(
        bench.reason("data"),
        "waiting for its disk lease (filesystem)"
    );
    assert_eq!(bench.reason("app"), "waiting for data");
    bench.runner.set_lease("data", true, bench.now_ms);
    bench.pump();
    assert_eq!(bench.pending(), ["start data"]);
    bench.answer("data", Outcome::Success);
    bench.answer("app", Outcome::Success);
    assert_eq!(bench.group_state(1), State::Online);
    // The lease is lost: its dependents first, then the filesystem itself.
    bench.runner.set_lease("data", false, bench.now_ms);
    bench.pump();
    assert_eq!(bench.pending(), ["stop app"]);
    bench.answer("app", Outcome::Success);
    assert_eq!(bench.pending(), ["stop data"]);
}
