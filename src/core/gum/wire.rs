//! GUM messages inside the core's frame (`message.rs`): kinds 8 to 14. Each fits one datagram:
//! an update body is at most `PROPOSAL_BYTES_MAX`, a snapshot chunk `SNAPSHOT_CHUNK_BYTES`.

use super::{Committed, Entry, PROPOSAL_BYTES_MAX};
use crate::core::message::{put_u16, put_u64, MessageError, Reader};

/// Bytes of snapshot per `SnapshotChunk` message.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024;
/// Bytes of a `Commit` body besides the update body: epoch, sequence, position u64, origin u8,
/// incarnation, request id u64, body length u16.
pub(crate) const COMMIT_FIXED_BYTES: usize = 8 + 8 + 8 + 1 + 8 + 8 + 2;
/// Bytes of a `SnapshotChunk` body besides the chunk: epoch, sequence, position, total, offset
/// u64, chunk length u16.
pub(crate) const SNAPSHOT_CHUNK_FIXED_BYTES: usize = 5 * 8 + 2;

/// What a member tells a new locker (and the locker tells itself) in a takeover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncReply {
    pub applied: u64,
    /// The member's replica is authoritative (else `applied` says nothing).
    pub valid: bool,
    /// Earlier lockers the member does not know to be stopped.
    pub unresolved: u64,
    /// The locker of the member's previous stabilized epoch.
    pub last_locker: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GumMessage {
    /// Sender → locker: commit this update (retransmitted until `Ack`).
    Propose {
        epoch: u64,
        request_id: u64,
        body: Vec<u8>,
    },
    /// Locker → members: a durable update, to apply in sequence order.
    Commit { epoch: u64, committed: Committed },
    /// Member → locker: everything up to `applied` is applied here (`valid`: our replica is
    /// authoritative; a member without one needs a snapshot).
    Applied {
        epoch: u64,
        applied: u64,
        valid: bool,
    },
    /// Locker → sender: the request is durable and applied by every member.
    Ack {
        epoch: u64,
        /// The sender's incarnation that proposed it (request ids restart with a new one).
        incarnation: u64,
        request_id: u64,
        sequence: u64,
        rejected: bool,
    },
    /// New locker → members: answer once you have no log write in flight.
    Sync { epoch: u64 },
    /// Member → new locker.
    SyncReply { epoch: u64, reply: SyncReply },
    /// Locker → member: part of a snapshot of the replicated state at `sequence`.
    SnapshotChunk {
        epoch: u64,
        sequence: u64,
        position: u64,
        total: u32,
        offset: u32,
        bytes: Vec<u8>,
    },
}

impl GumMessage {
    pub fn kind(&self) -> u8 {
        let kind = match self {
            GumMessage::Propose { .. } => 8,
            GumMessage::Commit { .. } => 9,
            GumMessage::Applied { .. } => 10,
            GumMessage::Ack { .. } => 11,
            GumMessage::Sync { .. } => 12,
            GumMessage::SyncReply { .. } => 13,
            GumMessage::SnapshotChunk { .. } => 14,
        };
        // `message.rs` routes by this range: a kind outside it would never reach GUM.
        debug_assert!(Self::is_kind(kind));
        kind
    }

