//! Quorum arbitration on the shared-disk quorum record: challenge and defense.
//!
//! The owner (defender) reads and rewrites the record every renew interval, clearing any
//! challenger; its ownership is valid `lease_hold_ticks` after issuing a write that succeeded.
//! A challenger writes itself into the `challenger` field, then watches the record: any change
//! (a defense, or another challenger) loses the challenge; an unchanged record for
//! `lease_expiry_observed_ticks` after its own write completed means no live owner, and it
//! claims ownership. Among concurrent challengers only the last writer can see its own write
//! unchanged, so at most one claims. The timing argument is in `disklayout/ARBITRATION.md`.
//!
//! The record also carries the owner's epoch (`owner_epoch`), the second durable copy of a
//! membership of one. Every writer copies the epoch of the record it read, but a writer whose
//! read predates our write copies an older one: so an epoch counts as durable in the record
//! (`confirmed_owner_epoch`) only once a read issued `confirm_ticks` after our write landed,
//! with no write of ours in between, shows that write unchanged (ARBITRATION.md §4).
//!
//! **The watcher's claim.** The other member of a membership of two watches the record while
//! it does not need it (`Want::Watch`): a lone survivor must win it from a dead owner, and a
//! challenge started only once the owner is found silent costs the silence window plus a lease
//! expiry. A watcher that needs the quorum and saw an owner's record (naming no challenger)
//! unchanged from the completion of the read that first showed it to a read issued a lease
//! expiry later knows that owner's ownership is over (the observer rule of the leases); it
//! writes its claim at once, and owns only once a read issued `confirm_ticks` after the claim
//! landed shows it unchanged, which confirms the epoch the claim carries too
//! (ARBITRATION.md §2 and §3).
//!
//! This is a pure state machine: it returns the disk I/O to issue; `Node` performs it.

use super::disk_records::{Lease, LeaseRead, Sealed, Unreadable, QUORUM_LEASE_NAME};
use super::timeout::{DISK_IO_LATENCY_MAX_MS, TICK_MS};

/// I/O the quorum machine wants issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QuorumIo {
    Read,
    Write(Sealed<Lease>),
}

/// What the node wants of the quorum record now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// Nothing: any ownership, challenge or watch is given up.
    Nothing,
    /// Not the quorum, but to know how long the record has stood unchanged: the other member
    /// of a membership of two, which must win the quorum at once if the owner dies.
    Watch,
    /// To own it: keep it, defend it, or win it.
    Own,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// Reading the record every interval: `seen` first showed in a read that completed at
    /// `since_tick`. `need_since_tick`: when the quorum became wanted (`Want::Own`); a change
    /// read from then on is a defense, and the watch is lost like a challenge.
    Watching {
        seen: LeaseRead,
        since_tick: u64,
        need_since_tick: Option<u64>,
    },
    /// A watcher's claim landed at `landed_tick` (issued at `issue_tick`): ours once a read
    /// issued `confirm_ticks` later shows it unchanged.
    Confirming {
        written: Sealed<Lease>,
        issue_tick: u64,
        landed_tick: u64,
    },
    /// Challenge write issued (`since` = None) or completed at tick `since`.
    Challenging {
        written: Sealed<Lease>,
        since_tick: Option<u64>,
    },
    /// Ownership write issued: after a challenge, or straight from a watch (`watched`).
    Claiming {
        written: Sealed<Lease>,
        watched: bool,
    },
    Owner {
        valid_until_tick: u64,
        written: Sealed<Lease>,
        /// When `written` was seen to succeed; `None` while a write of ours is in flight or
        /// after one failed. The confirmation window of `written` counts from here.
        landed_tick: Option<u64>,
    },
}

/// A completed read of the record, with what `on_read` acts on besides the record.
#[derive(Clone, Debug)]
struct ReadDone {
    /// `Ok(None)` for an empty block.
    record: LeaseRead,
    issue_tick: u64,
    now_ticks: u64,
    /// The epoch this node acknowledged (an owner's renewal carries it).
    epoch: u64,
    /// The epoch this node would stabilize next (a watcher's claim carries it).
    next_epoch: u64,
}

/// How the last challenge ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    won: bool,
    tick: u64,
}

