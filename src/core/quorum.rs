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
//! This is a pure state machine: it returns the disk I/O to issue; `Node` performs it.

use super::disk_records::{Lease, Sealed, QUORUM_LEASE_NAME};

/// I/O the quorum machine wants issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QuorumIo {
    Read,
    Write(Sealed<Lease>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// Challenge write issued (`since` = None) or completed at tick `since`.
    Challenging {
        written: Sealed<Lease>,
        since_tick: Option<u64>,
    },
    /// Ownership write issued.
    Claiming {
        written: Sealed<Lease>,
    },
    Owner {
        valid_until_tick: u64,
        written: Sealed<Lease>,
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
    /// Highest `owner_epoch` this node wrote successfully as owner (a second durable copy of
    /// its epoch, beside its slot: a torn slot alone cannot make a later former reuse it).
    pub durable_owner_epoch: u64,
}

impl Quorum {
    pub fn new(identity: Identity) -> Quorum {
        assert!(identity.hold_ticks < identity.expiry_observed_ticks);
        Quorum {
            identity,
            state: State::Idle,
            io_in_flight: false,
            outcome: None,
            owner_epoch_seen: 0,
            released_during_io: false,
            durable_owner_epoch: 0,
        }
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
    pub fn on_interval(&mut self, want: bool, now_ticks: u64) -> (Option<QuorumIo>, bool) {
        if let State::Owner {
            valid_until_tick, ..
        } = self.state
        {
            if !want || now_ticks >= valid_until_tick {
                self.release();
                return (None, true);
            }
        }
        if !want && matches!(self.state, State::Challenging { .. }) && !self.io_in_flight {
            self.state = State::Idle;
        }
        if self.io_in_flight {
            return (None, false);
        }
        let wants_read = match self.state {
            State::Idle => want,
            State::Challenging { since_tick, .. } => since_tick.is_some(),
            State::Claiming { .. } => false,
            State::Owner { .. } => true,
        };
        if wants_read {
            self.io_in_flight = true;
            (Some(QuorumIo::Read), false)
        } else {
            (None, false)
        }
    }

    /// A read finished: `record` is `None` for empty, `Err` for unreadable (torn, corrupt).
    /// Returns the write to issue, and whether ownership was just lost.
    pub fn on_read(
        &mut self,
        record: Result<Option<Sealed<Lease>>, ()>,
        issue_tick: u64,
        now_ticks: u64,
        epoch: u64,
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
            self.owner_epoch_seen = self.owner_epoch_seen.max(sealed.record.owner_epoch);
        }
        match self.state.clone() {
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
                let claim = Sealed {
                    cluster_id: me.cluster_id,
                    sequence: written.sequence + 1,
                    record: Lease {
                        owner: me.node_id,
                        owner_incarnation: me.incarnation,
                        owner_epoch: epoch,
                        challenger: 0,
                        challenger_incarnation: 0,
                        name: QUORUM_LEASE_NAME.to_string(),
                    },
                };
                self.state = State::Claiming {
                    written: claim.clone(),
                };
                self.io_in_flight = true;
                (Some(QuorumIo::Write(claim)), false)
            }
            State::Claiming { .. } => unreachable!("no read is issued while claiming"),
            State::Owner {
                valid_until_tick,
                written,
            } => {
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
                let sequence = match &record {
                    Ok(Some(sealed)) => sealed.sequence.max(written.sequence),
                    _ => written.sequence,
                };
                let mut renewal = written;
                renewal.sequence = sequence + 1;
                renewal.record.owner_epoch = epoch;
                self.state = State::Owner {
                    valid_until_tick,
                    written: renewal.clone(),
                };
                self.io_in_flight = true;
                (Some(QuorumIo::Write(renewal)), false)
            }
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
            State::Claiming { written } => {
                if ok {
                    self.durable_owner_epoch =
                        self.durable_owner_epoch.max(written.record.owner_epoch);
                    let valid_until_tick = issue_tick + self.identity.hold_ticks;
                    self.state = State::Owner {
                        valid_until_tick,
                        written,
                    };
                    self.outcome = Some(Outcome {
                        won: true,
                        tick: now_ticks,
                    });
                    true
                } else {
                    self.state = State::Idle;
                    false
                }
            }
            State::Owner {
                valid_until_tick,
                written,
            } => {
                if ok {
                    self.durable_owner_epoch =
                        self.durable_owner_epoch.max(written.record.owner_epoch);
                }
                let valid_until_tick = if ok {
                    valid_until_tick.max(issue_tick + self.identity.hold_ticks)
                } else {
                    valid_until_tick
                };
                self.state = State::Owner {
                    valid_until_tick,
                    written,
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
        }
    }

    fn written(io: Option<QuorumIo>) -> Sealed<Lease> {
        match io {
            Some(QuorumIo::Write(sealed)) => sealed,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn an_unopposed_challenger_wins_after_the_expiry_and_a_defended_one_loses() {
        let mut quorum = Quorum::new(identity(2));
        assert_eq!(quorum.on_interval(true, 0).0, Some(QuorumIo::Read));
        let challenge = written(quorum.on_read(Ok(None), 0, 1, 5).0);
        assert_eq!(challenge.record.challenger, 2);
        assert!(!quorum.on_write(true, 1, 2));
        // Too early: still challenging.
        assert_eq!(quorum.on_interval(true, 50).0, Some(QuorumIo::Read));
        assert_eq!(
            quorum.on_read(Ok(Some(challenge.clone())), 50, 51, 5).0,
            None
        );
        assert_eq!(quorum.on_interval(true, 110).0, Some(QuorumIo::Read));
        let claim = written(quorum.on_read(Ok(Some(challenge.clone())), 110, 111, 5).0);
        assert_eq!(claim.record.owner, 2);
        assert!(quorum.on_write(true, 110, 112));
        assert!(quorum.owned(112));
        assert!(!quorum.owned(110 + 78));

        // A second challenger whose record is rewritten by the defender loses.
        let mut other = Quorum::new(identity(3));
        other.on_interval(true, 0);
        let challenge = written(other.on_read(Ok(Some(claim.clone())), 0, 1, 5).0);
        other.on_write(true, 1, 2);
        other.on_interval(true, 20);
        let mut defended = challenge;
        defended.sequence += 1;
        defended.record.challenger = 0;
        other.on_read(Ok(Some(defended)), 20, 21, 5);
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
