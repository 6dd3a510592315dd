//! The fence mailbox (FORMAT.md §8): survivors ask a node to stop; the node acknowledges.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_node_id, Reader, Writer};
use crate::Record;

/// A survivor's request that `target` stop every resource; the header's sequence is its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceRequest {
    /// The node asked to stop.
    pub target: u8,
    /// The incarnation of the target that must stop; a later life ignores the request.
    pub target_incarnation: u64,
    /// The node that asks.
    pub requester: u8,
    /// The membership epoch in which the requester decided to fence.
    pub requester_epoch: u64,
}

/// A node's answer to a fence request, written only by that node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceAck {
    /// The acknowledging node.
    pub node_id: u8,
    /// Its incarnation.
    pub incarnation: u64,
    /// The request id this answers.
    pub acknowledged_request: u64,
    /// True when the node stopped every resource and starts none until it rejoins.
    pub resources_stopped: bool,
}

impl Record for FenceRequest {
    const MAGIC: [u8; 4] = *b"WPFR";
    const BODY_BYTES: Option<usize> = Some(24);

    fn validate(&self) -> Result<(), EncodeError> {
        check_node_id("target", self.target)?;
        check_node_id("requester", self.requester)
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u8(self.target);
        writer.u8(self.requester);
        writer.reserved(6);
        writer.u64(self.target_incarnation);
        writer.u64(self.requester_epoch);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<FenceRequest, DecodeError> {
        let mut reader = Reader::new(body);
        let target = reader.node_id("target")?;
        let requester = reader.node_id("requester")?;
        reader.reserved(6)?;
        let target_incarnation = reader.u64("target_incarnation")?;
        let requester_epoch = reader.u64("requester_epoch")?;
        reader.finish()?;
        Ok(FenceRequest {
            target,
            target_incarnation,
            requester,
            requester_epoch,
        })
    }
}

impl Record for FenceAck {
    const MAGIC: [u8; 4] = *b"WPFA";
    const BODY_BYTES: Option<usize> = Some(24);

    fn validate(&self) -> Result<(), EncodeError> {
        check_node_id("node_id", self.node_id)
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u8(self.node_id);
        writer.u8(self.resources_stopped as u8);
        writer.reserved(6);
        writer.u64(self.incarnation);
        writer.u64(self.acknowledged_request);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<FenceAck, DecodeError> {
        let mut reader = Reader::new(body);
        let node_id = reader.node_id("node_id")?;
        let resources_stopped = match reader.u8("stopped")? {
            0 => false,
            1 => true,
            _ => {
                return Err(DecodeError::InvalidField {
                    offset: 33,
                    field: "stopped",
                    problem: "neither 0 nor 1",
                })
            }
        };
        reader.reserved(6)?;
        let incarnation = reader.u64("incarnation")?;
        let acknowledged_request = reader.u64("acked_request")?;
        reader.finish()?;
        Ok(FenceAck {
            node_id,
            incarnation,
            acknowledged_request,
            resources_stopped,
        })
    }
}
