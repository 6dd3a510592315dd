//! One resource lease block: challenge, wait, claim, defend, release.
//!
//! The rules are the quorum record's (`quorum.rs`, `disklayout/ARBITRATION.md` §2): a
//! challenger writes itself into `challenger`, loses on any later change of the block, and
//! claims once a read issued `defence_wait_ticks` after its write completed still shows that
//! write; the owner reads and rewrites the block every renew interval, which clears any
//! challenger (the defence), and holds the lease until `hold_ticks` after the issue of a
//! successful write.
//!
//! Why a mirror and not `Quorum` itself: the quorum machine carries the epoch confirmation
//! window and the owner-epoch bookkeeping (ARBITRATION.md §4), which a resource lease has no
//! use for, and it knows one name and one block. A resource lease needs a name check on every
//! read (the block may be bound to another resource), a claim gated by the other blocks (the
//! `Verdict` of `binding.rs`: no second block may carry the name), a release (owner 0, once
//! the resource is stopped) and a strict chain (below). Parameterising the quorum machine for
//! all that would touch the one machine every membership depends on.
//!
//! The chain is strict, as in the quorum machine: a read is acted upon as the owner only while
//! the lease is valid, and a write extends the lease only if it was issued while valid
//! (ARBITRATION.md rule 2). Otherwise a renewal issued just after expiry could land after a
//! challenger's claim, overwrite it, and revive our lease next to the claimer's.

use super::super::disk_records::{Lease, LeaseRead, Sealed, Unreadable};
use super::binding::Verdict;

/// Identity and timing of the machine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub node_id: u8,
    pub incarnation: u64,
    pub cluster_id: u64,
    /// Validity after the issue of a successful write (`lease_hold_ticks`).
    pub hold_ticks: u64,
    /// How long a challenge must stand unchanged (`lease_expiry_observed_ticks`; 0 only under
    /// `Mutation::NoResourceLeaseDefence`).
    pub defence_wait_ticks: u64,
    /// A read older than this when it completes describes a block that may have changed since.
    pub read_age_ticks_max: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// The next read decides the challenge.
    Idle,
    /// Challenge write issued (`since_tick` None) or completed at `since_tick`.
    Challenging {
        written: Sealed<Lease>,
        since_tick: Option<u64>,
    },
    /// Claim write issued.
    Claiming { written: Sealed<Lease> },
    Owner {
        valid_until_tick: u64,
        written: Sealed<Lease>,
    },
    /// Giving the lease back: read, then write owner 0 (`release_issued` once written).
    Releasing {
        valid_until_tick: u64,
        written: Sealed<Lease>,
        release_issued: bool,
    },
    /// Nothing more to do on this block.
    Done,
}

/// What a read or write completion asks of the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reaction {
    Nothing,
    Write(Sealed<Lease>),
    /// Not ours to use now (another name, a lost challenge, a yield): find the block again.
    Reprobe,
    /// The lease we owned is gone (taken, or past its validity).
    Lost,
    /// Our claim succeeded: the lease is ours.
    Won,
    /// Our renewal succeeded: the validity moved on.
    Renewed,
    /// The release is written, or given up (the lease then lapses on its own).
    Released,
}

/// The machine of one block, for one resource name.
#[derive(Clone, Debug)]
pub(crate) struct LeaseBlock {
    params: Params,
    name: String,
    state: State,
    io_in_flight: bool,
}

impl LeaseBlock {
    pub fn new(params: Params, name: String) -> LeaseBlock {
        assert!(params.hold_ticks > 0);
        assert!(params.defence_wait_ticks == 0 || params.hold_ticks < params.defence_wait_ticks);
        LeaseBlock {
            params,
            name,
            state: State::Idle,
            io_in_flight: false,
        }
    }

    /// The tick until which we own the lease (0 when we do not).
    pub fn valid_until_tick(&self) -> u64 {
        match self.state {
            State::Owner {
                valid_until_tick, ..
            }
            | State::Releasing {
                valid_until_tick, ..
            } => valid_until_tick,
            _ => 0,
        }
    }

    pub fn owned(&self, now_ticks: u64) -> bool {
        matches!(self.state, State::Owner { valid_until_tick, .. } if now_ticks < valid_until_tick)
    }

    pub fn releasing(&self) -> bool {
        matches!(self.state, State::Releasing { .. })
    }

    /// First thing on a tick: true when the owned lease just ran out.
    pub fn expire(&mut self, now_ticks: u64) -> bool {
        let expired = matches!(self.state, State::Owner { valid_until_tick, .. }
            if now_ticks >= valid_until_tick);
        if expired {
            self.state = State::Done;
        }
        expired
    }

