//! Property tests for every record codec: round trip, no panic on any input, and any single
//! flipped bit in an encoded block is detected.
mod common;

use common::*;
use disklayout::*;
use proptest::prelude::*;

fn encoded<R: Record>(sealed: &Sealed<R>) -> Box<Block> {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(sealed, &mut block).expect("generated records are valid");
    block
}

/// Encode, decode, compare; re-encode, compare bytes; then flip one bit. A mirrored record
/// (FORMAT.md §3) survives a flipped bit in one of its copies and fails on the same bit flipped
/// in both; any other record, and any byte past the copies, fails on a single flipped bit.
fn check_codec<R: Record + PartialEq + std::fmt::Debug + Clone>(sealed: Sealed<R>, bit: usize) {
    let block = encoded(&sealed);
    let mirrored = R::BODY_BYTES.is_some_and(|bytes| bytes + HEADER_SIZE <= ATOMIC_SECTOR_SIZE);
    assert_eq!(
        R::MIRRORED,
        mirrored,
        "every record that fits one sector is mirrored"
    );
    if mirrored {
        assert_eq!(
            block[..ATOMIC_SECTOR_SIZE],
            block[ATOMIC_SECTOR_SIZE..2 * ATOMIC_SECTOR_SIZE],
            "sector 1 mirrors sector 0"
        );
        assert!(
            block[2 * ATOMIC_SECTOR_SIZE..]
                .iter()
                .all(|&byte| byte == 0),
            "control records fit one sector"
        );
    }
    let decoded = decode::<R>(&block[..]).expect("valid").expect("not empty");
    assert_eq!(decoded, sealed);
    assert_eq!(
        encoded(&decoded)[..],
        block[..],
        "re-encoding gives the same bytes"
    );
    let mut flipped = block.clone();
    flipped[bit / 8] ^= 1 << (bit % 8);
    let in_a_copy = mirrored && bit / 8 < 2 * ATOMIC_SECTOR_SIZE;
    if !in_a_copy {
        assert!(
            decode::<R>(&flipped[..]).is_err(),
            "a flipped bit {bit} went unnoticed"
        );
        return;
    }
    assert_eq!(
        decode::<R>(&flipped[..]),
        Ok(Some(sealed)),
        "the other copy of a mirrored record is read when bit {bit} of one is flipped"
    );
    let other = (bit / 8 + ATOMIC_SECTOR_SIZE) % (2 * ATOMIC_SECTOR_SIZE);
    flipped[other] ^= 1 << (bit % 8);
    assert!(
        decode::<R>(&flipped[..]).is_err(),
        "bit {bit} flipped in both copies went unnoticed"
    );
}

