//! Thin adapter for the shared-disk records, with the exact names of the `disklayout` crate.
//!
//! The `disklayout` crate (branch `main`) is the authority on the on-disk format; until its
//! record types land, this module provides the same API (`Sealed`, `encode`, `decode`, the
//! record structs and `Geometry` offsets) with a compatible single-block layout: a header with
//! magic, kind, cluster id and sequence, the body, and a CRC32 over both, so a torn or corrupt
//! block is detected and never trusted. Swap for `disklayout::*` when it lands: the core only
//! uses the names below.

use byteorder::{ByteOrder, LittleEndian};

/// Every record sits alone in one block of this size; an all-zero block is "empty".
pub const BLOCK_SIZE: usize = 4096;
const MAGIC: u32 = 0x4357_5052; // "RPWC" little-endian: wolfpack record
const HEADER_SIZE: usize = 28;
const CRC_SIZE: usize = 4;
const NAME_SIZE_MAX: usize = 48;

/// A record with its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed<R> {
    /// The cluster the record belongs to; another id means a stale record.
    pub cluster_id: u64,
    /// Heartbeat counter, write counter or request id, depending on the record.
    pub sequence: u64,
    /// The record itself.
    pub record: R,
}

/// Why a record could not be encoded. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The body does not fit in one block, or a name is longer than allowed.
    TooLarge,
}

/// Why a block could not be decoded. The block must not be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a record (wrong magic), or a record of another kind.
    WrongKind,
    /// The CRC does not match: a torn or corrupt block.
    Corrupt,
    /// A field is out of its range.
    Invalid,
}

/// A record type that fits in one block.
pub trait Record: Sized {
    /// The kind tag stored in the header.
    const KIND: u16;
    /// Appends the body bytes.
    fn encode_body(&self, body: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// Parses the body bytes.
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError>;
}

/// Writes `sealed` into `block` (which is zeroed first).
pub fn encode<R: Record>(sealed: &Sealed<R>, block: &mut [u8; BLOCK_SIZE]) -> Result<(), EncodeError> {
    let mut body = Vec::new();
    sealed.record.encode_body(&mut body)?;
    if HEADER_SIZE + body.len() + CRC_SIZE > BLOCK_SIZE {
        return Err(EncodeError::TooLarge);
    }
    block.fill(0);
    LittleEndian::write_u32(&mut block[0..4], MAGIC);
    LittleEndian::write_u16(&mut block[4..6], R::KIND);
    LittleEndian::write_u16(&mut block[6..8], 1);
    LittleEndian::write_u64(&mut block[8..16], sealed.cluster_id);
    LittleEndian::write_u64(&mut block[16..24], sealed.sequence);
    LittleEndian::write_u32(&mut block[24..28], body.len() as u32);
    let end = HEADER_SIZE + body.len();
    block[HEADER_SIZE..end].copy_from_slice(&body);
    let crc = crc32fast::hash(&block[..end]);
    LittleEndian::write_u32(&mut block[end..end + CRC_SIZE], crc);
    Ok(())
}

/// Reads a record; `Ok(None)` for an empty (all-zero) block.
pub fn decode<R: Record>(block: &[u8]) -> Result<Option<Sealed<R>>, DecodeError> {
    if block.len() != BLOCK_SIZE {
        return Err(DecodeError::Invalid);
    }
    if block.iter().all(|byte| *byte == 0) {
        return Ok(None);
    }
    if LittleEndian::read_u32(&block[0..4]) != MAGIC {
        return Err(DecodeError::Corrupt);
    }
    let body_size = LittleEndian::read_u32(&block[24..28]) as usize;
    if HEADER_SIZE + body_size + CRC_SIZE > BLOCK_SIZE {
        return Err(DecodeError::Corrupt);
    }
    let end = HEADER_SIZE + body_size;
    let crc_stored = LittleEndian::read_u32(&block[end..end + CRC_SIZE]);
    if crc32fast::hash(&block[..end]) != crc_stored {
        return Err(DecodeError::Corrupt);
    }
    if LittleEndian::read_u16(&block[4..6]) != R::KIND {
        return Err(DecodeError::WrongKind);
    }
    let record = R::decode_body(&block[HEADER_SIZE..end])?;
    Ok(Some(Sealed {
        cluster_id: LittleEndian::read_u64(&block[8..16]),
        sequence: LittleEndian::read_u64(&block[16..24]),
        record,
    }))
}

/// Disk timing parameters shared by all nodes (stored in the superblock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Interval between heartbeats on each network.
    pub heartbeat_interval_ms: u32,
    /// Interval between writes of the node's lease slot and of the quorum record.
    pub lease_renew_interval_ms: u32,
    /// How long an unchanged lease must be observed before it counts as expired.
    pub lease_expiry_ms: u32,
    /// How long a fence request waits for its acknowledgement before falling back to expiry.
    pub fence_timeout_ms: u32,
    /// Largest clock rate error between any two nodes, parts per million.
    pub clock_drift_ppm_max: u32,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat_interval_ms: 50,
            lease_renew_interval_ms: 100,
            lease_expiry_ms: 1000,
            fence_timeout_ms: 500,
            clock_drift_ppm_max: 1000,
        }
    }
}

