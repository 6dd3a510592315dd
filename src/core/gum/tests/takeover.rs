//! The succession, step by step: `Sync` from every member, the earlier locker confirmed
//! stopped before the log is read, replay of a partial log up to what a member applied, the
//! barrier over what was discarded, and the refusals.

use super::{entry, Bench, EPOCH};
use crate::core::bit;
use crate::core::gum::locker::Phase;
use crate::core::gum::takeover::Step;
use crate::core::gum::wire::GumMessage;
use crate::core::Event;

/// Members 2 (the new locker) and 3; node 1, the previous locker, crashed.
const SURVIVORS: u64 = 0b110;

/// Node 2 of 3 after node 1 (the locker) crashed: it applied sequences 1 and 2 (block 0); the
/// log also holds 3 (block 1) and 4 (block 2), a write node 1 finished but never broadcast
/// to everyone. Node 2 becomes the locker of `SURVIVORS`.
fn after_a_locker_crash() -> Bench {
    let mut bench = Bench::new(2, 3, SURVIVORS);
    bench.lay_log_block(0, 2, &[(1, entry(3, 1)), (2, entry(3, 2))]);
    bench.lay_log_block(1, 2, &[(3, entry(3, 3))]);
    bench.lay_log_block(2, 2, &[(4, entry(2, 1))]);
    bench.apply(1, 0, entry(3, 1));
    bench.apply(2, 0, entry(3, 2));
    // Node 1 was the locker of the previous epoch.
    bench.node.gum.locker_id = 1;
    bench.stabilize(false);
    bench
}

fn step_name(bench: &mut Bench) -> &'static str {
    match bench.node.gum.locker.as_ref().map(|locker| &locker.phase) {
        Some(Phase::Ready) => "ready",
        Some(Phase::TakingOver(takeover)) => match takeover.step {
            Step::Sync { .. } => "sync",
            Step::Resolve { .. } => "resolve",
            Step::Headers { .. } => "headers",
            Step::Payload { .. } => "payload",
            Step::Log { .. } => "log",
            Step::Failed { .. } => "failed",
        },
        None => "none",
    }
}

fn confirm_stopped(bench: &mut Bench, peer: u8) {
    assert!(
        bench.node.observer.confirm_for_test(peer),
        "the takeover observes the earlier locker"
    );
    bench.node.takeover_progress();
    bench.drain();
}

fn recovered_discarding(bench: &Bench) -> Option<u64> {
    bench.events.iter().find_map(|event| match event {
        Event::GumRecovery {
            what: "recovered",
            value,
            ..
        } => Some(*value),
        _ => None,
    })
}

#[test]
fn takeover_after_a_locker_crash_completes_what_a_member_applied_and_bars_the_rest() {
    let mut bench = after_a_locker_crash();
    assert_eq!(step_name(&mut bench), "sync");
    let asked: Vec<u8> = bench
        .take_sent()
        .into_iter()
        .filter(|(_, message)| matches!(message, GumMessage::Sync { epoch: EPOCH }))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(asked, vec![3], "the other member is asked to Sync");
    assert_eq!(
        bench.recovery_reads(),
        0,
        "no read before every member answered"
    );

    // Member 3 applied sequence 3 too (the broadcast reached it, not us).
    bench.sync_reply(3, 3, true);
    assert_eq!(step_name(&mut bench), "resolve");
    assert_eq!(
        bench.recovery_reads(),
        0,
        "the log is not read while node 1 may still write it"
    );
    assert!(
        bench.node.observer.observed().contains(&1),
        "node 1 is observed"
    );
    bench.tick(1);
    assert_eq!(step_name(&mut bench), "resolve", "still waiting for node 1");

    confirm_stopped(&mut bench, 1);
    assert_eq!(step_name(&mut bench), "headers");
    assert_eq!(bench.recovery_reads(), 2, "both checkpoint headers");
    bench.answer_reads();

    assert!(bench.locker_ready(), "recovered");
    assert_eq!(
        bench.node.gum.replica.sequence, 3,
        "adopted up to what member 3 applied"
    );
    assert_eq!(
        recovered_discarding(&bench),
        Some(1),
        "sequence 4 discarded"
    );
    assert_eq!(bench.node.gum.unresolved, 0);
    // The barrier takes sequence 4 again, in a block after the discarded one.
    assert_eq!(bench.log_writes(), vec![3]);
    assert_eq!(bench.log_write_updates(3), vec![(4, 2, 0)]);
    let locker = bench.node.gum.locker.as_ref().expect("locker");
    assert_eq!((locker.next_sequence, locker.next_position), (5, 4));

    // Once the barrier is durable it is committed; a proposal then takes sequence 5.
    bench.complete_log_write(3, true);
    assert_eq!(bench.commits(), vec![(3, 4)]);
    bench.propose(3, 4, entry(3, 4).body);
    assert_eq!(bench.log_write_updates(4), vec![(5, 3, 4)]);
}

