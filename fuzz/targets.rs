//! The bodies of the fuzz targets (issue 16), shared by the libFuzzer targets in
//! `fuzz/fuzz_targets/` (nightly, `cargo fuzz run NAME`) and by `tests/fuzz_corpus.rs`, which
//! replays every file of `fuzz/corpus/NAME/` through the same function on stable Rust.
//!
//! Each target decodes what an outsider (or an authenticated peer) can send and then hands the
//! decoded value to the code that consumes it, where that code is pure. A panic is a finding.
//! No input is skipped: the bugs the first campaign reached (issue 16's findings 1, 3 and 6, and
//! a peer's node set naming an unconfigured node) are fixed, and their inputs are in the corpora.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use disklayout::{
    CheckpointHeader, FenceAck, FenceRequest, LogBlock, NodeEntry, NodeSlot, QuorumLease,
    ResourceLease, Sealed, Superblock, BLOCK_SIZE, HEADER_SIZE, LAYOUT_VERSION,
};
use wolfpack::core::db::{Database, Op, Path, Update, Value};
use wolfpack::core::disk_records::{Geometry, Timing};
use wolfpack::core::message::Message;
use wolfpack::core::{AdminCommand, Config, DiskError, Input, Mutation, Node, Output};
use wolfpack::wire::{seal_crafted, ClusterKey, Header, Opener, PAYLOAD_BYTES_MAX};

// ---------------------------------------------------------------------------------------------
// Reading structure out of fuzz bytes
// ---------------------------------------------------------------------------------------------

/// The fuzz input as a stream; past its end every read is zero (or empty).
struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data }
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for byte in &mut bytes {
            *byte = self.u8();
        }
        u64::from_le_bytes(bytes)
    }
    /// A u64 that is small, near a boundary, or anything, as the first byte says.
    fn number(&mut self) -> u64 {
        match self.u8() % 4 {
            0 => u64::from(self.u8()),
            1 => u64::MAX - u64::from(self.u8()),
            2 => 1u64 << (self.u8() % 64),
            _ => self.u64(),
        }
    }
    fn take(&mut self, len: usize) -> &'a [u8] {
        let len = len.min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken
    }
    /// A chunk preceded by its length (u16, bounded by `max`).
    fn chunk(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.u16()) % (max + 1);
        self.take(len)
    }
    fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Wire frames
// ---------------------------------------------------------------------------------------------

const CLUSTER: u64 = 0xC1u64 << 56 | 42;
/// The incarnation of the node the targets play (time frames must name it).
const OWN_INCARNATION: u64 = 7;
const ME: u8 = 1;

fn key() -> ClusterKey {
    ClusterKey::from_bytes([0x11; 32])
}

fn header_from(bytes: &mut Bytes<'_>, kind: u8) -> Header {
    let flags = bytes.u8();
    Header {
        kind,
        cluster_id: if flags & 1 == 0 { CLUSTER } else { bytes.u64() },
        sender: if flags & 2 == 0 {
            2 + bytes.u8() % 3
        } else {
            bytes.u8()
        },
        receiver: if flags & 4 == 0 { 0 } else { bytes.u8() },
        network: bytes.u8() % 4,
        incarnation: if flags & 8 == 0 {
            u64::from(bytes.u8() % 4)
        } else {
            bytes.u64()
        },
        sequence: if flags & 16 == 0 {
            u64::from(bytes.u8())
        } else {
            bytes.number()
        },
    }
}

/// Datagrams (raw, or sealed with the test key from fields of the input) through one
/// `Opener`, and what opens through the decoder of its frame kind.
pub fn wire_open(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    let peers: Vec<u8> = (1..=64u8)
        .filter(|id| bytes.u8() & 1 == 1 || *id <= 4)
        .take(8)
        .collect();
    opener.set_peers(&peers);
    let mut datagram = Vec::new();
    while !bytes.is_empty() {
        let mode = bytes.u8();
        let network = bytes.u8() % 4;
        datagram.clear();
        if mode & 1 == 0 {
            datagram.extend_from_slice(bytes.chunk(1500));
        } else {
            let header = header_from(&mut bytes, bytes_kind(mode));
            let payload = bytes.chunk(PAYLOAD_BYTES_MAX);
            seal_crafted(&key(), &header, payload, &mut datagram);
            if mode & 2 == 2 && !datagram.is_empty() {
                // Damage after sealing: the MAC must catch it.
                let at = usize::from(bytes.u16()) % datagram.len();
                datagram[at] ^= bytes.u8() | 1;
            }
        }
        let _ = wolfpack::wire::claimed_cluster_id(&datagram);
        if mode & 4 == 4 {
            opener.set_incarnation_min(2 + bytes.u8() % 3, u64::from(bytes.u8() % 4));
        }
        if let Ok(frame) = opener.open_on(network, &datagram) {
            let kind = frame.header.kind;
            let sender = frame.header.sender;
            let payload = frame.payload.to_vec();
            dispatch_frame(kind, sender, &payload);
        }
    }
    let _ = opener.drop_counters().total();
}

