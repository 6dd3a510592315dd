//! Walks every record of a disk through a block-reading callback and reports each one: the
//! engine behind `wolfpack disk dump` and `wolfpack disk check`, and the golden-image tests.
//!
//! Beyond each record's own checks it checks what only the place of a record tells: the cluster
//! id matches the superblock's, a per-node record sits in its node's block, a log block holds the
//! position of its block, a checkpoint payload matches its CRC.
use crate::geometry::RegionKind;
use crate::{
    decode, replay_log, Block, CheckpointHeader, DecodeError, FenceAck, FenceRequest, LogBlock,
    LogReplay, NodeEntry, NodeSlot, QuorumLease, Record, ResourceLease, Sealed, Superblock,
    BLOCK_SIZE,
};

/// A decoded record of any type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyRecord {
    /// A node table entry.
    NodeEntry(Sealed<NodeEntry>),
    /// The quorum lease.
    QuorumLease(Sealed<QuorumLease>),
    /// A node's slot.
    NodeSlot(Sealed<NodeSlot>),
    /// A fence request.
    FenceRequest(Sealed<FenceRequest>),
    /// A fence acknowledgement.
    FenceAck(Sealed<FenceAck>),
    /// A resource lease.
    ResourceLease(Sealed<ResourceLease>),
    /// A checkpoint header whose payload matched its CRC.
    Checkpoint(Sealed<CheckpointHeader>),
    /// A log block.
    LogBlock(Sealed<LogBlock>),
}

/// What one block holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Never written.
    Empty,
    /// A valid record.
    Valid(AnyRecord),
    /// Not valid: what is wrong.
    Bad(String),
    /// The read failed.
    Unreadable(String),
}

/// One non-empty or bad block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockReport {
    /// The region's name.
    pub region: &'static str,
    /// The block's index within its region.
    pub index: u64,
    /// The block's byte offset on the disk.
    pub offset_bytes: u64,
    /// What it holds.
    pub outcome: Outcome,
}

/// Everything `inspect` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The superblock and its cluster id.
    pub superblock: Sealed<Superblock>,
    /// Every block that is not empty, in disk order (empty blocks are counted, not listed).
    pub blocks: Vec<BlockReport>,
    /// Empty blocks per region, in `RegionKind::ALL` order.
    pub empty_blocks: [u64; 9],
    /// The log as replay sees it from the newest valid checkpoint.
    pub log: LogReplay,
}

impl Inspection {
    /// The reports of the blocks that are bad or unreadable.
    pub fn problems(&self) -> impl Iterator<Item = &BlockReport> {
        self.blocks
            .iter()
            .filter(|block| matches!(block.outcome, Outcome::Bad(_) | Outcome::Unreadable(_)))
    }
}

/// Why the disk cannot be inspected at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InspectError {
    /// The superblock cannot be read.
    Unreadable(String),
    /// Block 0 is all zero: the disk was never formatted.
    NotFormatted,
    /// Block 0 is not a valid superblock.
    BadSuperblock(DecodeError),
    /// The disk is smaller than the size it was formatted for.
    Truncated {
        /// The size the superblock records.
        formatted_bytes: u64,
        /// The disk's size now.
        size_bytes: u64,
    },
}

impl std::fmt::Display for InspectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InspectError::Unreadable(error) => {
                write!(f, "cannot read the superblock at offset 0: {error}")
            }
            InspectError::NotFormatted => {
                write!(f, "not a wolfpack disk: block 0 is empty (never formatted)")
            }
            InspectError::BadSuperblock(DecodeError::WrongMagic { found, .. }) => write!(
                f,
                "not a wolfpack disk: offset 0 holds magic {} instead of \"WPSB\"",
                crate::error::show_magic(found)
            ),
            InspectError::BadSuperblock(error) => write!(f, "bad superblock at offset 0: {error}"),
            InspectError::Truncated {
                formatted_bytes,
                size_bytes,
            } => write!(
                f,
                "truncated: formatted for {formatted_bytes} bytes but only {size_bytes} are there"
            ),
        }
    }
}

impl std::error::Error for InspectError {}

/// Reads one block at an offset into the buffer; the error is shown as it is.
pub type ReadBlock<'a> = dyn FnMut(u64, &mut Block) -> Result<(), String> + 'a;

