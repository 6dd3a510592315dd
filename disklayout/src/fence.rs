//! The fence mailbox (FORMAT.md §8): survivors ask a node to stop; the node acknowledges.
//!
//! A request is identified by its requester, the requester's incarnation and its sequence
//! (which that incarnation of the requester never reuses). An acknowledgement echoes that
//! identity, so it proves the node read *this* request, after it landed, and stopped. Request
//! numbers alone could not: two requesters race on one mailbox, and a write based on an older
//! read can land last and make the mailbox's number go back, so a number acknowledged for one
//! request could be written again by another requester long after the node resumed holding.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_counter, check_node_id, Reader, Writer};
use crate::Record;

/// A survivor's request that `target` stop every resource. The header's sequence numbers the
/// requests of one incarnation of the requester, increasing.
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
    /// The requester's incarnation: with `requester` and the sequence, the request's identity.
    pub requester_incarnation: u64,
}

/// Which request an acknowledgement answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledged {
    /// Every request for this incarnation, past and future: the node's resource monitor fenced
    /// it, and this incarnation never holds a resource again.
    Every,
    /// One request, by its identity.
    Request {
        /// The node that asked.
        requester: u8,
        /// The requester's incarnation when it asked.
        requester_incarnation: u64,
        /// The request's sequence (its header's).
        sequence: u64,
    },
}

/// A node's answer to a fence request, written only by that node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceAck {
    /// The acknowledging node.
    pub node_id: u8,
    /// Its incarnation.
    pub incarnation: u64,
    /// The request this answers.
    pub acknowledged: Acknowledged,
    /// True when the node stopped every resource and starts none until it rejoins.
    pub resources_stopped: bool,
}

impl Record for FenceRequest {
    const MAGIC: [u8; 4] = *b"WPFR";
    const BODY_BYTES: Option<usize> = Some(32);

    fn validate(&self) -> Result<(), EncodeError> {
        check_node_id("target", self.target)?;
        check_node_id("requester", self.requester)?;
        check_counter("target_incarnation", self.target_incarnation)?;
        check_counter("requester_epoch", self.requester_epoch)?;
        check_counter("requester_incarnation", self.requester_incarnation)
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u8(self.target);
        writer.u8(self.requester);
        writer.reserved(6);
        writer.u64(self.target_incarnation);
        writer.u64(self.requester_epoch);
        writer.u64(self.requester_incarnation);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<FenceRequest, DecodeError> {
        let mut reader = Reader::new(body);
        let target = reader.node_id("target")?;
        let requester = reader.node_id("requester")?;
        reader.reserved(6)?;
        let target_incarnation = reader.counter("target_incarnation")?;
        let requester_epoch = reader.counter("requester_epoch")?;
        let requester_incarnation = reader.counter("requester_incarnation")?;
        reader.finish()?;
        Ok(FenceRequest {
            target,
            target_incarnation,
            requester,
            requester_epoch,
            requester_incarnation,
        })
    }
}

impl Record for FenceAck {
    const MAGIC: [u8; 4] = *b"WPFA";
    const BODY_BYTES: Option<usize> = Some(32);

    fn validate(&self) -> Result<(), EncodeError> {
        check_node_id("node_id", self.node_id)?;
        check_counter("incarnation", self.incarnation)?;
        match self.acknowledged {
            Acknowledged::Every => Ok(()),
            Acknowledged::Request {
                requester,
                requester_incarnation,
                sequence,
            } => {
                check_node_id("requester", requester)?;
                check_counter("requester_incarnation", requester_incarnation)?;
                check_counter("acked_request", sequence)
            }
        }
    }

    fn encode_body(&self, body: &mut [u8]) {
        let (requester, requester_incarnation, sequence) = match self.acknowledged {
            Acknowledged::Every => (0, 0, u64::MAX),
            Acknowledged::Request {
                requester,
                requester_incarnation,
                sequence,
            } => (requester, requester_incarnation, sequence),
        };
        let mut writer = Writer::new(body);
        writer.u8(self.node_id);
        writer.u8(self.resources_stopped as u8);
        writer.u8(requester);
        writer.reserved(5);
        writer.u64(self.incarnation);
        writer.u64(sequence);
        writer.u64(requester_incarnation);
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
        let requester_at = reader.offset();
        let requester = reader.u8("requester")?;
        reader.reserved(5)?;
        let incarnation = reader.counter("incarnation")?;
        let sequence_at = reader.offset();
        let sequence = reader.u64("acked_request")?;
        let requester_incarnation_at = reader.offset();
        let requester_incarnation = reader.u64("requester_incarnation")?;
        reader.finish()?;
        let above = |offset, field| DecodeError::InvalidField {
            offset,
            field,
            problem: "is above the largest counter (2^62-1)",
        };
        // The sentinel of every request (0, 0, 2^64-1) is checked before the counter rule.
        let acknowledged = match (requester, requester_incarnation, sequence) {
            (0, 0, u64::MAX) => Acknowledged::Every,
            (1..=crate::NODE_ID_MAX, _, _) if !crate::is_counter(sequence) => {
                return Err(above(sequence_at, "acked_request"))
            }
            (1..=crate::NODE_ID_MAX, _, _) if !crate::is_counter(requester_incarnation) => {
                return Err(above(requester_incarnation_at, "requester_incarnation"))
            }
            (1..=crate::NODE_ID_MAX, _, _) => Acknowledged::Request {
                requester,
                requester_incarnation,
                sequence,
            },
            _ => {
                return Err(DecodeError::InvalidField {
                    offset: requester_at,
                    field: "requester",
                    problem: "neither a node id nor 0 with every request acknowledged",
                })
            }
        };
        Ok(FenceAck {
            node_id,
            incarnation,
            acknowledged,
            resources_stopped,
        })
    }
}
