//! Scripted tests of the locker (`locker.rs`) and of the succession (`takeover.rs`), in the
//! style of `src/runner/tests/bench.rs`: a small bench holds one `Node` already stabilized in
//! an epoch, plays the other members and the shared disk by hand, feeds inputs one at a time
//! and lets the test assert on what comes out after each step (messages, disk operations,
//! events). Nothing completes on its own: a disk write stays in flight until the test
//! completes it, so every ordering (durable out of order, failed writes, replies missing) can
//! be scripted.

mod locker;
mod sizes;
mod takeover;

use std::collections::BTreeMap;

use super::wire::{GumMessage, SyncReply};
use super::{Committed, Entry};
use crate::core::db::{encode_log_block, Path, Update, Value};
use crate::core::disk_records::{self, Geometry, LogBlock, Timing, BLOCK_SIZE};
use crate::core::message::{Body, Message};
use crate::core::node::{Node, Purpose};
use crate::core::{bit, Config, DiskError, Event, Input, Mutation, Output};

pub const CLUSTER: u64 = 0x6075;
/// 80 spare blocks: checkpoint slots of 10 blocks, a ring of 60 (as `tests/gum_recovery.rs`).
const DISK_BYTES: u64 = (258 + 80) * 4096;
/// The epoch the bench's node is stabilized in.
pub const EPOCH: u64 = 3;
/// Every other node's incarnation.
pub const PEER_INCARNATION: u64 = 5;
/// The bench node's incarnation.
pub const OWN_INCARNATION: u64 = 9;

pub fn geometry() -> Geometry {
    Geometry::for_disk(DISK_BYTES, 0).expect("the disk is large enough")
}

/// A small valid database update (`properties/<key> = <value>`).
pub fn body(key: &str, value: &str) -> Vec<u8> {
    Update::put(
        Path::parse(&format!("properties/{key}")).expect("path"),
        Value::Text(value.to_string()),
    )
    .encode()
    .expect("small update")
}

/// A disk operation the node asked for and the bench has not answered.
#[derive(Debug)]
pub struct DiskOp {
    pub op: u64,
    pub offset: u64,
    /// `Some` for a write.
    pub block: Option<Box<[u8; BLOCK_SIZE]>>,
}

pub struct Bench {
    pub node: Node,
    /// The shared disk as the bench completed writes to it (absent blocks read as zeros).
    pub disk: BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>,
    /// Disk operations issued and not answered yet, oldest first.
    pub disk_ops: Vec<DiskOp>,
    /// GUM messages sent since the last `take_sent`: (to, message).
    pub sent: Vec<(u8, GumMessage)>,
    pub events: Vec<Event>,
}

impl Bench {
    /// Node `me` of a cluster of `nodes`, stabilized in `EPOCH` with `members`, a valid lease
    /// and an empty valid replica; GUM has not started for the epoch yet (`stabilize`).
    pub fn new(me: u8, nodes: u8, members: u64) -> Bench {
        let config = Config {
            node_id: me,
            cluster_id: CLUSTER,
            incarnation: OWN_INCARNATION,
            networks: vec![1; usize::from(nodes)],
            timing: Timing::default(),
            geometry: geometry(),
            mutation: Mutation::None,
            digest_every_update: false,
            builtin_groups: 0,
        };
        let mut node = Node::new(config, 1);
        node.started_at(0);
        node.set_clock(100);
        node.membership.stabilize(EPOCH, members, false);
        node.own_lease.hold_until(1_000_000);
        node.gum.valid = true;
        Bench {
            node,
            disk: BTreeMap::new(),
            disk_ops: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A ready locker: node 1 of `members` (which must hold 1) after a takeover on an empty
    /// disk, every other member answering `Sync` with an empty valid replica.
    pub fn ready_locker(nodes: u8, members: u64) -> Bench {
        let mut bench = Bench::new(1, nodes, members);
        bench.stabilize(false);
        for member in crate::core::ids(members & !bit(1)) {
            bench.sync_reply(member, 0, true);
        }
        bench.answer_reads();
        assert!(bench.locker_ready(), "the locker recovered an empty log");
        bench.take_sent();
        bench.events.clear();
        bench
    }

    /// Collects what the node asked for.
    pub fn drain(&mut self) {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Send { to, payload, .. } => {
                    let message = Message::decode(&payload).expect("the node sends valid messages");
                    if let Body::Gum(gum) = message.body {
                        self.sent.push((to, gum));
                    }
                }
                Output::DiskRead { op, offset_bytes } => self.disk_ops.push(DiskOp {
                    op,
                    offset: offset_bytes,
                    block: None,
                }),
                Output::DiskWrite {
                    op,
                    offset_bytes,
                    block,
                } => self.disk_ops.push(DiskOp {
                    op,
                    offset: offset_bytes,
                    block: Some(block),
                }),
                Output::Event(event) => self.events.push(event),
                _ => {}
            }
        }
    }

