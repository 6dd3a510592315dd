//! GUM invariants, checked on every event:
//! - one order: at each sequence number every node applies the same update, except that a
//!   new locker may reuse the number of an update that only nodes outside its membership
//!   applied (never acknowledged: an acknowledgement needs every member); those nodes must then
//!   leave and forget their replica before they apply anything else;
//! - a node applies sequence numbers one by one (or jumps by a snapshot);
//! - the replicated state after sequence `s` is the same everywhere;
//! - an acknowledged update is never lost: no other update ever takes its number, also after
//!   every node crashed and the cluster re-formed from the disk log;
//! - once the cluster converged, every node holds the same state, at or above every
//!   acknowledged number (checked by `Cluster::converged` and `final_check`).

use std::collections::{BTreeMap, BTreeSet};

use super::checker::{Finding, ViolationKind};

/// One life of a node's replica: (node, life number); a life ends at a crash or a reset.
type Run = (u8, u64);

#[derive(Debug, Default)]
struct AtSequence {
    digest: u64,
    state_digest: u64,
    appliers: BTreeSet<Run>,
}

#[derive(Debug, Default)]
pub struct GumChecker {
    at: BTreeMap<u64, AtSequence>,
    /// Snapshot states seen at a sequence, when no node applied that sequence itself yet.
    snapshot_states: BTreeMap<u64, u64>,
    last_applied: BTreeMap<Run, u64>,
    /// Where each update (by digest) was applied and still stands. Two lockers may sequence
    /// one proposal at two numbers, each applied in some life, until one is superseded
    /// (simulator seed 47591889: request 32 of node 8 at 245, then at 228 by a locker whose
    /// 228 a later one reused, while 245 stood and was acknowledged).
    sequence_of: BTreeMap<u64, BTreeSet<u64>>,
    forgotten: BTreeSet<Run>,
    /// Runs whose applied update lost its number to another: they must forget before anything.
    superseded: BTreeSet<Run>,
    /// Acknowledged sequence → the update's digest.
    pub acked: BTreeMap<u64, u64>,
    pub applied_events: u64,
    pub reused_numbers: u64,
}

