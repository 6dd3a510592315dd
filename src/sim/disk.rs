//! The simulated shared disk: bounded latency, I/O errors (a failed write writes nothing),
//! and torn writes when a node crashes with a write in flight (a prefix of the block lands,
//! so the record's CRC fails). Reads see the disk as it is when they complete.

use std::collections::BTreeMap;

use crate::core::disk_records::BLOCK_SIZE;
use crate::prng::Prng;

/// One operation in flight.
#[derive(Clone, Debug)]
pub struct DiskOp {
    pub node: u8,
    pub op: u64,
    pub offset_bytes: u64,
    /// `Some` for a write.
    pub block: Option<Box<[u8; BLOCK_SIZE]>>,
    pub fails: bool,
}

/// A finished operation, to hand back to its node.
#[derive(Clone, Debug)]
pub struct Completion {
    pub node: u8,
    pub op: u64,
    pub result: Result<Box<[u8; BLOCK_SIZE]>, ()>,
}

#[derive(Clone, Debug)]
pub struct DiskParams {
    pub latency_ticks_max: u64,
    pub error_per_mille: u64,
    pub torn_per_mille: u64,
}

#[derive(Debug)]
pub struct SimDisk {
    pub params: DiskParams,
    blocks: BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>,
    inflight: BTreeMap<(u64, u64), DiskOp>,
    sequence: u64,
    pub errors: u64,
    pub torn: u64,
    pub lost_on_crash: u64,
}

impl SimDisk {
    pub fn new(params: DiskParams) -> SimDisk {
        assert!(params.latency_ticks_max >= 1);
        SimDisk {
            params,
            blocks: BTreeMap::new(),
            inflight: BTreeMap::new(),
            sequence: 0,
            errors: 0,
            torn: 0,
            lost_on_crash: 0,
        }
    }

    pub fn submit(&mut self, mut op: DiskOp, now_tick: u64, prng: &mut Prng) {
        assert_eq!(op.offset_bytes % BLOCK_SIZE as u64, 0);
        let latency = prng.range_inclusive(1, self.params.latency_ticks_max);
        op.fails = prng.chance(self.params.error_per_mille, 1000);
        if op.fails {
            self.errors += 1;
        }
        self.sequence += 1;
        self.inflight
            .insert((now_tick + latency, self.sequence), op);
    }

    /// Operations finishing at or before `now_tick`; writes land now.
    pub fn complete(&mut self, now_tick: u64) -> Vec<Completion> {
        let later = self.inflight.split_off(&(now_tick + 1, 0));
        let due = std::mem::replace(&mut self.inflight, later);
        let mut completions = Vec::new();
        for op in due.into_values() {
            let result = if op.fails {
                Err(())
            } else if let Some(block) = op.block {
                self.blocks.insert(op.offset_bytes, block.clone());
                Ok(block)
            } else {
                Ok(self.read(op.offset_bytes))
            };
            completions.push(Completion {
                node: op.node,
                op: op.op,
                result,
            });
        }
        completions
    }

    /// The block at `offset_bytes` (zeros if never written).
    pub fn read(&self, offset_bytes: u64) -> Box<[u8; BLOCK_SIZE]> {
        self.blocks
            .get(&offset_bytes)
            .cloned()
            .unwrap_or_else(|| Box::new([0u8; BLOCK_SIZE]))
    }

    /// `node` crashed: its writes in flight are lost, or torn (see `tear`).
    pub fn crash(&mut self, node: u8, prng: &mut Prng) {
        let keys: Vec<(u64, u64)> = self
            .inflight
            .iter()
            .filter(|(_, op)| op.node == node)
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            let Some(op) = self.inflight.remove(&key) else {
                continue;
            };
            let Some(block) = op.block else { continue };
            if !op.fails && prng.chance(self.params.torn_per_mille, 1000) {
                let old = self.read(op.offset_bytes);
                self.blocks
                    .insert(op.offset_bytes, tear(&old, &block, prng));
                self.torn += 1;
            } else {
                self.lost_on_crash += 1;
            }
        }
    }
}

/// A write cut by a crash, worse than the format assumes (FORMAT.md §1 promises whole sectors):
/// the device wrote its sectors in any order, each old or new, and was cut inside one of them,
/// which holds a prefix of its new bytes over its old ones. The cut sector is the first or the
/// second half of the time, where control records and their mirror copies live.
fn tear(old: &[u8; BLOCK_SIZE], new: &[u8; BLOCK_SIZE], prng: &mut Prng) -> Box<[u8; BLOCK_SIZE]> {
    const SECTOR: usize = 512;
    let sectors = BLOCK_SIZE / SECTOR;
    let mut torn = Box::new(*old);
    for sector in 0..sectors {
        if prng.chance(1, 2) {
            let range = sector * SECTOR..(sector + 1) * SECTOR;
            torn[range.clone()].copy_from_slice(&new[range]);
        }
    }
    let cut = match prng.chance(1, 2) {
        true => prng.range_inclusive(0, 1) as usize,
        false => prng.range_inclusive(0, sectors as u64 - 1) as usize,
    };
    let start = cut * SECTOR;
    torn[start..start + SECTOR].copy_from_slice(&old[start..start + SECTOR]);
    // Records are small: cut inside the first 64 bytes of the sector often, so the CRC is what
    // catches the cut, not an all-zero header.
    let landed = match prng.chance(1, 2) {
        true => prng.range_inclusive(1, 63) as usize,
        false => prng.range_inclusive(1, SECTOR as u64 - 1) as usize,
    };
    torn[start..start + landed].copy_from_slice(&new[start..start + landed]);
    torn
}
