//! The quorum machine driven by hand: confirmation windows, watchers, challenges.

use super::*;

fn identity(node_id: u8) -> Identity {
    Identity {
        node_id,
        incarnation: 1,
        cluster_id: 7,
        hold_ticks: 78,
        expiry_observed_ticks: 101,
        read_age_ticks_max: 10,
        renew_ticks: 10,
        drift_ppm: 1000,
    }
}

/// Node `node_id` won the record unopposed with `epoch`: its claim, issued at tick 110,
/// landed at tick 112.
fn owner(node_id: u8, epoch: u64) -> (Quorum, Sealed<Lease>) {
    let mut quorum = Quorum::new(identity(node_id));
    quorum.on_interval(Want::Own, 0, epoch);
    let challenge = written(quorum.on_read(Ok(None), 0, 1, epoch, epoch).0);
    quorum.on_write(true, 1, 2);
    quorum.on_interval(Want::Own, 110, epoch);
    let claim = written(
        quorum
            .on_read(Ok(Some(challenge)), 110, 111, epoch, epoch)
            .0,
    );
    assert!(quorum.on_write(true, 110, 112));
    (quorum, claim)
}

fn written(io: Option<QuorumIo>) -> Sealed<Lease> {
    match io {
        Some(QuorumIo::Write(sealed)) => sealed,
        other => panic!("expected a write, got {other:?}"),
    }
}

#[test]
fn the_confirmation_window_outlasts_any_write_based_on_an_older_read() {
    let (read_age, drift_ppm) = (11, 1000);
    let window = confirm_ticks(read_age, drift_ppm);
    assert_eq!(window, 24);
    let drift = drift_ppm as f64 / 1_000_000.0;
    // Latest landing of a write whose read executed at our write's landing, in real ms.
    let latest_landing_ms =
        ((read_age + 1) * TICK_MS) as f64 / (1.0 - drift) + DISK_IO_LATENCY_MAX_MS as f64;
    // Earliest issue of our closing read, in real ms after our write landed.
    let closing_read_ms = ((window - 1) * TICK_MS) as f64 / (1.0 + drift);
    assert!(closing_read_ms >= latest_landing_ms);
    let previous = ((window - 2) * TICK_MS) as f64 / (1.0 + drift);
    assert!(previous < latest_landing_ms, "one tick shorter would do");
}

#[test]
fn a_stale_challenger_write_landing_after_ours_prevents_confirmation() {
    let (mut quorum, claim) = owner(3, 3);
    // The node formed epoch 5: its next renewal carries it, at once (the claim's window
    // would confirm only epoch 3).
    assert_eq!(
        quorum.on_interval(Want::Own, 120, 5).0,
        Some(QuorumIo::Read)
    );
    // A challenger reads the record before our renewal lands: it sees epoch 3.
    let mut challenger = Quorum::new(identity(1));
    assert_eq!(
        challenger.on_interval(Want::Own, 120, 2).0,
        Some(QuorumIo::Read)
    );
    let ours = written(quorum.on_read(Ok(Some(claim.clone())), 120, 121, 5, 5).0);
    assert_eq!(ours.record.owner_epoch, 5);
    assert!(!quorum.on_write(true, 121, 125));
    assert_eq!(quorum.confirmed_owner_epoch, 0);
    // Its challenge, a copy of what it read, lands after ours: epoch 3 again.
    let stale = written(challenger.on_read(Ok(Some(claim)), 120, 124, 2, 2).0);
    assert_eq!(
        (stale.sequence, stale.record.owner_epoch),
        (ours.sequence, 3)
    );
    // The window: we touch the record neither on the renew intervals nor otherwise.
    let window = confirm_ticks(10, 1000);
    for now in 126..125 + window {
        assert_eq!(quorum.on_interval(Want::Own, now, 5).0, None, "tick {now}");
        assert_eq!(quorum.epoch_read(now, 5), None, "tick {now}");
    }
    assert!(quorum.owned(125 + window));
    assert_eq!(quorum.epoch_read(125 + window, 5), Some(QuorumIo::Read));
    // The closing read shows the challenger's copy: no confirmation; defend with our epoch.
    let defense = written(
        quorum
            .on_read(Ok(Some(stale.clone())), 125 + window, 150, 5, 5)
            .0,
    );
    assert_eq!(quorum.confirmed_owner_epoch, 0);
    assert_eq!(defense.record.owner_epoch, 5);
    assert_eq!(defense.record.challenger, 0);
    assert!(defense.sequence > stale.sequence);
    // A new window from the defense; this time the closing read shows it unchanged.
    assert!(!quorum.on_write(true, 150, 152));
    assert_eq!(quorum.epoch_read(151 + window, 5), None);
    assert_eq!(quorum.epoch_read(152 + window, 5), Some(QuorumIo::Read));
    let renewal = written(quorum.on_read(Ok(Some(defense)), 152 + window, 177, 5, 5).0);
    assert_eq!(quorum.confirmed_owner_epoch, 5);
    assert!(!quorum.on_write(true, 177, 179));
    // Confirmed: renewals every interval again, and nothing left to confirm.
    assert_eq!(
        quorum.on_interval(Want::Own, 187, 5).0,
        Some(QuorumIo::Read)
    );
    assert!(quorum
        .on_read(Ok(Some(renewal)), 187, 188, 5, 5)
        .0
        .is_some());
    assert_eq!(quorum.epoch_read(300, 5), None);
}