fn bytes_kind(mode: u8) -> u8 {
    match (mode >> 3) % 5 {
        0 | 1 => 1,
        2 => 2,
        3 => 3,
        _ => mode,
    }
}

/// What the daemon does with an opened frame's payload, as far as it is pure.
fn dispatch_frame(kind: u8, sender: u8, payload: &[u8]) {
    match kind {
        1 => {
            if let Ok(message) = Message::decode(payload) {
                check_message_round_trip(&message);
            }
        }
        2 => {
            let mut service = wolfpack::node::time_service::TimeService::default();
            let _ = service.on_frame(sender, payload, OWN_INCARNATION, 1_700_000_000_000, 5);
        }
        3 => {
            let _ = wolfpack::node::event_codec::decode(payload, sender);
        }
        _ => {}
    }
}

fn check_message_round_trip(message: &Message) {
    let encoded = message.encode();
    assert_eq!(
        Message::decode(&encoded).as_ref(),
        Ok(message),
        "a decoded message encodes to bytes that decode to it"
    );
}

// ---------------------------------------------------------------------------------------------
// 1b/2. Core messages from an authenticated peer, into a core::Node
// ---------------------------------------------------------------------------------------------

const PEERS: [u8; 3] = [2, 3, 4];
const MESSAGE_MAGIC: [u8; 2] = 0x5057u16.to_le_bytes();

fn core_node() -> Node {
    let config = Config {
        node_id: ME,
        cluster_id: CLUSTER,
        incarnation: 1,
        // As the daemon builds it (src/node/daemon.rs): one entry per possible node id, 0 for
        // the unconfigured. (With a shorter vector, a peer's bitmap naming an unconfigured node
        // once made `send_all` index past its end; such a message is now refused at intake, and
        // its input is `fuzz/corpus/core_message/regression-short-networks-*`.)
        networks: {
            let mut networks = vec![0u8; 64];
            networks[..4].copy_from_slice(&[2, 2, 1, 1]);
            networks
        },
        timing: Timing::default(),
        geometry: Geometry::for_disk(16 << 20, 4).expect("large enough"),
        mutation: Mutation::None,
        digest_every_update: true,
        builtin_groups: 0b1111,
    };
    Node::new(config, 1)
}

/// A disk operation the node asked for: its id, offset, and the block of a write.
type PendingOp = (u64, u64, Option<Box<[u8; BLOCK_SIZE]>>);

/// A shared disk in memory: what was written reads back, the rest reads as zeros.
#[derive(Default)]
struct MemoryDisk {
    blocks: BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>,
    pending: VecDeque<PendingOp>,
}

