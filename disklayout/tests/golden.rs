//! Golden images (FORMAT.md §11): three small disks built here, deterministically, and committed
//! under `golden/`. The tests check that the builder still produces the committed bytes, that
//! every record in them decodes and re-encodes to the same bytes, and that `inspect` reports
//! exactly the damage we put into `damaged.img`.
//!
//! The committed files are the point: they pin the on-disk format. If a change to the crate makes
//! these tests fail, the change broke compatibility with disks already written. Regenerate them
//! (`WOLFPACK_UPDATE_GOLDEN=1 cargo test -p disklayout --test golden`) only together with a new
//! layout version.
use disklayout::inspect::{inspect, AnyRecord, BlockReport, InspectError, Inspection, Outcome};
use disklayout::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Once;

/// The golden disks are exactly this many blocks: small enough to commit (git compresses the
/// zeros), large enough to have every region and a log ring that wraps.
const DISK_BLOCKS: u64 = 300;
const DISK_BYTES: u64 = DISK_BLOCKS * BLOCK_SIZE as u64;
const RESOURCE_LEASE_SLOTS: u32 = 8;
/// FORMAT.md §2 gives a 300-block disk with 8 lease slots a log ring of this many blocks.
const LOG_RING_BLOCKS: u64 = 26;
/// The hex digits spell "WFPACK" and 1; little-endian on disk it dumps as `01 00 4b 43 41 50 46 57`.
const CLUSTER_ID: u64 = 0x5746_5041_434B_0001;
const CLUSTER_NAME: &str = "golden";
const UPDATE_GOLDEN_VARIABLE: &str = "WOLFPACK_UPDATE_GOLDEN";

// The story the populated image tells, told in FORMAT.md's terms:
//
// Epoch 3 had nodes 1, 2, 3. Node 3 (incarnation 4) logged updates 50 and 51 and died before
// replicating them. Node 1 fenced it (request 7, in epoch 3); node 3's resource monitor stopped
// its resources and acknowledged. Node 3 restarted as incarnation 5 and rejoined: epoch 4 has
// nodes 1, 2, 3 again, and in epoch 4 node 1 reused sequence number 50. The log has lapped the
// ring once; checkpoint A (generation 1) covers positions below 10, checkpoint B (generation 2,
// the newest) covers positions below 22, and positions 22 to 30 follow it, wrapping at 26.
const EPOCH_BEFORE_FENCE: u64 = 3;
const EPOCH_NOW: u64 = 4;
const ALPHA_INCARNATION: u64 = 7;
const BETA_INCARNATION: u64 = 2;
const GAMMA_DEAD_INCARNATION: u64 = 4;
const GAMMA_INCARNATION: u64 = 5;
const FENCE_REQUEST_ID: u64 = 7;
const CHECKPOINT_A_LOG_POSITION: u64 = 10;
const CHECKPOINT_A_DATABASE_SEQUENCE: u64 = 20;
const CHECKPOINT_B_LOG_POSITION: u64 = 22;
const CHECKPOINT_B_DATABASE_SEQUENCE: u64 = 44;
/// The log block that carries a payload larger than one sector, so tearing it changes its CRC.
const TORN_LOG_POSITION: u64 = 24;
const RANDOM_RESOURCE_LEASE_SLOT: u32 = 5;
/// The members bitmap of epoch 4: nodes 1, 2 and 3.
const MEMBERS_NOW: u64 = 0b111;
/// 2026-01-01T00:00:00Z, so the slots carry a plausible wall clock without reading one.
const REALTIME_BASE_MS: u64 = 1_767_225_600_000;

/// Fixed seeds, one per use, so changing one piece of random data leaves the others alone.
const SEED_CHECKPOINT_PAYLOAD: u64 = 0x601d_0001;
const SEED_LARGE_LOG_PAYLOAD: u64 = 0x601d_0002;
const SEED_RANDOM_LEASE_SLOT: u64 = 0x601d_0003;
const SEED_RANDOM_DISK: u64 = 0x601d_0004;

/// SplitMix64: tiny, well mixed and fully determined by its seed; no crate, no clock.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let random = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
    }

    fn bytes(&mut self, count: usize) -> Vec<u8> {
        let mut bytes = vec![0; count];
        self.fill(&mut bytes);
        bytes
    }
}

