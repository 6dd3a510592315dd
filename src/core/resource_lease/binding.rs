//! Which block carries a resource's lease, and whether a challenger may claim its block.
//!
//! The name field binds a block to a resource (FORMAT.md §6); an empty block is free. Two
//! nodes that bind one name to two different blocks would each win a lease of their own, so
//! binding follows two rules (the argument is in `disklayout/ARBITRATION.md` §5):
//! - **The probe** (`target`) reads every block and picks the lowest block carrying the name
//!   with an owner, else the lowest carrying the name, else the lowest empty one.
//! - **The claim check** (`verdict`): a challenger claims only if reads of every other block,
//!   issued with its final read (at least the defence window after its challenge landed),
//!   show no other block carrying the name with an owner, no lower block carrying the name
//!   in a record the probe did not see, and no unreadable block that might hide one (an
//!   unreadable block counts only once it has been seen unchanged for the defence window: an
//!   owner rewrites its block every renew interval).

use std::collections::BTreeMap;

use super::super::disk_records::{
    self, Lease, LeaseRead, ResourceLease, Sealed, Unreadable, BLOCK_SIZE,
};

/// What a read of one block showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BlockView {
    /// Never written: free.
    Empty,
    /// A record of this cluster.
    Lease(Sealed<Lease>),
    /// A record of another cluster (an earlier format): bound to something else for us.
    Foreign(Sealed<Lease>),
    /// Torn or corrupt; the digest of its bytes tells whether it changed since.
    Unreadable { digest: u64 },
}

impl BlockView {
    pub fn of(block: &[u8; BLOCK_SIZE], cluster_id: u64) -> BlockView {
        match disk_records::decode::<ResourceLease>(&block[..]) {
            Ok(None) => BlockView::Empty,
            Ok(Some(sealed)) => {
                let sealed = Sealed {
                    cluster_id: sealed.cluster_id,
                    sequence: sealed.sequence,
                    record: sealed.record.0,
                };
                if sealed.cluster_id == cluster_id {
                    BlockView::Lease(sealed)
                } else {
                    BlockView::Foreign(sealed)
                }
            }
            Err(_) => BlockView::Unreadable {
                digest: digest(&block[..]),
            },
        }
    }

    /// The record, as the lease machine reads it (`Err` for unreadable).
    pub fn record(&self) -> LeaseRead {
        match self {
            BlockView::Empty => Ok(None),
            // The machine sees another cluster's id and leaves that block alone.
            BlockView::Lease(sealed) | BlockView::Foreign(sealed) => Ok(Some(sealed.clone())),
            BlockView::Unreadable { .. } => Err(Unreadable),
        }
    }

    fn carries(&self, name: &str) -> Option<&Lease> {
        match self {
            BlockView::Lease(sealed) if sealed.record.name == name => Some(&sealed.record),
            _ => None,
        }
    }
}

/// FNV-1a: tells two unreadable contents apart (not a checksum anyone relies on for safety:
/// a changed block that hashed alike would only make us wait less for a dead writer's block,
/// and the odds are 2^-64).
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the probe says the lease lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Block(u32),
    /// Every block is bound to another resource (or unreadable).
    NoneFree,
}

/// The probe's choice among `views` (index = block).
pub(crate) fn target(name: &str, views: &[BlockView]) -> Target {
    let carrying = |with_owner: bool| {
        views.iter().position(|view| {
            view.carries(name)
                .is_some_and(|lease| !with_owner || lease.owner != 0)
        })
    };
    carrying(true)
        .or_else(|| carrying(false))
        .or_else(|| views.iter().position(|view| *view == BlockView::Empty))
        .map_or(Target::NoneFree, |index| Target::Block(index as u32))
}

/// Whether the challenger may claim now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Clear,
    /// Another block is (or may become) the name's: give this one up and probe again.
    Yield,
    /// A block could not be judged (a failed read, an unreadable block not yet stable): keep
    /// the challenge and check again at the next final read.
    Wait,
}

/// Unreadable blocks: the digest each showed, and the completion tick of the first read that
/// showed it.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnreadableSeen(BTreeMap<u32, (u64, u64)>);