    /// The epoch begins for GUM (`formed`: this node formed the cluster).
    pub fn stabilize(&mut self, formed: bool) {
        self.node.gum_on_stabilized(formed);
        self.drain();
    }

    pub fn locker_ready(&self) -> bool {
        self.node
            .gum
            .locker
            .as_ref()
            .is_some_and(|locker| locker.ready())
    }

    pub fn take_sent(&mut self) -> Vec<(u8, GumMessage)> {
        std::mem::take(&mut self.sent)
    }

    /// A GUM message from another node of this epoch.
    pub fn receive(&mut self, from: u8, message: GumMessage) {
        self.node.on_gum_message(from, PEER_INCARNATION, message);
        self.drain();
    }

    pub fn propose(&mut self, from: u8, request_id: u64, body: Vec<u8>) {
        self.propose_as(from, PEER_INCARNATION, request_id, body);
    }

    pub fn propose_as(&mut self, from: u8, incarnation: u64, request_id: u64, body: Vec<u8>) {
        let message = GumMessage::Propose {
            epoch: EPOCH,
            request_id,
            body,
        };
        self.node.on_gum_message(from, incarnation, message);
        self.drain();
    }

    pub fn applied(&mut self, from: u8, applied: u64) {
        self.receive(
            from,
            GumMessage::Applied {
                epoch: EPOCH,
                applied,
                valid: true,
            },
        );
    }

    pub fn sync_reply(&mut self, from: u8, applied: u64, valid: bool) {
        let reply = SyncReply {
            applied,
            valid,
            unresolved: 0,
            last_locker: 0,
        };
        self.receive(
            from,
            GumMessage::SyncReply {
                epoch: EPOCH,
                reply,
            },
        );
    }

    /// The purpose of a disk operation still pending at the node.
    fn purpose(&self, op: u64) -> Option<Purpose> {
        self.node.pending_purpose(op)
    }

    /// Log writes issued and not completed, by log position, oldest first.
    pub fn log_writes(&self) -> Vec<u64> {
        self.disk_ops
            .iter()
            .filter_map(|op| match self.purpose(op.op) {
                Some(Purpose::GumLogWrite { position }) => Some(position),
                _ => None,
            })
            .collect()
    }

    /// The updates of the pending log write at `position`, as (sequence, origin, request id).
    pub fn log_write_updates(&self, position: u64) -> Vec<(u64, u8, u64)> {
        let op = self
            .disk_ops
            .iter()
            .find(|op| {
                matches!(self.purpose(op.op), Some(Purpose::GumLogWrite { position: p }) if p == position)
            })
            .expect("a log write at that position");
        assert_eq!(op.offset, geometry().log_block_offset(position));
        let block = op.block.as_ref().expect("a write");
        let sealed = disk_records::decode::<LogBlock>(&block[..])
            .expect("a valid log block")
            .expect("not empty");
        assert_eq!(sealed.cluster_id, CLUSTER);
        assert_eq!(
            sealed.sequence, position,
            "the envelope carries the position"
        );
        sealed
            .record
            .updates
            .iter()
            .map(|update| {
                let entry = Entry::from_log(update).expect("a GUM entry");
                (update.sequence, entry.origin, entry.request_id)
            })
            .collect()
    }

