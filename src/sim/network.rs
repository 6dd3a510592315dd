//! The packet simulator: loss, delay, duplication (reordering follows from random delays),
//! and partitions: symmetric or one-way link cuts, and whole networks down for one node.

use std::collections::BTreeMap;

use crate::prng::Prng;

/// One datagram in flight.
#[derive(Clone, Debug)]
pub struct Packet {
    pub from: u8,
    pub to: u8,
    pub network: u8,
    pub payload: Vec<u8>,
}

/// Knobs drawn from the seed.
#[derive(Clone, Debug)]
pub struct NetworkParams {
    pub loss_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub delay_ticks_max: u64,
    /// Chance (per mille) that a packet arrives late, up to `LATE_TICKS_MAX` after it was sent:
    /// behind packets sent after it (a queue, a retransmission), so a node reads a status or an
    /// install a round or two after its sender moved on.
    pub late_per_mille: u64,
}

/// The latest a late packet arrives (ticks): a few regroup rounds.
pub const LATE_TICKS_MAX: u64 = 80;

#[derive(Debug)]
pub struct Network {
    pub params: NetworkParams,
    /// Packets in flight by the tick they arrive, each tick's in the order they were sent.
    queue: BTreeMap<u64, Vec<Packet>>,
    /// Directed links cut on every network: (from, to) → number of faults cutting it.
    cut: BTreeMap<(u8, u8), u32>,
    /// A node's network down (in both directions): (node, network) → number of faults.
    network_down: BTreeMap<(u8, u8), u32>,
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

impl Network {
    pub fn new(params: NetworkParams) -> Network {
        assert!(params.delay_ticks_max >= 1);
        Network {
            params,
            queue: BTreeMap::new(),
            cut: BTreeMap::new(),
            network_down: BTreeMap::new(),
            sent: 0,
            dropped: 0,
            duplicated: 0,
        }
    }

    /// True if a packet sent now from `from` to `to` on `network` can arrive.
    pub fn passes(&self, from: u8, to: u8, network: u8) -> bool {
        !self.cut.contains_key(&(from, to))
            && !self.network_down.contains_key(&(from, network))
            && !self.network_down.contains_key(&(to, network))
    }

    /// True if `from` can reach `to` on at least one of `shared_networks`.
    pub fn link_up(&self, from: u8, to: u8, shared_networks: u8) -> bool {
        (0..shared_networks).any(|network| self.passes(from, to, network))
    }

    pub fn send(&mut self, packet: Packet, now_tick: u64, prng: &mut Prng) {
        self.sent += 1;
        if !self.passes(packet.from, packet.to, packet.network)
            || prng.chance(self.params.loss_per_mille, 1000)
        {
            self.dropped += 1;
            return;
        }
        if prng.chance(self.params.duplicate_per_mille, 1000) {
            self.duplicated += 1;
            let delay = prng.range_inclusive(1, self.params.delay_ticks_max);
            self.enqueue(now_tick + delay, packet.clone());
        }
        // Drawn only when late packets are on, so seeds without them keep their schedules.
        let late = self.params.late_per_mille > 0 && prng.chance(self.params.late_per_mille, 1000);
        let delay = match late {
            true => prng.range_inclusive(self.params.delay_ticks_max, LATE_TICKS_MAX),
            false => prng.range_inclusive(1, self.params.delay_ticks_max),
        };
        self.enqueue(now_tick + delay, packet);
    }

    fn enqueue(&mut self, tick: u64, packet: Packet) {
        self.queue.entry(tick).or_default().push(packet);
    }

    /// Packets due at or before `now_tick`, in order: by arrival tick, then as sent.
    pub fn due(&mut self, now_tick: u64) -> Vec<Packet> {
        let mut due = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if *entry.key() > now_tick {
                break;
            }
            let packets = entry.remove();
            if due.is_empty() {
                due = packets;
            } else {
                due.extend(packets);
            }
        }
        due
    }

    pub fn cut_link(&mut self, from: u8, to: u8) {
        *self.cut.entry((from, to)).or_insert(0) += 1;
    }
    pub fn restore_link(&mut self, from: u8, to: u8) {
        release(&mut self.cut, (from, to));
    }
    pub fn take_network_down(&mut self, node: u8, network: u8) {
        *self.network_down.entry((node, network)).or_insert(0) += 1;
    }
    pub fn bring_network_up(&mut self, node: u8, network: u8) {
        release(&mut self.network_down, (node, network));
    }

    /// Heals every partition (faults end; loss and duplication stop for the liveness phase).
    pub fn heal(&mut self) {
        self.cut.clear();
        self.network_down.clear();
        self.params.loss_per_mille = 0;
        self.params.duplicate_per_mille = 0;
        self.params.late_per_mille = 0;
    }
}

fn release(counts: &mut BTreeMap<(u8, u8), u32>, key: (u8, u8)) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}