impl UnreadableSeen {
    pub fn note(&mut self, block: u32, view: &BlockView, completed_tick: u64) {
        match view {
            BlockView::Unreadable { digest } => {
                let first = self.0.entry(block).or_insert((*digest, completed_tick));
                if first.0 != *digest {
                    *first = (*digest, completed_tick);
                }
            }
            _ => {
                self.0.remove(&block);
            }
        }
    }

    /// The same bytes from a read that completed `wait_ticks` or more before `issue_tick`.
    fn stable(&self, block: u32, digest: u64, issue_tick: u64, wait_ticks: u64) -> bool {
        self.0
            .get(&block)
            .is_some_and(|(seen, since)| *seen == digest && issue_tick >= since + wait_ticks)
    }
}

/// The claim check. `probe` is what the probe that chose `target` saw; `check` what reads
/// issued at `check_issue_tick` (with the final read of `target`) saw, `None` for a failed
/// read. Indices are blocks; the target's own entries are not looked at.
pub(crate) fn verdict(
    name: &str,
    target: u32,
    probe: &[BlockView],
    check: &[Option<BlockView>],
    unreadable: &UnreadableSeen,
    check_issue_tick: u64,
    wait_ticks: u64,
) -> Verdict {
    assert_eq!(probe.len(), check.len());
    assert!((target as usize) < check.len());
    let mut verdict = Verdict::Clear;
    for (index, seen) in check.iter().enumerate() {
        let block = index as u32;
        if block == target {
            continue;
        }
        let Some(view) = seen else {
            verdict = Verdict::Wait;
            continue;
        };
        if let Some(lease) = view.carries(name) {
            let owned_elsewhere = lease.owner != 0;
            let new_below = block < target && probe[index] != *view;
            if owned_elsewhere || new_below {
                return Verdict::Yield;
            }
        }
        if let BlockView::Unreadable { digest } = view {
            if !unreadable.stable(block, *digest, check_issue_tick, wait_ticks) {
                verdict = Verdict::Wait;
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: u64 = 101;

    fn lease(name: &str, sequence: u64, owner: u8, challenger: u8) -> BlockView {
        BlockView::Lease(Sealed {
            cluster_id: 7,
            sequence,
            record: Lease {
                owner,
                owner_incarnation: u64::from(owner),
                owner_epoch: 3,
                challenger,
                challenger_incarnation: u64::from(challenger),
                name: name.to_string(),
            },
        })
    }

    #[test]
    fn the_probe_prefers_an_owned_block_then_the_lowest_with_the_name_then_the_lowest_empty() {
        use BlockView::Empty;
        let torn = BlockView::Unreadable { digest: 1 };
        let views = vec![lease("db", 4, 0, 0), torn.clone(), Empty, Empty];
        assert_eq!(target("fs", &views), Target::Block(2));
        let views = vec![Empty, lease("fs", 9, 0, 2), lease("fs", 3, 1, 0)];
        assert_eq!(target("fs", &views), Target::Block(2), "the owned one");
        let views = vec![
            lease("db", 1, 0, 0),
            lease("fs", 9, 0, 2),
            lease("fs", 3, 0, 0),
        ];
        assert_eq!(
            target("fs", &views),
            Target::Block(1),
            "the lowest with the name"
        );
        let BlockView::Lease(mut foreign) = lease("fs", 1, 0, 0) else {
            unreachable!()
        };
        foreign.cluster_id = 8;
        let views = vec![lease("db", 1, 0, 0), torn, BlockView::Foreign(foreign)];
        assert_eq!(target("fs", &views), Target::NoneFree);
        assert_eq!(target("fs", &[]), Target::NoneFree);
    }

    #[test]
    fn a_claim_yields_to_an_owner_elsewhere_and_to_a_new_lower_block_with_the_name() {
        let seen = UnreadableSeen::default();
        let probe = vec![BlockView::Empty, lease("db", 2, 1, 0), BlockView::Empty];
        // Clear: nothing else carries the name.
        let check = vec![Some(BlockView::Empty), Some(lease("db", 3, 1, 0)), None];
        let clear = verdict("fs", 2, &probe, &check, &seen, 500, WAIT);
        assert_eq!(clear, Verdict::Clear);
        // Another challenger bound the name to block 0 since our probe: yield.
        let check = vec![Some(lease("fs", 1, 0, 3)), Some(lease("db", 3, 1, 0)), None];
        let lower = verdict("fs", 2, &probe, &check, &seen, 500, WAIT);
        assert_eq!(lower, Verdict::Yield);
        // A challenger above us: it yields to us, we go on.
        let probe = vec![BlockView::Empty, BlockView::Empty, BlockView::Empty];
        let check = vec![None, None, Some(lease("fs", 1, 0, 3))];
        let above = verdict("fs", 0, &probe, &check, &seen, 500, WAIT);
        assert_eq!(above, Verdict::Wait, "failed reads are not judged");
        let check = vec![None, Some(BlockView::Empty), Some(lease("fs", 1, 0, 3))];
        assert_eq!(
            verdict("fs", 0, &probe, &check, &seen, 500, WAIT),
            Verdict::Clear
        );
        // Anyone owning the name anywhere else wins.
        let check = vec![None, Some(BlockView::Empty), Some(lease("fs", 2, 3, 0))];
        assert_eq!(
            verdict("fs", 0, &probe, &check, &seen, 500, WAIT),
            Verdict::Yield
        );
        // A lower block with the name that the probe saw as it is now: left behind by a
        // challenger that yielded long ago, not a binding in progress.
        let probe = vec![lease("fs", 5, 0, 4), BlockView::Empty, lease("fs", 8, 2, 0)];
        let check = vec![Some(lease("fs", 5, 0, 4)), Some(BlockView::Empty), None];
        assert_eq!(
            verdict("fs", 2, &probe, &check, &seen, 500, WAIT),
            Verdict::Clear
        );
    }

    #[test]
    fn an_unreadable_block_counts_only_once_unchanged_for_the_defence_window() {
        let mut seen = UnreadableSeen::default();
        let torn = BlockView::Unreadable { digest: 42 };
        let probe = vec![torn.clone(), BlockView::Empty];
        seen.note(0, &torn, 100);
        let check = vec![Some(torn.clone()), Some(BlockView::Empty)];
        assert_eq!(
            verdict("fs", 1, &probe, &check, &seen, 200, WAIT),
            Verdict::Wait
        );
        assert_eq!(
            verdict("fs", 1, &probe, &check, &seen, 201, WAIT),
            Verdict::Clear
        );
        // Other bytes: a writer is alive there; the window starts again.
        let other = BlockView::Unreadable { digest: 43 };
        seen.note(0, &other, 205);
        let check = vec![Some(other.clone()), Some(BlockView::Empty)];
        assert_eq!(
            verdict("fs", 1, &probe, &check, &seen, 250, WAIT),
            Verdict::Wait
        );
        assert_eq!(
            verdict("fs", 1, &probe, &check, &seen, 306, WAIT),
            Verdict::Clear
        );
        // Readable again: forgotten.
        seen.note(0, &BlockView::Empty, 300);
        assert_eq!(
            verdict("fs", 1, &probe, &check, &seen, 900, WAIT),
            Verdict::Wait
        );
    }

    #[test]
    fn a_view_decodes_our_records_and_tells_the_rest_apart() {
        let sealed = Sealed {
            cluster_id: 7,
            sequence: 3,
            record: ResourceLease(Lease {
                owner: 2,
                owner_incarnation: 5,
                owner_epoch: 1,
                challenger: 0,
                challenger_incarnation: 0,
                name: "fs".into(),
            }),
        };
        let mut block = [0u8; BLOCK_SIZE];
        assert_eq!(BlockView::of(&block, 7), BlockView::Empty);
        disk_records::encode(&sealed, &mut block).expect("fits");
        assert!(matches!(BlockView::of(&block, 7), BlockView::Lease(s) if s.sequence == 3));
        assert!(matches!(BlockView::of(&block, 8), BlockView::Foreign(s) if s.cluster_id == 7));
        // Both copies of the mirrored record (FORMAT.md §3): one alone is masked by the other.
        block[40] ^= 1;
        assert!(matches!(BlockView::of(&block, 7), BlockView::Lease(s) if s.sequence == 3));
        block[512 + 40] ^= 1;
        let torn = BlockView::of(&block, 7);
        assert!(matches!(torn, BlockView::Unreadable { .. }));
        block[41] ^= 1;
        assert_ne!(
            BlockView::of(&block, 7),
            torn,
            "other bytes, another digest"
        );
    }
}