/// Identity and parameters the machine needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity {
    pub node_id: u8,
    pub incarnation: u64,
    pub cluster_id: u64,
    pub hold_ticks: u64,
    pub expiry_observed_ticks: u64,
    /// A read older than this when we act on it is stale (we were stalled): read again.
    pub read_age_ticks_max: u64,
    pub renew_ticks: u64,
    /// Bound on the rate error of any node's clock (`clock_drift_ppm_max`).
    pub drift_ppm: u64,
}

impl Identity {
    /// A record written by this run of this node as owner.
    fn is_own_record(&self, sealed: &Sealed<Lease>) -> bool {
        sealed.cluster_id == self.cluster_id
            && sealed.record.owner == self.node_id
            && sealed.record.owner_incarnation == self.incarnation
    }

    /// A record a watcher may claim over once it stood unchanged for a lease expiry: another
    /// run's ownership with no challenge pending. Any other record (empty, unreadable, a
    /// challenge, ours) goes through a challenge, whose writer may be about to claim.
    fn watch_may_claim_over(&self, seen: &LeaseRead) -> bool {
        match seen {
            Ok(Some(sealed)) => {
                sealed.cluster_id == self.cluster_id
                    && sealed.record.owner != 0
                    && sealed.record.challenger == 0
                    && !self.is_own_record(sealed)
            }
            _ => false,
        }
    }

    /// The owner stays quiet (neither reads nor writes the record) while waiting to confirm
    /// its write only until this long before its ownership ends: a read, then a renewal
    /// issued on its completion, with one renew interval to spare for a retry.
    fn quiet_margin_ticks(&self) -> u64 {
        2 * self.renew_ticks + self.read_age_ticks_max
    }
}

/// Ticks from seeing our write succeed to issuing the read that can confirm it. Any write
/// based on a read that executed before ours landed is issued within `read_age_ticks_max + 1`
/// of its writer's ticks after that read (older reads are not acted on; its tick count lags
/// its clock by up to one tick) and lands within `DISK_IO_LATENCY_MAX_MS` of its issue. Our
/// count runs up to `drift_ppm` fast and starts up to one tick late.
pub(crate) fn confirm_ticks(read_age_ticks_max: u64, drift_ppm: u64) -> u64 {
    let million = 1_000_000u64;
    let writer_real_ms =
        ((read_age_ticks_max + 1) * TICK_MS * million).div_ceil(million - drift_ppm);
    let landed_real_ms = writer_real_ms + DISK_IO_LATENCY_MAX_MS;
    let ours_ms = (landed_real_ms * (million + drift_ppm)).div_ceil(million);
    ours_ms.div_ceil(TICK_MS) + 1
}

#[derive(Clone, Debug)]
pub(crate) struct Quorum {
    identity: Identity,
    state: State,
    io_in_flight: bool,
    outcome: Option<Outcome>,
    /// Highest owner epoch seen in the record (a forming node starts above it).
    owner_epoch_seen: u64,
    /// Ownership was given up while a write was in flight: that write must not revive it.
    released_during_io: bool,
    /// Highest `owner_epoch` confirmed in the record: this node wrote it as owner, and no
    /// write that could lower it can still land (a second durable copy of its epoch beside
    /// its slot, so a torn slot alone cannot make a later former reuse it).
    confirmed_owner_epoch: u64,
    /// See `confirm_ticks`.
    confirm_ticks: u64,
    /// What the node last said it wants (`on_interval`, `challenge_io_due`).
    want: Want,
    /// Ownerships this node won: a change tells a forming node that its ownership was not
    /// unbroken since it read the disk (others may have used the record and epochs between).
    ownerships_won: u64,
}

impl Quorum {
    pub fn new(identity: Identity) -> Quorum {
        assert!(identity.hold_ticks < identity.expiry_observed_ticks);
        let confirm_ticks = confirm_ticks(identity.read_age_ticks_max, identity.drift_ppm);
        // A confirmation window (after the write's issue: its I/O, then the window) must end
        // while two renewals are still in hand, or no epoch of a membership of one is ever
        // confirmed: no node could form.
        let io_ticks = DISK_IO_LATENCY_MAX_MS.div_ceil(TICK_MS) + 1;
        assert!(
            io_ticks + confirm_ticks + identity.quiet_margin_ticks() < identity.hold_ticks,
            "lease expiry too short for the epoch confirmation window"
        );
        Quorum {
            identity,
            state: State::Idle,
            io_in_flight: false,
            outcome: None,
            owner_epoch_seen: 0,
            released_during_io: false,
            confirmed_owner_epoch: 0,
            confirm_ticks,
            want: Want::Nothing,
            ownerships_won: 0,
        }
    }

