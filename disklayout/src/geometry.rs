//! Where each region lies on the disk (FORMAT.md §2), and the block offset of every record.
use crate::error::GeometryError;
use crate::{BLOCK_SIZE, NODE_ID_MAX};

const BLOCK_BYTES: u64 = BLOCK_SIZE as u64;
const PER_NODE_BLOCKS: u64 = NODE_ID_MAX as u64;
const CHECKPOINT_BLOCKS_MIN: u64 = 2;
pub(crate) const CHECKPOINT_BLOCKS_MAX: u64 = 8192;
const LOG_BLOCKS_MIN: u64 = 16;
const LOG_BLOCKS_MAX: u64 = 32768;

/// A run of whole blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Where the region starts, a multiple of the block size.
    pub offset_bytes: u64,
    /// How many blocks it has.
    pub blocks: u64,
}

impl Region {
    /// The offset of the region's block `index`; asserts that the index is inside the region.
    pub fn block_offset(&self, index: u64) -> u64 {
        assert!(
            index < self.blocks,
            "block {index} outside a region of {}",
            self.blocks
        );
        self.offset_bytes + index * BLOCK_BYTES
    }

    /// The first byte after the region.
    pub fn end_bytes(&self) -> u64 {
        self.offset_bytes + self.blocks * BLOCK_BYTES
    }
}

/// The regions after the superblock, in disk order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// The node entries.
    NodeTable,
    /// The quorum lease.
    Quorum,
    /// The per-node lease/heartbeat slots.
    NodeSlots,
    /// The per-node fence request mailboxes.
    FenceRequests,
    /// The per-node fence acknowledgements.
    FenceAcks,
    /// The per-resource leases.
    ResourceLeases,
    /// Checkpoint slot A.
    CheckpointA,
    /// Checkpoint slot B.
    CheckpointB,
    /// The database log ring.
    Log,
}

impl RegionKind {
    /// Every region after the superblock, in disk order (and superblock table order).
    pub const ALL: [RegionKind; 9] = [
        RegionKind::NodeTable,
        RegionKind::Quorum,
        RegionKind::NodeSlots,
        RegionKind::FenceRequests,
        RegionKind::FenceAcks,
        RegionKind::ResourceLeases,
        RegionKind::CheckpointA,
        RegionKind::CheckpointB,
        RegionKind::Log,
    ];

    /// The region's name in dumps and error messages.
    pub fn name(self) -> &'static str {
        match self {
            RegionKind::NodeTable => "node-table",
            RegionKind::Quorum => "quorum",
            RegionKind::NodeSlots => "node-slots",
            RegionKind::FenceRequests => "fence-requests",
            RegionKind::FenceAcks => "fence-acks",
            RegionKind::ResourceLeases => "resource-leases",
            RegionKind::CheckpointA => "checkpoint-a",
            RegionKind::CheckpointB => "checkpoint-b",
            RegionKind::Log => "log",
        }
    }
}

/// The layout of one disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Each region, in `RegionKind::ALL` order.
    pub regions: [Region; 9],
}

impl Geometry {
    /// The layout FORMAT.md §2 gives for a disk of `size_bytes` with `resource_lease_slots`.
    pub fn for_disk(size_bytes: u64, resource_lease_slots: u32) -> Result<Geometry, GeometryError> {
        let total_blocks = size_bytes / BLOCK_BYTES;
        let fixed_blocks =
            1 + PER_NODE_BLOCKS + 1 + 3 * PER_NODE_BLOCKS + resource_lease_slots as u64;
        let size_bytes_min =
            (fixed_blocks + 2 * CHECKPOINT_BLOCKS_MIN + LOG_BLOCKS_MIN) * BLOCK_BYTES;
        if size_bytes < size_bytes_min {
            return Err(GeometryError::TooSmall {
                size_bytes,
                size_bytes_min,
            });
        }
        let spare_blocks = total_blocks - fixed_blocks;
        let checkpoint_blocks =
            (spare_blocks / 8).clamp(CHECKPOINT_BLOCKS_MIN, CHECKPOINT_BLOCKS_MAX);
        let log_blocks = (spare_blocks - 2 * checkpoint_blocks).min(LOG_BLOCKS_MAX);
        let sizes = [
            PER_NODE_BLOCKS,
            1,
            PER_NODE_BLOCKS,
            PER_NODE_BLOCKS,
            PER_NODE_BLOCKS,
            resource_lease_slots as u64,
            checkpoint_blocks,
            checkpoint_blocks,
            log_blocks,
        ];
        let mut offset_bytes = BLOCK_BYTES;
        let regions = sizes.map(|blocks| {
            let region = Region {
                offset_bytes,
                blocks,
            };
            offset_bytes = region.end_bytes();
            region
        });
        let geometry = Geometry { regions };
        geometry.validate(size_bytes)?;
        Ok(geometry)
    }