const BITS: usize = BLOCK_SIZE * 8;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn superblock_codec(sealed in sealed(superblock()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn node_entry_codec(sealed in sealed(node_entry()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn quorum_lease_codec(sealed in sealed(lease(Just(QUORUM_LEASE_NAME.to_string())).prop_map(QuorumLease)),
                          bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn resource_lease_codec(sealed in sealed(lease(text(LEASE_NAME_BYTES_MAX)).prop_map(ResourceLease)),
                            bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn node_slot_codec(sealed in sealed(node_slot()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn fence_request_codec(sealed in sealed(fence_request()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn fence_ack_codec(sealed in sealed(fence_ack()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn checkpoint_header_codec(sealed in sealed(checkpoint_header()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn log_block_codec(sealed in sealed(log_block()), bit in 0..BITS) { check_codec(sealed, bit) }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let _ = decode::<Superblock>(&bytes);
        let _ = decode::<NodeEntry>(&bytes);
        let _ = decode::<QuorumLease>(&bytes);
        let _ = decode::<ResourceLease>(&bytes);
        let _ = decode::<NodeSlot>(&bytes);
        let _ = decode::<FenceRequest>(&bytes);
        let _ = decode::<FenceAck>(&bytes);
        let _ = decode::<CheckpointHeader>(&bytes);
        let _ = decode::<LogBlock>(&bytes);
    }

    /// Random bodies behind a valid header and CRC reach every body decoder's range checks.
    #[test]
    fn random_bodies_with_valid_crc_never_panic(body in proptest::collection::vec(any::<u8>(), 0..BODY_BYTES_MAX),
                                                 magic in 0usize..9) {
        let magics: [&[u8; 4]; 9] = [b"WPSB", b"WPNE", b"WPQL", b"WPRL", b"WPNS", b"WPFR", b"WPFA", b"WPCK", b"WPLG"];
        let block = block_with_valid_crc(magics[magic], &body);
        let _ = decode::<Superblock>(&block[..]);
        let _ = decode::<NodeEntry>(&block[..]);
        let _ = decode::<QuorumLease>(&block[..]);
        let _ = decode::<ResourceLease>(&block[..]);
        let _ = decode::<NodeSlot>(&block[..]);
        let _ = decode::<FenceRequest>(&block[..]);
        let _ = decode::<FenceAck>(&block[..]);
        let _ = decode::<CheckpointHeader>(&block[..]);
        let _ = decode::<LogBlock>(&block[..]);
    }
}

fn block_with_valid_crc(magic: &[u8; 4], body: &[u8]) -> Box<Block> {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    block[0..4].copy_from_slice(magic);
    block[4] = 1;
    block[8] = 7;
    block[24..28].copy_from_slice(&(body.len() as u32).to_le_bytes());
    block[32..32 + body.len()].copy_from_slice(body);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&block[..28]);
    hasher.update(body);
    let crc = hasher.finalize();
    block[28..32].copy_from_slice(&crc.to_le_bytes());
    block
}

#[test]
fn empty_block_decodes_as_empty_and_torn_header_is_an_error() {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    assert_eq!(decode::<NodeSlot>(&block[..]), Ok(None));
    assert_eq!(decode::<LogBlock>(&block[..]), Ok(None));
    block[1000] = 1;
    assert_eq!(decode::<LogBlock>(&block[..]), Err(DecodeError::Torn));
    // A first write of a mirrored record torn over an empty block: the other copy is empty.
    assert_eq!(decode::<NodeSlot>(&block[..]), Ok(None));
    block[100] = 1;
    assert_eq!(decode::<NodeSlot>(&block[..]), Err(DecodeError::Torn));
    block[100] = 0;
    block[1000] = 0;
    block[2000] = 1;
    assert_eq!(
        decode::<NodeSlot>(&block[..]),
        Err(DecodeError::NonZeroPadding { offset: 2000 })
    );
}

/// A crash that tears a write of a mirrored record leaves each sector old, new, or (one of
/// them) partly written: the block reads as the old record or the new one, never as nothing.
#[test]
fn a_torn_mirrored_write_reads_as_the_old_record_or_the_new() {
    let slot = |sequence: u64, epoch: u64| Sealed {
        cluster_id: 7,
        sequence,
        record: NodeSlot {
            node_id: 2,
            state: NodeState::Member,
            lease_valid_ms: 900,
            incarnation: 3,
            epoch,
            members: 0b11,
            realtime_ms: 1,
        },
    };
    let (old, new) = (slot(10, 4), slot(11, 5));
    let (old_block, new_block) = (encoded(&old), encoded(&new));
    let sector = ATOMIC_SECTOR_SIZE;
    let record_end = HEADER_SIZE + 40;
    let old_or_new = |torn: &Block, what: &str| {
        let read = decode::<NodeSlot>(&torn[..]);
        assert!(
            read == Ok(Some(old.clone())) || read == Ok(Some(new.clone())),
            "{what}: {read:?}"
        );
    };
    for landed in 1..=record_end {
        let mut torn = old_block.clone();
        torn[..landed].copy_from_slice(&new_block[..landed]);
        old_or_new(
            &torn,
            &format!("sector 0 partly written ({landed} bytes), sector 1 not yet"),
        );
        let mut torn = new_block.clone();
        torn[sector..2 * sector].copy_from_slice(&old_block[sector..2 * sector]);
        torn[sector..sector + landed].copy_from_slice(&new_block[sector..sector + landed]);
        old_or_new(
            &torn,
            &format!("sector 0 written, sector 1 partly ({landed} bytes)"),
        );
        let mut torn = new_block.clone();
        torn[..sector].copy_from_slice(&old_block[..sector]);
        torn[..landed].copy_from_slice(&new_block[..landed]);
        old_or_new(
            &torn,
            &format!("sector 1 written, sector 0 partly ({landed} bytes)"),
        );
    }
    // Sector 0 torn inside its header: sector 1 decides.
    let mut torn = old_block.clone();
    torn[..20].copy_from_slice(&new_block[..20]);
    assert_eq!(decode(&torn[..]), Ok(Some(old)));
}

#[test]
fn newer_layout_version_is_named() {
    let sealed = Sealed {
        cluster_id: 9,
        sequence: 1,
        record: FenceAck {
            node_id: 1,
            incarnation: 1,
            acknowledged: Acknowledged::Request {
                requester: 2,
                requester_incarnation: 7,
                sequence: 1,
            },
            resources_stopped: true,
        },
    };
    let mut block = encoded(&sealed);
    block[4] = 4;
    block[ATOMIC_SECTOR_SIZE + 4] = 4;
    assert_eq!(
        decode::<FenceAck>(&block[..]),
        Err(DecodeError::UnsupportedVersion {
            found: 4,
            supported: 3
        })
    );
}

#[test]
fn wrong_type_is_named() {
    let sealed = Sealed {
        cluster_id: 9,
        sequence: 1,
        record: FenceAck {
            node_id: 1,
            incarnation: 1,
            acknowledged: Acknowledged::Request {
                requester: 2,
                requester_incarnation: 7,
                sequence: 1,
            },
            resources_stopped: false,
        },
    };
    let block = encoded(&sealed);
    assert_eq!(
        decode::<FenceRequest>(&block[..]),
        Err(DecodeError::WrongMagic {
            found: *b"WPFA",
            expected: *b"WPFR"
        })
    );
}

#[test]
fn invalid_records_are_refused_before_writing() {
    let mut block = Box::new([7u8; BLOCK_SIZE]);
    let bad = Sealed {
        cluster_id: 1,
        sequence: 1,
        record: NodeEntry {
            node_id: 65,
            name: "n".into(),
            addresses: vec![],
        },
    };
    assert!(encode(&bad, &mut block).is_err());
    assert!(
        block.iter().all(|&byte| byte == 7),
        "nothing written on error"
    );
    let long = Sealed {
        cluster_id: 1,
        sequence: 1,
        record: ResourceLease(Lease {
            owner: 0,
            owner_incarnation: 0,
            owner_epoch: 0,
            challenger: 0,
            challenger_incarnation: 0,
            name: "x".repeat(48),
        }),
    };
    assert!(encode(&long, &mut block).is_err());
    let big = LogBlock {
        epoch: 1,
        updates: vec![LogUpdate {
            sequence: 1,
            origin: 1,
            payload: vec![0; LOG_BODY_BYTES_MAX + 1],
        }],
    };
    assert!(encode(
        &Sealed {
            cluster_id: 1,
            sequence: 0,
            record: big
        },
        &mut block
    )
    .is_err());
    let full = LogBlock {
        epoch: 1,
        updates: vec![LogUpdate {
            sequence: 1,
            origin: 1,
            payload: vec![5; LOG_BODY_BYTES_MAX],
        }],
    };
    assert!(encode(
        &Sealed {
            cluster_id: 1,
            sequence: 0,
            record: full
        },
        &mut block
    )
    .is_ok());
}

#[test]
fn geometry_rejects_small_disks_and_caps_large_ones() {
    assert!(matches!(
        Geometry::for_disk(100 * 4096, 256),
        Err(GeometryError::TooSmall { .. })
    ));
    let large = Geometry::for_disk(1 << 40, 256).expect("a terabyte fits");
    assert_eq!(large.log_blocks(), 32768);
    assert!(
        large.end_bytes() < 300 << 20,
        "formatting a large disk zeroes a bounded area"
    );
    let default = Geometry::for_disk(64 << 20, 256).expect("fits");
    default.validate(64 << 20).expect("valid");
    assert!(
        default.validate(1 << 20).is_err(),
        "regions past the disk end are refused"
    );
}

/// FORMAT.md §5 has no field for an IPv6 flow label, so an address that carries one cannot be
/// encoded without losing it; encode must refuse it rather than write a different address.
#[test]
fn ipv6_flow_label_is_refused_not_silently_dropped() {
    let with_flow_label =
        std::net::SocketAddrV6::new("2001:db8::3".parse().expect("an address"), 7400, 5, 0);
    let entry = NodeEntry {
        node_id: 3,
        name: "gamma".into(),
        addresses: vec![with_flow_label.into()],
    };
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    assert!(
        encode(
            &Sealed {
                cluster_id: 1,
                sequence: 1,
                record: entry
            },
            &mut block
        )
        .is_err(),
        "the flow label would be lost: decoding gives back flow label 0"
    );
}

/// Writes `value` at byte `at` of a record's copies and recomputes each copy's CRC, as a
/// buggy or hostile writer would.
fn patched<R: Record>(block: &Block, at: usize, value: u64) -> Box<Block> {
    let mut block = Box::new(*block);
    let window = if R::MIRRORED {
        ATOMIC_SECTOR_SIZE
    } else {
        BLOCK_SIZE
    };
    let copies = if R::MIRRORED { 2 } else { 1 };
    for copy in 0..copies {
        let sector = &mut block[copy * window..(copy + 1) * window];
        sector[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let body_bytes = u32::from_le_bytes(sector[24..28].try_into().unwrap()) as usize;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&sector[..28]);
        hasher.update(&sector[HEADER_SIZE..HEADER_SIZE + body_bytes]);
        let crc = hasher.finalize();
        sector[28..32].copy_from_slice(&crc.to_le_bytes());
    }
    block
}

/// Every counter field at `COUNTER_MAX` decodes; above it, up to 2^64-1, the record is invalid
/// and the error names the field (FORMAT.md §3).
fn check_counters<R: Record + std::fmt::Debug>(sealed: Sealed<R>, fields: &[(usize, &str)]) {
    let block = encoded(&sealed);
    for &(at, field) in [(16, "sequence")].iter().chain(fields) {
        assert!(
            matches!(
                decode::<R>(&patched::<R>(&block, at, COUNTER_MAX)[..]),
                Ok(Some(_))
            ),
            "{field} at COUNTER_MAX decodes"
        );
        for value in [COUNTER_MAX + 1, u64::MAX - 1, u64::MAX] {
            match decode::<R>(&patched::<R>(&block, at, value)[..]) {
                Err(DecodeError::InvalidField {
                    field: named,
                    offset,
                    ..
                }) => assert_eq!((named, offset), (field, at), "{field} = {value}"),
                other => panic!("{field} = {value} decoded as {other:?}"),
            }
        }
    }
}

fn sealed_with<R>(record: R) -> Sealed<R> {
    Sealed {
        cluster_id: 9,
        sequence: 5,
        record,
    }
}

#[test]
fn counters_above_the_largest_are_invalid() {
    let lease = Lease {
        owner: 1,
        owner_incarnation: 3,
        owner_epoch: 4,
        challenger: 2,
        challenger_incarnation: 5,
        name: QUORUM_LEASE_NAME.into(),
    };
    let lease_fields = [
        (40, "owner_incarnation"),
        (48, "owner_epoch"),
        (56, "challenger_incarnation"),
    ];
    check_counters(sealed_with(QuorumLease(lease.clone())), &lease_fields);
    check_counters(sealed_with(ResourceLease(lease)), &lease_fields);
    let slot = NodeSlot {
        node_id: 3,
        state: NodeState::Member,
        incarnation: 7,
        epoch: 8,
        members: u64::MAX,
        realtime_ms: 1_700_000_000_000,
        lease_valid_ms: u32::MAX,
    };
    check_counters(
        sealed_with(slot),
        &[(40, "incarnation"), (48, "epoch"), (64, "realtime_ms")],
    );
    let request = FenceRequest {
        target: 2,
        target_incarnation: 3,
        requester: 1,
        requester_epoch: 4,
        requester_incarnation: 5,
    };
    check_counters(
        sealed_with(request),
        &[
            (40, "target_incarnation"),
            (48, "requester_epoch"),
            (56, "requester_incarnation"),
        ],
    );
    let ack = |acknowledged| FenceAck {
        node_id: 2,
        incarnation: 6,
        acknowledged,
        resources_stopped: true,
    };
    let one = Acknowledged::Request {
        requester: 1,
        requester_incarnation: 5,
        sequence: 9,
    };
    check_counters(
        sealed_with(ack(one)),
        &[
            (40, "incarnation"),
            (48, "acked_request"),
            (56, "requester_incarnation"),
        ],
    );
    // The sentinel of every request carries 2^64-1 and still decodes.
    let every = encoded(&sealed_with(ack(Acknowledged::Every)));
    assert_eq!(
        decode::<FenceAck>(&every[..]).unwrap().unwrap().record,
        ack(Acknowledged::Every)
    );
    check_counters(
        sealed_with(ack(Acknowledged::Every)),
        &[(40, "incarnation")],
    );
    let checkpoint = CheckpointHeader {
        database_sequence: 10,
        log_position: 11,
        payload_bytes: 12,
        payload_crc32: 13,
    };
    check_counters(
        sealed_with(checkpoint),
        &[(32, "database_sequence"), (40, "log_position")],
    );
    let log = LogBlock {
        epoch: 3,
        updates: vec![
            LogUpdate {
                sequence: 4,
                origin: 1,
                payload: vec![1, 2],
            },
            LogUpdate {
                sequence: 5,
                origin: 2,
                payload: vec![],
            },
        ],
    };
    check_counters(
        sealed_with(log),
        &[(32, "epoch"), (48, "sequence"), (48 + 14, "sequence")],
    );
}

#[test]
fn a_checkpoint_payload_larger_than_any_slot_is_invalid() {
    let header = CheckpointHeader {
        database_sequence: 1,
        log_position: 2,
        payload_bytes: 3,
        payload_crc32: 4,
    };
    let block = encoded(&sealed_with(header.clone()));
    let largest = patched::<CheckpointHeader>(&block, 48, CHECKPOINT_PAYLOAD_BYTES_MAX);
    assert!(matches!(
        decode::<CheckpointHeader>(&largest[..]),
        Ok(Some(_))
    ));
    for value in [CHECKPOINT_PAYLOAD_BYTES_MAX + 1, u64::MAX] {
        let bad = patched::<CheckpointHeader>(&block, 48, value);
        assert!(matches!(
            decode::<CheckpointHeader>(&bad[..]),
            Err(DecodeError::InvalidField {
                field: "payload_length",
                ..
            })
        ));
        let record = CheckpointHeader {
            payload_bytes: value,
            ..header.clone()
        };
        assert!(encode(&sealed_with(record), &mut Box::new([0; BLOCK_SIZE])).is_err());
    }
}

#[test]
fn counters_above_the_largest_are_refused_before_writing() {
    let mut block = Box::new([7u8; BLOCK_SIZE]);
    let slot = |incarnation, epoch, realtime_ms| NodeSlot {
        node_id: 1,
        state: NodeState::Joining,
        incarnation,
        epoch,
        members: 1,
        realtime_ms,
        lease_valid_ms: 0,
    };
    for (sequence, record) in [
        (COUNTER_MAX + 1, slot(1, 1, 1)),
        (1, slot(COUNTER_MAX + 1, 1, 1)),
        (1, slot(1, u64::MAX, 1)),
        (1, slot(1, 1, u64::MAX)),
    ] {
        let sealed = Sealed {
            cluster_id: 1,
            sequence,
            record,
        };
        assert!(encode(&sealed, &mut block).is_err(), "{sealed:?}");
        assert!(block.iter().all(|&byte| byte == 7), "nothing written");
    }
    let at_max = Sealed {
        cluster_id: 1,
        sequence: COUNTER_MAX,
        record: slot(COUNTER_MAX, COUNTER_MAX, COUNTER_MAX),
    };
    assert!(encode(&at_max, &mut block).is_ok());
    let ack = FenceAck {
        node_id: 1,
        incarnation: 1,
        acknowledged: Acknowledged::Request {
            requester: 2,
            requester_incarnation: 1,
            sequence: u64::MAX,
        },
        resources_stopped: false,
    };
    assert!(encode(&sealed_with(ack), &mut block).is_err());
}