    /// Completes the pending log write at `position` (`ok`: durable; else it failed).
    pub fn complete_log_write(&mut self, position: u64, ok: bool) {
        let index = self
            .disk_ops
            .iter()
            .position(|op| {
                matches!(self.purpose(op.op), Some(Purpose::GumLogWrite { position: p }) if p == position)
            })
            .unwrap_or_else(|| panic!("no log write at {position} in flight"));
        let op = self.disk_ops.remove(index);
        let block = op.block.expect("a write");
        if ok {
            self.disk.insert(op.offset, block.clone());
        }
        let result: Result<&[u8; BLOCK_SIZE], DiskError> =
            if ok { Ok(&block) } else { Err(DiskError) };
        self.node.step(Input::DiskDone { op: op.op, result });
        self.drain();
    }

    /// Answers every pending GUM recovery read from the disk, until none is left.
    pub fn answer_reads(&mut self) {
        loop {
            let index = self.disk_ops.iter().position(|op| {
                matches!(self.purpose(op.op), Some(Purpose::GumRecoveryRead { .. }))
            });
            let Some(index) = index else {
                return;
            };
            let op = self.disk_ops.remove(index);
            let block = self
                .disk
                .get(&op.offset)
                .cloned()
                .unwrap_or_else(|| Box::new([0u8; BLOCK_SIZE]));
            self.node.step(Input::DiskDone {
                op: op.op,
                result: Ok(&block),
            });
            self.drain();
        }
    }

    /// Whether any GUM recovery read is pending.
    pub fn recovery_reads(&self) -> usize {
        self.disk_ops
            .iter()
            .filter(|op| matches!(self.purpose(op.op), Some(Purpose::GumRecoveryRead { .. })))
            .count()
    }

    /// Lets `ticks` pass and runs GUM's tick work (not the membership's).
    pub fn tick(&mut self, ticks: u64) {
        self.node.set_clock(self.node.now() + ticks);
        self.node.gum_tick();
        self.drain();
    }

    /// The `Commit`s sent since the last `take_sent`, as (to, sequence), in order.
    pub fn commits(&mut self) -> Vec<(u8, u64)> {
        self.take_sent()
            .into_iter()
            .filter_map(|(to, message)| match message {
                GumMessage::Commit { committed, .. } => Some((to, committed.sequence)),
                _ => None,
            })
            .collect()
    }

    /// The `Ack`s among `sent`, as (to, request id, sequence), leaving the rest.
    pub fn acks(sent: &[(u8, GumMessage)]) -> Vec<(u8, u64, u64)> {
        sent.iter()
            .filter_map(|(to, message)| match message {
                GumMessage::Ack {
                    request_id,
                    sequence,
                    incarnation,
                    ..
                } => {
                    assert_eq!(
                        *incarnation, PEER_INCARNATION,
                        "acknowledged to its incarnation"
                    );
                    Some((*to, *request_id, *sequence))
                }
                _ => None,
            })
            .collect()
    }

    /// Lays a log block at `position` on the disk, as an earlier locker wrote it.
    pub fn lay_log_block(&mut self, position: u64, epoch: u64, updates: &[(u64, Entry)]) {
        let updates: Vec<_> = updates
            .iter()
            .map(|(sequence, entry)| entry.to_log(*sequence))
            .collect();
        let block = encode_log_block(CLUSTER, position, epoch, &updates).expect("a log block");
        self.disk
            .insert(geometry().log_block_offset(position), Box::new(*block));
    }

    /// Applies `entry` as `sequence` from the block at `position`, as a member would have.
    pub fn apply(&mut self, sequence: u64, position: u64, entry: Entry) {
        self.node.apply_committed(Committed {
            sequence,
            position,
            entry,
        });
        self.drain();
    }
}

/// An update of node `origin` (its incarnation `PEER_INCARNATION`).
pub fn entry(origin: u8, request_id: u64) -> Entry {
    Entry {
        origin,
        incarnation: PEER_INCARNATION,
        request_id,
        body: body(&format!("k{origin}"), &format!("v{request_id}")),
    }
}
