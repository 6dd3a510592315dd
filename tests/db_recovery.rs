//! Recovery against a reference model: a simulated log writer with group commit, orphaned
//! batches whose numbers are reused, checkpoints (also ahead of the log), ring wrap, torn and
//! missing writes, and damaged checkpoints. Recovery must equal the reference, or refuse with
//! a reason that the damage explains; it never returns a wrong database.
mod db_support;

use db_support::*;
use disklayout::{Block, DuplicateRule, LogBlock, LogUpdate, Sealed, BLOCK_SIZE};
use proptest::prelude::*;
use wolfpack::core::db::{
    encode_checkpoint, encode_log_block, recover, CheckpointChoiceError, Database, Recovered,
    RecoveryError, Slot, Update,
};

const CLUSTER: u64 = 0xabc;
const SLOT_BLOCKS: usize = 16;

#[derive(Clone, Debug)]
enum Step {
    Commit(Vec<Update>),
    /// A batch logged by a sender that died before replicating it, then a batch that reuses
    /// its numbers.
    Orphan(Vec<Update>, Vec<Update>),
    /// The checkpoint includes the batch, but its log position is the batch's own block.
    CheckpointAhead(Vec<Update>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    Commit,
    Other,
}

/// What became of one write. FORMAT.md §1: each 512-byte sector holds its old or its new
/// content after a crash, so a torn write is a mix of sectors (all old: it never landed).
#[derive(Clone, Copy, Debug)]
enum Tear {
    /// Bit `n` set: sector `n` has the new content.
    Sectors(u8),
    /// Damage after the write (the media, not the crash).
    FlippedBit,
}

fn batch() -> impl Strategy<Value = Vec<Update>> {
    proptest::collection::vec(update(4), 1..4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => batch().prop_map(Step::Commit),
        2 => (batch(), batch()).prop_map(|(orphan, reuse)| Step::Orphan(orphan, reuse)),
        1 => batch().prop_map(Step::CheckpointAhead),
    ]
}

struct Writer {
    ring_blocks: u64,
    ring: Vec<Box<Block>>,
    /// What each ring block held before its latest write (for a write that never happened).
    previous: Vec<Box<Block>>,
    slots: [Vec<Box<Block>>; 2],
    position: u64,
    next_sequence: u64,
    /// The database of every replicated update: what a checkpoint holds.
    truth: Database,
    /// Every block appended, by position.
    history: Vec<(Vec<LogUpdate>, BlockKind)>,
    newest: Option<(Slot, u64)>,
    generation: u64,
}

impl Writer {
    fn new(ring_blocks: u64) -> Writer {
        let zero = || Box::new([0u8; BLOCK_SIZE]);
        Writer {
            ring_blocks,
            ring: (0..ring_blocks).map(|_| zero()).collect(),
            previous: (0..ring_blocks).map(|_| zero()).collect(),
            slots: [
                (0..SLOT_BLOCKS).map(|_| zero()).collect(),
                (0..SLOT_BLOCKS).map(|_| zero()).collect(),
            ],
            position: 0,
            next_sequence: 1,
            truth: Database::default(),
            history: Vec::new(),
            newest: None,
            generation: 0,
        }
    }

    fn checkpoint_position(&self) -> u64 {
        self.newest.map_or(0, |(_, log_position)| log_position)
    }

    fn checkpoint(&mut self, log_position: u64) {
        let slot = self.newest.map_or(Slot::A, |(slot, _)| slot.other());
        self.generation += 1;
        let blocks = encode_checkpoint(
            &self.truth,
            self.generation,
            log_position,
            CLUSTER,
            SLOT_BLOCKS as u64 - 1,
        )
        .expect("small databases fit");
        for (index, block) in blocks.into_iter().enumerate() {
            self.slots[slot.index()][index] = block;
        }
        self.newest = Some((slot, log_position));
    }

    fn logged(&self, updates: &[Update], origin: u8) -> Vec<LogUpdate> {
        updates
            .iter()
            .enumerate()
            .map(|(index, update)| LogUpdate {
                sequence: self.next_sequence + index as u64,
                origin,
                payload: update.encode().expect("small updates fit"),
            })
            .collect()
    }

    fn append(&mut self, updates: Vec<LogUpdate>, kind: BlockKind) {
        // FORMAT.md §10: position p may be written only while p - L is below the newest
        // checkpoint's log position.
        if self.position >= self.checkpoint_position() + self.ring_blocks {
            self.checkpoint(self.position);
        }
        let index = (self.position % self.ring_blocks) as usize;
        self.previous[index] = self.ring[index].clone();
        self.ring[index] =
            encode_log_block(CLUSTER, self.position, 1, &updates).expect("batches fit");
        self.history.push((updates, kind));
        self.position += 1;
    }

    fn replicate(&mut self, updates: &[Update]) {
        for update in updates {
            let sequence = self.truth.sequence() + 1;
            self.truth.apply(sequence, update).expect("applies");
        }
        self.next_sequence += updates.len() as u64;
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Commit(updates) => {
                let logged = self.logged(updates, 1);
                self.append(logged, BlockKind::Commit);
                self.replicate(updates);
            }
            Step::Orphan(orphan, reuse) => {
                let logged = self.logged(orphan, 2);
                self.append(logged, BlockKind::Other);
                let logged = self.logged(reuse, 3);
                self.append(logged, BlockKind::Other);
                self.replicate(reuse);
            }
            Step::CheckpointAhead(updates) => {
                let logged = self.logged(updates, 1);
                self.replicate(updates);
                if self.position >= self.checkpoint_position() + self.ring_blocks {
                    self.checkpoint(self.position);
                }
                self.checkpoint(self.position);
                self.append(logged, BlockKind::Other);
            }
        }
    }

