//! The global update manager, core only (issue 4 item 7): N `core::Node`s on a simulated
//! network with zero latency and a shared disk whose operations complete at once. Messages
//! travel in *waves*: everything sent in wave k arrives in wave k+1, and a disk operation issued
//! in wave k completes in wave k+1; a simulated round trip is two waves. The clock does not move
//! while updates flow, so only the protocol's own steps count.
//!
//! Each sender keeps `WINDOW` updates outstanding (proposed, not yet acknowledged); an update
//! counts once its sender sees the acknowledgement (durable in the log, applied by every member).
//! Reported per cluster size (3 to 64) and sender count (one, all): acknowledged updates per
//! second of wall-clock CPU (one thread runs every node), and per simulated round trip.
//!
//! `cargo bench --bench gum`; `NODES=3,8,16,32,64`, `UPDATES=20000`. Writes
//! benches/results/gum.json.
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use wolfpack::core::db::{Op, Path, Update, Value};
use wolfpack::core::disk_records::{Geometry, Timing, BLOCK_SIZE};
use wolfpack::core::{Config, DiskError, Event, Input, Mutation, Node, Output};

/// Updates each sender keeps outstanding.
const WINDOW: usize = 64;
const DISK_BYTES: u64 = 64 << 20;

/// A disk operation completing next wave: (node, op, offset, block to write).
type DiskOp = (u8, u64, u64, Option<Box<[u8; BLOCK_SIZE]>>);

struct Bench {
    nodes: Vec<Node>,
    disk: BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>,
    /// (to, payload) in flight this wave.
    messages: VecDeque<(u8, Vec<u8>)>,
    disk_ops: VecDeque<DiskOp>,
    now_ms: u64,
    waves: u64,
    acknowledged: u64,
}

impl Bench {
    fn new(count: u8) -> Bench {
        let geometry = Geometry::for_disk(DISK_BYTES, 0).expect("the disk is large enough");
        let nodes = (1..=count)
            .map(|id| {
                let config = Config {
                    node_id: id,
                    cluster_id: 0xBE7C,
                    incarnation: 1,
                    networks: vec![1; usize::from(count)],
                    timing: Timing::default(),
                    geometry,
                    mutation: Mutation::None,
                    digest_every_update: false,
                    builtin_groups: 0,
                };
                Node::new(config, u64::from(id))
            })
            .collect();
        Bench {
            nodes,
            disk: BTreeMap::new(),
            messages: VecDeque::new(),
            disk_ops: VecDeque::new(),
            now_ms: 1_000_000,
            waves: 0,
            acknowledged: 0,
        }
    }

    fn drain(&mut self, id: u8) {
        let node = &mut self.nodes[usize::from(id - 1)];
        while let Some(output) = node.poll_output() {
            match output {
                Output::Send { to, payload, .. } => self.messages.push_back((to, payload)),
                Output::DiskRead { op, offset_bytes } => {
                    self.disk_ops.push_back((id, op, offset_bytes, None))
                }
                Output::DiskWrite {
                    op,
                    offset_bytes,
                    block,
                } => self.disk_ops.push_back((id, op, offset_bytes, Some(block))),
                Output::Event(Event::GumAcknowledged { .. }) => self.acknowledged += 1,
                Output::Event(_)
                | Output::Resource { .. }
                | Output::ArmDeadman { .. }
                | Output::ResourceLease { .. } => {}
            }
        }
    }

    /// Delivers everything sent or issued in the previous wave. False when nothing moved.
    fn wave(&mut self) -> bool {
        let messages = std::mem::take(&mut self.messages);
        let disk_ops = std::mem::take(&mut self.disk_ops);
        if messages.is_empty() && disk_ops.is_empty() {
            return false;
        }
        self.waves += 1;
        for (id, op, offset, write) in disk_ops {
            let block = match write {
                Some(block) => {
                    self.disk.insert(offset, block.clone());
                    block
                }
                None => self
                    .disk
                    .get(&offset)
                    .cloned()
                    .unwrap_or_else(|| Box::new([0u8; BLOCK_SIZE])),
            };
            let result: Result<&[u8; BLOCK_SIZE], DiskError> = Ok(&block);
            self.nodes[usize::from(id - 1)].step(Input::DiskDone { op, result });
            self.drain(id);
        }
        for (to, payload) in messages {
            self.nodes[usize::from(to - 1)].step(Input::Message {
                network: 0,
                payload: &payload,
            });
            self.drain(to);
        }
        true
    }