    /// How many ownerships this node won (see the field).
    pub fn ownerships_won(&self) -> u64 {
        self.ownerships_won
    }

    /// Highest owner epoch seen in the record: an epoch this node decides must exceed it.
    pub fn owner_epoch_seen(&self) -> u64 {
        self.owner_epoch_seen
    }

    /// True while this node owns the quorum and the record confirms `epoch` under that
    /// ownership (see `confirmed_owner_epoch`).
    pub fn confirms_owned_epoch(&self, epoch: u64, now_ticks: u64) -> bool {
        self.owned(now_ticks) && self.confirmed_owner_epoch >= epoch
    }

    /// True if the last challenge was lost.
    pub fn lost_last_challenge(&self) -> bool {
        self.outcome.is_some_and(|outcome| !outcome.won)
    }

    /// True if the last challenge was lost and ended at or after `since_tick`: an earlier loss
    /// says nothing of the side that is challenging now.
    pub fn lost_challenge_since(&self, since_tick: u64) -> bool {
        self.outcome
            .is_some_and(|outcome| !outcome.won && outcome.tick >= since_tick)
    }

    /// A forming attempt is judged only by the challenges it runs: how an earlier one ended
    /// must not abort it.
    pub fn begin_forming(&mut self) {
        self.outcome = None;
    }

    /// True while a read or write of the quorum record is in flight.
    pub fn io_in_flight(&self) -> bool {
        self.io_in_flight
    }

    /// The tick until which this node owns the quorum (0 if it does not).
    pub fn valid_until_tick(&self) -> u64 {
        match self.state {
            State::Owner {
                valid_until_tick, ..
            } => valid_until_tick,
            _ => 0,
        }
    }

    /// True while this node owns the quorum by its own clock.
    pub fn owned(&self, now_ticks: u64) -> bool {
        matches!(self.state, State::Owner { valid_until_tick, .. } if now_ticks < valid_until_tick)
    }

    /// Once per renew interval. Returns true if ownership just lapsed or was given up.
    /// `epoch` is the node's epoch, which the owner's next write carries.
    pub fn on_interval(
        &mut self,
        want: Want,
        now_ticks: u64,
        epoch: u64,
    ) -> (Option<QuorumIo>, bool) {
        self.want = want;
        if let State::Owner {
            valid_until_tick, ..
        } = self.state
        {
            if want != Want::Own || now_ticks >= valid_until_tick {
                self.release();
                return (None, true);
            }
        }
        match &mut self.state {
            State::Challenging { .. } if want != Want::Own && !self.io_in_flight => {
                self.state = State::Idle;
            }
            State::Confirming { .. } if want != Want::Own => self.release(),
            State::Watching { .. } if want == Want::Nothing => self.release(),
            // No longer needed (the regroup ended): a later change is no defense of anything.
            State::Watching {
                need_since_tick, ..
            } if want == Want::Watch => *need_since_tick = None,
            State::Watching {
                seen,
                need_since_tick,
                ..
            } if want == Want::Own => {
                if !self.identity.watch_may_claim_over(seen) {
                    // Nothing a watch can claim over: challenge as anyone would.
                    self.release();
                } else if need_since_tick.is_none() {
                    *need_since_tick = Some(now_ticks);
                }
            }
            _ => {}
        }
        if self.io_in_flight || self.quiet(now_ticks, epoch) {
            return (None, false);
        }
        let wants_read = match self.state {
            State::Idle => want != Want::Nothing,
            State::Watching { .. } => true,
            State::Challenging { since_tick, .. } => since_tick.is_some(),
            State::Claiming { .. } => false,
            // Silent inside the window: its closing read is `challenge_io_due`'s.
            State::Confirming { landed_tick, .. } => now_ticks >= landed_tick + self.confirm_ticks,
            State::Owner { .. } => true,
        };
        if wants_read {
            self.io_in_flight = true;
            (Some(QuorumIo::Read), false)
        } else {
            (None, false)
        }
    }