/// A node's state as written in its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Not running (or stopped its resources and left).
    Down,
    /// Running, searching for a cluster or joining; holds no resources.
    Joining,
    /// A member of a stabilized membership; may hold resources while its lease is valid.
    Member,
    /// Leaving gracefully.
    Leaving,
}

/// Per-node lease/heartbeat slot, written only by its node; `Sealed.sequence` = heartbeat counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSlot {
    pub node_id: u8,
    pub state: NodeState,
    pub incarnation: u64,
    pub epoch: u64,
    /// Bit (id - 1) per member.
    pub members: u64,
    pub realtime_ms: u64,
    pub lease_valid_ms: u32,
}

/// The quorum owner record and each per-resource lease; `Sealed.sequence` = write counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: u8,
    pub owner_incarnation: u64,
    pub owner_epoch: u64,
    pub challenger: u8,
    pub challenger_incarnation: u64,
    pub name: String,
}

/// Mailbox of node `target`: written by survivors; `Sealed.sequence` = request id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceRequest {
    pub target: u8,
    pub target_incarnation: u64,
    pub requester: u8,
    pub requester_epoch: u64,
}

/// Written only by `node_id`: it stopped its resources in answer to `acknowledged_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceAck {
    pub node_id: u8,
    pub incarnation: u64,
    pub acknowledged_request: u64,
    pub resources_stopped: bool,
}

/// Where each region sits (the real geometry comes from the superblock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Number of node ids the layout has room for (1..=64).
    pub nodes_max: u8,
}

impl Geometry {
    fn block(&self, index: u64) -> u64 {
        index * BLOCK_SIZE as u64
    }
    fn node_index(&self, node_id: u8) -> u64 {
        assert!(node_id >= 1);
        assert!(node_id <= self.nodes_max);
        u64::from(node_id - 1)
    }
    /// The quorum owner record.
    pub fn quorum_offset(&self) -> u64 {
        self.block(1)
    }
    /// The lease/heartbeat slot of `node_id`.
    pub fn node_slot_offset(&self, node_id: u8) -> u64 {
        self.block(2 + self.node_index(node_id))
    }
    /// The mailbox (fence request) of `target`.
    pub fn fence_request_offset(&self, target: u8) -> u64 {
        self.block(2 + u64::from(self.nodes_max) + self.node_index(target))
    }
    /// The fence acknowledgement block of `node_id`.
    pub fn fence_ack_offset(&self, node_id: u8) -> u64 {
        self.block(2 + 2 * u64::from(self.nodes_max) + self.node_index(node_id))
    }
}

fn put_u8(body: &mut Vec<u8>, value: u8) {
    body.push(value);
}
fn put_u64(body: &mut Vec<u8>, value: u64) {
    let mut bytes = [0u8; 8];
    LittleEndian::write_u64(&mut bytes, value);
    body.extend_from_slice(&bytes);
}

/// A bounds-checked reader over a body.
struct Reader<'a> {
    bytes: &'a [u8],
}
impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (first, rest) = self.bytes.split_first().ok_or(DecodeError::Invalid)?;
        self.bytes = rest;
        Ok(*first)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        if self.bytes.len() < 8 {
            return Err(DecodeError::Invalid);
        }
        let value = LittleEndian::read_u64(&self.bytes[..8]);
        self.bytes = &self.bytes[8..];
        Ok(value)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.bytes.len() < 4 {
            return Err(DecodeError::Invalid);
        }
        let value = LittleEndian::read_u32(&self.bytes[..4]);
        self.bytes = &self.bytes[4..];
        Ok(value)
    }
    fn node_id(&mut self, zero_allowed: bool) -> Result<u8, DecodeError> {
        let id = self.u8()?;
        if id > 64 || (id == 0 && !zero_allowed) {
            return Err(DecodeError::Invalid);
        }
        Ok(id)
    }
    fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Invalid)
        }
    }
}

