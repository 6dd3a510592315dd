//! Each drop reason, made to happen on purpose and counted under its own label; incarnations
//! replacing replay windows; configured peers and incarnation floors; every bit of one frame.
use wolfpack::wire::{
    seal_crafted, ClusterKey, DropReason, Header, Opener, Sealer, REPLAY_WINDOW_DEPTH,
};

const CLUSTER: u64 = 77;
const ME: u8 = 2;

fn key() -> ClusterKey {
    ClusterKey::from_bytes([0x22; 32])
}

fn seal(sealer: &mut Sealer, receiver: u8) -> Vec<u8> {
    let mut out = Vec::new();
    sealer.seal(1, receiver, 0, b"payload", &mut out);
    out
}

fn crafted(edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut header = Header {
        kind: 1,
        cluster_id: CLUSTER,
        sender: 1,
        receiver: ME,
        network: 0,
        incarnation: 1,
        sequence: 0,
    };
    edit(&mut header);
    let mut out = Vec::new();
    seal_crafted(&key(), &header, b"payload", &mut out);
    out
}

#[test]
fn every_reason_is_counted_under_its_own_label() {
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    let mut sealer = Sealer::new(&key(), CLUSTER, 1, 10);
    let good = seal(&mut sealer, ME);
    let with = |at: usize, value: u8| {
        let mut datagram = good.clone();
        datagram[at] = value;
        datagram
    };
    let mut other_key = Sealer::new(&ClusterKey::from_bytes([0x33; 32]), CLUSTER, 1, 10);
    let mut other_cluster = Sealer::new(&key(), CLUSTER + 1, 1, 10);
    let mut newer = Sealer::new(&key(), CLUSTER, 1, 11);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..40].to_vec(), DropReason::BadLength),
        (with(0, b'w'), DropReason::BadMagic),
        (with(4, 9), DropReason::BadVersion),
        (with(9, 1), DropReason::BadHeader),
        (with(40, b'P'), DropReason::BadMac),
        (seal(&mut other_key, ME), DropReason::BadMac),
        (seal(&mut other_cluster, ME), DropReason::OtherCluster),
        (seal(&mut sealer, 3), DropReason::NotForMe),
        (
            crafted(|header| header.sender = 0),
            DropReason::UnknownSender,
        ),
        (
            crafted(|header| header.sender = ME),
            DropReason::UnknownSender,
        ),
        (
            crafted(|header| header.sender = 65),
            DropReason::UnknownSender,
        ),
    ];
    for (datagram, reason) in &cases {
        assert_eq!(opener.open(datagram).err(), Some(*reason), "{reason}");
    }
    assert_eq!(
        opener.open_on(1, &good).err(),
        Some(DropReason::WrongNetwork)
    );
    assert_eq!(opener.accepted(), 0);
    assert_eq!(
        opener.incarnation_of(1),
        None,
        "no drop touched replay state"
    );

    assert!(opener.open_on(0, &good).is_ok());
    assert_eq!(opener.open(&good).err(), Some(DropReason::Replayed));
    assert!(opener.open(&seal(&mut newer, ME)).is_ok());
    let older = seal(&mut sealer, ME);
    assert_eq!(
        opener.open(&older).err(),
        Some(DropReason::StaleIncarnation)
    );
    let far_ahead = crafted(|header| {
        header.incarnation = 11;
        header.sequence = 5 * REPLAY_WINDOW_DEPTH;
    });
    assert!(opener.open(&far_ahead).is_ok());
    let behind = crafted(|header| header.incarnation = 11);
    assert_eq!(opener.open(&behind).err(), Some(DropReason::TooOld));

    let counters = opener.drop_counters();
    let labels: Vec<(&str, u64)> = counters
        .iter()
        .map(|(reason, count)| (reason.label(), count))
        .collect();
    assert_eq!(
        labels,
        [
            ("bad_length", 1),
            ("bad_magic", 1),
            ("bad_version", 1),
            ("bad_header", 1),
            ("bad_mac", 2),
            ("other_cluster", 1),
            ("not_for_me", 1),
            ("wrong_network", 1),
            ("unknown_sender", 3),
            ("stale_incarnation", 1),
            ("replayed", 1),
            ("too_old", 1),
        ]
    );
    assert_eq!(opener.accepted(), 3);
}