    /// A step of a challenge that should not wait for the next renew interval: its first read
    /// (a regroup or a forming node waits on it), the closing read once the record had to
    /// stay unchanged long enough, the first read of a watch that became a need, and the read
    /// that confirms a watcher's claim. Waiting for the interval cost up to two intervals per
    /// challenge, on a path that already lasts a lease expiry.
    pub fn challenge_io_due(&self, want: Want, now_ticks: u64) -> bool {
        if want != Want::Own || self.io_in_flight {
            return false;
        }
        let expiry = self.identity.expiry_observed_ticks;
        match self.state {
            State::Idle => true,
            State::Challenging {
                since_tick: Some(since_tick),
                ..
            } => now_ticks >= since_tick + expiry,
            State::Watching {
                since_tick,
                need_since_tick,
                ..
            } => need_since_tick.is_none() || now_ticks >= since_tick + expiry,
            State::Confirming { landed_tick, .. } => now_ticks >= landed_tick + self.confirm_ticks,
            State::Challenging { .. } | State::Claiming { .. } | State::Owner { .. } => false,
        }
    }

    /// The owner's last write carries an epoch not yet confirmed: when its confirmation
    /// window ends, the tick from which a read of the record can confirm it.
    fn confirmation_tick(&self, epoch: u64) -> Option<u64> {
        match &self.state {
            State::Owner {
                written,
                landed_tick: Some(landed_tick),
                ..
            } if written.record.owner_epoch > self.confirmed_owner_epoch
                // A window for an epoch below the node's would confirm nothing it needs: the
                // next write carries the newer one.
                && written.record.owner_epoch >= epoch =>
            {
                Some(landed_tick + self.confirm_ticks)
            }
            _ => None,
        }
    }

    /// Inside a confirmation window nothing of ours may touch the record: a write would end
    /// the window, and a read tells nothing the window's closing read will not.
    fn quiet(&self, now_ticks: u64, epoch: u64) -> bool {
        let Some(due_tick) = self.confirmation_tick(epoch) else {
            return false;
        };
        let margin = self.identity.quiet_margin_ticks();
        now_ticks < due_tick && now_ticks + margin < self.valid_until_tick()
    }

    /// For a membership of one, which waits for `epoch` to be confirmed before it stabilizes:
    /// the read that starts the renewal carrying `epoch`, or that closes the window, as soon
    /// as it is due rather than at the next renew interval.
    pub fn epoch_read(&mut self, now_ticks: u64, epoch: u64) -> Option<QuorumIo> {
        if self.io_in_flight || !self.owned(now_ticks) || self.confirmed_owner_epoch >= epoch {
            return None;
        }
        let State::Owner { written, .. } = &self.state else {
            return None;
        };
        let due = if written.record.owner_epoch < epoch {
            // Once: the renewal this read starts carries `epoch`.
            true
        } else {
            // A failed write is retried at the renew interval, not at once.
            self.confirmation_tick(epoch)
                .is_some_and(|due_tick| now_ticks >= due_tick)
        };
        if !due {
            return None;
        }
        self.io_in_flight = true;
        Some(QuorumIo::Read)
    }

    /// A read finished: `record` is `None` for empty, `Err` for unreadable (torn, corrupt).
    /// Returns the write to issue, and whether ownership was just lost. `next_epoch` is the
    /// epoch this node would stabilize next: a watcher's claim carries it, so the read that
    /// confirms the claim confirms that epoch in the record as well.
    pub fn on_read(
        &mut self,
        record: LeaseRead,
        issue_tick: u64,
        now_ticks: u64,
        epoch: u64,
        next_epoch: u64,
    ) -> (Option<QuorumIo>, bool) {
        assert!(self.io_in_flight);
        self.io_in_flight = false;
        if self.released_during_io {
            self.released_during_io = false;
            return (None, false);
        }
        let me = self.identity;
        if now_ticks > issue_tick + me.read_age_ticks_max {
            // What the record was then says nothing about now: a claim or a defense based on
            // it could overwrite a newer owner. Read again at the next interval.
            return (None, false);
        }
        if let Ok(Some(sealed)) = &record {
            // Our own record carries our epoch, or the one our claim reserved: neither is a
            // newer membership's (the stale-partition rule reads this), and counting it would
            // make a watcher's claim look like one.
            if !me.is_own_record(sealed) {
                self.owner_epoch_seen = self.owner_epoch_seen.max(sealed.record.owner_epoch);
            }
        }
        let read = ReadDone {
            record,
            issue_tick,
            now_ticks,
            epoch,
            next_epoch,
        };
        match self.state.clone() {
            State::Idle if self.want == Want::Watch => self.on_idle_read_watching(read),
            State::Idle => self.on_idle_read(read),
            State::Watching {
                seen,
                since_tick,
                need_since_tick,
            } => self.on_watch_read(read, seen, since_tick, need_since_tick),
            State::Confirming {
                written,
                issue_tick: claim_issue_tick,
                landed_tick,
            } => self.on_confirming_read(read, written, claim_issue_tick, landed_tick),
            State::Challenging {
                written,
                since_tick,
            } => self.on_challenging_read(read, written, since_tick),
            State::Claiming { .. } => unreachable!("no read is issued while claiming"),
            State::Owner {
                valid_until_tick,
                written,
                landed_tick,
            } => self.on_owner_read(read, valid_until_tick, written, landed_tick),
        }
    }

