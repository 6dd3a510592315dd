//! Strategies for every record type, shared by the codec tests.
#![allow(dead_code)]
use disklayout::*;
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};

/// An epoch, sequence, incarnation, position or time: at most `COUNTER_MAX` (FORMAT.md §3).
pub fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![0..=COUNTER_MAX, Just(COUNTER_MAX)]
}

pub fn node_id() -> impl Strategy<Value = u8> {
    1u8..=NODE_ID_MAX
}

pub fn optional_node_id() -> impl Strategy<Value = u8> {
    0u8..=NODE_ID_MAX
}

pub fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9_.é-]{{1,{}}}", max_bytes / 2))
        .expect("valid regex")
        .prop_filter("fits its field", move |text| {
            !text.is_empty() && text.len() < max_bytes
        })
}

pub fn address() -> impl Strategy<Value = SocketAddr> {
    let v4 =
        (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port));
    let v6 = (any::<[u8; 16]>(), 1u16.., any::<u32>()).prop_map(|(ip, port, scope)| {
        SocketAddr::V6(std::net::SocketAddrV6::new(ip.into(), port, 0, scope))
    });
    prop_oneof![v4, v6]
}

pub fn node_entry() -> impl Strategy<Value = NodeEntry> {
    (
        node_id(),
        text(NODE_NAME_BYTES_MAX),
        proptest::collection::vec(address(), 1..=ADDRESSES_MAX),
    )
        .prop_map(|(node_id, name, addresses)| NodeEntry {
            node_id,
            name,
            addresses,
        })
}

pub fn lease(name: impl Strategy<Value = String>) -> impl Strategy<Value = Lease> {
    (
        optional_node_id(),
        counter(),
        counter(),
        optional_node_id(),
        counter(),
        name,
    )
        .prop_map(
            |(owner, owner_incarnation, owner_epoch, challenger, challenger_incarnation, name)| {
                Lease {
                    owner,
                    owner_incarnation,
                    owner_epoch,
                    challenger,
                    challenger_incarnation,
                    name,
                }
            },
        )
}

pub fn node_slot() -> impl Strategy<Value = NodeSlot> {
    (
        node_id(),
        0u8..4,
        counter(),
        counter(),
        any::<u64>(),
        counter(),
        any::<u32>(),
    )
        .prop_map(
            |(node_id, state, incarnation, epoch, members, realtime_ms, lease_valid_ms)| NodeSlot {
                node_id,
                state: NodeState::from_code(state).expect("0..4 are states"),
                incarnation,
                epoch,
                members,
                realtime_ms,
                lease_valid_ms,
            },
        )
}

pub fn fence_request() -> impl Strategy<Value = FenceRequest> {
    (node_id(), counter(), node_id(), counter(), counter()).prop_map(
        |(target, target_incarnation, requester, requester_epoch, requester_incarnation)| {
            FenceRequest {
                target,
                target_incarnation,
                requester,
                requester_epoch,
                requester_incarnation,
            }
        },
    )
}

pub fn acknowledged() -> impl Strategy<Value = Acknowledged> {
    prop_oneof![
        Just(Acknowledged::Every),
        (node_id(), counter(), counter()).prop_map(
            |(requester, requester_incarnation, sequence)| Acknowledged::Request {
                requester,
                requester_incarnation,
                sequence,
            }
        ),
    ]
}

pub fn fence_ack() -> impl Strategy<Value = FenceAck> {
    (node_id(), counter(), acknowledged(), any::<bool>()).prop_map(
        |(node_id, incarnation, acknowledged, resources_stopped)| FenceAck {
            node_id,
            incarnation,
            acknowledged,
            resources_stopped,
        },
    )
}

pub fn checkpoint_header() -> impl Strategy<Value = CheckpointHeader> {
    (
        counter(),
        counter(),
        0..=CHECKPOINT_PAYLOAD_BYTES_MAX,
        any::<u32>(),
    )
        .prop_map(
            |(database_sequence, log_position, payload_bytes, payload_crc32)| CheckpointHeader {
                database_sequence,
                log_position,
                payload_bytes,
                payload_crc32,
            },
        )
}

pub fn log_update() -> impl Strategy<Value = LogUpdate> {
    (
        counter(),
        node_id(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(sequence, origin, payload)| LogUpdate {
            sequence,
            origin,
            payload,
        })
}

pub fn log_block() -> impl Strategy<Value = LogBlock> {
    (counter(), proptest::collection::vec(log_update(), 1..12))
        .prop_map(|(epoch, updates)| LogBlock { epoch, updates })
}

pub fn timing() -> impl Strategy<Value = Timing> {
    (1u32..1000, 1u32..1000, 0u32..5000, 1u32..100_000).prop_filter_map(
        "valid timing",
        |(hb, renew, extra, drift)| {
            let expiry = 2 * renew + 1 + extra;
            let timing = Timing {
                heartbeat_interval_ms: hb,
                lease_renew_interval_ms: renew,
                lease_expiry_ms: expiry,
                fence_timeout_ms: (expiry / 2).max(1),
                clock_drift_ppm_max: drift - 1,
            };
            timing.validate().ok().map(|_| timing)
        },
    )
}

pub fn superblock() -> impl Strategy<Value = Superblock> {
    (
        text(CLUSTER_NAME_BYTES_MAX),
        286u64..200_000,
        0u32..600,
        timing(),
        proptest::bool::ANY,
    )
        .prop_filter_map(
            "disk large enough",
            |(cluster_name, blocks, slots, timing, required)| {
                let disk_size_bytes = blocks * BLOCK_SIZE as u64;
                let geometry = Geometry::for_disk(disk_size_bytes, slots).ok()?;
                Some(Superblock {
                    cluster_name,
                    disk_size_bytes,
                    geometry,
                    timing,
                    watchdog: match required {
                        true => disklayout::WatchdogPolicy::Required,
                        false => disklayout::WatchdogPolicy::Optional,
                    },
                })
            },
        )
}

pub fn sealed<R: std::fmt::Debug>(
    record: impl Strategy<Value = R>,
) -> impl Strategy<Value = Sealed<R>> {
    (1u64.., counter(), record).prop_map(|(cluster_id, sequence, record)| Sealed {
        cluster_id,
        sequence,
        record,
    })
}
