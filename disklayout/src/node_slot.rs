//! A node's lease/heartbeat slot (FORMAT.md §7), written only by that node.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_counter, check_node_id, Reader, Writer};
use crate::Record;

/// What a node says of itself in its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Not running the cluster service.
    Down,
    /// Forming or joining, not yet a member.
    Joining,
    /// A member of the epoch in the slot.
    Member,
    /// Leaving gracefully.
    Leaving,
}

impl NodeState {
    /// The state's code on disk.
    pub fn code(self) -> u8 {
        match self {
            NodeState::Down => 0,
            NodeState::Joining => 1,
            NodeState::Member => 2,
            NodeState::Leaving => 3,
        }
    }

    /// The state of a code on disk, if it names one.
    pub fn from_code(code: u8) -> Option<NodeState> {
        match code {
            0 => Some(NodeState::Down),
            1 => Some(NodeState::Joining),
            2 => Some(NodeState::Member),
            3 => Some(NodeState::Leaving),
            _ => None,
        }
    }

    /// The state's name in dumps.
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Down => "down",
            NodeState::Joining => "joining",
            NodeState::Member => "member",
            NodeState::Leaving => "leaving",
        }
    }
}

/// One node's lease and disk heartbeat; the header's sequence is the heartbeat counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSlot {
    /// The slot's node.
    pub node_id: u8,
    /// What the node is doing.
    pub state: NodeState,
    /// The node's incarnation.
    pub incarnation: u64,
    /// The membership epoch the node is in.
    pub epoch: u64,
    /// Bit n-1 is set when node n is in the membership the node sees.
    pub members: u64,
    /// The node's wall clock at the write, for clock-skew reports only.
    pub realtime_ms: u64,
    /// How long from the write the node promises to keep its lease; 0 when it holds none.
    pub lease_valid_ms: u32,
}

impl Record for NodeSlot {
    const MAGIC: [u8; 4] = *b"WPNS";
    const BODY_BYTES: Option<usize> = Some(40);

    fn validate(&self) -> Result<(), EncodeError> {
        check_node_id("node_id", self.node_id)?;
        check_counter("incarnation", self.incarnation)?;
        check_counter("epoch", self.epoch)?;
        check_counter("realtime_ms", self.realtime_ms)
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u8(self.node_id);
        writer.u8(self.state.code());
        writer.reserved(2);
        writer.u32(self.lease_valid_ms);
        writer.u64(self.incarnation);
        writer.u64(self.epoch);
        writer.u64(self.members);
        writer.u64(self.realtime_ms);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<NodeSlot, DecodeError> {
        let mut reader = Reader::new(body);
        let node_id = reader.node_id("node_id")?;
        let state = NodeState::from_code(reader.u8("state")?).ok_or(DecodeError::InvalidField {
            offset: 33,
            field: "state",
            problem: "not a known state",
        })?;
        reader.reserved(2)?;
        let lease_valid_ms = reader.u32("lease_ms")?;
        let slot = NodeSlot {
            node_id,
            state,
            lease_valid_ms,
            incarnation: reader.counter("incarnation")?,
            epoch: reader.counter("epoch")?,
            members: reader.u64("members")?,
            // A time in ms since 1970 below 2^62 lasts 146 million years.
            realtime_ms: reader.counter("realtime_ms")?,
        };
        reader.finish()?;
        Ok(slot)
    }
}