    /// A read while idle and watching wanted: the watch starts from what it showed.
    fn on_idle_read_watching(&mut self, read: ReadDone) -> (Option<QuorumIo>, bool) {
        self.state = State::Watching {
            seen: read.record,
            since_tick: read.now_ticks,
            need_since_tick: None,
        };
        (None, false)
    }

    /// A read while idle and owning wanted: challenge over what it showed.
    fn on_idle_read(&mut self, read: ReadDone) -> (Option<QuorumIo>, bool) {
        let write = self.challenge_record(&read.record);
        self.state = State::Challenging {
            written: write.clone(),
            since_tick: None,
        };
        self.io_in_flight = true;
        (Some(QuorumIo::Write(write)), false)
    }

    /// A watcher's claim is ours once a read issued a confirmation window after it landed
    /// shows it unchanged.
    fn on_confirming_read(
        &mut self,
        read: ReadDone,
        written: Sealed<Lease>,
        claim_issue_tick: u64,
        landed_tick: u64,
    ) -> (Option<QuorumIo>, bool) {
        let me = self.identity;
        let ReadDone {
            record,
            issue_tick,
            now_ticks,
            ..
        } = read;
        if record != Ok(Some(written.clone())) {
            // Another writer landed inside the window: the claim is not ours.
            self.state = State::Idle;
            self.outcome = Some(Outcome {
                won: false,
                tick: now_ticks,
            });
            return (None, false);
        }
        let valid_until_tick = claim_issue_tick + me.hold_ticks;
        if now_ticks >= valid_until_tick {
            // Confirmed too late to hold anything (the disk was slower than assumed):
            // start over, as after a failed claim.
            self.state = State::Idle;
            return (None, false);
        }
        if issue_tick < landed_tick + self.confirm_ticks {
            return (None, false);
        }
        // Unchanged since it landed, with no write of ours since: no other claim can
        // land any more (ARBITRATION.md §3), and the epoch it carries is confirmed.
        self.confirmed_owner_epoch = self.confirmed_owner_epoch.max(written.record.owner_epoch);
        self.state = State::Owner {
            valid_until_tick,
            written,
            landed_tick: Some(landed_tick),
        };
        self.outcome = Some(Outcome {
            won: true,
            tick: now_ticks,
        });
        self.ownerships_won += 1;
        (None, false)
    }

    /// A challenge read: lost if the record moved, a claim once it stood a lease expiry.
    fn on_challenging_read(
        &mut self,
        read: ReadDone,
        written: Sealed<Lease>,
        since_tick: Option<u64>,
    ) -> (Option<QuorumIo>, bool) {
        let me = self.identity;
        let since_tick = since_tick.expect("a challenge read only after its write");
        if read.record != Ok(Some(written.clone())) {
            self.state = State::Idle;
            self.outcome = Some(Outcome {
                won: false,
                tick: read.now_ticks,
            });
            return (None, false);
        }
        if read.issue_tick < since_tick + me.expiry_observed_ticks {
            return (None, false);
        }
        // Never lower the epoch the record carries: it is a durable copy of the last
        // owner's epoch, and a later former starts above it.
        // + 1: a decoded or encoded sequence is at most COUNTER_MAX (disklayout, issue 16).
        let claim = self.claim_record(written.sequence + 1, read.epoch);
        self.state = State::Claiming {
            written: claim.clone(),
            watched: false,
        };
        self.io_in_flight = true;
        (Some(QuorumIo::Write(claim)), false)
    }

