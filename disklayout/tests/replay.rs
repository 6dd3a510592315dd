//! Log replay: positions, wrap, end conditions and the duplicate-sequence rule.
use disklayout::*;
use proptest::prelude::*;

type Ring = Vec<Result<Option<Sealed<LogBlock>>, DecodeError>>;

fn block(position: u64, sequences: &[(u64, u8)]) -> Result<Option<Sealed<LogBlock>>, DecodeError> {
    let updates = sequences
        .iter()
        .map(|&(sequence, origin)| LogUpdate {
            sequence,
            origin,
            payload: vec![origin],
        })
        .collect();
    Ok(Some(Sealed {
        cluster_id: 5,
        sequence: position,
        record: LogBlock { epoch: 1, updates },
    }))
}

fn sequences(replay: &LogReplay) -> Vec<(u64, u8)> {
    replay
        .updates
        .iter()
        .map(|update| (update.sequence, update.origin))
        .collect()
}

#[test]
fn replays_in_position_order_across_the_wrap() {
    let mut ring: Ring = vec![Ok(None); 4];
    ring[2] = block(6, &[(10, 1)]);
    ring[3] = block(7, &[(11, 1), (12, 2)]);
    ring[0] = block(8, &[(13, 1)]);
    ring[1] = block(5, &[(9, 1)]);
    let replay = replay_log(&ring, 6, 5);
    assert_eq!(sequences(&replay), vec![(10, 1), (11, 1), (12, 2), (13, 1)]);
    assert_eq!(replay.next_position, 9);
    assert_eq!(replay.end, LogEnd::OlderPosition { found: 5 });
}

#[test]
fn later_duplicate_wins_and_discards_what_followed_the_first() {
    let mut ring: Ring = vec![Ok(None); 8];
    ring[0] = block(0, &[(1, 1), (2, 1), (3, 2)]);
    ring[1] = block(1, &[(2, 3), (3, 3)]);
    let replay = replay_log(&ring, 0, 5);
    assert_eq!(sequences(&replay), vec![(1, 1), (2, 3), (3, 3)]);
    assert_eq!(replay.discarded, 2);
    assert_eq!(replay.end, LogEnd::Empty);
}

#[test]
fn a_torn_block_ends_the_log() {
    let mut ring: Ring = vec![Ok(None); 4];
    ring[0] = block(0, &[(1, 1)]);
    ring[1] = Err(DecodeError::Torn);
    ring[2] = block(2, &[(2, 1)]);
    let replay = replay_log(&ring, 0, 5);
    assert_eq!(sequences(&replay), vec![(1, 1)]);
    assert_eq!(replay.end, LogEnd::Invalid(DecodeError::Torn));
}

#[test]
fn another_cluster_ends_the_log() {
    let mut ring: Ring = vec![Ok(None); 2];
    ring[0] = block(0, &[(1, 1)]);
    ring[1] = Ok(Some(Sealed {
        cluster_id: 6,
        sequence: 1,
        record: LogBlock {
            epoch: 1,
            updates: vec![LogUpdate {
                sequence: 2,
                origin: 1,
                payload: vec![],
            }],
        },
    }));
    assert_eq!(replay_log(&ring, 0, 5).end, LogEnd::OtherCluster);
}

#[test]
fn a_full_ring_is_exhausted() {
    let ring: Ring = (0..3)
        .map(|position| block(position, &[(position + 1, 1)]))
        .collect();
    let replay = replay_log(&ring, 0, 5);
    assert_eq!(replay.end, LogEnd::RingExhausted);
    assert_eq!(replay.next_position, 3);
}

#[test]
fn earlier_wins_keeps_the_first_of_two_numbers_for_the_mutation() {
    let mut replayer = LogReplayer::new(0, 8, 5, DuplicateRule::EarlierWins);
    assert_eq!(
        replayer.feed(0, &block(0, &[(1, 1), (2, 1), (3, 2)])),
        ReplayStep::Continue
    );
    assert_eq!(
        replayer.feed(1, &block(1, &[(2, 3), (3, 3)])),
        ReplayStep::Continue
    );
    assert_eq!(
        replayer.feed(2, &Ok(None)),
        ReplayStep::Ended(LogEnd::Empty)
    );
    let replay = replayer.finish();
    assert_eq!(sequences(&replay), vec![(1, 1), (2, 1), (3, 2)]);
    assert_eq!(replay.discarded, 2);
}