#[test]
fn a_barrier_is_never_acknowledged_and_updates_after_it_are_acknowledged_once() {
    let mut bench = after_a_locker_crash();
    bench.sync_reply(3, 3, true);
    confirm_stopped(&mut bench, 1);
    bench.answer_reads();
    bench.complete_log_write(3, true);
    bench.applied(3, 4);
    assert!(
        Bench::acks(&bench.take_sent()).is_empty(),
        "nobody proposed the barrier"
    );
    bench.propose(3, 4, entry(3, 4).body);
    bench.complete_log_write(4, true);
    bench.applied(3, 5);
    bench.applied(3, 5);
    assert_eq!(Bench::acks(&bench.take_sent()), vec![(3, 4, 5)]);
}

#[test]
fn without_a_partial_broadcast_nothing_is_discarded_and_no_barrier_is_written() {
    let mut bench = after_a_locker_crash();
    // Member 3 applied sequence 4 as well: everything in the log was replicated.
    bench.sync_reply(3, 4, true);
    confirm_stopped(&mut bench, 1);
    bench.answer_reads();
    assert!(bench.locker_ready());
    assert_eq!(bench.node.gum.replica.sequence, 4);
    assert_eq!(recovered_discarding(&bench), Some(0));
    assert!(bench.log_writes().is_empty(), "no barrier");
    let locker = bench.node.gum.locker.as_ref().expect("locker");
    assert_eq!((locker.next_sequence, locker.next_position), (5, 3));
}

#[test]
fn a_stale_sync_reply_does_not_count() {
    let mut bench = after_a_locker_crash();
    let stale = bench.node.status().dropped.stale;
    bench.receive(
        3,
        GumMessage::SyncReply {
            epoch: EPOCH - 1,
            reply: crate::core::gum::wire::SyncReply {
                applied: 3,
                valid: true,
                unresolved: 0,
                last_locker: 0,
            },
        },
    );
    assert_eq!(bench.node.status().dropped.stale, stale + 1);
    assert_eq!(
        step_name(&mut bench),
        "sync",
        "member 3 has not answered for this epoch"
    );
    // Asked again after the retry interval.
    bench.tick(10);
    assert!(bench
        .take_sent()
        .iter()
        .any(|(to, message)| *to == 3 && matches!(message, GumMessage::Sync { .. })));
}

#[test]
fn the_takeover_waits_for_its_own_log_writes_to_land() {
    let mut bench = after_a_locker_crash();
    // A log write of ours from the previous epoch is still in flight.
    bench.node.gum.log_writes_in_flight = 1;
    bench.node.gum.locker = None;
    bench.node.gum.locker_id = 1;
    bench.stabilize(false);
    bench.sync_reply(3, 3, true);
    assert_eq!(
        step_name(&mut bench),
        "sync",
        "our own reply waits for our write"
    );
    bench.node.gum.log_writes_in_flight = 0;
    bench.tick(1);
    assert_eq!(step_name(&mut bench), "resolve");
}

#[test]
fn members_ahead_of_the_log_make_the_recovery_refuse_and_retry() {
    let mut bench = after_a_locker_crash();
    // Member 3 claims sequence 6, which the log does not hold.
    bench.sync_reply(3, 6, true);
    confirm_stopped(&mut bench, 1);
    bench.answer_reads();
    assert!(!bench.locker_ready());
    assert_eq!(step_name(&mut bench), "failed");
    assert!(bench.events.iter().any(|event| matches!(
        event,
        Event::GumRecovery {
            what: "recovery refused",
            detail: "members applied updates the log does not hold",
            ..
        }
    )));
    assert!(
        bench.log_writes().is_empty(),
        "a refused recovery writes nothing"
    );
    let attempts = bench.node.gum.takeover_attempts;
    bench.tick(100);
    assert_eq!(
        bench.node.gum.takeover_attempts,
        attempts + 1,
        "tried again"
    );
    assert_eq!(step_name(&mut bench), "sync");
}

#[test]
fn a_former_adopts_the_whole_log() {
    let mut bench = Bench::new(2, 3, bit(2));
    bench.lay_log_block(0, 2, &[(1, entry(3, 1)), (2, entry(3, 2))]);
    bench.lay_log_block(1, 2, &[(3, entry(3, 3))]);
    // An orphan beyond a hole: never durable in order, never replayed.
    bench.lay_log_block(3, 2, &[(4, entry(3, 4))]);
    bench.node.gum.valid = false;
    bench.stabilize(true);
    assert_eq!(
        step_name(&mut bench),
        "headers",
        "alone and formed: nothing to wait for"
    );
    bench.answer_reads();
    assert!(bench.locker_ready());
    assert_eq!(bench.node.gum.replica.sequence, 3);
    assert_eq!(recovered_discarding(&bench), Some(0));
    let locker = bench.node.gum.locker.as_ref().expect("locker");
    assert_eq!((locker.next_sequence, locker.next_position), (4, 2));
}