    /// The owner's read: renew, or lose the ownership.
    fn on_owner_read(
        &mut self,
        read: ReadDone,
        valid_until_tick: u64,
        written: Sealed<Lease>,
        landed_tick: Option<u64>,
    ) -> (Option<QuorumIo>, bool) {
        let me = self.identity;
        let ReadDone {
            record,
            issue_tick,
            now_ticks,
            epoch,
            ..
        } = read;
        if now_ticks >= valid_until_tick {
            // The read was issued in time but completed after the end: a write issued
            // now is outside the chain (ARBITRATION.md rule 2), and a challenger may
            // have claimed since our read; landing after its claim, our "renewal"
            // would have made two owners. Ownership is over.
            self.state = State::Idle;
            self.outcome = Some(Outcome {
                won: false,
                tick: now_ticks,
            });
            return (None, true);
        }
        let still_mine = match &record {
            Ok(Some(sealed)) => {
                sealed.cluster_id == me.cluster_id
                    && sealed.record.owner == me.node_id
                    && sealed.record.owner_incarnation == me.incarnation
            }
            // Unreadable: a challenger died mid-write; rewriting our record defends.
            Err(Unreadable) => true,
            Ok(None) => false,
        };
        if !still_mine {
            self.state = State::Idle;
            self.outcome = Some(Outcome {
                won: false,
                tick: now_ticks,
            });
            return (None, true);
        }
        // Unchanged since it landed, and no write of ours since: nothing landed over
        // it in the window, and whatever lands from now on was based on a read that
        // saw it, or a later record, so it carries its epoch or a higher one.
        let window_over =
            landed_tick.is_some_and(|landed_tick| issue_tick >= landed_tick + self.confirm_ticks);
        if window_over && record == Ok(Some(written.clone())) {
            self.confirmed_owner_epoch = self.confirmed_owner_epoch.max(written.record.owner_epoch);
        }
        let (sequence, read_epoch) = match &record {
            Ok(Some(sealed)) => (
                sealed.sequence.max(written.sequence),
                sealed.record.owner_epoch,
            ),
            _ => (written.sequence, 0),
        };
        let mut renewal = written;
        // A decoded or encoded sequence is at most COUNTER_MAX: + 1 cannot overflow.
        renewal.sequence = sequence + 1;
        // Never lower the epoch the record carries (the confirmation argument counts
        // on every writer keeping the highest it read).
        renewal.record.owner_epoch = epoch.max(renewal.record.owner_epoch).max(read_epoch);
        self.state = State::Owner {
            valid_until_tick,
            written: renewal.clone(),
            landed_tick: None,
        };
        self.io_in_flight = true;
        (Some(QuorumIo::Write(renewal)), false)
    }

    /// A watch read finished (fresh: `on_read` checked its age).
    fn on_watch_read(
        &mut self,
        read: ReadDone,
        seen: LeaseRead,
        since_tick: u64,
        need_since_tick: Option<u64>,
    ) -> (Option<QuorumIo>, bool) {
        let me = self.identity;
        let ReadDone {
            record,
            issue_tick,
            now_ticks,
            next_epoch,
            ..
        } = read;
        if record != seen {
            if need_since_tick.is_some_and(|need_tick| issue_tick >= need_tick) {
                // The record moved after we needed it: its owner (or a challenger) is alive,
                // as a defended challenge would have shown.
                self.state = State::Idle;
                self.outcome = Some(Outcome {
                    won: false,
                    tick: now_ticks,
                });
            } else {
                self.state = State::Watching {
                    seen: record,
                    since_tick: now_ticks,
                    need_since_tick,
                };
            }
            return (None, false);
        }
        let expired = issue_tick >= since_tick + me.expiry_observed_ticks;
        let Ok(Some(sealed)) = &seen else {
            return (None, false);
        };
        if need_since_tick.is_none() || !expired || !me.watch_may_claim_over(&seen) {
            return (None, false);
        }
        // The owner's ownership is over (rule (b) of the observer, applied to the record):
        // claim straight away, above every epoch seen, carrying the epoch we would stabilize.
        // A decoded sequence is at most COUNTER_MAX: + 1 cannot overflow.
        let claim = self.claim_record(
            sealed.sequence + 1,
            next_epoch.max(sealed.record.owner_epoch),
        );
        self.state = State::Claiming {
            written: claim.clone(),
            watched: true,
        };
        self.io_in_flight = true;
        (Some(QuorumIo::Write(claim)), false)
    }