impl GumChecker {
    pub fn on_applied(
        &mut self,
        run: Run,
        sequence: u64,
        digest: u64,
        state_digest: u64,
    ) -> Result<(), Finding> {
        self.applied_events += 1;
        if self.superseded.contains(&run) {
            return Err(Finding::new(ViolationKind::GumAppliedAfterSuperseded, format!(
                "node {} applied sequence {sequence} after an update it applied was superseded, without leaving",
                run.0
            )));
        }
        if let Some(last) = self.last_applied.get(&run) {
            if sequence != last + 1 {
                return Err(Finding::new(
                    ViolationKind::GumSequenceSkipped,
                    format!("node {} applied sequence {sequence} after {last}", run.0),
                ));
            }
        }
        self.last_applied.insert(run, sequence);
        if let Some(&acked) = self.acked.get(&sequence) {
            if acked != digest {
                return Err(Finding::new(
                    ViolationKind::GumAcknowledgedSequenceReplaced,
                    format!(
                        "node {} applied another update at acknowledged sequence {sequence}",
                        run.0
                    ),
                ));
            }
        }
        let forgotten = &self.forgotten;
        let superseded = &self.superseded;
        // Appliers whose history still counts: neither gone nor overtaken by a takeover.
        let counts = |applier: &Run| !forgotten.contains(applier) && !superseded.contains(applier);
        match self.at.get_mut(&sequence) {
            Some(known) if known.digest == digest => {
                let live = known.appliers.iter().any(counts);
                if !live && known.state_digest != state_digest {
                    // Re-proposed after a takeover reused earlier numbers: same update, new
                    // history before it.
                    self.reused_numbers += 1;
                    known.state_digest = state_digest;
                    known.appliers.clear();
                }
                if known.state_digest != state_digest {
                    return Err(Finding::new(
                        ViolationKind::GumStateDiverged,
                        format!(
                            "node {} holds another database after sequence {sequence}",
                            run.0
                        ),
                    ));
                }
                known.appliers.insert(run);
            }
            Some(known) => {
                let live: Vec<Run> = known
                    .appliers
                    .iter()
                    .filter(|a| counts(a))
                    .copied()
                    .collect();
                if live.contains(&run) {
                    return Err(Finding::new(
                        ViolationKind::GumSequenceAppliedTwiceByOneNode,
                        format!("sequence {sequence}: node {} applied two updates", run.0),
                    ));
                }
                self.superseded.extend(live);
                // So are runs that hold a state at or past this number by a snapshot: they hold
                // the superseded update without having applied it (simulator seed 157582).
                let holders: Vec<Run> = self
                    .last_applied
                    .iter()
                    .filter(|(holder, last)| {
                        **holder != run && **last >= sequence && !self.forgotten.contains(holder)
                    })
                    .map(|(holder, _)| *holder)
                    .collect();
                self.superseded.extend(holders);
                self.reused_numbers += 1;
                // The superseded update may live on at another number (it was proposed again).
                if let Some(sequences) = self.sequence_of.get_mut(&known.digest) {
                    sequences.remove(&sequence);
                }
                self.sequence_of.entry(digest).or_default().insert(sequence);
                *known = AtSequence {
                    digest,
                    state_digest,
                    appliers: BTreeSet::from([run]),
                };
            }
            None => {
                if let Some(&state) = self.snapshot_states.get(&sequence) {
                    if state != state_digest {
                        return Err(Finding::new(ViolationKind::GumStateUnlikeSnapshot, format!(
                            "node {} holds another database after sequence {sequence} than a snapshot",
                            run.0
                        )));
                    }
                }
                self.sequence_of.entry(digest).or_default().insert(sequence);
                self.at.insert(
                    sequence,
                    AtSequence {
                        digest,
                        state_digest,
                        appliers: BTreeSet::from([run]),
                    },
                );
            }
        }
        Ok(())
    }

    pub fn on_snapshot(
        &mut self,
        run: Run,
        sequence: u64,
        state_digest: u64,
    ) -> Result<(), Finding> {
        if self.superseded.contains(&run) {
            return Err(Finding::new(ViolationKind::GumSnapshotAfterSuperseded, format!(
                "node {} installed a snapshot after an update it applied was superseded, without leaving",
                run.0
            )));
        }
        self.last_applied.insert(run, sequence);
        if sequence == 0 {
            return Ok(());
        }
        if let Some(known) = self.at.get(&sequence) {
            let live = known
                .appliers
                .iter()
                .any(|applier| !self.forgotten.contains(applier));
            if live && known.state_digest != state_digest {
                return Err(Finding::new(ViolationKind::GumSnapshotUnlikeLiveState, format!(
                    "node {} installed a snapshot at sequence {sequence} unlike the live nodes' state",
                    run.0
                )));
            }
        }
        self.snapshot_states.insert(sequence, state_digest);
        Ok(())
    }

    /// The run crashed, or left and forgot its replica.
    pub fn forget(&mut self, run: Run) {
        self.forgotten.insert(run);
        self.superseded.remove(&run);
        self.last_applied.remove(&run);
    }

    /// `acknowledged`: the locker's word that the update is committed at or before it (a
    /// retransmitted request committed long ago is acknowledged with a bound).
    pub fn on_acknowledged(
        &mut self,
        node: u8,
        acknowledged: u64,
        digest: u64,
    ) -> Result<(), Finding> {
        let standing = self.sequence_of.get(&digest);
        let Some(&first) = standing.and_then(|sequences| sequences.iter().next()) else {
            return Err(Finding::new(
                ViolationKind::GumAcknowledgedUnappliedUpdate,
                format!(
                "node {node} was acknowledged (sequence {acknowledged}) an update no node applied"
            ),
            ));
        };
        // Standing at several numbers, all but one will be superseded, and which is not known
        // yet: take the highest the acknowledgement covers. A wrong pick can only raise a
        // false alarm later (its number reused), never hide a lost update: an update standing
        // nowhere at or below the bound fails here.
        let Some(&sequence) =
            standing.and_then(|sequences| sequences.range(..=acknowledged).next_back())
        else {
            return Err(Finding::new(ViolationKind::GumAcknowledgedBelowItsSequence, format!(
                "node {node} was acknowledged sequence {acknowledged} for an update applied at {first}"
            )));
        };
        if let Some(previous) = self.acked.insert(sequence, digest) {
            if previous != digest {
                return Err(Finding::new(
                    ViolationKind::GumSequenceAcknowledgedForTwoUpdates,
                    format!("sequence {sequence} acknowledged for two updates"),
                ));
            }
        }
        Ok(())
    }