/// Reads and checks every block of a disk of `size_bytes`; never writes.
pub fn inspect(size_bytes: u64, read: &mut ReadBlock<'_>) -> Result<Inspection, InspectError> {
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    if size_bytes < BLOCK_SIZE as u64 {
        return Err(InspectError::Truncated {
            formatted_bytes: BLOCK_SIZE as u64,
            size_bytes,
        });
    }
    read(0, &mut block).map_err(InspectError::Unreadable)?;
    let superblock = match decode::<Superblock>(&block[..]) {
        Ok(Some(superblock)) => superblock,
        Ok(None) => return Err(InspectError::NotFormatted),
        Err(error) => return Err(InspectError::BadSuperblock(error)),
    };
    let formatted_bytes = superblock.record.disk_size_bytes;
    if formatted_bytes > size_bytes {
        return Err(InspectError::Truncated {
            formatted_bytes,
            size_bytes,
        });
    }
    let mut walker = Walker {
        cluster_id: superblock.cluster_id,
        blocks: Vec::new(),
        empty_blocks: [0; 9],
    };
    let geometry = superblock.record.geometry;
    let mut log_ring = Vec::new();
    let mut newest_checkpoint: Option<Sealed<CheckpointHeader>> = None;
    for (region_number, kind) in RegionKind::ALL.iter().enumerate() {
        let region = geometry.region(*kind);
        let blocks = match kind {
            RegionKind::CheckpointA | RegionKind::CheckpointB => 1,
            _ => region.blocks,
        };
        for index in 0..blocks {
            let offset_bytes = region.block_offset(index);
            let place = Place {
                kind: *kind,
                region_number,
                index,
                offset_bytes,
            };
            if let Err(error) = read(offset_bytes, &mut block) {
                walker.push(place, Outcome::Unreadable(error));
                if *kind == RegionKind::Log {
                    log_ring.push(Err(DecodeError::Torn));
                }
                continue;
            }
            match kind {
                RegionKind::NodeTable => {
                    walker.per_node(place, &block, AnyRecord::NodeEntry, |r: &NodeEntry| {
                        r.node_id
                    })
                }
                RegionKind::Quorum => walker.plain(place, &block, AnyRecord::QuorumLease),
                RegionKind::NodeSlots => {
                    walker.per_node(place, &block, AnyRecord::NodeSlot, |r: &NodeSlot| r.node_id)
                }
                RegionKind::FenceRequests => walker.per_node(
                    place,
                    &block,
                    AnyRecord::FenceRequest,
                    |r: &FenceRequest| r.target,
                ),
                RegionKind::FenceAcks => {
                    walker.per_node(place, &block, AnyRecord::FenceAck, |r: &FenceAck| r.node_id)
                }
                RegionKind::ResourceLeases => walker.plain(place, &block, AnyRecord::ResourceLease),
                RegionKind::CheckpointA | RegionKind::CheckpointB => {
                    let slot = (*kind == RegionKind::CheckpointB) as usize;
                    let region = geometry.checkpoint_region(slot);
                    if let Some(header) = walker.checkpoint(place, &block, region, read) {
                        if newest_checkpoint
                            .as_ref()
                            .is_none_or(|newest| header.sequence > newest.sequence)
                        {
                            newest_checkpoint = Some(header);
                        }
                    }
                }
                RegionKind::Log => log_ring.push(walker.log_block(place, &block, region.blocks)),
            }
        }
    }
    let start = newest_checkpoint.map_or(0, |checkpoint| checkpoint.record.log_position);
    let log = replay_log(&log_ring, start, superblock.cluster_id);
    Ok(Inspection {
        superblock,
        blocks: walker.blocks,
        empty_blocks: walker.empty_blocks,
        log,
    })
}

#[derive(Clone, Copy)]
struct Place {
    kind: RegionKind,
    region_number: usize,
    index: u64,
    offset_bytes: u64,
}

struct Walker {
    cluster_id: u64,
    blocks: Vec<BlockReport>,
    empty_blocks: [u64; 9],
}

impl Walker {
    fn push(&mut self, place: Place, outcome: Outcome) {
        if outcome == Outcome::Empty {
            self.empty_blocks[place.region_number] += 1;
            return;
        }
        let report = BlockReport {
            region: place.kind.name(),
            index: place.index,
            offset_bytes: place.offset_bytes,
            outcome,
        };
        self.blocks.push(report);
    }

    fn stale(&self, cluster_id: u64) -> Outcome {
        Outcome::Bad(format!(
            "stale: cluster id {cluster_id:#018x} is not this disk's {:#018x}",
            self.cluster_id
        ))
    }