    /// Checks the rules of FORMAT.md §4 for the region table against a disk of `size_bytes`.
    pub fn validate(&self, size_bytes: u64) -> Result<(), GeometryError> {
        let problem = |problem| Err(GeometryError::Inconsistent { problem });
        let mut expected_offset_bytes = BLOCK_BYTES;
        for (kind, region) in RegionKind::ALL.iter().zip(self.regions.iter()) {
            if region.offset_bytes != expected_offset_bytes {
                return problem("regions must follow each other from block 1 without gaps");
            }
            let blocks_ok = match kind {
                RegionKind::NodeTable
                | RegionKind::NodeSlots
                | RegionKind::FenceRequests
                | RegionKind::FenceAcks => region.blocks == PER_NODE_BLOCKS,
                RegionKind::Quorum => region.blocks == 1,
                RegionKind::ResourceLeases => region.blocks <= u32::MAX as u64,
                RegionKind::CheckpointA | RegionKind::CheckpointB => {
                    (CHECKPOINT_BLOCKS_MIN..=CHECKPOINT_BLOCKS_MAX).contains(&region.blocks)
                }
                RegionKind::Log => (LOG_BLOCKS_MIN..=LOG_BLOCKS_MAX).contains(&region.blocks),
            };
            if !blocks_ok {
                return problem("a region has a block count its kind does not allow");
            }
            expected_offset_bytes =
                match region.offset_bytes.checked_add(region.blocks * BLOCK_BYTES) {
                    Some(end) => end,
                    None => return problem("a region ends past the largest offset"),
                };
        }
        if expected_offset_bytes > size_bytes {
            return problem("the regions end past the disk size");
        }
        Ok(())
    }

    /// The region of `kind`.
    pub fn region(&self, kind: RegionKind) -> Region {
        let index = RegionKind::ALL
            .iter()
            .position(|&each| each == kind)
            .expect("ALL lists every kind");
        self.regions[index]
    }

    /// The first byte after the last region: everything a format must zero.
    pub fn end_bytes(&self) -> u64 {
        self.regions[self.regions.len() - 1].end_bytes()
    }

    fn per_node_offset(&self, kind: RegionKind, node_id: u8) -> u64 {
        assert!(
            crate::is_node_id(node_id),
            "node id {node_id} out of 1..=64"
        );
        self.region(kind).block_offset(node_id as u64 - 1)
    }

    /// The block holding node `node_id`'s entry in the node table.
    pub fn node_entry_offset(&self, node_id: u8) -> u64 {
        self.per_node_offset(RegionKind::NodeTable, node_id)
    }

    /// The block holding the quorum lease.
    pub fn quorum_offset(&self) -> u64 {
        self.region(RegionKind::Quorum).block_offset(0)
    }

    /// The block holding node `node_id`'s lease/heartbeat slot.
    pub fn node_slot_offset(&self, node_id: u8) -> u64 {
        self.per_node_offset(RegionKind::NodeSlots, node_id)
    }

    /// The block holding the fence request addressed to node `target`.
    pub fn fence_request_offset(&self, target: u8) -> u64 {
        self.per_node_offset(RegionKind::FenceRequests, target)
    }

    /// The block holding node `node_id`'s fence acknowledgement.
    pub fn fence_ack_offset(&self, node_id: u8) -> u64 {
        self.per_node_offset(RegionKind::FenceAcks, node_id)
    }

    /// How many resource lease slots the disk has.
    pub fn resource_lease_slots(&self) -> u32 {
        self.region(RegionKind::ResourceLeases).blocks as u32
    }

    /// The block holding resource lease slot `index`.
    pub fn resource_lease_offset(&self, index: u32) -> u64 {
        self.region(RegionKind::ResourceLeases)
            .block_offset(index as u64)
    }

    /// The checkpoint slot `slot` (0 for A, 1 for B).
    pub fn checkpoint_region(&self, slot: usize) -> Region {
        match slot {
            0 => self.region(RegionKind::CheckpointA),
            1 => self.region(RegionKind::CheckpointB),
            _ => panic!("checkpoint slot {slot} does not exist"),
        }
    }

    /// The block holding the header of checkpoint slot `slot` (0 for A, 1 for B).
    pub fn checkpoint_offset(&self, slot: usize) -> u64 {
        self.checkpoint_region(slot).block_offset(0)
    }

    /// How many blocks the log ring has.
    pub fn log_blocks(&self) -> u64 {
        self.region(RegionKind::Log).blocks
    }

    /// The block where absolute log position `position` lives.
    pub fn log_block_offset(&self, position: u64) -> u64 {
        let log = self.region(RegionKind::Log);
        log.block_offset(position % log.blocks)
    }
}