#[test]
fn a_newer_incarnation_starts_a_fresh_window_and_retires_the_old_one() {
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    let mut first_life = Sealer::new(&key(), CLUSTER, 1, 100);
    let early = seal(&mut first_life, 0);
    let late = seal(&mut first_life, 0);
    assert!(opener.open(&late).is_ok());
    let mut second_life = Sealer::new(&key(), CLUSTER, 1, 101);
    let restart = seal(&mut second_life, 0);
    assert_eq!(
        opener.open(&restart).map(|frame| frame.header.sequence),
        Ok(0)
    );
    assert_eq!(opener.incarnation_of(1), Some(101));
    assert_eq!(
        opener.open(&early).err(),
        Some(DropReason::StaleIncarnation)
    );
    assert_eq!(opener.open(&restart).err(), Some(DropReason::Replayed));
}

#[test]
fn senders_are_tracked_apart() {
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    let mut one = Sealer::new(&key(), CLUSTER, 1, 5);
    let mut three = Sealer::new(&key(), CLUSTER, 3, 5);
    assert!(opener.open(&seal(&mut one, 0)).is_ok());
    assert!(
        opener.open(&seal(&mut three, 0)).is_ok(),
        "same sequence, other sender"
    );
}

#[test]
fn only_configured_peers_are_heard() {
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    opener.set_peers(&[1, 2, 3]);
    let mut five = Sealer::new(&key(), CLUSTER, 5, 1);
    let mut three = Sealer::new(&key(), CLUSTER, 3, 1);
    assert_eq!(
        opener.open(&seal(&mut five, 0)).err(),
        Some(DropReason::UnknownSender)
    );
    assert!(opener.open(&seal(&mut three, 0)).is_ok());
    opener.set_peers(&[1, 2]);
    assert_eq!(
        opener.incarnation_of(3),
        None,
        "a removed peer is forgotten"
    );
}

#[test]
fn an_incarnation_floor_refuses_older_lives() {
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    let mut old_life = Sealer::new(&key(), CLUSTER, 1, 7);
    assert!(opener.open(&seal(&mut old_life, 0)).is_ok());
    opener.set_incarnation_min(1, 8);
    assert_eq!(opener.incarnation_of(1), None);
    assert_eq!(
        opener.open(&seal(&mut old_life, 0)).err(),
        Some(DropReason::StaleIncarnation)
    );
    opener.set_incarnation_min(1, 3);
    let mut new_life = Sealer::new(&key(), CLUSTER, 1, 8);
    assert!(
        opener.open(&seal(&mut new_life, 0)).is_ok(),
        "the floor never goes down"
    );
    assert_eq!(
        opener.open(&seal(&mut old_life, 0)).err(),
        Some(DropReason::StaleIncarnation)
    );
}

#[test]
fn every_single_bit_of_a_frame_matters() {
    let mut sealer = Sealer::new(&key(), CLUSTER, 1, 5);
    let datagram = seal(&mut sealer, ME);
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    for bit in 0..datagram.len() * 8 {
        let mut flipped = datagram.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            opener.open(&flipped).is_err(),
            "bit {bit} flipped was accepted"
        );
    }
    assert_eq!(opener.accepted(), 0);
    assert!(opener.open(&datagram).is_ok());
}

#[test]
fn the_oldest_frame_in_the_window_is_accepted_and_one_older_is_not() {
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    let at = |sequence: u64| crafted(|header| header.sequence = sequence);
    let newest = 3 * REPLAY_WINDOW_DEPTH;
    assert!(opener.open(&at(newest)).is_ok());
    assert!(opener.open(&at(newest - (REPLAY_WINDOW_DEPTH - 1))).is_ok());
    assert_eq!(
        opener.open(&at(newest - REPLAY_WINDOW_DEPTH)).err(),
        Some(DropReason::TooOld)
    );
}

#[test]
#[should_panic(expected = "payload of 1349 bytes")]
fn sealing_an_oversized_payload_is_a_programmer_error() {
    let mut sealer = Sealer::new(&key(), CLUSTER, 1, 5);
    sealer.seal(1, 0, 0, &[0; 1349], &mut Vec::new());
}

#[test]
#[should_panic(expected = "sealing for itself")]
fn sealing_for_oneself_is_a_programmer_error() {
    let mut sealer = Sealer::new(&key(), CLUSTER, 1, 5);
    sealer.seal(1, 1, 0, b"", &mut Vec::new());
}