impl Record for NodeSlot {
    const KIND: u16 = 3;
    fn encode_body(&self, body: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_u8(body, self.node_id);
        let state = match self.state {
            NodeState::Down => 0,
            NodeState::Joining => 1,
            NodeState::Member => 2,
            NodeState::Leaving => 3,
        };
        put_u8(body, state);
        put_u64(body, self.incarnation);
        put_u64(body, self.epoch);
        put_u64(body, self.members);
        put_u64(body, self.realtime_ms);
        body.extend_from_slice(&self.lease_valid_ms.to_le_bytes());
        Ok(())
    }
    fn decode_body(body: &[u8]) -> Result<NodeSlot, DecodeError> {
        let mut reader = Reader { bytes: body };
        let node_id = reader.node_id(false)?;
        let state = match reader.u8()? {
            0 => NodeState::Down,
            1 => NodeState::Joining,
            2 => NodeState::Member,
            3 => NodeState::Leaving,
            _ => return Err(DecodeError::Invalid),
        };
        let slot = NodeSlot {
            node_id,
            state,
            incarnation: reader.u64()?,
            epoch: reader.u64()?,
            members: reader.u64()?,
            realtime_ms: reader.u64()?,
            lease_valid_ms: reader.u32()?,
        };
        reader.finish()?;
        Ok(slot)
    }
}

impl Record for Lease {
    const KIND: u16 = 4;
    fn encode_body(&self, body: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.name.len() > NAME_SIZE_MAX {
            return Err(EncodeError::TooLarge);
        }
        put_u8(body, self.owner);
        put_u64(body, self.owner_incarnation);
        put_u64(body, self.owner_epoch);
        put_u8(body, self.challenger);
        put_u64(body, self.challenger_incarnation);
        put_u8(body, self.name.len() as u8);
        body.extend_from_slice(self.name.as_bytes());
        Ok(())
    }
    fn decode_body(body: &[u8]) -> Result<Lease, DecodeError> {
        let mut reader = Reader { bytes: body };
        let owner = reader.node_id(true)?;
        let owner_incarnation = reader.u64()?;
        let owner_epoch = reader.u64()?;
        let challenger = reader.node_id(true)?;
        let challenger_incarnation = reader.u64()?;
        let name_size = usize::from(reader.u8()?);
        if name_size > NAME_SIZE_MAX || reader.bytes.len() != name_size {
            return Err(DecodeError::Invalid);
        }
        let name = String::from_utf8(reader.bytes.to_vec()).map_err(|_| DecodeError::Invalid)?;
        Ok(Lease { owner, owner_incarnation, owner_epoch, challenger, challenger_incarnation, name })
    }
}

impl Record for FenceRequest {
    const KIND: u16 = 5;
    fn encode_body(&self, body: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_u8(body, self.target);
        put_u64(body, self.target_incarnation);
        put_u8(body, self.requester);
        put_u64(body, self.requester_epoch);
        Ok(())
    }
    fn decode_body(body: &[u8]) -> Result<FenceRequest, DecodeError> {
        let mut reader = Reader { bytes: body };
        let request = FenceRequest {
            target: reader.node_id(false)?,
            target_incarnation: reader.u64()?,
            requester: reader.node_id(false)?,
            requester_epoch: reader.u64()?,
        };
        reader.finish()?;
        Ok(request)
    }
}

impl Record for FenceAck {
    const KIND: u16 = 6;
    fn encode_body(&self, body: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_u8(body, self.node_id);
        put_u64(body, self.incarnation);
        put_u64(body, self.acknowledged_request);
        put_u8(body, u8::from(self.resources_stopped));
        Ok(())
    }
    fn decode_body(body: &[u8]) -> Result<FenceAck, DecodeError> {
        let mut reader = Reader { bytes: body };
        let node_id = reader.node_id(false)?;
        let incarnation = reader.u64()?;
        let acknowledged_request = reader.u64()?;
        let resources_stopped = match reader.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Invalid),
        };
        reader.finish()?;
        Ok(FenceAck { node_id, incarnation, acknowledged_request, resources_stopped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trips_and_a_torn_block_is_rejected() {
        let sealed = Sealed {
            cluster_id: 9,
            sequence: 4,
            record: NodeSlot {
                node_id: 3,
                state: NodeState::Member,
                incarnation: 2,
                epoch: 7,
                members: 0b111,
                realtime_ms: 1234,
                lease_valid_ms: 800,
            },
        };
        let mut block = [0u8; BLOCK_SIZE];
        assert_eq!(encode(&sealed, &mut block), Ok(()));
        assert_eq!(decode::<NodeSlot>(&block), Ok(Some(sealed)));
        assert_eq!(decode::<Lease>(&block), Err(DecodeError::WrongKind));
        block[30] ^= 1;
        assert_eq!(decode::<NodeSlot>(&block), Err(DecodeError::Corrupt));
        assert_eq!(decode::<NodeSlot>(&[0u8; BLOCK_SIZE]), Ok(None));
    }
}