// ---------------------------------------------------------------------------------------------
// The builder
// ---------------------------------------------------------------------------------------------

/// A disk image in memory and the geometry it was formatted with.
struct DiskImage {
    bytes: Vec<u8>,
    geometry: Geometry,
}

impl DiskImage {
    fn block_mut(&mut self, offset_bytes: u64) -> &mut Block {
        let start = usize::try_from(offset_bytes).expect("golden offsets fit in usize");
        <&mut Block>::try_from(&mut self.bytes[start..start + BLOCK_SIZE])
            .expect("the slice is one block long")
    }

    fn write<R: Record>(&mut self, offset_bytes: u64, sequence: u64, record: R) {
        let sealed = Sealed {
            cluster_id: CLUSTER_ID,
            sequence,
            record,
        };
        encode(&sealed, self.block_mut(offset_bytes)).expect("every golden record is valid");
    }

    /// Writes a checkpoint as FORMAT.md §9 lays it out: raw payload bytes from the slot's second
    /// block on (the rest of the slot stays zero), then the header with the payload's CRC.
    fn write_checkpoint(
        &mut self,
        slot: usize,
        generation: u64,
        database_sequence: u64,
        log_position: u64,
        payload: &[u8],
    ) {
        let region = self.geometry.checkpoint_region(slot);
        let capacity_bytes = (region.blocks - 1) * BLOCK_SIZE as u64;
        assert!(
            payload.len() as u64 <= capacity_bytes,
            "a golden checkpoint payload fits its slot"
        );
        let start = usize::try_from(region.block_offset(1)).expect("golden offsets fit in usize");
        self.bytes[start..start + payload.len()].copy_from_slice(payload);
        let header = CheckpointHeader {
            database_sequence,
            log_position,
            payload_bytes: payload.len() as u64,
            payload_crc32: payload_crc32(payload),
        };
        self.write(region.block_offset(0), generation, header);
    }
}

fn golden_geometry() -> Geometry {
    let geometry =
        Geometry::for_disk(DISK_BYTES, RESOURCE_LEASE_SLOTS).expect("300 blocks hold the layout");
    assert_eq!(
        geometry.log_blocks(),
        LOG_RING_BLOCKS,
        "the story's wrap point assumes this ring size"
    );
    assert_eq!(
        geometry.end_bytes(),
        DISK_BYTES,
        "the layout uses the whole golden disk"
    );
    geometry
}

fn address(text: &str) -> SocketAddr {
    text.parse()
        .expect("golden addresses are written correctly")
}

fn golden_nodes() -> Vec<NodeEntry> {
    vec![
        NodeEntry {
            node_id: 1,
            name: "alpha".to_string(),
            addresses: vec![address("198.18.0.1:7400"), address("198.19.0.1:7400")],
        },
        NodeEntry {
            node_id: 2,
            name: "beta".to_string(),
            addresses: vec![address("198.18.0.2:7400")],
        },
        NodeEntry {
            node_id: 3,
            name: "gamma".to_string(),
            addresses: vec![address("[2001:db8::3]:7400")],
        },
    ]
}

fn build_fresh() -> DiskImage {
    let geometry = golden_geometry();
    let superblock = Superblock {
        cluster_name: CLUSTER_NAME.to_string(),
        disk_size_bytes: DISK_BYTES,
        geometry,
        timing: Timing::default(),
        watchdog: Default::default(),
    };
    let mut image = DiskImage {
        bytes: vec![0; DISK_BYTES as usize],
        geometry,
    };
    let blocks = format_blocks(CLUSTER_ID, &superblock, &golden_nodes())
        .expect("the golden cluster formats");
    for (offset_bytes, block) in blocks {
        image.block_mut(offset_bytes).copy_from_slice(&block[..]);
    }
    image
}

/// One log update as the story needs it; the payload names it so a hex dump is readable.
fn update(sequence: u64, origin: u8) -> LogUpdate {
    LogUpdate {
        sequence,
        origin,
        payload: format!("update {sequence} from node {origin}").into_bytes(),
    }
}