    /// The record that makes this node the owner: numbered `sequence`, carrying `epoch` or the
    /// highest owner epoch seen, whichever is higher.
    fn claim_record(&self, sequence: u64, epoch: u64) -> Sealed<Lease> {
        let me = self.identity;
        Sealed {
            cluster_id: me.cluster_id,
            sequence,
            record: Lease {
                owner: me.node_id,
                owner_incarnation: me.incarnation,
                owner_epoch: epoch.max(self.owner_epoch_seen),
                challenger: 0,
                challenger_incarnation: 0,
                name: QUORUM_LEASE_NAME.to_string(),
            },
        }
    }

    fn challenge_record(&self, record: &LeaseRead) -> Sealed<Lease> {
        let me = self.identity;
        let (sequence, mut lease) = match record {
            Ok(Some(sealed)) if sealed.cluster_id == me.cluster_id => {
                (sealed.sequence, sealed.record.clone())
            }
            _ => (
                0,
                Lease {
                    owner: 0,
                    owner_incarnation: 0,
                    owner_epoch: self.owner_epoch_seen,
                    challenger: 0,
                    challenger_incarnation: 0,
                    name: QUORUM_LEASE_NAME.to_string(),
                },
            ),
        };
        lease.challenger = me.node_id;
        lease.challenger_incarnation = me.incarnation;
        Sealed {
            cluster_id: me.cluster_id,
            // A decoded or encoded sequence is at most COUNTER_MAX: + 1 cannot overflow.
            sequence: sequence + 1,
            record: lease,
        }
    }

    /// A write finished. Returns true if ownership was just won.
    pub fn on_write(&mut self, ok: bool, issue_tick: u64, now_ticks: u64) -> bool {
        assert!(self.io_in_flight);
        self.io_in_flight = false;
        if self.released_during_io {
            self.released_during_io = false;
            self.state = State::Idle;
            return false;
        }
        match self.state.clone() {
            State::Challenging {
                written,
                since_tick: None,
            } => {
                if ok {
                    self.state = State::Challenging {
                        written,
                        since_tick: Some(now_ticks),
                    };
                } else {
                    self.state = State::Idle;
                }
                false
            }
            State::Claiming {
                written,
                watched: true,
            } => {
                // Not ours yet: a read `confirm_ticks` after this landing must show it unchanged.
                self.state = if ok {
                    State::Confirming {
                        written,
                        issue_tick,
                        landed_tick: now_ticks,
                    }
                } else {
                    State::Idle
                };
                false
            }
            State::Claiming {
                written,
                watched: false,
            } => {
                if ok {
                    let valid_until_tick = issue_tick + self.identity.hold_ticks;
                    self.state = State::Owner {
                        valid_until_tick,
                        written,
                        landed_tick: Some(now_ticks),
                    };
                    self.outcome = Some(Outcome {
                        won: true,
                        tick: now_ticks,
                    });
                    self.ownerships_won += 1;
                    true
                } else {
                    self.state = State::Idle;
                    false
                }
            }
            State::Owner {
                valid_until_tick,
                written,
                ..
            } => {
                // Only a write issued while we owned extends the ownership (one issued later
                // is not sent: `on_read`).
                let valid_until_tick = if ok && issue_tick < valid_until_tick {
                    valid_until_tick.max(issue_tick + self.identity.hold_ticks)
                } else {
                    valid_until_tick
                };
                self.state = State::Owner {
                    valid_until_tick,
                    written,
                    landed_tick: ok.then_some(now_ticks),
                };
                false
            }
            other => unreachable!("write completion in state {other:?}"),
        }
    }

    /// A read failed: nothing learned; the next interval retries.
    pub fn on_read_error(&mut self) {
        assert!(self.io_in_flight);
        self.io_in_flight = false;
        if self.released_during_io {
            self.released_during_io = false;
            self.state = State::Idle;
        }
    }

    /// Gives up ownership and any challenge at once (partition lost, fenced, form aborted).
    pub fn release(&mut self) {
        if self.io_in_flight {
            self.released_during_io = true;
        }
        self.state = State::Idle;
    }
}

#[cfg(test)]
mod tests;
