//! The locker, step by step: sequencing, group commit, delivery once durable and in position
//! order, acknowledgement once every member applied, and the duplicate, stale and full-window
//! edges.

use super::{body, Bench, EPOCH, PEER_INCARNATION};
use crate::core::bit;
use crate::core::gum::wire::GumMessage;
use crate::core::gum::LOG_WRITES_IN_FLIGHT_MAX;
use crate::core::Event;

/// Members 1 (the locker), 2 and 3.
const THREE: u64 = 0b111;

#[test]
fn an_update_is_committed_once_durable_and_acknowledged_once_every_member_applied_it() {
    let mut bench = Bench::ready_locker(3, THREE);

    bench.propose(2, 1, body("a", "1"));
    assert_eq!(
        bench.log_writes(),
        vec![0],
        "one block written at the log's start"
    );
    assert_eq!(bench.log_write_updates(0), vec![(1, 2, 1)]);
    assert!(
        bench.take_sent().is_empty(),
        "nothing is broadcast before the block is durable"
    );
    assert_eq!(
        bench.node.gum.replica.sequence, 0,
        "nor applied at the locker"
    );

    bench.complete_log_write(0, true);
    assert_eq!(
        bench.node.gum.replica.sequence, 1,
        "applied at the locker once durable"
    );
    let sent = bench.take_sent();
    assert!(Bench::acks(&sent).is_empty(), "no member reported it yet");
    let commits: Vec<(u8, u64)> = sent
        .iter()
        .filter_map(|(to, message)| match message {
            GumMessage::Commit { committed, epoch } => {
                assert_eq!(*epoch, EPOCH);
                Some((*to, committed.sequence))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        commits,
        vec![(2, 1), (3, 1)],
        "broadcast to the other members"
    );

    bench.applied(2, 1);
    assert!(
        Bench::acks(&bench.take_sent()).is_empty(),
        "member 3 has not applied it"
    );
    bench.applied(3, 1);
    let mut acks = Bench::acks(&bench.take_sent());
    // Reports repeated (heartbeat-paced, or duplicated by the network) ack nothing again.
    bench.applied(3, 1);
    bench.applied(2, 1);
    bench.tick(10);
    acks.extend(Bench::acks(&bench.take_sent()));
    assert_eq!(
        acks,
        vec![(2, 1, 1)],
        "acknowledged exactly once, to its sender"
    );
}

#[test]
fn members_reporting_ahead_do_not_make_an_update_acknowledged_before_it_is_durable() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.applied(2, 1);
    bench.applied(3, 1);
    bench.tick(10);
    assert!(
        Bench::acks(&bench.take_sent()).is_empty(),
        "no ack before durable"
    );
    assert!(bench
        .node
        .gum
        .locker
        .as_ref()
        .is_some_and(|l| l.awaiting_ack.is_empty()));

    bench.complete_log_write(0, true);
    assert_eq!(Bench::acks(&bench.take_sent()), vec![(2, 1, 1)]);
}

#[test]
fn the_ack_waits_for_the_slowest_member() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.complete_log_write(0, true);
    bench.take_sent();

    bench.applied(2, 1);
    assert!(
        Bench::acks(&bench.take_sent()).is_empty(),
        "member 3 has not applied it"
    );
    bench.applied(3, 0);
    assert!(Bench::acks(&bench.take_sent()).is_empty(), "still not");
    bench.applied(3, 1);
    assert_eq!(Bench::acks(&bench.take_sent()), vec![(2, 1, 1)]);
}

#[test]
fn a_duplicate_proposal_is_queued_once_and_a_retransmission_after_commit_is_acknowledged_again() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.propose(2, 1, body("a", "1"));
    assert_eq!(bench.log_writes(), vec![0], "the duplicate wrote nothing");
    assert_eq!(bench.log_write_updates(0), vec![(1, 2, 1)]);

    bench.complete_log_write(0, true);
    bench.applied(2, 1);
    bench.applied(3, 1);
    assert_eq!(Bench::acks(&bench.take_sent()), vec![(2, 1, 1)]);

    // The ack was lost: the sender proposes again. Same sequence, no new log write.
    bench.propose(2, 1, body("a", "1"));
    assert!(
        bench.log_writes().is_empty(),
        "a committed request is not logged again"
    );
    assert_eq!(Bench::acks(&bench.take_sent()), vec![(2, 1, 1)]);
    assert_eq!(bench.node.gum.replica.sequence, 1);
}

#[test]
fn a_proposal_of_an_older_incarnation_is_dropped_as_stale() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.complete_log_write(0, true);
    let stale_before = bench.node.status().dropped.stale;

    bench.propose_as(2, PEER_INCARNATION - 1, 2, body("a", "old"));
    assert!(
        bench.log_writes().is_empty(),
        "nothing logged for a dead incarnation"
    );
    assert_eq!(bench.node.status().dropped.stale, stale_before + 1);

    // A restarted sender (newer incarnation) numbers from 1 again and is accepted.
    bench.propose_as(2, PEER_INCARNATION + 1, 1, body("a", "new"));
    assert_eq!(bench.log_writes(), vec![1]);
    assert_eq!(bench.log_write_updates(1), vec![(2, 2, 1)]);
}

#[test]
fn a_stale_applied_report_is_dropped() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.complete_log_write(0, true);
    bench.take_sent();
    bench.applied(2, 1);
    let stale_before = bench.node.status().dropped.stale;
    // Member 3 reports for an older epoch: it does not count.
    bench.receive(
        3,
        GumMessage::Applied {
            epoch: EPOCH - 1,
            applied: 1,
            valid: true,
        },
    );
    assert_eq!(bench.node.status().dropped.stale, stale_before + 1);
    assert!(Bench::acks(&bench.take_sent()).is_empty());
}

