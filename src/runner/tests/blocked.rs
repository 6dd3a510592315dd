//! Failed stops: a resource whose stop the monitor never confirms is Blocked after
//! `STOP_ATTEMPTS_MAX` answers, its group with it, and the group stays held here; under
//! `StopFailure::Leave` the runner also asks to leave the cluster, once.

use super::bench::{one_group, resource, Bench, NOT_CONFIRMED};
use crate::monitor::protocol::Outcome;
use crate::runner::{RunnerOutput, State, StopFailure, STOP_ATTEMPTS_MAX, STOP_RETRY_MS};

/// The monitor's answer to a start that timed out and whose cleanup stop keeps failing (the
/// issue's `ocf:pacemaker:Dummy op_sleep=30 --timeout 3`).
fn start_timed_out() -> Outcome {
    Outcome::OfflineNotConfirmed(format!("start timed out and was killed; {NOT_CONFIRMED}"))
}

fn not_confirmed() -> Outcome {
    Outcome::OfflineNotConfirmed(NOT_CONFIRMED.to_string())
}

/// Answers the pending stop of `name` "not confirmed" `times` times, the retry each time.
fn stops_not_confirmed(bench: &mut Bench, name: &str, times: u32) {
    for _ in 0..times {
        assert_eq!(bench.pending(), [format!("stop {name}")]);
        bench.answer(name, not_confirmed());
        bench.advance(STOP_RETRY_MS);
    }
}

fn leaves(bench: &Bench) -> Vec<String> {
    bench
        .reports
        .iter()
        .filter_map(|report| match report {
            RunnerOutput::Leave { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// One resource `s` that may restart in place, held here; its start timed out and was not
/// confirmed offline, so the runner stops it.
fn start_not_confirmed() -> Bench {
    let mut bench = Bench::new(one_group(vec![resource("s", "g", &[])]));
    bench.hold(1, true);
    bench.answer("s", start_timed_out());
    assert_eq!(bench.state("s"), State::Failed);
    bench
}

#[test]
fn a_stop_never_confirmed_blocks_the_resource_and_its_group_after_the_retries() {
    let mut bench = start_not_confirmed();
    stops_not_confirmed(&mut bench, "s", STOP_ATTEMPTS_MAX - 1);
    assert_eq!(bench.state("s"), State::Failed, "not before the last retry");
    assert_eq!(bench.group_state(1), State::OnlinePending);
    bench.answer("s", not_confirmed());
    assert_eq!(bench.state("s"), State::Blocked);
    assert_eq!(bench.reason("s"), format!("stop failed ({NOT_CONFIRMED})"));
    let group = bench.runner.group_states().remove(0);
    assert_eq!(group.state, State::Blocked);
    assert_eq!(group.reason, format!("stop failed (s: {NOT_CONFIRMED})"));
    assert!(group.held_here, "the core's decision is unchanged");
    assert_eq!(bench.group_path(1).last(), Some(&State::Blocked));
    // Nothing moves it elsewhere, nothing says it stopped, nothing asks to leave.
    assert!(bench.group_failures(1).is_empty());
    assert_eq!(bench.group_stopped_count(1), 0);
    assert!(leaves(&bench).is_empty(), "Block is the default");
    // The runner keeps asking, blocked, every STOP_RETRY_MS...
    assert_eq!(
        bench.runner.next_deadline_ms(),
        Some(bench.now_ms + STOP_RETRY_MS)
    );
    bench.advance(STOP_RETRY_MS);
    stops_not_confirmed(&mut bench, "s", 3);
    assert_eq!(bench.state("s"), State::Blocked);
    // ...and once the monitor confirms it stopped, it is Failed and restarted in place.
    bench.answer("s", Outcome::Success);
    assert_eq!(bench.pending(), ["start s"]);
    assert!(bench
        .reason("s")
        .starts_with("restarting after: stop failed"));
    bench.answer("s", Outcome::Success);
    assert_eq!(bench.state("s"), State::Online);
    assert_eq!(bench.group_state(1), State::Online);
}

#[test]
fn a_group_told_to_stop_stays_held_while_a_stop_failed_and_stops_once_it_is_confirmed() {
    // ip ← web: web's stop fails while the core moves the group away.
    let mut bench = Bench::new(one_group(vec![
        resource("ip", "g", &[]),
        resource("web", "g", &["ip"]),
    ]));
    bench.hold(1, true);
    bench.settle();
    bench.hold(1, false);
    stops_not_confirmed(&mut bench, "web", STOP_ATTEMPTS_MAX);
    assert_eq!(bench.state("web"), State::Blocked);
    assert_eq!(bench.group_state(1), State::Blocked);
    assert_eq!(
        bench.state("ip"),
        State::Online,
        "its dependency stays up under it"
    );
    assert_eq!(bench.pending(), ["stop web"], "asked again, never ip");
    assert_eq!(bench.group_stopped_count(1), 0, "still held here");
    bench.answer("web", Outcome::Success);
    assert_eq!(bench.state("web"), State::Failed, "its stop failed");
    assert_eq!(bench.pending(), ["stop ip"]);
    bench.answer("ip", Outcome::Success);
    assert_eq!(bench.group_stopped_count(1), 1);
    assert_eq!(bench.group_state(1), State::Offline);
}

#[test]
fn a_stop_confirmed_before_the_last_retry_starts_the_count_again() {
    let mut bench = start_not_confirmed();
    stops_not_confirmed(&mut bench, "s", STOP_ATTEMPTS_MAX - 1);
    bench.answer("s", Outcome::Success);
    bench.answer("s", start_timed_out());
    stops_not_confirmed(&mut bench, "s", STOP_ATTEMPTS_MAX - 1);
    assert_eq!(bench.state("s"), State::Failed);
    assert_eq!(bench.group_state(1), State::OnlinePending);
}

#[test]
fn under_leave_a_failed_stop_asks_once_to_leave_the_cluster() {
    let mut bench = start_not_confirmed();
    bench.runner.set_stop_failure(StopFailure::Leave);
    stops_not_confirmed(&mut bench, "s", STOP_ATTEMPTS_MAX - 1);
    assert!(leaves(&bench).is_empty(), "not before the stop failed");
    bench.answer("s", not_confirmed());
    assert_eq!(
        leaves(&bench),
        [format!(
            "the stop of resource s failed {STOP_ATTEMPTS_MAX} times ({NOT_CONFIRMED})"
        )]
    );
    // Leaving changes nothing here: still Blocked, still held, still asked again.
    assert_eq!(bench.state("s"), State::Blocked);
    assert_eq!(bench.group_stopped_count(1), 0);
    bench.advance(STOP_RETRY_MS);
    stops_not_confirmed(&mut bench, "s", 2);
    assert_eq!(leaves(&bench).len(), 1, "asked once");
    // The core stops the group when the node leaves: it stays held until confirmed.
    bench.hold(1, false);
    assert_eq!(bench.group_stopped_count(1), 0);
    assert_eq!(bench.group_state(1), State::Blocked);
}