/// Every log block of the populated image as (position, block), in position order.
fn golden_log() -> Vec<(u64, LogBlock)> {
    // The previous lap: position p carried updates 2p+1 and 2p+2. Positions 0 to 4 have since been
    // overwritten by 26 to 30; 5 to 21 are still there, and replay must stop at the first of them.
    let mut log: Vec<(u64, LogBlock)> = (5..CHECKPOINT_B_LOG_POSITION)
        .map(|position| {
            let origin = (position % 2) as u8 + 1;
            let updates = vec![
                update(2 * position + 1, origin),
                update(2 * position + 2, origin),
            ];
            (
                position,
                LogBlock {
                    epoch: EPOCH_BEFORE_FENCE,
                    updates,
                },
            )
        })
        .collect();
    let mut large = update(48, 1);
    large.payload = SplitMix64(SEED_LARGE_LOG_PAYLOAD).bytes(1500);
    let current_lap = [
        (22, EPOCH_BEFORE_FENCE, vec![update(45, 1), update(46, 2)]),
        (23, EPOCH_BEFORE_FENCE, vec![update(47, 2)]),
        (TORN_LOG_POSITION, EPOCH_BEFORE_FENCE, vec![large]),
        // Node 3's last batch: it died before 50 and 51 reached anyone else.
        (
            25,
            EPOCH_BEFORE_FENCE,
            vec![update(49, 2), update(50, 3), update(51, 3)],
        ),
        // Ring block 0 again. Epoch 4 reuses 50, which discards node 3's 50 and 51.
        (26, EPOCH_NOW, vec![update(50, 1)]),
        (27, EPOCH_NOW, vec![update(51, 2), update(52, 1)]),
        (28, EPOCH_NOW, vec![update(53, 3)]),
        (29, EPOCH_NOW, vec![update(54, 1), update(55, 2)]),
        (30, EPOCH_NOW, vec![update(56, 1)]),
    ];
    for (position, epoch, updates) in current_lap {
        log.push((position, LogBlock { epoch, updates }));
    }
    log
}

/// A database dump as a checkpoint would hold it: readable lines, then opaque bytes so that the
/// larger payload spans more than one block and ends in the middle of one.
fn checkpoint_payload(database_sequence: u64, opaque_bytes: usize) -> Vec<u8> {
    let mut payload: Vec<u8> = (1..=database_sequence)
        .flat_map(|sequence| format!("key{sequence}=value{sequence}\n").into_bytes())
        .collect();
    payload.extend(SplitMix64(SEED_CHECKPOINT_PAYLOAD ^ database_sequence).bytes(opaque_bytes));
    payload
}

fn build_populated() -> DiskImage {
    let mut image = build_fresh();
    let geometry = image.geometry;
    let slots = [
        (1, ALPHA_INCARNATION, 1207, 1000),
        (2, BETA_INCARNATION, 1193, 1000),
        // Node 3 restarted recently and holds no resources yet, hence no lease.
        (3, GAMMA_INCARNATION, 1530, 0),
    ];
    for (node_id, incarnation, heartbeat_counter, lease_valid_ms) in slots {
        let slot = NodeSlot {
            node_id,
            state: NodeState::Member,
            incarnation,
            epoch: EPOCH_NOW,
            members: MEMBERS_NOW,
            realtime_ms: REALTIME_BASE_MS + node_id as u64 * 17,
            lease_valid_ms,
        };
        image.write(geometry.node_slot_offset(node_id), heartbeat_counter, slot);
    }
    let quorum = Lease {
        owner: 1,
        owner_incarnation: ALPHA_INCARNATION,
        owner_epoch: EPOCH_NOW,
        challenger: 0,
        challenger_incarnation: 0,
        name: QUORUM_LEASE_NAME.to_string(),
    };
    image.write(geometry.quorum_offset(), 5012, QuorumLease(quorum));
    let request = FenceRequest {
        target: 3,
        target_incarnation: GAMMA_DEAD_INCARNATION,
        requester: 1,
        requester_epoch: EPOCH_BEFORE_FENCE,
        requester_incarnation: ALPHA_INCARNATION,
    };
    image.write(geometry.fence_request_offset(3), FENCE_REQUEST_ID, request);
    // Written by the fenced incarnation once it stopped everything: it echoes the request.
    let ack = FenceAck {
        node_id: 3,
        incarnation: GAMMA_DEAD_INCARNATION,
        acknowledged: Acknowledged::Request {
            requester: 1,
            requester_incarnation: ALPHA_INCARNATION,
            sequence: FENCE_REQUEST_ID,
        },
        resources_stopped: true,
    };
    image.write(geometry.fence_ack_offset(3), 1, ack);
    let shared_fs = Lease {
        owner: 2,
        owner_incarnation: BETA_INCARNATION,
        owner_epoch: EPOCH_NOW,
        challenger: 0,
        challenger_incarnation: 0,
        name: "shared-fs".to_string(),
    };
    image.write(
        geometry.resource_lease_offset(0),
        42,
        ResourceLease(shared_fs),
    );
    let payload_a = checkpoint_payload(CHECKPOINT_A_DATABASE_SEQUENCE, 0);
    image.write_checkpoint(
        0,
        1,
        CHECKPOINT_A_DATABASE_SEQUENCE,
        CHECKPOINT_A_LOG_POSITION,
        &payload_a,
    );
    let payload_b = checkpoint_payload(CHECKPOINT_B_DATABASE_SEQUENCE, 5000);
    image.write_checkpoint(
        1,
        2,
        CHECKPOINT_B_DATABASE_SEQUENCE,
        CHECKPOINT_B_LOG_POSITION,
        &payload_b,
    );
    for (position, block) in golden_log() {
        image.write(geometry.log_block_offset(position), position, block);
    }
    image
}