    /// Tears the write of `position`; returns whether its block still holds it afterwards
    /// (a tear whose missing sectors held the same bytes before changes nothing).
    fn tear(&mut self, position: u64, tear: Tear) -> bool {
        let index = (position % self.ring_blocks) as usize;
        match tear {
            Tear::FlippedBit => self.ring[index][40] ^= 0x20,
            Tear::Sectors(landed) => {
                for sector in (0..8).filter(|sector| landed & 1 << sector == 0) {
                    let range = sector * 512..(sector + 1) * 512;
                    let old = self.previous[index][range.clone()].to_vec();
                    self.ring[index][range].copy_from_slice(&old);
                }
            }
        }
        matches!(
            disklayout::decode::<LogBlock>(&self.ring[index][..]),
            Ok(Some(Sealed { sequence, .. })) if sequence == position
        )
    }

    fn recover(&self, rule: DuplicateRule) -> Result<Recovered, RecoveryError> {
        recover(&self.slots[0], &self.slots[1], &self.ring, CLUSTER, rule)
    }
}

/// FORMAT.md §10 stated plainly over the flat list of logged updates, then applied to the model.
fn reference(history: &[(Vec<LogUpdate>, BlockKind)]) -> Model {
    let mut kept: Vec<LogUpdate> = Vec::new();
    for update in history.iter().flat_map(|(updates, _)| updates) {
        kept.retain(|earlier| earlier.sequence < update.sequence);
        kept.push(update.clone());
    }
    let mut model = Model::default();
    for logged in kept {
        assert_eq!(
            logged.sequence,
            model.sequence + 1,
            "the writer leaves no holes"
        );
        let update = Update::decode(&logged.payload).expect("the writer encodes valid updates");
        model.apply(&update, usize::MAX);
    }
    model
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn recovery_matches_the_reference_or_refuses_for_a_reason(
        steps in proptest::collection::vec((step(), any::<bool>()), 1..30),
        ring_blocks in 4u64..10,
        checkpoint_often in any::<bool>(),
        tear in proptest::option::of((
            any::<prop::sample::Index>(),
            prop_oneof![
                1 => Just(Tear::FlippedBit),
                1 => Just(Tear::Sectors(0)),
                3 => any::<u8>().prop_map(Tear::Sectors),
            ],
        )),
        damage_newest_checkpoint in proptest::option::of((0usize..2, 0..BLOCK_SIZE)),
    ) {
        let mut writer = Writer::new(ring_blocks);
        for (step, checkpoint_after) in &steps {
            writer.run(step);
            if checkpoint_often && *checkpoint_after {
                writer.checkpoint(writer.position);
            }
        }
        let mut history_end = writer.history.len();
        if tear.is_none() {
            prop_assert_eq!(reference(&writer.history), contents(&writer.truth));
        }
        // A write that tore or never landed: only a plain commit at or after the newest
        // checkpoint's position (earlier blocks are not read, and the checkpoint covers them).
        if let Some((pick, kind)) = tear {
            let tearable: Vec<u64> = (writer.checkpoint_position()..writer.position)
                .filter(|&position| writer.history[position as usize].1 == BlockKind::Commit)
                .collect();
            if !tearable.is_empty() {
                let position = tearable[pick.index(tearable.len())];
                if !writer.tear(position, kind) {
                    history_end = position as usize;
                }
            }
        }
        let expected = reference(&writer.history[..history_end]);
        let damaged = match (damage_newest_checkpoint, writer.newest) {
            (Some((block, byte)), Some((slot, _))) => {
                writer.slots[slot.index()][block][byte] ^= 0x01;
                true
            }
            _ => false,
        };
        match writer.recover(DuplicateRule::LaterWins) {
            Ok(recovered) => {
                prop_assert_eq!(contents(&recovered.database), expected);
                prop_assert_eq!(recovered.report.fallback, damaged);
                if !damaged {
                    prop_assert_eq!(recovered.next_position, history_end as u64);
                }
            }
            Err(error) => {
                let explained = damaged && matches!(
                    error,
                    RecoveryError::LogAheadOfCheckpoint { fallback: true, .. }
                        | RecoveryError::FallbackEndsOnDamage { .. }
                        | RecoveryError::Checkpoint(CheckpointChoiceError::NothingValid { .. })
                );
                prop_assert!(explained, "refused without a reason: {}", error);
            }
        }
    }

    /// Log blocks that pass their CRC but carry random payloads: refused or applied, never a
    /// panic.
    #[test]
    fn random_update_payloads_in_valid_blocks_never_panic(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
        valid in proptest::collection::vec(update(3), 0..3),
    ) {
        let mut ring: Vec<Box<Block>> = (0..8).map(|_| Box::new([0u8; BLOCK_SIZE])).collect();
        let mut sequence = 0;
        let mut updates: Vec<LogUpdate> = valid
            .iter()
            .map(|update| {
                sequence += 1;
                LogUpdate { sequence, origin: 1, payload: update.encode().unwrap() }
            })
            .collect();
        updates.extend(payloads.into_iter().map(|payload| {
            sequence += 1;
            LogUpdate { sequence, origin: 1, payload }
        }));
        ring[0] = encode_log_block(CLUSTER, 0, 1, &updates).expect("fits");
        let decoded = disklayout::decode::<LogBlock>(&ring[0][..]);
        prop_assert!(matches!(decoded, Ok(Some(Sealed { .. }))), "a valid envelope");
        let empty: Vec<Box<Block>> = vec![Box::new([0u8; BLOCK_SIZE])];
        let _ = recover(&empty, &empty, &ring, CLUSTER, DuplicateRule::LaterWins);
    }
}
