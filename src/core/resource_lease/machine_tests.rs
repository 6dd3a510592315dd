use super::*;

const HOLD: u64 = 86;
const WAIT: u64 = 101;

fn params(node_id: u8) -> Params {
    Params {
        node_id,
        incarnation: 10 + u64::from(node_id),
        cluster_id: 7,
        hold_ticks: HOLD,
        defence_wait_ticks: WAIT,
        read_age_ticks_max: 11,
    }
}

fn machine(node_id: u8) -> LeaseBlock {
    LeaseBlock::new(params(node_id), "fs-data".into())
}

fn written(reaction: Reaction) -> Sealed<Lease> {
    match reaction {
        Reaction::Write(sealed) => sealed,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn read(lease: &mut LeaseBlock, record: Option<&Sealed<Lease>>, issue: u64, now: u64) -> Reaction {
    lease.read_issued();
    lease.on_read(Ok(record.cloned()), issue, now, None, 3)
}

fn final_read(
    lease: &mut LeaseBlock,
    record: &Sealed<Lease>,
    issue: u64,
    now: u64,
    verdict: Verdict,
) -> Reaction {
    lease.read_issued();
    lease.on_read(Ok(Some(record.clone())), issue, now, Some(verdict), 3)
}

/// Node `node_id` challenged an empty block at tick 0 (landed at 2) and claimed it at 110
/// (landed at 112): its lease runs to 110 + HOLD.
fn owner(node_id: u8) -> (LeaseBlock, Sealed<Lease>) {
    let mut lease = machine(node_id);
    let challenge = written(read(&mut lease, None, 0, 1));
    assert_eq!(lease.on_write(true, 1, 2), Reaction::Nothing);
    assert_eq!(
        lease.read_due(110, true),
        Some(true),
        "final once the window passed"
    );
    let claim = written(final_read(&mut lease, &challenge, 110, 111, Verdict::Clear));
    assert_eq!(lease.on_write(true, 110, 112), Reaction::Won);
    (lease, claim)
}

#[test]
fn an_unopposed_challenger_claims_only_after_the_window_and_a_clear_check() {
    let mut lease = machine(2);
    assert_eq!(
        lease.read_due(0, false),
        None,
        "a challenge starts at an interval"
    );
    assert_eq!(lease.read_due(0, true), Some(false));
    let challenge = written(read(&mut lease, None, 0, 1));
    assert_eq!(
        (
            challenge.sequence,
            challenge.record.challenger,
            challenge.record.owner
        ),
        (1, 2, 0)
    );
    assert_eq!(challenge.record.name, "fs-data");
    assert_eq!(lease.read_due(1, true), None, "the challenge is in flight");
    lease.on_write(true, 1, 2);
    // Unchanged, but too early: a plain read, and even a verdict would not claim.
    assert_eq!(lease.read_due(50, true), Some(false));
    assert_eq!(
        final_read(&mut lease, &challenge, 50, 51, Verdict::Clear),
        Reaction::Nothing
    );
    // Old enough, but the other blocks could not all be judged: keep waiting.
    assert_eq!(
        final_read(&mut lease, &challenge, 103, 104, Verdict::Wait),
        Reaction::Nothing
    );
    let claim = written(final_read(&mut lease, &challenge, 110, 111, Verdict::Clear));
    assert_eq!((claim.sequence, claim.record.owner), (2, 2));
    assert_eq!(claim.record.challenger, 0);
    assert!(!lease.owned(111), "owned only once the claim succeeds");
    assert_eq!(lease.on_write(true, 110, 112), Reaction::Won);
    assert!(lease.owned(112));
    assert_eq!(lease.valid_until_tick(), 110 + HOLD);
    assert!(!lease.owned(110 + HOLD));
}

#[test]
fn a_challenge_loses_on_any_change_and_on_a_yield() {
    let mut lease = machine(2);
    let challenge = written(read(&mut lease, None, 0, 1));
    lease.on_write(true, 1, 2);
    // The owner defended: its rewrite clears our challenger.
    let mut defended = challenge.clone();
    defended.sequence += 1;
    defended.record.challenger = 0;
    assert_eq!(read(&mut lease, Some(&defended), 20, 21), Reaction::Reprobe);
    assert_eq!(lease.read_due(30, true), None, "done with this block");

    let mut lease = machine(2);
    let challenge = written(read(&mut lease, None, 0, 1));
    lease.on_write(true, 1, 2);
    let yielded = final_read(&mut lease, &challenge, 110, 111, Verdict::Yield);
    assert_eq!(yielded, Reaction::Reprobe, "another block is the name's");

    let mut lease = machine(2);
    let _ = written(read(&mut lease, None, 0, 1));
    assert_eq!(
        lease.on_write(false, 1, 2),
        Reaction::Reprobe,
        "a failed write"
    );
}

#[test]
fn a_block_bound_to_another_name_or_cluster_is_not_challenged() {
    let (_, mut other) = owner(3);
    other.record.name = "fs-logs".into();
    let mut lease = machine(2);
    assert_eq!(read(&mut lease, Some(&other), 0, 1), Reaction::Reprobe);
    let (_, mut foreign) = owner(3);
    foreign.cluster_id = 8;
    let mut lease = machine(2);
    assert_eq!(read(&mut lease, Some(&foreign), 0, 1), Reaction::Reprobe);
    // Our name with an owner: challenged, the owner kept in the record.
    let (_, theirs) = owner(3);
    let mut lease = machine(2);
    let challenge = written(read(&mut lease, Some(&theirs), 0, 1));
    assert_eq!(challenge.record.owner, 3);
    assert_eq!(challenge.record.challenger, 2);
    assert_eq!(challenge.sequence, theirs.sequence + 1);
}

#[test]
fn two_challengers_on_one_block_the_last_writer_alone_can_win() {
    let mut first = machine(1);
    let mut second = machine(2);
    let first_challenge = written(read(&mut first, None, 0, 1));
    let second_challenge = written(read(&mut second, None, 0, 2));
    first.on_write(true, 1, 3);
    second.on_write(true, 2, 4);
    // The disk holds the second write: the first sees a change and loses.
    assert_ne!(first_challenge, second_challenge);
    assert_eq!(
        read(&mut first, Some(&second_challenge), 10, 11),
        Reaction::Reprobe
    );
    let claim = written(final_read(
        &mut second,
        &second_challenge,
        110,
        111,
        Verdict::Clear,
    ));
    assert_eq!(claim.record.owner, 2);
}

#[test]
fn the_owner_defends_by_rewriting_and_loses_to_another_record() {
    let (mut lease, claim) = owner(2);
    // A challenger wrote into our record: the renewal clears it, above its sequence.
    let mut challenged = claim.clone();
    challenged.sequence += 1;
    challenged.record.challenger = 3;
    challenged.record.challenger_incarnation = 13;
    let renewal = written(read(&mut lease, Some(&challenged), 120, 121));
    assert_eq!(renewal.record.owner, 2);
    assert_eq!(renewal.record.challenger, 0);
    assert_eq!(renewal.sequence, challenged.sequence + 1);
    assert_eq!(lease.on_write(true, 121, 123), Reaction::Renewed);
    assert_eq!(lease.valid_until_tick(), 121 + HOLD);
    // A torn block (a challenger died mid-write): still ours, rewritten.
    lease.read_issued();
    let rewrite = written(lease.on_read(Err(Unreadable), 130, 131, None, 3));
    assert_eq!(rewrite.sequence, renewal.sequence + 1);
    lease.on_write(true, 131, 132);
    // Someone else's claim, or an empty block: lost at once.
    let mut taken = rewrite.clone();
    taken.sequence += 1;
    taken.record.owner = 3;
    taken.record.owner_incarnation = 13;
    assert_eq!(read(&mut lease, Some(&taken), 140, 141), Reaction::Lost);
    assert!(!lease.owned(141));
    let (mut lease, _) = owner(2);
    assert_eq!(read(&mut lease, None, 120, 121), Reaction::Lost);
    // Our previous incarnation's record is not ours.
    let (mut lease, mut old) = owner(2);
    old.record.owner_incarnation -= 1;
    assert_eq!(read(&mut lease, Some(&old), 120, 121), Reaction::Lost);
}

#[test]
fn the_chain_only_a_write_issued_while_valid_extends_the_lease() {
    let (mut lease, claim) = owner(2);
    let until = lease.valid_until_tick();
    // A read issued in time that completes after the validity: lost, nothing written.
    lease.read_issued();
    let late = lease.on_read(Ok(Some(claim.clone())), until - 5, until, None, 3);
    assert_eq!(late, Reaction::Lost);
    // A renewal issued just before the end that succeeds after it extends the chain...
    let (mut lease, claim) = owner(2);
    let until = lease.valid_until_tick();
    let _ = written(read(&mut lease, Some(&claim), until - 3, until - 1));
    assert_eq!(
        lease.on_write(true, until - 1, until + 5),
        Reaction::Renewed
    );
    assert_eq!(lease.valid_until_tick(), until - 1 + HOLD);
    // ...but expiry is checked first thing on every tick, and ends it for good.
    let (mut lease, _) = owner(2);
    let until = lease.valid_until_tick();
    assert!(!lease.expire(until - 1));
    assert!(lease.expire(until));
    assert_eq!(lease.valid_until_tick(), 0);
}

#[test]
fn a_stale_read_is_not_acted_upon() {
    let mut lease = machine(2);
    assert_eq!(read(&mut lease, None, 0, 12), Reaction::Nothing);
    assert_eq!(lease.read_due(20, true), Some(false), "read again");
    let (mut lease, claim) = owner(2);
    assert_eq!(read(&mut lease, Some(&claim), 120, 132), Reaction::Nothing);
    assert!(lease.owned(132));
    let mut lease = machine(2);
    let challenge = written(read(&mut lease, None, 0, 1));
    lease.on_write(true, 1, 2);
    let stale = final_read(&mut lease, &challenge, 110, 122, Verdict::Clear);
    assert_eq!(
        stale,
        Reaction::Nothing,
        "a claim on an old read could overwrite a newer owner"
    );
}

#[test]
fn a_claim_that_lands_after_its_own_validity_holds_nothing() {
    let mut lease = machine(2);
    let challenge = written(read(&mut lease, None, 0, 1));
    lease.on_write(true, 1, 2);
    let _ = written(final_read(&mut lease, &challenge, 110, 111, Verdict::Clear));
    assert_eq!(lease.on_write(true, 110, 110 + HOLD), Reaction::Reprobe);
    assert!(!lease.owned(110 + HOLD));
}

#[test]
fn a_release_writes_owner_zero_only_while_valid_and_after_a_write_in_flight() {
    let (mut lease, claim) = owner(2);
    lease.release();
    assert!(lease.releasing());
    assert!(!lease.owned(120), "a lease being released is not held");
    assert_eq!(
        lease.read_due(120, false),
        Some(false),
        "at once, no interval"
    );
    let mut challenged = claim.clone();
    challenged.sequence += 1;
    challenged.record.challenger = 3;
    let release = written(read(&mut lease, Some(&challenged), 120, 121));
    assert_eq!(
        (release.record.owner, release.record.owner_incarnation),
        (0, 0)
    );
    assert_eq!(release.record.challenger, 0);
    assert_eq!(
        release.record.name, "fs-data",
        "the block stays bound to the name"
    );
    assert_eq!(release.sequence, challenged.sequence + 1);
    assert_eq!(lease.read_due(122, true), None);
    assert_eq!(lease.on_write(true, 121, 123), Reaction::Released);

    // A renewal in flight when the release begins: it completes, then the release reads.
    let (mut lease, claim) = owner(2);
    let renewal = written(read(&mut lease, Some(&claim), 120, 121));
    lease.release();
    assert_eq!(lease.read_due(122, false), None, "the renewal is in flight");
    assert_eq!(lease.on_write(true, 121, 125), Reaction::Nothing);
    assert_eq!(lease.valid_until_tick(), 121 + HOLD);
    let release = written(read(&mut lease, Some(&renewal), 125, 126));
    assert_eq!(release.record.owner, 0);

    // After the validity a challenger may have claimed since our read: nothing written.
    let (mut lease, claim) = owner(2);
    lease.release();
    let until = lease.valid_until_tick();
    assert_eq!(
        read(&mut lease, Some(&claim), until - 2, until),
        Reaction::Released
    );
    // A failed read gives up too: the lease lapses on its own.
    let (mut lease, _) = owner(2);
    lease.release();
    lease.read_issued();
    assert_eq!(lease.on_read_error(), Reaction::Released);
    // Not owned: releasing just stops.
    let mut lease = machine(2);
    lease.release();
    assert_eq!(lease.read_due(0, true), None);
}

#[test]
fn without_the_defence_window_a_challenger_claims_at_its_next_read() {
    let mut lease = LeaseBlock::new(
        Params {
            defence_wait_ticks: 0,
            ..params(2)
        },
        "fs-data".into(),
    );
    let challenge = written(read(&mut lease, None, 0, 1));
    lease.on_write(true, 1, 2);
    assert_eq!(lease.read_due(10, true), Some(true));
    let claim = final_read(&mut lease, &challenge, 10, 11, Verdict::Clear);
    assert!(matches!(claim, Reaction::Write(sealed) if sealed.record.owner == 2));
}