/// Recomputes a record's CRC as envelope.rs defines it (header bytes 0..28, then the body), so a
/// deliberately wrong field is reported for itself and not as a checksum mismatch.
fn reseal(block: &mut [u8]) {
    let body_bytes = u32::from_le_bytes(block[24..28].try_into().expect("four bytes")) as usize;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&block[..28]);
    hasher.update(&block[HEADER_SIZE..HEADER_SIZE + body_bytes]);
    block[28..32].copy_from_slice(&hasher.finalize().to_le_bytes());
}

/// Each damage done to `damaged.img`: where, and how the problem report must start. The test
/// checks `damaged.expected` against this too, so the file cannot drift into nonsense.
const DAMAGE: [(RegionKind, u64, &str); 5] = [
    (RegionKind::NodeSlots, 1, "checksum mismatch"),
    (
        RegionKind::FenceRequests,
        2,
        "reserved byte at offset 34 is not zero",
    ),
    (
        RegionKind::ResourceLeases,
        RANDOM_RESOURCE_LEASE_SLOT as u64,
        "magic ",
    ),
    (
        RegionKind::CheckpointA,
        0,
        "layout version 4 is not supported",
    ),
    (
        RegionKind::Log,
        TORN_LOG_POSITION % LOG_RING_BLOCKS,
        "checksum mismatch",
    ),
];

fn build_damaged() -> DiskImage {
    let mut image = build_populated();
    let geometry = image.geometry;
    // A single flipped bit in both copies of node 2's slot (FORMAT.md §3): bit 0 of the epoch
    // field (offset 48 in each copy), 4 -> 5. One copy alone would be masked by the other.
    let slot = image.block_mut(geometry.node_slot_offset(2));
    slot[48] ^= 0x01;
    slot[ATOMIC_SECTOR_SIZE + 48] ^= 0x01;
    // A torn write of the large log block over a block that was empty before: only its first
    // sector reached the disk, the other seven still hold zeros.
    image.block_mut(geometry.log_block_offset(TORN_LOG_POSITION))[ATOMIC_SECTOR_SIZE..].fill(0);
    // The first of the fence request's six reserved body bytes is set, with a CRC that matches.
    let request = image.block_mut(geometry.fence_request_offset(3));
    for copy in request.chunks_mut(ATOMIC_SECTOR_SIZE).take(2) {
        copy[34] = 0x01;
        reseal(copy);
    }
    // Checkpoint A as a newer wolfpack would write it: layout version 4, CRC matching.
    let checkpoint_a = image.block_mut(geometry.checkpoint_offset(0));
    for copy in checkpoint_a.chunks_mut(ATOMIC_SECTOR_SIZE).take(2) {
        copy[4..6].copy_from_slice(&4u16.to_le_bytes());
        reseal(copy);
    }
    // A free resource lease slot full of garbage.
    SplitMix64(SEED_RANDOM_LEASE_SLOT)
        .fill(image.block_mut(geometry.resource_lease_offset(RANDOM_RESOURCE_LEASE_SLOT)));
    image
}