    pub fn is_kind(kind: u8) -> bool {
        (8..=14).contains(&kind)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            GumMessage::Propose {
                epoch,
                request_id,
                body,
            } => {
                put_u64(out, *epoch);
                put_u64(out, *request_id);
                put_bytes(out, body);
            }
            GumMessage::Commit { epoch, committed } => {
                put_u64(out, *epoch);
                put_u64(out, committed.sequence);
                put_u64(out, committed.position);
                out.push(committed.entry.origin);
                put_u64(out, committed.entry.incarnation);
                put_u64(out, committed.entry.request_id);
                put_bytes(out, &committed.entry.body);
            }
            GumMessage::Applied {
                epoch,
                applied,
                valid,
            } => {
                put_u64(out, *epoch);
                put_u64(out, *applied);
                out.push(u8::from(*valid));
            }
            GumMessage::Ack {
                epoch,
                incarnation,
                request_id,
                sequence,
                rejected,
            } => {
                put_u64(out, *epoch);
                put_u64(out, *incarnation);
                put_u64(out, *request_id);
                put_u64(out, *sequence);
                out.push(u8::from(*rejected));
            }
            GumMessage::Sync { epoch } => put_u64(out, *epoch),
            GumMessage::SyncReply { epoch, reply } => {
                put_u64(out, *epoch);
                put_u64(out, reply.applied);
                out.push(u8::from(reply.valid));
                put_u64(out, reply.unresolved);
                out.push(reply.last_locker);
            }
            GumMessage::SnapshotChunk {
                epoch,
                sequence,
                position,
                total,
                offset,
                bytes,
            } => {
                put_u64(out, *epoch);
                put_u64(out, *sequence);
                put_u64(out, *position);
                put_u64(out, u64::from(*total));
                put_u64(out, u64::from(*offset));
                put_bytes(out, bytes);
            }
        }
        // The fixed sizes the datagram budget is asserted with (`mod.rs`) are these encodings.
        debug_assert!(match self {
            GumMessage::Commit { committed, .. } =>
                out.len() - start == COMMIT_FIXED_BYTES + committed.entry.body.len(),
            GumMessage::SnapshotChunk { bytes, .. } =>
                out.len() - start == SNAPSHOT_CHUNK_FIXED_BYTES + bytes.len(),
            _ => true,
        });
    }

    pub(crate) fn decode(kind: u8, reader: &mut Reader<'_>) -> Result<GumMessage, MessageError> {
        let message = match kind {
            8 => GumMessage::Propose {
                epoch: reader.counter()?,
                request_id: reader.counter()?,
                body: take_bytes(reader, PROPOSAL_BYTES_MAX)?,
            },
            9 => {
                let epoch = reader.counter()?;
                let sequence = reader.counter()?;
                let position = reader.counter()?;
                let origin = reader.u8()?;
                if origin == 0 || usize::from(origin) > crate::core::NODES_MAX {
                    return Err(MessageError::OutOfRange);
                }
                let entry = Entry {
                    origin,
                    incarnation: reader.counter()?,
                    request_id: reader.counter()?,
                    body: take_bytes(reader, PROPOSAL_BYTES_MAX)?,
                };
                if sequence == 0 {
                    return Err(MessageError::OutOfRange);
                }
                GumMessage::Commit {
                    epoch,
                    committed: Committed {
                        sequence,
                        position,
                        entry,
                    },
                }
            }
            10 => GumMessage::Applied {
                epoch: reader.counter()?,
                applied: reader.counter()?,
                valid: reader.bool()?,
            },
            11 => GumMessage::Ack {
                epoch: reader.counter()?,
                incarnation: reader.counter()?,
                request_id: reader.counter()?,
                sequence: reader.counter()?,
                rejected: reader.bool()?,
            },
            12 => GumMessage::Sync {
                epoch: reader.counter()?,
            },
            13 => GumMessage::SyncReply {
                epoch: reader.counter()?,
                reply: SyncReply {
                    applied: reader.counter()?,
                    valid: reader.bool()?,
                    unresolved: reader.counter()?,
                    last_locker: reader.node_or_none()?,
                },
            },
            14 => {
                let epoch = reader.counter()?;
                let sequence = reader.counter()?;
                let position = reader.counter()?;
                let total = u32::try_from(reader.u64()?).map_err(|_| MessageError::OutOfRange)?;
                let offset = u32::try_from(reader.u64()?).map_err(|_| MessageError::OutOfRange)?;
                let bytes = take_bytes(reader, SNAPSHOT_CHUNK_BYTES)?;
                let end = u64::from(offset) + bytes.len() as u64;
                if bytes.is_empty() || end > u64::from(total) {
                    return Err(MessageError::OutOfRange);
                }
                GumMessage::SnapshotChunk {
                    epoch,
                    sequence,
                    position,
                    total,
                    offset,
                    bytes,
                }
            }
            _ => return Err(MessageError::UnknownKind),
        };
        // Pair with `kind`: a message decodes as the kind it is encoded as.
        debug_assert_eq!(message.kind(), kind);
        Ok(message)
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // The length travels as a u16: a longer slice would be cut silently.
    debug_assert!(bytes.len() <= usize::from(u16::MAX));
    put_u16(out, bytes.len() as u16);
    out.extend_from_slice(bytes);
}

fn take_bytes(reader: &mut Reader<'_>, max: usize) -> Result<Vec<u8>, MessageError> {
    // A bound a u16 length cannot reach would refuse nothing.
    debug_assert!(max < usize::from(u16::MAX));
    let size = usize::from(reader.u16()?);
    if size > max {
        return Err(MessageError::OutOfRange);
    }
    Ok(reader.take(size)?.to_vec())
}