    fn tick(&mut self) {
        self.now_ms += 10;
        for index in 0..self.nodes.len() {
            self.nodes[index].step(Input::Tick {
                now_ms: self.now_ms,
            });
            self.drain(index as u8 + 1);
        }
        while self.wave() {}
    }

    fn ready(&self) -> bool {
        let count = self.nodes.len() as u32;
        self.nodes.iter().all(|node| {
            let status = node.status();
            status.stabilized && status.members.count_ones() == count && status.gum.valid
        }) && self.nodes.iter().any(|node| node.status().gum.locker_ready)
    }
}

fn update_body(sender: u8, serial: u64) -> Vec<u8> {
    let path = Path::parse(&format!("properties/bench/n{sender}/k{}", serial % 32))
        .expect("a fixed path pattern parses");
    Update {
        ops: vec![Op::Put {
            path,
            value: Value::U64(serial),
        }],
    }
    .encode()
    .expect("a small update encodes")
}

struct Row {
    nodes: u8,
    senders: u8,
    updates: u64,
    seconds: f64,
    waves: u64,
}

fn measure(count: u8, all_senders: bool, updates: u64) -> Row {
    let mut bench = Bench::new(count);
    let mut ticks = 0;
    while !bench.ready() {
        bench.tick();
        ticks += 1;
        assert!(ticks < 20_000, "the cluster did not form");
    }
    let senders: Vec<u8> = if all_senders {
        (1..=count).collect()
    } else {
        vec![count]
    };
    let (start_waves, start_acks) = (bench.waves, bench.acknowledged);
    let started = Instant::now();
    let mut serial = 0u64;
    let mut submitted = 0u64;
    while bench.acknowledged - start_acks < updates {
        for &sender in &senders {
            while submitted < updates
                && bench.nodes[usize::from(sender - 1)].status().gum.outbox < WINDOW
            {
                serial += 1;
                submitted += 1;
                let body = update_body(sender, serial);
                bench.nodes[usize::from(sender - 1)]
                    .submit(body)
                    .expect("the window stays below the outbox bound");
                bench.drain(sender);
            }
        }
        if !bench.wave() {
            // Nothing in flight: let timers resend (should not happen on a lossless network).
            bench.tick();
        }
    }
    Row {
        nodes: count,
        senders: senders.len() as u8,
        updates: bench.acknowledged - start_acks,
        seconds: started.elapsed().as_secs_f64(),
        waves: bench.waves - start_waves,
    }
}

fn main() {
    let sizes: Vec<u8> = std::env::var("NODES")
        .unwrap_or_else(|_| "3,8,16,32,64".into())
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect();
    let updates: u64 = std::env::var("UPDATES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    println!(
        "GUM core, zero-latency network, window {WINDOW} per sender, {updates} updates per row"
    );
    println!(
        "{:>5} {:>7} {:>10} {:>14} {:>18} {:>12}",
        "nodes", "senders", "updates", "updates/s", "updates/round trip", "round trips"
    );
    let mut rows = Vec::new();
    for &count in &sizes {
        for all in [false, true] {
            let row = measure(count, all, updates);
            let round_trips = row.waves as f64 / 2.0;
            println!(
                "{:>5} {:>7} {:>10} {:>14.0} {:>18.1} {:>12.0}",
                row.nodes,
                row.senders,
                row.updates,
                row.updates as f64 / row.seconds,
                row.updates as f64 / round_trips,
                round_trips
            );
            rows.push(row);
        }
    }
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            format!(
                "{{\"nodes\":{},\"senders\":{},\"updates\":{},\"seconds\":{:.4},\"updates_per_second\":{:.0},\"round_trips\":{:.1},\"updates_per_round_trip\":{:.2}}}",
                row.nodes,
                row.senders,
                row.updates,
                row.seconds,
                row.updates as f64 / row.seconds,
                row.waves as f64 / 2.0,
                row.updates as f64 / (row.waves as f64 / 2.0)
            )
        })
        .collect();
    let json = format!(
        "{{\"bench\":\"gum\",\"window_per_sender\":{WINDOW},\"paper_updates_per_second\":6,\"rows\":[{}]}}\n",
        items.join(",")
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results/gum.json");
    std::fs::write(path, json).expect("benches/results is writable");
    println!("wrote {path}");
}