// ---------------------------------------------------------------------------------------------
// Golden files
// ---------------------------------------------------------------------------------------------

const IMAGE_NAMES: [&str; 3] = ["fresh.img", "populated.img", "damaged.img"];
const DAMAGED_EXPECTED: &str = "damaged.expected";

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

fn build(name: &str) -> DiskImage {
    match name {
        "fresh.img" => build_fresh(),
        "populated.img" => build_populated(),
        "damaged.img" => build_damaged(),
        _ => panic!("no golden image is called {name}"),
    }
}

fn updating_golden_files() -> bool {
    std::env::var_os(UPDATE_GOLDEN_VARIABLE).is_some_and(|value| value == "1")
}

/// Writes every golden file from the builder. Guarded by a `Once` so that tests running in
/// parallel never read a file while another test is writing it.
fn write_golden_files() {
    std::fs::create_dir_all(golden_path("")).expect("create the golden directory");
    for name in IMAGE_NAMES {
        std::fs::write(golden_path(name), &build(name).bytes).expect("write a golden image");
    }
    let damaged =
        inspect_image(&build_damaged().bytes).expect("the damaged image has a good superblock");
    std::fs::write(golden_path(DAMAGED_EXPECTED), problem_lines(&damaged))
        .expect("write damaged.expected");
}

