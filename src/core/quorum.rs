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

use super::disk_records::{Lease, Sealed, QUORUM_LEASE_NAME};
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
        seen: Result<Option<Sealed<Lease>>, ()>,
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

/// How the last challenge ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub won: bool,
    pub tick: u64,
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
    fn watch_may_claim_over(&self, seen: &Result<Option<Sealed<Lease>>, ()>) -> bool {
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
    pub outcome: Option<Outcome>,
    /// Highest owner epoch seen in the record (a forming node starts above it).
    pub owner_epoch_seen: u64,
    /// Ownership was given up while a write was in flight: that write must not revive it.
    released_during_io: bool,
    /// Highest `owner_epoch` confirmed in the record: this node wrote it as owner, and no
    /// write that could lower it can still land (a second durable copy of its epoch beside
    /// its slot, so a torn slot alone cannot make a later former reuse it).
    pub confirmed_owner_epoch: u64,
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
        record: Result<Option<Sealed<Lease>>, ()>,
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
        match self.state.clone() {
            State::Idle if self.want == Want::Watch => {
                self.state = State::Watching {
                    seen: record,
                    since_tick: now_ticks,
                    need_since_tick: None,
                };
                (None, false)
            }
            State::Watching {
                seen,
                since_tick,
                need_since_tick,
            } => self.on_watch_read(
                record,
                (seen, since_tick, need_since_tick),
                issue_tick,
                now_ticks,
                next_epoch,
            ),
            State::Confirming {
                written,
                issue_tick: claim_issue_tick,
                landed_tick,
            } => {
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
                self.confirmed_owner_epoch =
                    self.confirmed_owner_epoch.max(written.record.owner_epoch);
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
            State::Idle => {
                let write = self.challenge_record(&record);
                self.state = State::Challenging {
                    written: write.clone(),
                    since_tick: None,
                };
                self.io_in_flight = true;
                (Some(QuorumIo::Write(write)), false)
            }
            State::Challenging {
                written,
                since_tick,
            } => {
                let since_tick = since_tick.expect("a challenge read only after its write");
                if record != Ok(Some(written.clone())) {
                    self.state = State::Idle;
                    self.outcome = Some(Outcome {
                        won: false,
                        tick: now_ticks,
                    });
                    return (None, false);
                }
                if issue_tick < since_tick + me.expiry_observed_ticks {
                    return (None, false);
                }
                // Never lower the epoch the record carries: it is a durable copy of the last
                // owner's epoch, and a later former starts above it.
                let claim = self.claim_record(written.sequence + 1, epoch);
                self.state = State::Claiming {
                    written: claim.clone(),
                    watched: false,
                };
                self.io_in_flight = true;
                (Some(QuorumIo::Write(claim)), false)
            }
            State::Claiming { .. } => unreachable!("no read is issued while claiming"),
            State::Owner {
                valid_until_tick,
                written,
                landed_tick,
            } => {
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
                    Err(()) => true,
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
                let window_over = landed_tick
                    .is_some_and(|landed_tick| issue_tick >= landed_tick + self.confirm_ticks);
                if window_over && record == Ok(Some(written.clone())) {
                    self.confirmed_owner_epoch =
                        self.confirmed_owner_epoch.max(written.record.owner_epoch);
                }
                let (sequence, read_epoch) = match &record {
                    Ok(Some(sealed)) => (
                        sealed.sequence.max(written.sequence),
                        sealed.record.owner_epoch,
                    ),
                    _ => (written.sequence, 0),
                };
                let mut renewal = written;
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
        }
    }

    /// A watch read finished (fresh: `on_read` checked its age).
    fn on_watch_read(
        &mut self,
        record: Result<Option<Sealed<Lease>>, ()>,
        (seen, since_tick, need_since_tick): (Result<Option<Sealed<Lease>>, ()>, u64, Option<u64>),
        issue_tick: u64,
        now_ticks: u64,
        next_epoch: u64,
    ) -> (Option<QuorumIo>, bool) {
        let me = self.identity;
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

    fn challenge_record(&self, record: &Result<Option<Sealed<Lease>>, ()>) -> Sealed<Lease> {
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
mod tests {
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
}