    /// Decodes a record and checks its cluster id; `Err` holds the outcome to report.
    fn decode<R: Record>(&self, block: &Block) -> Result<Option<Sealed<R>>, Outcome> {
        match decode::<R>(&block[..]) {
            Ok(Some(sealed)) if sealed.cluster_id != self.cluster_id => {
                Err(self.stale(sealed.cluster_id))
            }
            Ok(decoded) => Ok(decoded),
            Err(error) => Err(Outcome::Bad(error.to_string())),
        }
    }

    fn plain<R: Record>(&mut self, place: Place, block: &Block, wrap: fn(Sealed<R>) -> AnyRecord) {
        let outcome = match self.decode::<R>(block) {
            Ok(Some(sealed)) => Outcome::Valid(wrap(sealed)),
            Ok(None) => Outcome::Empty,
            Err(outcome) => outcome,
        };
        self.push(place, outcome);
    }

    fn per_node<R: Record>(
        &mut self,
        place: Place,
        block: &Block,
        wrap: fn(Sealed<R>) -> AnyRecord,
        node_of: fn(&R) -> u8,
    ) {
        let outcome = match self.decode::<R>(block) {
            Ok(Some(sealed)) if node_of(&sealed.record) as u64 != place.index + 1 => {
                Outcome::Bad(format!(
                    "names node {} but sits in the block of node {}",
                    node_of(&sealed.record),
                    place.index + 1
                ))
            }
            Ok(Some(sealed)) => Outcome::Valid(wrap(sealed)),
            Ok(None) => Outcome::Empty,
            Err(outcome) => outcome,
        };
        self.push(place, outcome);
    }

    fn checkpoint(
        &mut self,
        place: Place,
        block: &Block,
        region: crate::Region,
        read: &mut ReadBlock<'_>,
    ) -> Option<Sealed<CheckpointHeader>> {
        let header = match self.decode::<CheckpointHeader>(block) {
            Ok(Some(header)) => header,
            Ok(None) => {
                self.push(place, Outcome::Empty);
                return None;
            }
            Err(outcome) => {
                self.push(place, outcome);
                return None;
            }
        };
        let capacity_bytes = (region.blocks - 1) * BLOCK_SIZE as u64;
        if header.record.payload_bytes > capacity_bytes {
            let problem = format!(
                "payload of {} bytes exceeds the slot's {capacity_bytes}",
                header.record.payload_bytes
            );
            self.push(place, Outcome::Bad(problem));
            return None;
        }
        let mut hasher = crc32fast::Hasher::new();
        let mut remaining = header.record.payload_bytes as usize;
        let mut payload_block = Box::new([0u8; BLOCK_SIZE]);
        let mut index = 1;
        while remaining > 0 {
            if let Err(error) = read(region.block_offset(index), &mut payload_block) {
                self.push(
                    place,
                    Outcome::Unreadable(format!("payload block {index}: {error}")),
                );
                return None;
            }
            let take = remaining.min(BLOCK_SIZE);
            hasher.update(&payload_block[..take]);
            remaining -= take;
            index += 1;
        }
        let computed = hasher.finalize();
        if computed != header.record.payload_crc32 {
            let problem = format!(
                "payload checksum mismatch: stored {:#010x}, computed {computed:#010x}",
                header.record.payload_crc32
            );
            self.push(place, Outcome::Bad(problem));
            return None;
        }
        self.push(place, Outcome::Valid(AnyRecord::Checkpoint(header.clone())));
        Some(header)
    }

    fn log_block(
        &mut self,
        place: Place,
        block: &Block,
        ring_blocks: u64,
    ) -> Result<Option<Sealed<LogBlock>>, DecodeError> {
        let decoded = decode::<LogBlock>(&block[..]);
        let outcome = match &decoded {
            Ok(Some(sealed)) if sealed.cluster_id != self.cluster_id => {
                self.stale(sealed.cluster_id)
            }
            Ok(Some(sealed)) if sealed.sequence % ring_blocks != place.index => {
                Outcome::Bad(format!(
                    "holds log position {} which belongs in block {}",
                    sealed.sequence,
                    sealed.sequence % ring_blocks
                ))
            }
            Ok(Some(sealed)) => Outcome::Valid(AnyRecord::LogBlock(sealed.clone())),
            Ok(None) => Outcome::Empty,
            Err(error) => Outcome::Bad(error.to_string()),
        };
        self.push(place, outcome);
        decoded
    }
}