    /// Whether to read the block now, and whether that read is final: a read that may lead to
    /// the claim, which the caller pairs with reads of every other block (`binding::verdict`).
    /// `interval`: a renew interval is due; a release reads at once.
    pub fn read_due(&self, now_ticks: u64, interval: bool) -> Option<bool> {
        if self.io_in_flight {
            return None;
        }
        match &self.state {
            State::Idle | State::Owner { .. } if interval => Some(false),
            State::Challenging {
                since_tick: Some(since_tick),
                ..
            } if interval => Some(now_ticks >= since_tick + self.params.defence_wait_ticks),
            State::Releasing {
                release_issued: false,
                ..
            } => Some(false),
            _ => None,
        }
    }

    pub fn read_issued(&mut self) {
        assert!(!self.io_in_flight);
        self.io_in_flight = true;
    }

    /// A read finished: the record (`None` empty, `Err` unreadable), when it was issued, and
    /// for a final read the verdict on the other blocks. `epoch` goes into what we write.
    pub fn on_read(
        &mut self,
        record: LeaseRead,
        issue_tick: u64,
        now_ticks: u64,
        verdict: Option<Verdict>,
        epoch: u64,
    ) -> Reaction {
        assert!(self.io_in_flight);
        self.io_in_flight = false;
        let stale = now_ticks > issue_tick + self.params.read_age_ticks_max;
        match self.state.clone() {
            State::Idle if stale => Reaction::Nothing,
            State::Idle => match self.challenge_record(&record, epoch) {
                Some(challenge) => {
                    self.state = State::Challenging {
                        written: challenge.clone(),
                        since_tick: None,
                    };
                    self.write(challenge)
                }
                None => self.finish(Reaction::Reprobe),
            },
            State::Challenging {
                written,
                since_tick,
            } => {
                let since_tick = since_tick.expect("a challenge is read only once written");
                if record != Ok(Some(written.clone())) {
                    return self.finish(Reaction::Reprobe);
                }
                let waited = issue_tick >= since_tick + self.params.defence_wait_ticks;
                if stale || !waited {
                    return Reaction::Nothing;
                }
                match verdict {
                    Some(Verdict::Clear) => {
                        let claim = self.claim_record(&written, epoch);
                        self.state = State::Claiming {
                            written: claim.clone(),
                        };
                        self.write(claim)
                    }
                    Some(Verdict::Yield) => self.finish(Reaction::Reprobe),
                    Some(Verdict::Wait) | None => Reaction::Nothing,
                }
            }
            State::Claiming { .. } => unreachable!("no read while a claim is in flight"),
            State::Owner {
                valid_until_tick,
                written,
            } => {
                if now_ticks >= valid_until_tick {
                    return self.finish(Reaction::Lost);
                }
                if !self.still_mine(&record) {
                    return self.finish(Reaction::Lost);
                }
                if stale {
                    return Reaction::Nothing;
                }
                let renewal = self.next_record(&written, &record, epoch);
                self.state = State::Owner {
                    valid_until_tick,
                    written: renewal.clone(),
                };
                self.write(renewal)
            }
            State::Releasing {
                valid_until_tick,
                written,
                ..
            } => {
                // Only while valid: after expiry a challenger may have claimed since our read.
                if stale || now_ticks >= valid_until_tick || !self.still_mine(&record) {
                    return self.finish(Reaction::Released);
                }
                let mut release = self.next_record(&written, &record, epoch);
                release.record.owner = 0;
                release.record.owner_incarnation = 0;
                self.state = State::Releasing {
                    valid_until_tick,
                    written: release.clone(),
                    release_issued: true,
                };
                self.write(release)
            }
            State::Done => Reaction::Nothing,
        }
    }

    /// A read failed: nothing learned. A release gives up (the lease lapses on its own).
    pub fn on_read_error(&mut self) -> Reaction {
        assert!(self.io_in_flight);
        self.io_in_flight = false;
        if self.releasing() {
            return self.finish(Reaction::Released);
        }
        Reaction::Nothing
    }

    /// A write finished.
    pub fn on_write(&mut self, ok: bool, issue_tick: u64, now_ticks: u64) -> Reaction {
        assert!(self.io_in_flight);
        self.io_in_flight = false;
        match self.state.clone() {
            State::Challenging {
                written,
                since_tick: None,
            } if ok => {
                self.state = State::Challenging {
                    written,
                    since_tick: Some(now_ticks),
                };
                Reaction::Nothing
            }
            State::Challenging { .. } | State::Claiming { .. } if !ok => {
                self.finish(Reaction::Reprobe)
            }
            State::Claiming { written } => {
                let valid_until_tick = issue_tick + self.params.hold_ticks;
                if now_ticks >= valid_until_tick {
                    // Landed too late to hold anything: nobody renews it, it lapses.
                    return self.finish(Reaction::Reprobe);
                }
                self.state = State::Owner {
                    valid_until_tick,
                    written,
                };
                Reaction::Won
            }
            State::Owner {
                valid_until_tick,
                written,
            } => {
                // Rule 2: only a write issued while valid extends the chain.
                if !(ok && issue_tick < valid_until_tick) {
                    return Reaction::Nothing;
                }
                self.state = State::Owner {
                    valid_until_tick: valid_until_tick.max(issue_tick + self.params.hold_ticks),
                    written,
                };
                Reaction::Renewed
            }
            State::Releasing {
                release_issued: true,
                ..
            } => self.finish(Reaction::Released),
            State::Releasing {
                valid_until_tick,
                written,
                release_issued: false,
            } => {
                // A renewal was in flight when the release began; the release read follows.
                let valid_until_tick = if ok && issue_tick < valid_until_tick {
                    valid_until_tick.max(issue_tick + self.params.hold_ticks)
                } else {
                    valid_until_tick
                };
                self.state = State::Releasing {
                    valid_until_tick,
                    written,
                    release_issued: false,
                };
                Reaction::Nothing
            }
            other => unreachable!("write completion in state {other:?}"),
        }
    }