    /// The highest acknowledged sequence.
    pub fn acked_max(&self) -> u64 {
        self.acked.keys().next_back().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(result: Result<(), Finding>) -> Option<ViolationKind> {
        result.err().map(|finding| finding.kind)
    }

    /// Seed 47591889: one proposal sequenced by two lockers at two numbers; the one applied
    /// later is superseded, and the acknowledgement names the bound of the one that stands.
    #[test]
    fn an_update_sequenced_twice_is_acknowledged_where_it_still_stands() {
        let mut checker = GumChecker::default();
        assert!(checker.on_applied((1, 1), 5, 32, 500).is_ok());
        assert!(
            checker.on_applied((3, 1), 4, 32, 400).is_ok(),
            "a second number"
        );
        checker.forget((3, 1));
        assert!(checker.on_applied((4, 1), 4, 44, 401).is_ok(), "4 reused");
        assert!(checker.on_acknowledged(8, 6, 32).is_ok(), "it stands at 5");
        assert_eq!(checker.acked.get(&5), Some(&32));
        assert_eq!(
            kind_of(checker.on_acknowledged(8, 3, 32)),
            Some(ViolationKind::GumAcknowledgedBelowItsSequence),
            "not at or below 3"
        );
        assert_eq!(
            kind_of(checker.on_acknowledged(8, 9, 77)),
            Some(ViolationKind::GumAcknowledgedUnappliedUpdate),
            "never applied"
        );
    }

    #[test]
    fn reuse_is_allowed_only_after_every_applier_is_gone_and_never_when_acknowledged() {
        let mut checker = GumChecker::default();
        assert!(checker.on_applied((1, 1), 1, 10, 100).is_ok());
        assert!(checker.on_applied((2, 1), 1, 10, 100).is_ok());
        assert!(checker.on_applied((2, 1), 2, 20, 200).is_ok());
        assert!(
            checker.on_applied((4, 1), 2, 21, 201).is_ok(),
            "reuse by a new locker"
        );
        assert_eq!(
            kind_of(checker.on_applied((2, 1), 3, 30, 300)),
            Some(ViolationKind::GumAppliedAfterSuperseded),
            "superseded goes on"
        );
        checker.forget((2, 1));
        assert!(checker.on_acknowledged(4, 2, 21).is_ok());
        checker.forget((1, 1));
        checker.forget((4, 1));
        assert_eq!(
            kind_of(checker.on_applied((3, 1), 2, 22, 202)),
            Some(ViolationKind::GumAcknowledgedSequenceReplaced),
            "acked number reused"
        );
        assert!(checker.on_applied((3, 2), 5, 50, 500).is_ok());
        assert_eq!(
            kind_of(checker.on_applied((3, 2), 7, 70, 700)),
            Some(ViolationKind::GumSequenceSkipped),
            "gap"
        );
        assert_eq!(
            kind_of(checker.on_acknowledged(3, 9, 90)),
            Some(ViolationKind::GumAcknowledgedUnappliedUpdate),
            "never applied"
        );
        assert!(
            checker.on_acknowledged(3, 9, 50).is_ok(),
            "a bound above its number"
        );
        assert_eq!(
            kind_of(checker.on_acknowledged(3, 4, 50)),
            Some(ViolationKind::GumAcknowledgedBelowItsSequence),
            "a bound below its number"
        );
    }
}