/// The committed golden file `name`, after regenerating the files if asked to.
fn committed(name: &str) -> Vec<u8> {
    static WRITE_ONCE: Once = Once::new();
    if updating_golden_files() {
        WRITE_ONCE.call_once(write_golden_files);
    }
    let path = golden_path(name);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; generate it with {UPDATE_GOLDEN_VARIABLE}=1",
            path.display()
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Reading images back
// ---------------------------------------------------------------------------------------------

fn inspect_image(image: &[u8]) -> Result<Inspection, InspectError> {
    let mut read = |offset_bytes: u64, block: &mut Block| -> Result<(), String> {
        let start = usize::try_from(offset_bytes)
            .map_err(|_| format!("offset {offset_bytes} exceeds usize"))?;
        let bytes = image.get(start..start + BLOCK_SIZE).ok_or_else(|| {
            format!(
                "offset {offset_bytes} is past the image's {} bytes",
                image.len()
            )
        })?;
        block.copy_from_slice(bytes);
        Ok(())
    };
    inspect(image.len() as u64, &mut read)
}

fn block_at(image: &[u8], offset_bytes: u64) -> &[u8] {
    let start = usize::try_from(offset_bytes).expect("golden offsets fit in usize");
    &image[start..start + BLOCK_SIZE]
}

/// The region and index of block number `block` (0 is the superblock), for messages.
fn place_of(geometry: &Geometry, block: u64) -> String {
    let offset_bytes = block * BLOCK_SIZE as u64;
    if block == 0 {
        return "superblock".to_string();
    }
    for kind in RegionKind::ALL {
        let region = geometry.region(kind);
        if (region.offset_bytes..region.end_bytes()).contains(&offset_bytes) {
            return format!(
                "{} {}",
                kind.name(),
                (offset_bytes - region.offset_bytes) / BLOCK_SIZE as u64
            );
        }
    }
    "past the last region".to_string()
}

/// One line per problem: `REGION INDEX OFFSET: MESSAGE`.
fn problem_lines(inspection: &Inspection) -> String {
    inspection
        .problems()
        .map(|report| {
            let message = match &report.outcome {
                Outcome::Bad(problem) => problem.clone(),
                Outcome::Unreadable(error) => format!("unreadable: {error}"),
                Outcome::Empty | Outcome::Valid(_) => {
                    unreachable!("problems() yields only bad blocks")
                }
            };
            format!(
                "{} {} {}: {message}\n",
                report.region, report.index, report.offset_bytes
            )
        })
        .collect()
}

fn encoded<R: Record>(sealed: &Sealed<R>) -> Box<Block> {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(sealed, &mut block).expect("a decoded record is valid, so it encodes");
    block
}

/// The region a record type belongs in, and the record encoded again.
fn region_and_encoding(record: &AnyRecord) -> (&'static [RegionKind], Box<Block>) {
    match record {
        AnyRecord::NodeEntry(sealed) => (&[RegionKind::NodeTable], encoded(sealed)),
        AnyRecord::QuorumLease(sealed) => (&[RegionKind::Quorum], encoded(sealed)),
        AnyRecord::NodeSlot(sealed) => (&[RegionKind::NodeSlots], encoded(sealed)),
        AnyRecord::FenceRequest(sealed) => (&[RegionKind::FenceRequests], encoded(sealed)),
        AnyRecord::FenceAck(sealed) => (&[RegionKind::FenceAcks], encoded(sealed)),
        AnyRecord::ResourceLease(sealed) => (&[RegionKind::ResourceLeases], encoded(sealed)),
        AnyRecord::Checkpoint(sealed) => (
            &[RegionKind::CheckpointA, RegionKind::CheckpointB],
            encoded(sealed),
        ),
        AnyRecord::LogBlock(sealed) => (&[RegionKind::Log], encoded(sealed)),
    }
}

/// Walks every block of every region by the superblock's geometry and checks it against what
/// `inspect` reported: a valid record of the region's type that re-encodes to the same bytes, a
/// reported problem, an empty block, or checkpoint payload (zero after the payload's end).
fn check_every_block_round_trips(name: &str, image: &[u8]) {
    let inspection = inspect_image(image).unwrap_or_else(|error| panic!("{name}: {error}"));
    let superblock = &inspection.superblock;
    assert_eq!(
        &encoded(superblock)[..],
        block_at(image, 0),
        "{name}: the superblock re-encodes"
    );
    let geometry = superblock.record.geometry;
    let report_at = |offset_bytes: u64| -> Option<&BlockReport> {
        inspection
            .blocks
            .iter()
            .find(|report| report.offset_bytes == offset_bytes)
    };
    let mut blocks_checked = 0;
    for (region_number, kind) in RegionKind::ALL.into_iter().enumerate() {
        let region = geometry.region(kind);
        let is_checkpoint = matches!(kind, RegionKind::CheckpointA | RegionKind::CheckpointB);
        let mut empty_blocks = 0;
        for index in 0..region.blocks {
            let offset_bytes = region.block_offset(index);
            let bytes = block_at(image, offset_bytes);
            let place = format!("{name}: {} {index} (offset {offset_bytes})", kind.name());
            if is_checkpoint && index > 0 {
                check_checkpoint_payload_block(
                    &place,
                    report_at(region.offset_bytes),
                    index,
                    bytes,
                );
                continue;
            }
            blocks_checked += 1;
            match report_at(offset_bytes) {
                None => {
                    assert!(
                        bytes.iter().all(|&byte| byte == 0),
                        "{place}: not empty, yet not reported"
                    );
                    empty_blocks += 1;
                }
                Some(report) => {
                    assert_eq!(
                        (report.region, report.index),
                        (kind.name(), index),
                        "{place}: report's place"
                    );
                    match &report.outcome {
                        Outcome::Valid(record) => {
                            let (allowed_regions, again) = region_and_encoding(record);
                            assert!(allowed_regions.contains(&kind), "{place}: holds {record:?}");
                            assert_eq!(&again[..], bytes, "{place}: re-encoding changed the bytes");
                        }
                        Outcome::Bad(_) | Outcome::Unreadable(_) => {}
                        Outcome::Empty => {
                            panic!("{place}: inspect lists empty blocks only as a count")
                        }
                    }
                }
            }
        }
        assert_eq!(
            inspection.empty_blocks[region_number],
            empty_blocks,
            "{name}: empty blocks in {}",
            kind.name()
        );
    }
    assert_eq!(
        inspection.blocks.len(),
        blocks_checked - inspection.empty_blocks.iter().sum::<u64>() as usize
    );
}

/// A checkpoint payload block holds payload bytes up to the header's payload length, then zeros.
fn check_checkpoint_payload_block(
    place: &str,
    header: Option<&BlockReport>,
    index: u64,
    bytes: &[u8],
) {
    let payload_bytes = match header.map(|report| &report.outcome) {
        Some(Outcome::Valid(AnyRecord::Checkpoint(sealed))) => sealed.record.payload_bytes,
        // The header is a reported problem: nothing says how long the payload is.
        Some(_) => return,
        None => 0,
    };
    let block_start = (index - 1) * BLOCK_SIZE as u64;
    let payload_in_block = payload_bytes
        .saturating_sub(block_start)
        .min(BLOCK_SIZE as u64) as usize;
    assert!(
        bytes[payload_in_block..].iter().all(|&byte| byte == 0),
        "{place}: non-zero after the payload's end"
    );
}

/// The sequence number and origin of each update replay kept.
fn replayed(inspection: &Inspection) -> Vec<(u64, u8)> {
    inspection
        .log
        .updates
        .iter()
        .map(|update| (update.sequence, update.origin))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Test 1: the builder still produces the committed bytes. When it does not, either the builder
/// or the crate's encoding changed, and a disk written before would no longer read the same.
#[test]
fn builder_output_equals_the_committed_images() {
    let mut failures = Vec::new();
    for name in IMAGE_NAMES {
        let built = build(name);
        assert_eq!(
            build(name).bytes,
            built.bytes,
            "{name}: the builder is deterministic"
        );
        assert_eq!(
            built.bytes.len() as u64,
            DISK_BYTES,
            "{name}: exactly {DISK_BLOCKS} blocks"
        );
        let committed = committed(name);
        if committed.len() != built.bytes.len() {
            failures.push(format!(
                "{name}: committed {} bytes, built {}",
                committed.len(),
                built.bytes.len()
            ));
            continue;
        }
        let differing: Vec<String> = built
            .bytes
            .chunks(BLOCK_SIZE)
            .zip(committed.chunks(BLOCK_SIZE))
            .enumerate()
            .filter_map(|(block, (built_block, committed_block))| {
                let first = built_block
                    .iter()
                    .zip(committed_block)
                    .position(|(built, committed)| built != committed)?;
                Some(format!(
                    "{name}: block {block} ({}) differs, first at byte {first} of the block",
                    place_of(&built.geometry, block as u64)
                ))
            })
            .collect();
        failures.extend(differing);
    }
    assert!(
        failures.is_empty(),
        "golden images differ from the builder:\n{}",
        failures.join("\n")
    );
}

/// Test 2: every non-empty block decodes as its region's record type and re-encodes identically.
#[test]
fn every_record_decodes_and_re_encodes_byte_for_byte() {
    for name in IMAGE_NAMES {
        check_every_block_round_trips(name, &committed(name));
    }
}

/// Test 3a: a fresh disk is all good, and its log is empty.
#[test]
fn fresh_image_has_no_problems_and_an_empty_log() {
    let inspection = inspect_image(&committed("fresh.img")).expect("fresh.img inspects");
    assert_eq!(problem_lines(&inspection), "", "fresh.img has no problems");
    assert_eq!(inspection.superblock.cluster_id, CLUSTER_ID);
    assert_eq!(inspection.superblock.record.cluster_name, CLUSTER_NAME);
    assert_eq!(inspection.superblock.record.timing, Timing::default());
    let nodes: Vec<&NodeEntry> = inspection
        .blocks
        .iter()
        .filter_map(|report| match &report.outcome {
            Outcome::Valid(AnyRecord::NodeEntry(sealed)) => Some(&sealed.record),
            _ => None,
        })
        .collect();
    assert_eq!(
        nodes,
        golden_nodes().iter().collect::<Vec<_>>(),
        "the node table holds the three nodes"
    );
    assert_eq!(
        inspection.blocks.len(),
        3,
        "a format writes only the node table after the superblock"
    );
    assert_eq!(inspection.log.updates, vec![]);
    assert_eq!(inspection.log.next_position, 0);
    assert_eq!(inspection.log.end, LogEnd::Empty);
}

/// Test 3b: the populated disk is all good; replay starts at checkpoint B, wraps the ring, applies
/// the duplicate rule and stops at the previous lap.
#[test]
fn populated_image_has_no_problems_and_replays_from_checkpoint_b() {
    let inspection = inspect_image(&committed("populated.img")).expect("populated.img inspects");
    assert_eq!(
        problem_lines(&inspection),
        "",
        "populated.img has no problems"
    );
    let generations: Vec<(&str, u64, u64)> = inspection
        .blocks
        .iter()
        .filter_map(|report| match &report.outcome {
            Outcome::Valid(AnyRecord::Checkpoint(sealed)) => {
                Some((report.region, sealed.sequence, sealed.record.log_position))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        generations,
        vec![("checkpoint-a", 1, 10), ("checkpoint-b", 2, 22)]
    );
    // Positions 22 to 30; node 3's 50 and 51 (position 25) give way to node 1's 50 (position 26).
    let expected = vec![
        (45, 1),
        (46, 2),
        (47, 2),
        (48, 1),
        (49, 2),
        (50, 1),
        (51, 2),
        (52, 1),
        (53, 3),
        (54, 1),
        (55, 2),
        (56, 1),
    ];
    assert_eq!(replayed(&inspection), expected);
    assert_eq!(
        inspection.log.discarded, 2,
        "node 3's 50 and 51 are discarded"
    );
    assert_eq!(inspection.log.next_position, 31);
    assert_eq!(
        inspection.log.end,
        LogEnd::OlderPosition { found: 5 },
        "ring block 5 is from the previous lap"
    );
    let log_blocks = inspection
        .blocks
        .iter()
        .filter(|report| report.region == RegionKind::Log.name())
        .count();
    assert_eq!(
        log_blocks as u64, LOG_RING_BLOCKS,
        "the ring is full: 9 current blocks, 17 of the last lap"
    );
}

/// Test 4: the damaged disk reports exactly the problems in `damaged.expected`, each of which is
/// one of the damages made, and replay stops at the torn block.
#[test]
fn damaged_image_reports_exactly_the_expected_problems() {
    let inspection =
        inspect_image(&committed("damaged.img")).expect("damaged.img has a good superblock");
    let expected =
        String::from_utf8(committed(DAMAGED_EXPECTED)).expect("damaged.expected is UTF-8");
    let found = problem_lines(&inspection);
    assert_eq!(
        found, expected,
        "problems found (left) differ from damaged.expected (right)"
    );
    let geometry = inspection.superblock.record.geometry;
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), DAMAGE.len(), "one line per damage");
    for (line, (kind, index, message_start)) in lines.iter().zip(DAMAGE) {
        let offset_bytes = geometry.region(kind).block_offset(index);
        let prefix = format!("{} {index} {offset_bytes}: {message_start}", kind.name());
        assert!(
            line.starts_with(&prefix),
            "line {line:?} should start with {prefix:?}"
        );
    }
    assert_eq!(
        replayed(&inspection),
        vec![(45, 1), (46, 2), (47, 2)],
        "positions 22 and 23 survive"
    );
    assert_eq!(
        inspection.log.next_position, TORN_LOG_POSITION,
        "replay stops at the torn block"
    );
    assert!(
        matches!(
            inspection.log.end,
            LogEnd::Invalid(DecodeError::Checksum { .. })
        ),
        "the torn block ends the log: {:?}",
        inspection.log.end
    );
}

/// Test 5: images that cannot be inspected at all say why.
#[test]
fn truncated_random_and_blank_images_are_refused() {
    let populated = committed("populated.img");
    let log = golden_geometry().region(RegionKind::Log);
    let cut_bytes = log.block_offset(log.blocks / 2) as usize;
    assert_eq!(
        inspect_image(&populated[..cut_bytes]).map(|_| ()),
        Err(InspectError::Truncated {
            formatted_bytes: DISK_BYTES,
            size_bytes: cut_bytes as u64
        })
    );
    let random = SplitMix64(SEED_RANDOM_DISK).bytes(populated.len());
    let error = inspect_image(&random)
        .map(|_| ())
        .expect_err("random bytes are not a disk");
    assert!(
        matches!(error, InspectError::BadSuperblock(DecodeError::WrongMagic { expected, .. }) if expected == *b"WPSB"),
        "random bytes: {error:?}"
    );
    assert!(
        error.to_string().starts_with("not a wolfpack disk"),
        "{error}"
    );
    let blank = vec![0u8; populated.len()];
    assert_eq!(
        inspect_image(&blank).map(|_| ()),
        Err(InspectError::NotFormatted)
    );
}
