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

/// Encode, decode, compare; re-encode, compare bytes; then flip one bit and expect an error.
fn check_codec<R: Record + PartialEq + std::fmt::Debug + Clone>(sealed: Sealed<R>, bit: usize) {
    let block = encoded(&sealed);
    if R::BODY_BYTES.is_some_and(|bytes| bytes + HEADER_SIZE <= ATOMIC_SECTOR_SIZE) {
        assert!(
            block[ATOMIC_SECTOR_SIZE..].iter().all(|&byte| byte == 0),
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
    assert!(
        decode::<R>(&flipped[..]).is_err(),
        "a flipped bit {bit} went unnoticed"
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
    block[1000] = 1;
    assert_eq!(decode::<NodeSlot>(&block[..]), Err(DecodeError::Torn));
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
    block[4] = 3;
    assert_eq!(
        decode::<FenceAck>(&block[..]),
        Err(DecodeError::UnsupportedVersion {
            found: 3,
            supported: 2
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