#[test]
fn proposals_ahead_of_their_turn_wait_and_are_committed_in_request_order() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 3, body("a", "3"));
    bench.propose(2, 2, body("a", "2"));
    assert!(bench.log_writes().is_empty(), "request 1 is missing");

    bench.propose(2, 1, body("a", "1"));
    assert_eq!(bench.log_writes(), vec![0]);
    assert_eq!(
        bench.log_write_updates(0),
        vec![(1, 2, 1), (2, 2, 2), (3, 2, 3)],
        "group commit in request-id order"
    );
}

#[test]
fn a_full_window_holds_the_queue_until_a_block_is_durable() {
    let mut bench = Bench::ready_locker(3, THREE);
    let window = LOG_WRITES_IN_FLIGHT_MAX as u64;
    for request_id in 1..=window {
        bench.propose(2, request_id, body("a", &request_id.to_string()));
    }
    assert_eq!(bench.log_writes(), (0..window).collect::<Vec<_>>());

    // One more: queued, not written.
    bench.propose(2, window + 1, body("a", "next"));
    assert_eq!(bench.log_writes().len(), LOG_WRITES_IN_FLIGHT_MAX);
    assert_eq!(
        bench.node.gum.locker.as_ref().map(|l| l.queue.len()),
        Some(1)
    );

    // The window opens when the first block is durable and delivered.
    bench.complete_log_write(0, true);
    assert_eq!(bench.commits(), vec![(2, 1), (3, 1)]);
    assert_eq!(
        bench.log_writes(),
        (1..=window).collect::<Vec<_>>(),
        "the queued update goes into the next block"
    );
    assert_eq!(
        bench.log_write_updates(window),
        vec![(window + 1, 2, window + 1)]
    );
}

#[test]
fn blocks_durable_out_of_order_are_delivered_in_position_order() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.propose(3, 1, body("b", "1"));
    assert_eq!(bench.log_writes(), vec![0, 1]);

    bench.complete_log_write(1, true);
    assert!(bench.commits().is_empty(), "block 0 is not durable yet");
    assert_eq!(bench.node.gum.replica.sequence, 0);

    bench.complete_log_write(0, true);
    assert_eq!(bench.commits(), vec![(2, 1), (3, 1), (2, 2), (3, 2)]);
    assert_eq!(bench.node.gum.replica.sequence, 2);
}

#[test]
fn a_failed_log_write_is_retried_and_nothing_is_delivered_meanwhile() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.complete_log_write(0, false);
    assert!(bench.commits().is_empty(), "a failed write is not durable");
    assert_eq!(bench.node.gum.replica.sequence, 0);
    bench.applied(2, 1);
    bench.applied(3, 1);
    assert!(Bench::acks(&bench.take_sent()).is_empty());

    bench.tick(1);
    assert_eq!(bench.log_writes(), vec![0], "the same block, rewritten");
    assert_eq!(bench.log_write_updates(0), vec![(1, 2, 1)]);
    bench.complete_log_write(0, true);
    let sent = bench.take_sent();
    assert!(sent
        .iter()
        .any(|(to, message)| *to == 2 && matches!(message, GumMessage::Commit { .. })));
    // The members' reports stand: durable now, it is acknowledged at once, and only once.
    assert_eq!(Bench::acks(&sent), vec![(2, 1, 1)]);
    bench.applied(2, 1);
    bench.applied(3, 1);
    assert!(Bench::acks(&bench.take_sent()).is_empty());
}

#[test]
fn the_lockers_own_update_is_acknowledged_locally_exactly_once() {
    let mut bench = Bench::ready_locker(2, 0b11);
    let request_id = bench.node.submit(body("own", "1")).expect("accepted");
    assert_eq!(bench.node.gum.outbox.len(), 1);
    bench.drain();
    assert_eq!(bench.log_write_updates(0), vec![(1, 1, request_id)]);
    bench.complete_log_write(0, true);
    bench.applied(2, 1);
    // Re-proposing after a timeout and more reports do not acknowledge it twice.
    bench.tick(50);
    bench.applied(2, 1);
    let acknowledged: Vec<u64> = bench
        .events
        .iter()
        .filter_map(|event| match event {
            Event::GumAcknowledged { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .collect();
    assert_eq!(acknowledged, vec![request_id]);
    assert!(bench.node.gum.outbox.is_empty());
    assert!(
        Bench::acks(&bench.take_sent()).is_empty(),
        "no message to ourselves"
    );
}

#[test]
fn a_lagging_member_gets_the_commits_again() {
    let mut bench = Bench::ready_locker(3, THREE);
    bench.propose(2, 1, body("a", "1"));
    bench.propose(2, 2, body("a", "2"));
    bench.complete_log_write(0, true);
    if !bench.log_writes().is_empty() {
        bench.complete_log_write(1, true);
    }
    bench.take_sent();
    bench.applied(2, 2);
    bench.applied(3, 0);

    bench.tick(3);
    let resent = bench.commits();
    assert_eq!(
        resent,
        vec![(3, 1), (3, 2)],
        "only to the lagging member, in order"
    );
    bench.tick(1);
    assert!(
        bench.commits().is_empty(),
        "not again before the retransmit interval"
    );
}

#[test]
fn a_non_member_proposal_is_not_accepted() {
    let mut bench = Bench::ready_locker(4, THREE);
    let unexpected = bench.node.status().dropped.unexpected;
    bench.propose(4, 1, body("a", "1"));
    assert!(bench.log_writes().is_empty());
    assert_eq!(bench.node.status().dropped.unexpected, unexpected + 1);
    assert_eq!(bench.node.membership.members() & bit(4), 0);
}