/// Drives one core node through a script read from the fuzz input: messages from its peers
/// (sealed with the test key and opened by the wire's `Opener`, as the daemon does), ticks,
/// disk completions (from an in-memory disk, a failure, or a record built from the input),
/// the wall clock, group confirmations and admin commands. `gum_only` makes every message a
/// GUM message (kinds 8 to 14).
fn drive_core(data: &[u8], gum_only: bool) {
    let mut bytes = Bytes::new(data);
    let mut node = core_node();
    let mut opener = Opener::new(&key(), CLUSTER, ME);
    opener.set_peers(&[1, 2, 3, 4]);
    let mut disk = MemoryDisk::default();
    let mut now_ms = 10u64;
    let mut sequences = [0u64; 5];
    let mut datagram = Vec::new();
    node.step(Input::Tick { now_ms });
    drain(&mut node, &mut disk);
    let mut steps = 0;
    while !bytes.is_empty() && steps < 64 {
        steps += 1;
        let op = bytes.u8();
        match op % 8 {
            0..=2 => {
                let sender = PEERS[usize::from(bytes.u8()) % PEERS.len()];
                let network = bytes.u8() % 2;
                let incarnation = u64::from(bytes.u8() % 3);
                let mut payload = Vec::new();
                if op % 8 == 2 && !gum_only {
                    payload.extend_from_slice(bytes.chunk(PAYLOAD_BYTES_MAX));
                } else {
                    let kind = if gum_only {
                        8 + bytes.u8() % 7
                    } else {
                        1 + bytes.u8() % 15
                    };
                    payload.extend_from_slice(&MESSAGE_MAGIC);
                    payload.push(1);
                    payload.push(kind);
                    payload.push(sender);
                    payload.extend_from_slice(&incarnation.to_le_bytes());
                    payload.extend_from_slice(bytes.chunk(PAYLOAD_BYTES_MAX - payload.len()));
                }
                let decoded = Message::decode(&payload);
                if let Ok(message) = &decoded {
                    check_message_round_trip(message);
                }
                let sequence = &mut sequences[usize::from(sender)];
                let header = Header {
                    kind: 1,
                    cluster_id: CLUSTER,
                    sender,
                    receiver: if op & 8 == 0 { 0 } else { ME },
                    network,
                    incarnation,
                    sequence: *sequence,
                };
                *sequence += 1;
                datagram.clear();
                seal_crafted(&key(), &header, &payload, &mut datagram);
                let Ok(frame) = opener.open_on(network, &datagram) else {
                    continue;
                };
                node.step(Input::Message {
                    network: frame.header.network,
                    payload: frame.payload,
                });
            }
            3 => {
                now_ms += 10 * u64::from(bytes.u16() % 2048);
                node.step(Input::Tick { now_ms });
            }
            4 => {
                // Every pending disk operation completes as the disk says.
                while let Some((op, offset, write)) = disk.pending.pop_front() {
                    complete(&mut node, &mut disk, op, offset, write);
                }
            }
            5 => {
                if let Some((op, _, _)) = disk.pending.pop_front() {
                    node.step(Input::DiskDone {
                        op,
                        result: Err(DiskError),
                    });
                }
            }
            6 => {
                let block = record_block(&mut bytes);
                if let Some((op, offset, write)) = disk.pending.pop_front() {
                    match write {
                        Some(_) => complete(&mut node, &mut disk, op, offset, write),
                        None => {
                            disk.blocks.insert(offset, block.clone());
                            node.step(Input::DiskDone {
                                op,
                                result: Ok(&block),
                            });
                        }
                    }
                }
            }
            _ => match bytes.u8() % 5 {
                0 => node.step(Input::WallClock {
                    unix_s: bytes.number(),
                    local_hour: bytes.u8() % 24,
                }),
                1 => node.step(Input::GroupStopped { group: bytes.u8() }),
                2 => node.step(Input::GroupFailed {
                    group: bytes.u8(),
                    refuse_ms: bytes.number(),
                }),
                3 => node.step(Input::Admin(AdminCommand::Submit {
                    update: bytes.chunk(600).to_vec(),
                })),
                _ => node.step(Input::Admin(AdminCommand::Leave)),
            },
        }
        drain(&mut node, &mut disk);
    }
    let _ = node.status();
}

fn complete(
    node: &mut Node,
    disk: &mut MemoryDisk,
    op: u64,
    offset: u64,
    write: Option<Box<[u8; BLOCK_SIZE]>>,
) {
    let block = match write {
        Some(block) => {
            disk.blocks.insert(offset, block.clone());
            block
        }
        None => disk
            .blocks
            .get(&offset)
            .cloned()
            .unwrap_or_else(|| Box::new([0u8; BLOCK_SIZE])),
    };
    node.step(Input::DiskDone {
        op,
        result: Ok(&block),
    });
}

/// The node's outputs: disk operations queue, everything it sends must decode.
fn drain(node: &mut Node, disk: &mut MemoryDisk) {
    while let Some(output) = node.poll_output() {
        match output {
            Output::Send { payload, .. } => {
                let message = Message::decode(&payload).expect("what a node sends decodes");
                check_message_round_trip(&message);
            }
            Output::DiskRead { op, offset_bytes } => {
                disk.pending.push_back((op, offset_bytes, None))
            }
            Output::DiskWrite {
                op,
                offset_bytes,
                block,
            } => disk.pending.push_back((op, offset_bytes, Some(block))),
            _ => {}
        }
    }
}

