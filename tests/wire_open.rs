//! Property tests of the wire protocol: no bytes make `open` panic; sealed frames open to what
//! was sealed; no flipped bit, other key, replay or stale incarnation gets through; reordering
//! within the window is accepted exactly once per frame; and a model of the checks agrees with
//! the opener on random delivery schedules.
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use wolfpack::wire::{
    seal_crafted, ClusterKey, DropReason, Header, Opener, Sealer, PAYLOAD_BYTES_MAX,
    REPLAY_WINDOW_DEPTH,
};

const CLUSTER: u64 = 0xC1u64 << 56 | 42;
const ME: u8 = 2;

fn key() -> ClusterKey {
    ClusterKey::from_bytes([0x11; 32])
}

fn sealed(sealer: &mut Sealer, receiver: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sealer.seal(7, receiver, 0, payload, &mut out);
    out
}

fn header_strategy() -> impl Strategy<Value = Header> {
    (
        any::<u8>(),
        prop_oneof![Just(CLUSTER), any::<u64>()],
        any::<u8>(),
        prop_oneof![Just(0u8), Just(ME), any::<u8>()],
        0u8..8,
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(kind, cluster_id, sender, receiver, network, incarnation, sequence)| Header {
                kind,
                cluster_id,
                sender,
                receiver,
                network,
                incarnation,
                sequence,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_and_never_open(
        bytes in proptest::collection::vec(any::<u8>(), 0..1500),
        keep_prefix in any::<bool>(),
    ) {
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        let mut datagram = bytes;
        if keep_prefix && datagram.len() >= 5 {
            // Past the magic and version, so the later shape checks and the MAC see it too.
            datagram[..5].copy_from_slice(b"WLFP\x01");
        }
        prop_assert!(opener.open(&datagram).is_err());
        prop_assert_eq!(opener.drop_counters().total(), 1);
    }

    #[test]
    fn authentic_frames_with_any_fields_never_panic(
        header in header_strategy(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        let mut datagram = Vec::new();
        seal_crafted(&key(), &header, &payload, &mut datagram);
        let acceptable = header.cluster_id == CLUSTER
            && (header.receiver == 0 || header.receiver == ME)
            && (1..=64).contains(&header.sender)
            && header.sender != ME;
        prop_assert_eq!(opener.open(&datagram).is_ok(), acceptable);
    }

    #[test]
    fn a_sealed_frame_opens_to_what_was_sealed(
        kind in any::<u8>(),
        sender in 1u8..=64,
        to_every_node in any::<bool>(),
        network in 0u8..8,
        incarnation in any::<u64>(),
        skipped in 0u64..1000,
        payload in proptest::collection::vec(any::<u8>(), 0..=PAYLOAD_BYTES_MAX),
    ) {
        prop_assume!(sender != ME);
        let receiver = if to_every_node { 0 } else { ME };
        let mut sealer = Sealer::new(&key(), CLUSTER, sender, incarnation);
        let mut datagram = Vec::new();
        for _ in 0..skipped {
            sealer.seal(kind, receiver, network, &[], &mut datagram);
        }
        sealer.seal(kind, receiver, network, &payload, &mut datagram);
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        let frame = opener.open_on(network, &datagram).expect("authentic");
        prop_assert_eq!(frame.header.kind, kind);
        prop_assert_eq!(frame.header.cluster_id, CLUSTER);
        prop_assert_eq!(frame.header.sender, sender);
        prop_assert_eq!(frame.header.receiver, receiver);
        prop_assert_eq!(frame.header.network, network);
        prop_assert_eq!(frame.header.incarnation, incarnation);
        prop_assert_eq!(frame.header.sequence, skipped);
        prop_assert_eq!(frame.payload, &payload[..]);
        prop_assert_eq!(opener.accepted(), 1);
    }

    #[test]
    fn any_flipped_bit_is_rejected_and_changes_nothing(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        bit_choice in any::<prop::sample::Index>(),
    ) {
        let mut sealer = Sealer::new(&key(), CLUSTER, 1, 5);
        let datagram = sealed(&mut sealer, ME, &payload);
        let bit = bit_choice.index(datagram.len() * 8);
        let mut flipped = datagram.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        prop_assert!(opener.open(&flipped).is_err(), "bit {} accepted", bit);
        prop_assert!(opener.open(&datagram).is_ok(), "the genuine frame still opens");
    }

    #[test]
    fn a_frame_sealed_with_another_key_is_forged(
        other_key in any::<[u8; 32]>(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        prop_assume!(other_key != [0x11; 32]);
        let mut sealer = Sealer::new(&ClusterKey::from_bytes(other_key), CLUSTER, 1, 5);
        let datagram = sealed(&mut sealer, ME, &payload);
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        prop_assert_eq!(opener.open(&datagram).err(), Some(DropReason::BadMac));
        prop_assert_eq!(opener.drop_counters().count(DropReason::BadMac), 1);
        prop_assert_eq!(opener.incarnation_of(1), None);
    }

    #[test]
    fn reordered_frames_within_the_window_open_exactly_once(
        order in Just((0..300usize).collect::<Vec<_>>()).prop_shuffle(),
        replays in proptest::collection::vec(any::<prop::sample::Index>(), 1..50),
    ) {
        let mut sealer = Sealer::new(&key(), CLUSTER, 1, 5);
        let frames: Vec<Vec<u8>> =
            (0..300u32).map(|n| sealed(&mut sealer, 0, &n.to_le_bytes())).collect();
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        for index in &order {
            let frame = opener.open(&frames[*index]).expect("first delivery");
            prop_assert_eq!(frame.header.sequence, *index as u64);
        }
        for replay in replays {
            let frame = &frames[replay.index(frames.len())];
            prop_assert_eq!(opener.open(frame).err(), Some(DropReason::Replayed));
        }
    }

    #[test]
    fn model_and_opener_agree_on_any_delivery_schedule(
        schedule in proptest::collection::vec(
            (0usize..3, 0u64..3, prop_oneof![0u64..40, 0u64..5000]),
            1..300,
        ),
    ) {
        // Three senders, each with incarnations 0..3; the schedule delivers any frame of any of
        // them in any order, with repeats, and the model says what the opener must do.
        let mut opener = Opener::new(&key(), CLUSTER, ME);
        let mut newest_incarnation: HashMap<u8, u64> = HashMap::new();
        let mut newest_sequence: HashMap<(u8, u64), u64> = HashMap::new();
        let mut seen: HashSet<(u8, u64, u64)> = HashSet::new();
        let mut datagram = Vec::new();
        for (sender_index, incarnation, sequence) in schedule {
            let sender = [1u8, 3, 64][sender_index];
            let header = Header {
                kind: 1,
                cluster_id: CLUSTER,
                sender,
                receiver: 0,
                network: 0,
                incarnation,
                sequence,
            };
            seal_crafted(&key(), &header, b"m", &mut datagram);
            let expected = match newest_incarnation.get(&sender) {
                Some(newest) if incarnation < *newest => Err(DropReason::StaleIncarnation),
                Some(newest) if incarnation == *newest => {
                    let top = newest_sequence[&(sender, incarnation)];
                    if sequence + REPLAY_WINDOW_DEPTH <= top {
                        Err(DropReason::TooOld)
                    } else if seen.contains(&(sender, incarnation, sequence)) {
                        Err(DropReason::Replayed)
                    } else {
                        Ok(())
                    }
                }
                _ => Ok(()),
            };
            let outcome = opener.open(&datagram).map(|_| ());
            prop_assert_eq!(outcome, expected);
            if outcome.is_ok() {
                newest_incarnation.insert(sender, incarnation);
                let top = newest_sequence.entry((sender, incarnation)).or_insert(sequence);
                *top = (*top).max(sequence);
                seen.insert((sender, incarnation, sequence));
            }
        }
    }
}