#[test]
fn a_confirmation_window_never_outlasts_two_renewals_in_hand() {
    let mut quorum = Quorum::new(identity(2));
    quorum.on_interval(Want::Own, 0, 4);
    let challenge = written(quorum.on_read(Ok(None), 0, 1, 4, 4).0);
    quorum.on_write(true, 1, 2);
    quorum.on_interval(Want::Own, 110, 4);
    let claim = written(quorum.on_read(Ok(Some(challenge)), 110, 111, 4, 4).0);
    // A slow claim: it succeeds 40 ticks after its issue, so ownership runs to 188 but
    // the window to 150 + 23, past 188 less two renewals (30 ticks).
    assert!(quorum.on_write(true, 110, 150));
    assert_eq!(quorum.on_interval(Want::Own, 157, 4).0, None);
    assert_eq!(
        quorum.on_interval(Want::Own, 158, 4).0,
        Some(QuorumIo::Read)
    );
    // Read before the window ended: it confirms nothing, and we renew.
    let renewal = written(quorum.on_read(Ok(Some(claim)), 158, 159, 4, 4).0);
    assert_eq!(quorum.confirmed_owner_epoch, 0);
    assert!(!quorum.on_write(true, 159, 160));
    assert_eq!(quorum.valid_until_tick(), 159 + 78);
    assert_eq!(renewal.record.owner_epoch, 4);
}

/// Node 2 watches node 1's record `renewal` from tick 0 (its first read completes at 1).
fn watcher(renewal: &Sealed<Lease>) -> Quorum {
    let mut quorum = Quorum::new(identity(2));
    assert_eq!(
        quorum.on_interval(Want::Watch, 0, 3).0,
        Some(QuorumIo::Read)
    );
    assert_eq!(
        quorum.on_read(Ok(Some(renewal.clone())), 0, 1, 3, 4).0,
        None
    );
    quorum
}

#[test]
fn a_watcher_claims_a_lease_expiry_after_the_owners_last_renewal_and_owns_once_confirmed() {
    let (_, renewal) = owner(1, 3);
    let mut quorum = watcher(&renewal);
    // Watching reads change nothing while the record stands.
    assert_eq!(
        quorum.on_interval(Want::Watch, 10, 3).0,
        Some(QuorumIo::Read)
    );
    assert_eq!(
        quorum.on_read(Ok(Some(renewal.clone())), 10, 11, 3, 4).0,
        None
    );
    // The quorum is needed (the owner went silent): no challenge; the closing read is due
    // a lease expiry after the read that first showed the renewal completed.
    assert!(quorum.challenge_io_due(Want::Own, 30));
    assert_eq!(quorum.on_interval(Want::Own, 30, 3).0, Some(QuorumIo::Read));
    assert_eq!(
        quorum.on_read(Ok(Some(renewal.clone())), 30, 31, 3, 4).0,
        None
    );
    assert!(!quorum.challenge_io_due(Want::Own, 101));
    assert!(quorum.challenge_io_due(Want::Own, 102));
    assert_eq!(
        quorum.on_interval(Want::Own, 102, 3).0,
        Some(QuorumIo::Read)
    );
    let claim = written(quorum.on_read(Ok(Some(renewal.clone())), 102, 103, 3, 4).0);
    assert_eq!(claim.record.owner, 2);
    assert_eq!(claim.record.challenger, 0);
    assert_eq!(claim.record.owner_epoch, 4, "the epoch it would stabilize");
    assert_eq!(claim.sequence, renewal.sequence + 1);
    // Landed, but not ours until the window shows it unchanged.
    assert!(!quorum.on_write(true, 103, 105));
    assert!(!quorum.owned(105));
    let window = confirm_ticks(10, 1000);
    assert!(!quorum.challenge_io_due(Want::Own, 104 + window));
    assert!(quorum.challenge_io_due(Want::Own, 105 + window));
    assert_eq!(
        quorum.on_interval(Want::Own, 105 + window, 3).0,
        Some(QuorumIo::Read)
    );
    let (io, lost) = quorum.on_read(Ok(Some(claim)), 105 + window, 106 + window, 3, 4);
    assert_eq!((io, lost), (None, false));
    assert!(quorum.owned(106 + window));
    assert_eq!(
        quorum.valid_until_tick(),
        103 + 78,
        "held from the claim's issue"
    );
    assert_eq!(quorum.confirmed_owner_epoch, 4);
    assert_eq!(
        quorum.owner_epoch_seen, 3,
        "our own claim is no newer membership"
    );
}