/// Core messages (any kind, or raw payloads) from authenticated peers into a node.
pub fn core_message(data: &[u8]) {
    drive_core(data, false);
}

/// GUM messages (kinds 8 to 14) from authenticated peers: decode, round trip, into a node.
pub fn gum_wire(data: &[u8]) {
    drive_core(data, true);
}

// ---------------------------------------------------------------------------------------------
// 3. Disk records and inspection
// ---------------------------------------------------------------------------------------------

const RECORD_MAGICS: [[u8; 4]; 9] = [
    *b"WPSB", *b"WPNE", *b"WPQL", *b"WPRL", *b"WPNS", *b"WPFR", *b"WPFA", *b"WPCK", *b"WPLG",
];
const RECORD_BODY_BYTES: [usize; 9] = [256, 40 + 4 * 24, 0, 0, 40, 32, 32, 32, 0];

/// CRC-32 (IEEE), as the disk format's envelope uses (crc32fast computes the same).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for byte in *part {
            crc = CRC_TABLE[((crc ^ u32::from(*byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

/// A block holding a record built from the input: a chosen magic, the layout version (mostly),
/// a body from the input and, mostly, a correct CRC and the mirror copy, so the decoders get
/// past the envelope to the fields.
fn record_block(bytes: &mut Bytes<'_>) -> Box<[u8; BLOCK_SIZE]> {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    let choice = bytes.u8();
    let flags = bytes.u8();
    let which = usize::from(choice) % RECORD_MAGICS.len();
    block[0..4].copy_from_slice(&RECORD_MAGICS[which]);
    let version = if flags & 1 == 0 {
        LAYOUT_VERSION
    } else {
        bytes.u16()
    };
    block[4..6].copy_from_slice(&version.to_le_bytes());
    let cluster_id = if flags & 2 == 0 {
        CLUSTER
    } else {
        bytes.number()
    };
    block[8..16].copy_from_slice(&cluster_id.to_le_bytes());
    block[16..24].copy_from_slice(&bytes.number().to_le_bytes());
    let body = bytes.chunk(BLOCK_SIZE - HEADER_SIZE);
    let fixed = RECORD_BODY_BYTES[which];
    let body_bytes = if flags & 4 == 0 && fixed != 0 {
        fixed
    } else if flags & 8 == 0 {
        body.len()
    } else {
        usize::from(bytes.u16())
    };
    block[24..28].copy_from_slice(&(body_bytes as u32).to_le_bytes());
    let room = BLOCK_SIZE - HEADER_SIZE;
    let copied = body.len().min(room);
    block[HEADER_SIZE..HEADER_SIZE + copied].copy_from_slice(&body[..copied]);
    if flags & 16 == 0 {
        let covered = body_bytes.min(room);
        let crc = crc32(&[&block[..28], &block[HEADER_SIZE..HEADER_SIZE + covered]]);
        block[28..32].copy_from_slice(&crc.to_le_bytes());
    }
    if flags & 32 == 0 && HEADER_SIZE + body_bytes <= 512 {
        let (first, rest) = block.split_at_mut(512);
        rest[..512].copy_from_slice(first);
    }
    if flags & 64 == 64 {
        let at = usize::from(bytes.u16()) % BLOCK_SIZE;
        block[at] ^= bytes.u8();
    }
    block
}

/// Decodes `block` as `R`; a record that decodes encodes back to a block that decodes to it.
fn decode_as<R: disklayout::Record + Clone + PartialEq + std::fmt::Debug>(block: &[u8]) {
    if let Ok(Some(sealed)) = disklayout::decode::<R>(block) {
        let mut again = Box::new([0u8; BLOCK_SIZE]);
        disklayout::encode(&sealed, &mut again).expect("a decoded record encodes");
        let decoded: Option<Sealed<R>> =
            disklayout::decode::<R>(&again[..]).expect("an encoded record decodes");
        assert_eq!(decoded.as_ref(), Some(&sealed), "record round trip");
    }
}

/// Every record decoder of `disklayout` over one block built from the input (or the input
/// itself as a block), each decoded record round-tripped, and a superblock's geometry and
/// timing checked.
pub fn disk_records(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let block = if bytes.u8() & 1 == 0 {
        record_block(&mut bytes)
    } else {
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        let raw = bytes.rest();
        block[..raw.len().min(BLOCK_SIZE)].copy_from_slice(&raw[..raw.len().min(BLOCK_SIZE)]);
        block
    };
    decode_as::<Superblock>(&block[..]);
    decode_as::<NodeEntry>(&block[..]);
    decode_as::<QuorumLease>(&block[..]);
    decode_as::<ResourceLease>(&block[..]);
    decode_as::<NodeSlot>(&block[..]);
    decode_as::<FenceRequest>(&block[..]);
    decode_as::<FenceAck>(&block[..]);
    decode_as::<CheckpointHeader>(&block[..]);
    decode_as::<LogBlock>(&block[..]);
    if let Ok(Some(sealed)) = disklayout::decode::<Superblock>(&block[..]) {
        let geometry = sealed.record.geometry;
        let _ = geometry.end_bytes();
        let _ = geometry.log_blocks();
        let _ = sealed.record.timing.watchdog_timeout_max_ms();
    }
    // Short and long inputs are refused, never a panic.
    let _ = disklayout::decode::<NodeSlot>(&block[..bytes.u16() as usize % BLOCK_SIZE]);
}

/// The smallest disk `Geometry::for_disk` lays out with two resource lease slots.
fn small_image() -> &'static (u64, Vec<u8>) {
    static IMAGE: std::sync::OnceLock<(u64, Vec<u8>)> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut blocks = 8u64;
        let geometry = loop {
            if let Ok(geometry) = disklayout::Geometry::for_disk(blocks * BLOCK_SIZE as u64, 2) {
                break geometry;
            }
            blocks += 1;
        };
        let size = geometry.end_bytes();
        let superblock = Superblock {
            cluster_name: "fuzz".to_string(),
            disk_size_bytes: size,
            geometry,
            timing: disklayout::Timing::default(),
            watchdog: Default::default(),
        };
        let nodes: Vec<NodeEntry> = (1..=2)
            .map(|id| NodeEntry {
                node_id: id,
                name: format!("n{id}"),
                addresses: vec![format!("198.18.0.{id}:7400").parse().expect("address")],
            })
            .collect();
        let mut image = vec![0u8; size as usize];
        for (offset, block) in disklayout::format_blocks(CLUSTER, &superblock, &nodes)
            .expect("the fuzz cluster formats")
        {
            image[offset as usize..offset as usize + BLOCK_SIZE].copy_from_slice(&block[..]);
        }
        (size, image)
    })
}

/// `disklayout::inspect` over a freshly formatted small disk whose blocks the input replaces
/// (with records built from it) or makes unreadable; the report rendered.
pub fn disk_inspect(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let (size, image) = small_image();
    let blocks = size / BLOCK_SIZE as u64;
    let mut replaced: BTreeMap<u64, Option<Box<[u8; BLOCK_SIZE]>>> = BTreeMap::new();
    let mut claimed_size = *size;
    let mut edits = 0;
    while !bytes.is_empty() && edits < 32 {
        edits += 1;
        let at = u64::from(bytes.u16()) % blocks;
        match bytes.u8() % 8 {
            0 => {
                replaced.insert(at, None);
            }
            1 => claimed_size = bytes.number() % (2 * size + BLOCK_SIZE as u64),
            _ => {
                replaced.insert(at, Some(record_block(&mut bytes)));
            }
        }
    }
    let mut read = |offset: u64, block: &mut disklayout::Block| -> Result<(), String> {
        let index = offset / BLOCK_SIZE as u64;
        if !offset.is_multiple_of(BLOCK_SIZE as u64) {
            return Err(format!("unaligned {offset}"));
        }
        match replaced.get(&index) {
            Some(None) => Err("unreadable".to_string()),
            Some(Some(replacement)) => {
                block.copy_from_slice(&replacement[..]);
                Ok(())
            }
            None => {
                let start = usize::try_from(offset).map_err(|_| "too far".to_string())?;
                let bytes = image
                    .get(start..start + BLOCK_SIZE)
                    .ok_or_else(|| format!("offset {offset} past the image"))?;
                block.copy_from_slice(bytes);
                Ok(())
            }
        }
    };
    match disklayout::inspect::inspect(claimed_size, &mut read) {
        Ok(inspection) => {
            for problem in inspection.problems() {
                let _ = format!("{problem:?}");
            }
            let _ = inspection.log.clone();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Admin requests, and the catalog edits they make
// ---------------------------------------------------------------------------------------------

/// A catalog to edit: two groups, a few resources.
fn sample_database() -> Database {
    let mut database = Database::default();
    let mut put = |path: &str, value: Value| {
        let update = Update::new(vec![Op::Put {
            path: Path::parse(path).expect("sample path"),
            value,
        }]);
        database
            .apply(database.sequence() + 1, &update)
            .expect("sample update applies");
    };
    put("groups/web/slot", Value::U64(1));
    put("groups/web/preferred", Value::Text("2,1".into()));
    put("groups/db/slot", Value::U64(2));
    put("groups/db/failback", Value::Text("window=1-5".into()));
    put("resources/vip/group", Value::Text("web".into()));
    put("resources/vip/type", Value::Text("ip".into()));
    put(
        "resources/vip/params/address",
        Value::Text("10.0.0.9/24".into()),
    );
    put("resources/httpd/group", Value::Text("web".into()));
    put("resources/httpd/type", Value::Text("process".into()));
    put(
        "resources/httpd/params/command",
        Value::Text("/bin/true".into()),
    );
    put("resources/httpd/depends", Value::Text("vip".into()));
    database
}

/// A request line (tab-separated words, escaped as `ctl` does) through the daemon's grammar;
/// a catalog command is answered against a sample catalog and the update it proposes applied.
pub fn admin_request(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let words: Vec<String> = line.split('\t').map(str::to_string).collect();
    let request = wolfpack::admin::request::AdminRequest::parse_received(&words);
    let raw: Vec<&str> = line.split('\t').collect();
    let direct = wolfpack::admin::request::AdminRequest::parse(&raw);
    if let Err(error) = &direct {
        let _ = error.text();
    }
    let _ = wolfpack::admin::catalog_grammar::parse(&raw);
    for word in &raw {
        let encoded = wolfpack::admin::words::encode_word(word);
        assert_eq!(
            wolfpack::admin::words::decode_word(&encoded).as_deref(),
            Ok(*word),
            "escaping round trip"
        );
    }
    if let Ok(wolfpack::admin::request::AdminRequest::Catalog(command)) = request {
        let mut database = sample_database();
        let runtime = wolfpack::node::catalog_commands::Runtime::held_here(0b1111, 1, 0b1);
        if let Ok(wolfpack::node::catalog_commands::Answer::Propose(encoded)) =
            wolfpack::node::catalog_commands::answer(&database, &command, &runtime)
        {
            let update = Update::decode(&encoded).expect("a proposed update decodes");
            let _ = database.apply(database.sequence() + 1, &update);
            let catalog = wolfpack::core::catalog::read(&database);
            consume_catalog(&catalog);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Event exchange frames, merged and rendered; 8. time frames
// ---------------------------------------------------------------------------------------------

/// Time frames from peers into the time service; its skews as `ctl events` reads them.
pub fn time_service(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let mut service = wolfpack::node::time_service::TimeService::default();
    let mut now_ms = 0u64;
    while !bytes.is_empty() {
        let from = bytes.u8();
        let shape = bytes.u8();
        let len = usize::from(shape % 20);
        let mut payload = bytes.take(len).to_vec();
        // Most frames name this node's incarnation, as a live peer's do; the rest are replays.
        if payload.len() == 16 && shape & 0x80 == 0 {
            payload[8..].copy_from_slice(&OWN_INCARNATION.to_le_bytes());
        }
        let own_wall_ms = bytes.number();
        now_ms = now_ms.saturating_add(u64::from(bytes.u16()));
        let _ = service.due(now_ms);
        let _ = service.on_frame(from, &payload, OWN_INCARNATION, own_wall_ms, now_ms);
        let _ = service.skew(from);
    }
}

/// `ctl events` on a node: a collection of its peers' events started, frames of kind 3 (event
/// exchange) and 2 (time) from the peers, the collection finished and rendered merged by the
/// corrected wall clock, text and JSON.
pub fn events(data: &[u8]) {
    use wolfpack::node::event_codec;
    use wolfpack::node::event_exchange::{EventExchange, Peer};
    let mut bytes = Bytes::new(data);
    let mut exchange = EventExchange::new(u64::from(bytes.u8()));
    let mut ring = wolfpack::node::event_ring::EventRing::new(ME);
    ring.push(
        wolfpack::node::event_record::EventKind::Node,
        "fuzz".to_string(),
    );
    let mut metrics = wolfpack::node::report::Metrics::default();
    let mut time = wolfpack::node::time_service::TimeService::default();
    let peers: Vec<Peer> = PEERS
        .iter()
        .map(|node| Peer {
            node: *node,
            networks: 2,
        })
        .collect();
    let json = bytes.u8() & 1 == 1;
    exchange.start(mio::Token(7), json, ring.newest_sequence(), &peers, 0);
    let mut now_ms = 0u64;
    let mut finished = Vec::new();
    let mut frames = 0;
    while !bytes.is_empty() && frames < 64 {
        frames += 1;
        let kind = bytes.u8();
        let from = if kind & 0x80 == 0 {
            PEERS[usize::from(bytes.u8()) % 3]
        } else {
            bytes.u8()
        };
        now_ms += u64::from(bytes.u8());
        match kind % 4 {
            0 => {
                let wall = bytes.take(8);
                let mut payload = [0u8; 16];
                payload[..wall.len()].copy_from_slice(wall);
                payload[8..].copy_from_slice(&OWN_INCARNATION.to_le_bytes());
                let own = 1_700_000_000_000 + bytes.number() % (1 << 40);
                let _ = time.on_frame(from, &payload, OWN_INCARNATION, own, now_ms);
            }
            3 => finished.extend(exchange.finished(now_ms)),
            _ => {
                let payload = bytes.chunk(PAYLOAD_BYTES_MAX);
                let decoded = event_codec::decode(payload, from);
                if let Ok(event_codec::EventMessage::Reply(reply)) = &decoded {
                    // What decodes packs again into replies that decode to the same records.
                    let packed = event_codec::pack_reply(
                        reply.header.request_id,
                        reply.header.oldest,
                        reply.header.newest,
                        reply.records.iter(),
                        8,
                    );
                    let mut again = Vec::new();
                    for datagram in &packed {
                        match event_codec::decode(datagram, from) {
                            Ok(event_codec::EventMessage::Reply(reply)) => {
                                again.extend(reply.records)
                            }
                            other => panic!("a packed reply decodes: {other:?}"),
                        }
                    }
                    assert!(again.len() <= reply.records.len());
                }
                exchange.on_frame(from, kind % 2, payload, &ring, &mut metrics, now_ms);
                for frame in exchange.take_outgoing() {
                    event_codec::decode(&frame.payload, ME).expect("what is sent decodes");
                }
            }
        }
    }
    finished.extend(exchange.finished(now_ms.saturating_add(10_000)));
    for collected in &finished {
        let skew = |node: u8| time.skew(node).map(|skew| skew.skew_ms);
        let _ = wolfpack::node::event_merge::render(ME, ring.records(), collected, skew);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The catalog from database values
// ---------------------------------------------------------------------------------------------

const CATALOG_NAMES: [&str; 4] = ["web", "db", "a", "b"];
const CATALOG_KEYS: [&str; 22] = [
    "slot",
    "preferred",
    "possible",
    "failback",
    "failover-threshold",
    "failover-period",
    "target",
    "failures",
    "group",
    "type",
    "params/command",
    "params/address",
    "depends",
    "restart-threshold",
    "restart-period",
    "looksalive",
    "isalive",
    "timeout",
    "affects-group",
    "role",
    "cleanup",
    "params/x",
];

fn fuzz_value(bytes: &mut Bytes<'_>) -> Value {
    match bytes.u8() % 6 {
        0 => Value::U64(bytes.number()),
        1 => Value::I64(bytes.number() as i64),
        2 => Value::Bool(bytes.u8() & 1 == 1),
        3 => Value::NodeList(bytes.chunk(8).to_vec()),
        4 => Value::Bytes(bytes.chunk(16).to_vec()),
        _ => Value::Text(String::from_utf8_lossy(bytes.chunk(64)).into_owned()),
    }
}

/// A database built from the input (updates put together from schema keys and values, or
/// decoded from raw bytes), read as the catalog, and the catalog's consumers: its queries,
/// `ctl groups|resources` rendering, and the group runner's start order.
pub fn catalog(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let mut database = Database::default();
    let mut updates = 0;
    while !bytes.is_empty() && updates < 48 {
        updates += 1;
        let choice = bytes.u8();
        let update = if choice % 8 == 7 {
            match Update::decode(bytes.chunk(600)) {
                Ok(update) => update,
                Err(_) => continue,
            }
        } else {
            let namespace = if choice & 8 == 0 {
                "groups"
            } else {
                "resources"
            };
            let name = if choice & 16 == 0 {
                CATALOG_NAMES[usize::from(bytes.u8()) % CATALOG_NAMES.len()].to_string()
            } else {
                String::from_utf8_lossy(bytes.chunk(12)).into_owned()
            };
            let key = CATALOG_KEYS[usize::from(bytes.u8()) % CATALOG_KEYS.len()];
            let Ok(path) = Path::parse(&format!("{namespace}/{name}/{key}")) else {
                continue;
            };
            let op = if choice & 32 == 0 {
                Op::Put {
                    path,
                    value: fuzz_value(&mut bytes),
                }
            } else {
                Op::Delete { path }
            };
            Update::new(vec![op])
        };
        let _ = database.apply(database.sequence() + 1, &update);
    }
    let catalog = wolfpack::core::catalog::read(&database);
    consume_catalog(&catalog);
    let runtime = wolfpack::node::catalog_commands::Runtime::held_here(0b1111, 1, bytes.u64());
    let _ = wolfpack::node::catalog_render::render_groups(&catalog, &runtime.group, false);
    let _ = wolfpack::node::catalog_render::render_groups(&catalog, &runtime.group, true);
    let _ = wolfpack::node::catalog_render::render_resources(&catalog, &runtime.resource, false);
    let _ = wolfpack::node::catalog_render::render_resources(&catalog, &runtime.resource, true);
}

fn consume_catalog(catalog: &wolfpack::core::catalog::Catalog) {
    let _ = catalog.slots();
    for group in &catalog.groups {
        let _ = catalog.start_order(&group.name);
        let _ = catalog.group_by_slot(group.slot);
        for now_s in [0, 1_700_000_000, u64::MAX] {
            let _ = group.failures_within_period(now_s);
            let _ = group.failover_blocked(now_s);
        }
        for hour in 0..24 {
            let _ = group.failback.allows(hour);
        }
        let rendered = group.failback.render();
        assert_eq!(
            wolfpack::core::catalog::Failback::parse(&rendered),
            Ok(group.failback),
            "failback round trip"
        );
    }
    for resource in &catalog.resources {
        let _ = catalog.resource(&resource.name);
    }
}

// ---------------------------------------------------------------------------------------------
// 7. The monitor's codec
// ---------------------------------------------------------------------------------------------

/// Bytes on the monitor's socket (either direction) through its frame reader and both
/// decoders; what decodes encodes to bytes that decode to it.
pub fn monitor_codec(data: &[u8]) {
    use wolfpack::monitor::codec;
    let mut reader = codec::FrameReader::default();
    let split = data.first().map_or(0, |first| usize::from(*first)) % (data.len() + 1);
    let (first, second) = data.split_at(split);
    for part in [first, second] {
        reader.extend(part);
        while let Ok(Some(body)) = reader.next_body() {
            monitor_body(&body);
        }
    }
    monitor_body(data);
}

fn monitor_body(body: &[u8]) {
    use wolfpack::monitor::codec;
    if let Ok(command) = codec::decode_command(body) {
        let mut out = Vec::new();
        if codec::encode_command(&command, &mut out).is_ok() {
            let mut reader = codec::FrameReader::default();
            reader.extend(&out);
            let body = reader.next_body().expect("framed").expect("whole");
            assert_eq!(
                codec::decode_command(&body),
                Ok(command),
                "command round trip"
            );
        }
    }
    if let Ok(event) = codec::decode_event(body) {
        let mut out = Vec::new();
        if codec::encode_event(&event, &mut out).is_ok() {
            let mut reader = codec::FrameReader::default();
            reader.extend(&out);
            let body = reader.next_body().expect("framed").expect("whole");
            assert_eq!(codec::decode_event(&body), Ok(event), "event round trip");
        }
    }
}
