//! Issue 16: no number on the disk can stop a node. For every record type and every numeric
//! field, the values 0, 1, the field's MAX - 1 and MAX, and for counters also the largest
//! counter (2^62-1), one below and one above, are written with a correct CRC into a freshly
//! formatted image (the checkpoint's payload and CRC kept consistent with its header). Then
//! (a) `wolfpack disk check` reports the record invalid exactly when the decoder (or a check
//! only a record's place allows: its node's block, its log position, its checkpoint payload)
//! refuses it, and prints the decoder's own message, which names the field; and (b) a node
//! started on the image runs or refuses with a message naming the record, and never panics
//! (the test build checks overflow like the release build, which aborts): in process, the
//! daemon's startup (`read_disk_config`) and the host it would drive (core and runner) on the
//! image for 12 simulated seconds, long enough to form alone, take the quorum, take the log
//! over and append updates; and `wolfpack node` itself for a second on the images of the
//! issue's findings (sequences, epochs and log positions at and past the limits).
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path as FilePath, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use disklayout::{
    decode, encode, payload_crc32, Acknowledged, CheckpointHeader, FenceAck, FenceRequest,
    Geometry, Lease, LogBlock, LogUpdate, NodeEntry, NodeSlot, NodeState, QuorumLease, Record,
    RegionKind, ResourceLease, Sealed, Superblock, ATOMIC_SECTOR_SIZE, BLOCK_SIZE, COUNTER_MAX,
    HEADER_SIZE,
};
use wolfpack::core::db::{Path, Value};
use wolfpack::core::gum::replica::Replica;
use wolfpack::core::{self, Input};
use wolfpack::disk::storage::{MemoryStorage, Storage};
use wolfpack::host::{Host, HostConfig, HostOutput};
use wolfpack::runner::RunnerMutation;

const IMAGE_BYTES: u64 = 3 << 20;
/// Simulated time a node runs on each image: enough to form alone (claim the quorum lease
/// after its expiry), become the locker and replay the log.
const RUN_MS: u64 = 12_000;
const TICK_MS: u64 = 10;

fn wolfpack() -> &'static str {
    env!("CARGO_BIN_EXE_wolfpack")
}

fn scratch() -> PathBuf {
    let dir = FilePath::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A disk formatted by the CLI for two nodes.
fn formatted(dir: &FilePath) -> Vec<u8> {
    let path = dir.join("fresh.img");
    let output = Command::new(wolfpack())
        .args([
            "disk",
            "format",
            path.to_str().unwrap(),
            "--cluster-name",
            "hostile",
        ])
        .args(["--size", "3M", "--node", "1=n1@127.0.0.1:7400"])
        .args(["--node", "2=n2@127.0.0.2:7400"])
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&path).expect("read image")
}