#[test]
fn a_watcher_loses_when_the_record_moves_after_it_needed_it() {
    let (_, renewal) = owner(1, 3);
    let mut quorum = watcher(&renewal);
    quorum.on_interval(Want::Own, 30, 3);
    let mut defended = renewal.clone();
    defended.sequence += 1;
    assert_eq!(quorum.on_read(Ok(Some(defended)), 30, 31, 3, 4).0, None);
    assert_eq!(
        quorum.outcome,
        Some(Outcome {
            won: false,
            tick: 31
        })
    );
}

#[test]
fn a_watcher_that_saw_a_challenge_challenges_too_and_a_claim_overwritten_is_not_ours() {
    let (_, renewal) = owner(1, 3);
    let mut pending = renewal.clone();
    pending.sequence += 1;
    pending.record.challenger = 3;
    pending.record.challenger_incarnation = 1;
    let mut quorum = watcher(&pending);
    // Its writer may be about to claim: no claim from the watch, a challenge instead.
    assert_eq!(
        quorum.on_interval(Want::Own, 200, 3).0,
        Some(QuorumIo::Read)
    );
    let challenge = written(quorum.on_read(Ok(Some(pending)), 200, 201, 3, 4).0);
    assert_eq!(challenge.record.challenger, 2);
    assert_eq!(challenge.record.owner, 1);

    // Another watcher's claim, overwritten inside its window, is lost.
    let mut other = watcher(&renewal);
    other.on_interval(Want::Own, 30, 3);
    other.on_read(Ok(Some(renewal.clone())), 30, 31, 3, 4);
    other.on_interval(Want::Own, 102, 3);
    let claim = written(other.on_read(Ok(Some(renewal)), 102, 103, 3, 4).0);
    other.on_write(true, 103, 105);
    let mut overwritten = claim;
    overwritten.record.owner = 3;
    other.on_interval(Want::Own, 130, 3);
    other.on_read(Ok(Some(overwritten)), 130, 131, 3, 4);
    assert!(!other.owned(131));
    assert_eq!(
        other.outcome,
        Some(Outcome {
            won: false,
            tick: 131
        })
    );
}

#[test]
fn an_owner_whose_read_completes_after_its_ownership_lapsed_does_not_renew() {
    let (mut quorum, claim) = owner(2, 3);
    // Owned until 110 + 78 = 188: a read issued at 187 completes at 190.
    assert_eq!(
        quorum.on_interval(Want::Own, 187, 3).0,
        Some(QuorumIo::Read)
    );
    let (io, lost) = quorum.on_read(Ok(Some(claim)), 187, 190, 3, 3);
    assert_eq!((io, lost), (None, true));
    assert!(!quorum.owned(190));
}

#[test]
fn an_unopposed_challenger_wins_after_the_expiry_and_a_defended_one_loses() {
    let mut quorum = Quorum::new(identity(2));
    assert_eq!(quorum.on_interval(Want::Own, 0, 5).0, Some(QuorumIo::Read));
    let challenge = written(quorum.on_read(Ok(None), 0, 1, 5, 5).0);
    assert_eq!(challenge.record.challenger, 2);
    assert!(!quorum.on_write(true, 1, 2));
    // Too early: still challenging.
    assert_eq!(quorum.on_interval(Want::Own, 50, 5).0, Some(QuorumIo::Read));
    assert_eq!(
        quorum.on_read(Ok(Some(challenge.clone())), 50, 51, 5, 5).0,
        None
    );
    assert_eq!(
        quorum.on_interval(Want::Own, 110, 5).0,
        Some(QuorumIo::Read)
    );
    let claim = written(
        quorum
            .on_read(Ok(Some(challenge.clone())), 110, 111, 5, 5)
            .0,
    );
    assert_eq!(claim.record.owner, 2);
    assert!(quorum.on_write(true, 110, 112));
    assert!(quorum.owned(112));
    assert!(!quorum.owned(110 + 78));

    // A second challenger whose record is rewritten by the defender loses.
    let mut other = Quorum::new(identity(3));
    other.on_interval(Want::Own, 0, 5);
    let challenge = written(other.on_read(Ok(Some(claim.clone())), 0, 1, 5, 5).0);
    other.on_write(true, 1, 2);
    other.on_interval(Want::Own, 20, 5);
    let mut defended = challenge;
    defended.sequence += 1;
    defended.record.challenger = 0;
    other.on_read(Ok(Some(defended)), 20, 21, 5, 5);
    assert_eq!(
        other.outcome,
        Some(Outcome {
            won: false,
            tick: 21
        })
    );
    assert!(!other.owned(21));
}