    /// Gives the lease back once its resource is stopped: the next read writes owner 0. A
    /// machine that does not own the lease just stops.
    pub fn release(&mut self) {
        match self.state.clone() {
            State::Owner {
                valid_until_tick,
                written,
            } => {
                self.state = State::Releasing {
                    valid_until_tick,
                    written,
                    release_issued: false,
                }
            }
            State::Releasing { .. } => {}
            _ => self.state = State::Done,
        }
    }

    fn write(&mut self, record: Sealed<Lease>) -> Reaction {
        assert!(!self.io_in_flight);
        self.io_in_flight = true;
        Reaction::Write(record)
    }

    fn finish(&mut self, reaction: Reaction) -> Reaction {
        self.state = State::Done;
        reaction
    }

    /// Our owner record, possibly with a challenger in it, or unreadable (a challenger died
    /// mid-write: rewriting defends, as the quorum owner does).
    fn still_mine(&self, record: &LeaseRead) -> bool {
        let me = self.params;
        match record {
            Ok(Some(sealed)) => {
                sealed.cluster_id == me.cluster_id
                    && sealed.record.owner == me.node_id
                    && sealed.record.owner_incarnation == me.incarnation
                    && sealed.record.name == self.name
            }
            Err(Unreadable) => true,
            Ok(None) => false,
        }
    }

    /// The challenge to write over what the read showed; `None` when the block now carries
    /// another resource (or another cluster's record): not ours to write.
    fn challenge_record(&self, record: &LeaseRead, epoch: u64) -> Option<Sealed<Lease>> {
        let me = self.params;
        let (sequence, mut lease) = match record {
            Ok(Some(sealed)) => {
                if sealed.cluster_id != me.cluster_id || sealed.record.name != self.name {
                    return None;
                }
                (sealed.sequence, sealed.record.clone())
            }
            // Empty, or torn by a writer that died: the probe saw it empty or carrying our
            // name, so a fresh record takes it.
            Ok(None) | Err(Unreadable) => (
                0,
                Lease {
                    owner: 0,
                    owner_incarnation: 0,
                    owner_epoch: epoch,
                    challenger: 0,
                    challenger_incarnation: 0,
                    name: self.name.clone(),
                },
            ),
        };
        lease.challenger = me.node_id;
        lease.challenger_incarnation = me.incarnation;
        Some(Sealed {
            cluster_id: me.cluster_id,
            // A decoded or encoded sequence is at most COUNTER_MAX: + 1 cannot overflow.
            sequence: sequence + 1,
            record: lease,
        })
    }

    fn claim_record(&self, challenge: &Sealed<Lease>, epoch: u64) -> Sealed<Lease> {
        let me = self.params;
        Sealed {
            cluster_id: me.cluster_id,
            // A decoded sequence is at most COUNTER_MAX: + 1 cannot overflow.
            sequence: challenge.sequence + 1,
            record: Lease {
                owner: me.node_id,
                owner_incarnation: me.incarnation,
                owner_epoch: epoch,
                challenger: 0,
                challenger_incarnation: 0,
                name: self.name.clone(),
            },
        }
    }

    /// Our last record again, above every sequence seen, with no challenger: a renewal
    /// defends, and a release leaves the block free for whoever challenges next.
    fn next_record(
        &self,
        written: &Sealed<Lease>,
        record: &LeaseRead,
        epoch: u64,
    ) -> Sealed<Lease> {
        let mut next = written.clone();
        if let Ok(Some(sealed)) = record {
            next.sequence = next.sequence.max(sealed.sequence);
        }
        // Both sequences were decoded or encoded: at most COUNTER_MAX, + 1 cannot overflow.
        next.sequence += 1;
        next.record.owner_epoch = next.record.owner_epoch.max(epoch);
        next.record.challenger = 0;
        next.record.challenger_incarnation = 0;
        next
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