/// Recomputes the CRC of each copy of the record in `block` (both sectors of a mirrored one).
fn reseal(block: &mut [u8], mirrored: bool) {
    let (window, copies) = match mirrored {
        true => (ATOMIC_SECTOR_SIZE, 2),
        false => (BLOCK_SIZE, 1),
    };
    for copy in 0..copies {
        let sector = &mut block[copy * window..(copy + 1) * window];
        let body_bytes = u32::from_le_bytes(sector[24..28].try_into().unwrap()) as usize;
        let body_end = (HEADER_SIZE + body_bytes).min(window);
        let mut covered = sector[..28].to_vec();
        covered.extend_from_slice(&sector[HEADER_SIZE..body_end]);
        let crc = payload_crc32(&covered);
        sector[28..32].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Writes `value` in `width` bytes at `at` in each copy of the record.
fn patch(block: &mut [u8], mirrored: bool, at: usize, width: usize, value: u64) {
    let copies = if mirrored { 2 } else { 1 };
    for copy in 0..copies {
        let at = copy * ATOMIC_SECTOR_SIZE + at;
        block[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    }
    reseal(block, mirrored);
}

fn values(width: usize, counter: bool) -> Vec<u64> {
    let max = match width {
        1 => u8::MAX as u64,
        2 => u16::MAX as u64,
        4 => u32::MAX as u64,
        _ => u64::MAX,
    };
    let mut values = vec![0, 1, max - 1, max];
    if counter {
        values.extend([COUNTER_MAX - 1, COUNTER_MAX, COUNTER_MAX + 1]);
    }
    values
}

/// One record type: where it sits, a valid record to start from, and its numeric fields
/// (name, block offset, width, whether it is a counter).
struct Kind {
    name: &'static str,
    offset_bytes: u64,
    block: Vec<u8>,
    mirrored: bool,
    fields: Vec<(&'static str, usize, usize, bool)>,
    /// The decoder's verdict on a block of this kind: `Err` holds its message.
    decode: fn(&[u8]) -> Result<(), String>,
    /// What the check refuses beyond the decoder (the record's place): why, if it does.
    placed: fn(&[u8], &Context) -> Option<String>,
}

struct Context {
    geometry: Geometry,
    image: Vec<u8>,
}

fn decoded<R: Record>(block: &[u8]) -> Result<Option<Sealed<R>>, String> {
    decode::<R>(block).map_err(|error| error.to_string())
}

fn verdict<R: Record>(block: &[u8]) -> Result<(), String> {
    decoded::<R>(block).map(|_| ())
}

fn sealed_block<R: Record>(cluster_id: u64, sequence: u64, record: R) -> Vec<u8> {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(
        &Sealed {
            cluster_id,
            sequence,
            record,
        },
        &mut block,
    )
    .expect("a valid record");
    block.to_vec()
}

fn nowhere(_: &[u8], _: &Context) -> Option<String> {
    None
}

fn node_in_block<R: Record>(block: &[u8], index: u64, node_of: fn(&R) -> u8) -> Option<String> {
    match decoded::<R>(block) {
        Ok(Some(sealed)) if u64::from(node_of(&sealed.record)) != index + 1 => {
            Some("names node".into())
        }
        _ => None,
    }
}

const HEADER_SEQUENCE: (&str, usize, usize, bool) = ("header sequence", 16, 8, true);

fn kinds(image: &[u8]) -> (Vec<Kind>, Context) {
    let superblock = decode::<Superblock>(&image[..BLOCK_SIZE])
        .expect("formatted")
        .expect("formatted");
    let cluster_id = superblock.cluster_id;
    let geometry = superblock.record.geometry;
    let at = |offset: u64| image[offset as usize..offset as usize + BLOCK_SIZE].to_vec();
    let slot = |node_id| NodeSlot {
        node_id,
        state: NodeState::Member,
        incarnation: 5,
        epoch: 3,
        members: 0b11,
        realtime_ms: 1_000,
        lease_valid_ms: 500,
    };
    let lease = |name: &str| Lease {
        owner: 2,
        owner_incarnation: 5,
        owner_epoch: 3,
        challenger: 0,
        challenger_incarnation: 0,
        name: name.into(),
    };
    let ack = |node_id| FenceAck {
        node_id,
        incarnation: 5,
        acknowledged: Acknowledged::Request {
            requester: 2,
            requester_incarnation: 4,
            sequence: 3,
        },
        resources_stopped: true,
    };
    let lease_fields = vec![
        HEADER_SEQUENCE,
        ("owner", 32, 1, false),
        ("challenger", 33, 1, false),
        ("owner_incarnation", 40, 8, true),
        ("owner_epoch", 48, 8, true),
        ("challenger_incarnation", 56, 8, true),
    ];
    let slot_fields = vec![
        HEADER_SEQUENCE,
        ("node_id", 32, 1, false),
        ("state", 33, 1, false),
        ("lease_ms", 36, 4, false),
        ("incarnation", 40, 8, true),
        ("epoch", 48, 8, true),
        ("members", 56, 8, false),
        ("realtime_ms", 64, 8, true),
    ];
    let ack_fields = vec![
        HEADER_SEQUENCE,
        ("node_id", 32, 1, false),
        ("stopped", 33, 1, false),
        ("requester", 34, 1, false),
        ("incarnation", 40, 8, true),
        ("acked_request", 48, 8, true),
        ("requester_incarnation", 56, 8, true),
    ];
    let entry_fields = vec![
        HEADER_SEQUENCE,
        ("node_id", 32, 1, false),
        ("addrs", 33, 1, false),
        ("family", 72, 1, false),
        ("port", 74, 2, false),
        ("scope_id", 76, 4, false),
    ];
    let mut superblock_fields = vec![
        HEADER_SEQUENCE,
        ("disk_size", 96, 8, false),
        ("block_size", 104, 4, false),
    ];
    for (index, kind) in RegionKind::ALL.iter().enumerate() {
        let name = |what: &str| -> &'static str {
            Box::leak(format!("{} {what}", kind.name()).into_boxed_str())
        };
        superblock_fields.push((name("offset"), 112 + index * 16, 8, false));
        superblock_fields.push((name("blocks"), 120 + index * 16, 8, false));
    }
    for (index, name) in [
        "heartbeat_interval_ms",
        "lease_renew_interval_ms",
        "lease_expiry_ms",
        "fence_timeout_ms",
        "clock_drift_ppm_max",
    ]
    .into_iter()
    .enumerate()
    {
        superblock_fields.push((name, 256 + 4 * index, 4, false));
    }
    // A checkpoint of an empty replica in slot A, and a barrier at log position 0.
    let payload = replica_payload(0);
    assert_eq!(payload, Replica::default().snapshot_bytes());
    assert_eq!(
        Replica::from_snapshot(&replica_payload(5)).map(|replica| replica.sequence),
        Ok(5)
    );
    let checkpoint = CheckpointHeader {
        database_sequence: 0,
        log_position: 0,
        payload_bytes: payload.len() as u64,
        payload_crc32: payload_crc32(&payload),
    };
    let barrier = LogUpdate {
        sequence: 1,
        origin: 2,
        payload: [5u64.to_le_bytes(), 0u64.to_le_bytes()].concat(),
    };
    let log = LogBlock {
        epoch: 3,
        updates: vec![barrier],
    };
    let mut context = Context {
        geometry,
        image: image.to_vec(),
    };
    let payload_at = geometry.checkpoint_region(0).block_offset(1) as usize;
    context.image[payload_at..payload_at + payload.len()].copy_from_slice(&payload);
    let kinds = vec![
        Kind {
            name: "superblock",
            offset_bytes: 0,
            block: at(0),
            mirrored: true,
            fields: superblock_fields,
            decode: verdict::<Superblock>,
            placed: |block, context| match decoded::<Superblock>(block) {
                Ok(Some(sealed)) if sealed.record.disk_size_bytes > context.image.len() as u64 => {
                    Some("truncated".into())
                }
                _ => None,
            },
        },
        Kind {
            name: "node entry 1",
            offset_bytes: geometry.node_entry_offset(1),
            block: at(geometry.node_entry_offset(1)),
            mirrored: true,
            fields: entry_fields.clone(),
            decode: verdict::<NodeEntry>,
            placed: |block, _| node_in_block::<NodeEntry>(block, 0, |r| r.node_id),
        },
        Kind {
            name: "node entry 2",
            offset_bytes: geometry.node_entry_offset(2),
            block: at(geometry.node_entry_offset(2)),
            mirrored: true,
            fields: entry_fields,
            decode: verdict::<NodeEntry>,
            placed: |block, _| node_in_block::<NodeEntry>(block, 1, |r| r.node_id),
        },
        Kind {
            name: "own node slot",
            offset_bytes: geometry.node_slot_offset(1),
            block: sealed_block(cluster_id, 7, slot(1)),
            mirrored: true,
            fields: slot_fields.clone(),
            decode: verdict::<NodeSlot>,
            placed: |block, _| node_in_block::<NodeSlot>(block, 0, |r| r.node_id),
        },
        Kind {
            name: "peer node slot",
            offset_bytes: geometry.node_slot_offset(2),
            block: sealed_block(cluster_id, 7, slot(2)),
            mirrored: true,
            fields: slot_fields,
            decode: verdict::<NodeSlot>,
            placed: |block, _| node_in_block::<NodeSlot>(block, 1, |r| r.node_id),
        },
        Kind {
            name: "quorum lease",
            offset_bytes: geometry.quorum_offset(),
            block: sealed_block(cluster_id, 7, QuorumLease(lease("quorum"))),
            mirrored: true,
            fields: lease_fields.clone(),
            decode: verdict::<QuorumLease>,
            placed: nowhere,
        },
        Kind {
            name: "resource lease",
            offset_bytes: geometry.region(RegionKind::ResourceLeases).block_offset(0),
            block: sealed_block(cluster_id, 7, ResourceLease(lease("fs"))),
            mirrored: true,
            fields: lease_fields,
            decode: verdict::<ResourceLease>,
            placed: nowhere,
        },
        Kind {
            name: "fence request",
            offset_bytes: geometry.fence_request_offset(1),
            block: sealed_block(
                cluster_id,
                7,
                FenceRequest {
                    target: 1,
                    target_incarnation: 5,
                    requester: 2,
                    requester_epoch: 3,
                    requester_incarnation: 4,
                },
            ),
            mirrored: true,
            fields: vec![
                HEADER_SEQUENCE,
                ("target", 32, 1, false),
                ("requester", 33, 1, false),
                ("target_incarnation", 40, 8, true),
                ("requester_epoch", 48, 8, true),
                ("requester_incarnation", 56, 8, true),
            ],
            decode: verdict::<FenceRequest>,
            placed: |block, _| node_in_block::<FenceRequest>(block, 0, |r| r.target),
        },
        Kind {
            name: "own fence ack",
            offset_bytes: geometry.fence_ack_offset(1),
            block: sealed_block(cluster_id, 7, ack(1)),
            mirrored: true,
            fields: ack_fields.clone(),
            decode: verdict::<FenceAck>,
            placed: |block, _| node_in_block::<FenceAck>(block, 0, |r| r.node_id),
        },
        Kind {
            name: "peer fence ack",
            offset_bytes: geometry.fence_ack_offset(2),
            block: sealed_block(cluster_id, 7, ack(2)),
            mirrored: true,
            fields: ack_fields,
            decode: verdict::<FenceAck>,
            placed: |block, _| node_in_block::<FenceAck>(block, 1, |r| r.node_id),
        },
        Kind {
            name: "checkpoint header",
            offset_bytes: geometry.checkpoint_region(0).offset_bytes,
            block: sealed_block(cluster_id, 1, checkpoint),
            mirrored: true,
            fields: vec![
                HEADER_SEQUENCE,
                ("database_sequence", 32, 8, true),
                ("log_position", 40, 8, true),
                ("payload_length", 48, 8, false),
                ("payload_crc32", 56, 4, false),
            ],
            decode: verdict::<CheckpointHeader>,
            placed: |block, context| {
                let Ok(Some(sealed)) = decoded::<CheckpointHeader>(block) else {
                    return None;
                };
                let region = context.geometry.checkpoint_region(0);
                let capacity = (region.blocks - 1) * BLOCK_SIZE as u64;
                let length = sealed.record.payload_bytes;
                if length > capacity {
                    return Some("exceeds the slot".into());
                }
                let start = region.block_offset(1) as usize;
                let payload = &context.image[start..start + length as usize];
                (payload_crc32(payload) != sealed.record.payload_crc32)
                    .then(|| "payload checksum mismatch".into())
            },
        },
        Kind {
            name: "log block",
            offset_bytes: geometry.region(RegionKind::Log).block_offset(0),
            block: sealed_block(cluster_id, 0, log),
            mirrored: false,
            fields: vec![
                HEADER_SEQUENCE,
                ("epoch", 32, 8, true),
                ("count", 40, 2, false),
                ("sequence", 48, 8, true),
                ("origin", 56, 1, false),
                ("length", 58, 2, false),
                ("incarnation (payload)", 60, 8, true),
                ("request id (payload)", 68, 8, true),
            ],
            decode: verdict::<LogBlock>,
            placed: |block, context| match decoded::<LogBlock>(block) {
                Ok(Some(sealed)) if sealed.sequence % context.geometry.log_blocks() != 0 => {
                    Some("holds log position".into())
                }
                _ => None,
            },
        },
    ];
    (kinds, context)
}

/// The checkpoint payload of an empty replica at `sequence` (FORMAT.md §9: the replica's
/// sequence at bytes 5..13, then the database snapshot, whose sequence is at its bytes 8..16
/// and whose CRC-32 ends it).
fn replica_payload(sequence: u64) -> Vec<u8> {
    let mut payload = Replica::default().snapshot_bytes();
    payload[5..13].copy_from_slice(&sequence.to_le_bytes());
    payload[22..30].copy_from_slice(&sequence.to_le_bytes());
    let end = payload.len() - 4;
    let crc = payload_crc32(&payload[14..end]);
    payload[end..].copy_from_slice(&crc.to_le_bytes());
    payload
}

/// One hostile image.
struct Case {
    label: String,
    image: Vec<u8>,
    /// The decoder's refusal, or the check only the record's place allows.
    refused: Option<String>,
}

fn cases(fresh: &[u8]) -> Vec<Case> {
    let (kinds, context) = kinds(fresh);
    let mut cases = Vec::new();
    for kind in &kinds {
        let mut base = context.image.clone();
        let at = kind.offset_bytes as usize;
        base[at..at + BLOCK_SIZE].copy_from_slice(&kind.block);
        let valid = Context {
            geometry: context.geometry,
            image: base.clone(),
        };
        assert_eq!((kind.decode)(&kind.block), Ok(()), "{}", kind.name);
        assert_eq!((kind.placed)(&kind.block, &valid), None, "{}", kind.name);
        for &(field, offset, width, counter) in &kind.fields {
            for value in values(width, counter) {
                let mut block = kind.block.clone();
                patch(&mut block, kind.mirrored, offset, width, value);
                if kind.name == "checkpoint header" && field == "payload_length" {
                    // A payload of another length has another CRC: keep the two consistent.
                    let capacity = (valid.geometry.checkpoint_region(0).blocks - 1) * 4096;
                    if value <= capacity {
                        let start = valid.geometry.checkpoint_region(0).block_offset(1) as usize;
                        let crc = payload_crc32(&base[start..start + value as usize]);
                        patch(&mut block, true, 56, 4, u64::from(crc));
                    }
                }
                let mut image = base.clone();
                if kind.name == "checkpoint header" && field == "database_sequence" {
                    // The payload carries the same sequence: the checkpoint is usable.
                    let payload = replica_payload(value);
                    let start = valid.geometry.checkpoint_region(0).block_offset(1) as usize;
                    image[start..start + payload.len()].copy_from_slice(&payload);
                    patch(&mut block, true, 56, 4, u64::from(payload_crc32(&payload)));
                }
                image[at..at + BLOCK_SIZE].copy_from_slice(&block);
                let placed = Context {
                    geometry: valid.geometry,
                    image: image.clone(),
                };
                let refused = match (kind.decode)(&block) {
                    Err(error) => Some(error),
                    Ok(()) => (kind.placed)(&block, &placed),
                };
                cases.push(Case {
                    label: format!("{} {field} = {value}", kind.name),
                    image,
                    refused,
                });
            }
        }
    }
    cases
}

/// (a): `wolfpack disk check` on the image names the refusal, or finds nothing wrong.
fn check(dir: &FilePath, index: usize, case: &Case) -> Result<(), String> {
    let path = dir.join(format!("check-{index}.img"));
    std::fs::write(&path, &case.image).map_err(|error| error.to_string())?;
    let output = Command::new(wolfpack())
        .args(["disk", "check", path.to_str().unwrap()])
        .output()
        .map_err(|error| error.to_string())?;
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if text.contains("panicked") || output.status.code().is_none() {
        return Err(format!("check crashed: {text}"));
    }
    match (&case.refused, output.status.code()) {
        (None, Some(0)) => Ok(()),
        (Some(refusal), Some(1)) if text.contains(refusal.as_str()) => Ok(()),
        (refusal, code) => Err(format!(
            "expected refusal {refusal:?}, check exited {code:?}:\n{text}"
        )),
    }
}

/// (b), in process: the daemon's startup on the image, then the host it would drive, with
/// the disk answering at once and nobody else on the network.
fn run_in_process(case: &Case) -> Result<String, String> {
    let mut storage = MemoryStorage::new(IMAGE_BYTES);
    storage.write_at(0, &case.image).expect("image fits");
    let realtime_ms = 1_700_000_000_000;
    let config = match wolfpack::node::startup::read_disk_config(
        &mut storage,
        "hostile.img",
        1,
        realtime_ms,
    ) {
        Ok(config) => config,
        // Startup reads the superblock, the node table and the own slot; a refusal names which.
        Err(refusal) => {
            let refusal = refusal.to_string();
            let named = [
                ("superblock", "superblock"),
                ("node entry", "node table entry"),
                ("own node slot", "node slot"),
            ]
            .iter()
            .any(|(record, name)| case.label.starts_with(record) && refusal.contains(name));
            return match named {
                true => Ok(format!("refused: {refusal}")),
                false => Err(format!("refused without naming the record: {refusal}")),
            };
        }
    };
    // The core configured exactly as the daemon configures it (node 1, no test groups).
    let mut host = Host::new(HostConfig {
        core: wolfpack::node::daemon::core_config(&config, false),
        seed: 16,
        test_groups: Vec::new(),
        refuse_ms_max: u64::MAX,
        runner_mutation: RunnerMutation::None,
        stop_failure: Default::default(),
    });
    let mut events = BTreeMap::new();
    let mut now_ms = 0;
    // An update now and then (refused until this node is the locker): the log is appended,
    // from the position and sequence the disk holds.
    let path = Path::parse("properties/hostile").expect("a path");
    let update = wolfpack::node::updates::encode(&path, Some(&Value::U64(16))).expect("valid");
    while now_ms < RUN_MS {
        now_ms += TICK_MS;
        host.tick(now_ms);
        if now_ms % 1000 == 0 {
            let _ = host.submit(now_ms, update.clone());
        }
        loop {
            let mut done = Vec::new();
            while let Some(output) = host.poll_output() {
                match output {
                    HostOutput::DiskRead { op, offset_bytes } => {
                        let mut block = Box::new([0u8; BLOCK_SIZE]);
                        let result = storage.read_at(offset_bytes, &mut block[..]);
                        done.push((op, result.ok().map(|_| block)));
                    }
                    HostOutput::DiskWrite {
                        op,
                        offset_bytes,
                        block,
                    } => {
                        let result = storage.write_at(offset_bytes, &block[..]);
                        done.push((op, result.ok().map(|_| block)));
                    }
                    HostOutput::Event(event) => {
                        let name = format!("{event:?}");
                        let name = name.split([' ', '{', '(']).next().unwrap_or("").to_string();
                        *events.entry(name).or_insert(0u32) += 1;
                    }
                    _ => {}
                }
            }
            if done.is_empty() {
                break;
            }
            for (op, block) in done {
                let result = match &block {
                    Some(block) => Ok(&**block),
                    None => Err(core::DiskError),
                };
                host.step(now_ms, Input::DiskDone { op, result });
            }
        }
    }
    Ok(format!("ran: {events:?}"))
}

/// The image with node 1 on an address of its own, so nodes on many images run at once (and
/// beside other tests' nodes, as `tests/common` picks them).
fn own_address(image: &[u8], index: usize) -> Vec<u8> {
    let mut image = image.to_vec();
    let superblock = decode::<Superblock>(&image[..BLOCK_SIZE])
        .expect("a finding keeps the superblock")
        .expect("formatted");
    let at = superblock.record.geometry.node_entry_offset(1) as usize;
    let mut entry = decode::<NodeEntry>(&image[at..at + BLOCK_SIZE])
        .expect("a finding keeps the node table")
        .expect("node 1 is configured");
    let lane = 20 + (std::process::id() % 200) as u8;
    let address = format!("127.{lane}.{}.1:7400", 100 + index);
    entry.record.addresses = vec![address.parse().expect("an address")];
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(&entry, &mut block).expect("a valid entry");
    image[at..at + BLOCK_SIZE].copy_from_slice(&block[..]);
    image
}

/// (b), the daemon itself: `wolfpack node` on the image for a second; it must still run or
/// have exited with a message, never by a signal or a panic.
fn run_binary(dir: &FilePath, index: usize, case: &Case) -> Result<(), String> {
    let image = dir.join(format!("node-{index}.img"));
    std::fs::write(&image, &case.image).map_err(|error| error.to_string())?;
    let key = dir.join("cluster.key");
    let log = dir.join(format!("node-{index}.log"));
    let file = std::fs::File::create(&log).map_err(|error| error.to_string())?;
    let mut child = Command::new(wolfpack())
        .args(["node", "--disk", image.to_str().unwrap(), "--node-id", "1"])
        .args(["--key", key.to_str().unwrap()])
        .args([
            "--admin-socket",
            dir.join(format!("n{index}.sock")).to_str().unwrap(),
        ])
        .args([
            "--event-log",
            dir.join(format!("events-{index}.log")).to_str().unwrap(),
        ])
        .args([
            "--resource-log-dir",
            dir.join(format!("res-{index}")).to_str().unwrap(),
        ])
        .args([
            "--ocf-state-dir",
            dir.join(format!("ocf-{index}")).to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|error| error.to_string())?)
        .stderr(file)
        .spawn()
        .map_err(|error| error.to_string())?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break Some(status);
        }
        if started.elapsed() > Duration::from_millis(1000) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.is_none() {
        // Ours, by the handle we spawned.
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    match status {
        _ if text.contains("panicked") => Err(format!("panicked:\n{text}")),
        Some(status) if status.signal().is_some() => Err(format!("killed by {status}:\n{text}")),
        Some(status) if text.trim().is_empty() => Err(format!("exited {status} silently")),
        _ => Ok(()),
    }
}

/// Runs `work` on every case on `threads` threads; the failures.
fn each<F>(cases: &[Case], threads: usize, work: F) -> Vec<String>
where
    F: Fn(usize, &Case) -> Result<(), String> + Sync,
{
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(index) else {
                    return;
                };
                if let Err(failure) = work(index, case) {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {failure}", case.label));
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

#[test]
fn no_number_on_the_disk_stops_a_node() {
    let dir = scratch();
    let fresh = formatted(&dir);
    let cases = cases(&fresh);
    assert!(cases.len() > 300, "{} cases", cases.len());
    let cores = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let phase = Instant::now();
    let mut failures = each(&cases, cores, |index, case| check(&dir, index, case));
    eprintln!("{} cases; disk check: {:?}", cases.len(), phase.elapsed());
    let phase = Instant::now();
    let outcomes = std::sync::Mutex::new(BTreeMap::new());
    failures.extend(each(&cases, cores, |_, case| {
        let outcome =
            catch_unwind(AssertUnwindSafe(|| run_in_process(case))).map_err(|panic| {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                    .unwrap_or_default();
                format!("the node panicked: {text}")
            })??;
        outcomes.lock().unwrap().insert(case.label.clone(), outcome);
        Ok(())
    }));
    eprintln!("in process: {:?}", phase.elapsed());
    let phase = Instant::now();
    // The findings of issue 16, on the real binary.
    let keygen = Command::new(wolfpack())
        .args(["keygen", dir.join("cluster.key").to_str().unwrap()])
        .output()
        .expect("keygen runs");
    assert!(keygen.status.success());
    let findings: Vec<Case> = cases
        .iter()
        .filter(|case| {
            let hostile = [
                "quorum lease header sequence",
                "own node slot header sequence",
                "peer node slot epoch",
                "own node slot epoch",
                "checkpoint header log_position",
                "checkpoint header database_sequence",
                "log block header sequence",
                "log block sequence",
            ];
            let extreme = [u64::MAX - 1, u64::MAX, COUNTER_MAX]
                .iter()
                .any(|value| case.label.ends_with(&format!(" = {value}")));
            hostile.iter().any(|prefix| case.label.starts_with(prefix)) && extreme
        })
        .enumerate()
        .map(|(index, case)| Case {
            label: case.label.clone(),
            image: own_address(&case.image, index),
            refused: case.refused.clone(),
        })
        .collect();
    // The binaries mostly wait: more of them than cores run at once.
    failures.extend(each(&findings, 4 * cores, |index, case| {
        run_binary(&dir, index, case)
    }));
    eprintln!("{} on the binary: {:?}", findings.len(), phase.elapsed());
    let outcomes = outcomes.into_inner().unwrap();
    for (label, outcome) in &outcomes {
        if std::env::var_os("HOSTILE_VERBOSE").is_some() {
            eprintln!("{label}: {outcome}");
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The in-process run got somewhere: a node alone on a fresh-looking disk forms and
    // takes the log over (else the test would prove nothing about the core).
    let baseline = &outcomes["quorum lease owner = 0"];
    assert!(
        baseline.contains("Stabilized") && baseline.contains("GumLocker"),
        "{baseline}"
    );
}