#[test]
fn the_replayer_repeats_its_end_and_asks_for_nothing_more() {
    let mut replayer = LogReplayer::new(3, 4, 5, DuplicateRule::LaterWins);
    assert_eq!(replayer.next_position(), Some(3));
    assert_eq!(replayer.ring_block(3), 3);
    assert_eq!(replayer.feed(3, &block(3, &[(1, 1)])), ReplayStep::Continue);
    assert_eq!(replayer.next_position(), Some(4));
    assert_eq!(replayer.ring_block(4), 0);
    let end = ReplayStep::Ended(LogEnd::Invalid(DecodeError::Torn));
    assert_eq!(replayer.feed(4, &Err(DecodeError::Torn)), end);
    assert_eq!(replayer.feed(4, &block(4, &[(2, 1)])), end);
    assert_eq!(replayer.next_position(), None);
    assert_eq!(replayer.blocks_replayed(), 1);
    let replay = replayer.finish();
    assert_eq!(replay.next_position, 4);
    assert_eq!(sequences(&replay), vec![(1, 1)]);
}

#[test]
fn a_start_at_the_last_position_ends_without_overflow() {
    let mut replayer = LogReplayer::new(u64::MAX, 4, 5, DuplicateRule::LaterWins);
    assert_eq!(
        replayer.feed(u64::MAX, &block(u64::MAX, &[(1, 1)])),
        ReplayStep::Ended(LogEnd::RingExhausted)
    );
    assert_eq!(replayer.finish().updates.len(), 1);
}

/// The duplicate rule of FORMAT.md §10 stated the slow way: walk the updates in log order, and
/// let each one remove every kept update numbered at or above it.
fn later_wins_reference(updates: &[(u64, u8)]) -> (Vec<(u64, u8)>, usize) {
    let mut kept: Vec<(u64, u8)> = Vec::new();
    let mut discarded = 0;
    for &(sequence, origin) in updates {
        let before = kept.len();
        kept.retain(|&(kept_sequence, _)| kept_sequence < sequence);
        discarded += before - kept.len();
        kept.push((sequence, origin));
    }
    (kept, discarded)
}

proptest! {
    /// Replay never panics and what it keeps is strictly increasing in sequence.
    #[test]
    fn replay_keeps_an_increasing_sequence(blocks in proptest::collection::vec(
        proptest::option::of((0u64..12, proptest::collection::vec((0u64..20, 1u8..4), 1..4))), 1..10),
        start in 0u64..12)
    {
        let ring: Ring = blocks.iter().map(|entry| match entry {
            None => Ok(None),
            Some((position, updates)) => block(*position, updates),
        }).collect();
        let replay = replay_log(&ring, start, 5);
        prop_assert!(replay.updates.windows(2).all(|pair| pair[0].sequence < pair[1].sequence));
        prop_assert!(replay.next_position >= start);
        prop_assert!(replay.next_position - start <= ring.len() as u64);
    }

    /// The incremental replayer, fed one block at a time, equals the whole-ring replay, and both
    /// follow the reference statement of the duplicate rule.
    #[test]
    fn the_replayer_fed_block_by_block_matches_the_whole_ring_and_the_reference(
        blocks in proptest::collection::vec(proptest::collection::vec((0u64..20, 1u8..4), 1..4), 1..10),
        ring_blocks in 1usize..12)
    {
        let ring: Ring = (0..ring_blocks)
            .map(|index| match blocks.get(index) {
                Some(updates) => block(index as u64, updates),
                None => Ok(None),
            })
            .collect();
        let whole = replay_log(&ring, 0, 5);
        let mut replayer = LogReplayer::new(0, ring_blocks as u64, 5, DuplicateRule::LaterWins);
        while let Some(position) = replayer.next_position() {
            replayer.feed(position, &ring[replayer.ring_block(position) as usize]);
        }
        let incremental = replayer.finish();
        prop_assert_eq!(&incremental, &whole);
        let logged: Vec<(u64, u8)> = blocks.iter().take(ring_blocks).flatten().copied().collect();
        let (kept, discarded) = later_wins_reference(&logged);
        prop_assert_eq!(sequences(&whole), kept);
        prop_assert_eq!(whole.discarded, discarded);
    }
}
