//! The core's messages and their byte encoding (little-endian, `byteorder`).
//!
//! Frame: `magic u16 | version u8 | kind u8 | from u8 | incarnation u64 | body`. Decoding
//! checks every length and range and rejects trailing bytes; a message that fails to decode is
//! dropped and counted by the node, never trusted. Authentication (MAC, replay window) wraps
//! these bytes in a later issue.

use byteorder::{ByteOrder, LittleEndian};

use super::gum::wire::GumMessage;

/// Largest encoded message: what one authenticated datagram carries, so defined from the wire's
/// payload limit (the daemon seals every encoded message into one frame, and refuses a larger
/// payload). Every message the core builds fits; larger input is refused.
pub const MESSAGE_SIZE_MAX: usize = crate::wire::PAYLOAD_BYTES_MAX;
/// Bytes before the body: magic u16, version u8, kind u8, from u8, incarnation u64.
pub const MESSAGE_HEADER_BYTES: usize = 2 + 1 + 1 + 1 + 8;
// The documented size (ARCHITECTURE.md, `wire/frame.rs`): a change of the frame layout must be
// a deliberate change of every message's budget too.
const _: () = assert!(MESSAGE_SIZE_MAX == 1348);
// Every body length travels as a u16 somewhere inside a message.
const _: () = assert!(MESSAGE_SIZE_MAX <= u16::MAX as usize);
const MAGIC: u16 = 0x5057; // "WP"
const VERSION: u8 = 1;

/// The owner of one group in an installed membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupAssignment {
    /// The node that should hold the group, 0 for none.
    pub owner: u8,
    /// Nodes (bit id-1) that may still hold the group: the owner may bring it online only after
    /// each of them is confirmed stopped (lease expired on disk, or fence acknowledged).
    pub unconfirmed: u64,
}

/// One protocol message. `from` and `incarnation` travel in the frame header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Periodic liveness on every network, to every member.
    Heartbeat {
        epoch: u64,
        members: u64,
        stabilized: bool,
        quorum_owner: bool,
        /// Groups the sender holds: online, or stopping and not yet confirmed stopped. In the
        /// sender's epoch, a group missing here is one it will not hold again in that epoch
        /// unless the table gives it back: how a member is confirmed to have let a group go.
        holding: u64,
        /// Groups that failed on the sender recently and that it refuses to host.
        refusing: u64,
    },
    /// A node without a cluster asks to join (answered by the sponsor: the lowest member).
    JoinRequest,
    /// Regroup activate/closing: the sender's view for round `round`.
    RegroupStatus(RegroupStatus),
    /// Regroup pruning result from the coordinator: the proposed membership.
    Install(Install),
    /// Cleanup 1 done: the sender adopted the proposal.
    InstallAck { round: u64, epoch: u64 },
    /// Cleanup 2: every member acknowledged, the membership is stable.
    Stabilize { round: u64, epoch: u64 },
    /// The coordinator found that this partition does not survive.
    Halt { round: u64 },
    /// The global update manager's messages (`gum/wire.rs`).
    Gum(GumMessage),
    /// The sender leaves the cluster on purpose (shutdown): its groups are already stopped and
    /// its slot says it is no member; regroup without it now.
    Leaving { epoch: u64 },
}

/// A regroup participant's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegroupStatus {
    pub round: u64,
    /// Last stabilized epoch of the sender (0 if none).
    pub epoch: u64,
    /// Members of the sender's stabilized epoch (0 for a joiner).
    pub members: u64,
    /// Highest epoch the sender acknowledged an install for, and that install's members: a
    /// view that may have stabilized elsewhere (0 members for a joiner).
    pub acked_epoch: u64,
    pub acked_members: u64,
    /// Nodes the sender heard from recently, on any network.
    pub heard: u64,
    /// Nodes asking to join in this round.
    pub joiners: u64,
    /// Groups the sender holds (bit = slot - 1): online, or stopping and not yet confirmed.
    pub online_groups: u64,
    /// Groups that failed on the sender recently and that it refuses to host.
    pub refusing: u64,
    /// The sender holds a valid quorum lease.
    pub quorum_owner: bool,
}

/// The proposal of a coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    pub round: u64,
    pub epoch: u64,
    pub members: u64,
    pub previous_members: u64,
    /// The member whose quorum ownership the survival judgement relied on (exactly half
    /// survived), 0 when it did not: that member acknowledges only once the new epoch is
    /// confirmed in the quorum record (ARBITRATION.md §3.3).
    pub quorum_holder: u8,
    /// The epoch of the newest stabilized membership among the statuses the coordinator
    /// judged, and the memberships it judged survival against (that one and newer acknowledged
    /// ones): a member that acknowledged a newer membership not among them rejects the install,
    /// which was decided without it (ARBITRATION.md §3.4).
    pub judged_epoch: u64,
    pub judged_views: Vec<u64>,
    pub groups: Vec<GroupAssignment>,
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: u8,
    pub incarnation: u64,
    pub body: Body,
}

/// Why bytes were not a message. The receiver's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    Truncated,
    BadMagic,
    BadVersion,
    UnknownKind,
    OutOfRange,
    TrailingBytes,
    TooLarge,
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    let mut bytes = [0u8; 8];
    LittleEndian::write_u64(&mut bytes, value);
    out.extend_from_slice(&bytes);
}
pub(crate) fn put_u16(out: &mut Vec<u8>, value: u16) {
    let mut bytes = [0u8; 2];
    LittleEndian::write_u16(&mut bytes, value);
    out.extend_from_slice(&bytes);
}

impl Message {
    /// The message as bytes. Asserts the size bound: callers never build larger messages.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put_u16(&mut out, MAGIC);
        out.push(VERSION);
        out.push(self.kind());
        out.push(self.from);
        put_u64(&mut out, self.incarnation);
        match &self.body {
            Body::Heartbeat {
                epoch,
                members,
                stabilized,
                quorum_owner,
                holding,
                refusing,
            } => {
                put_u64(&mut out, *epoch);
                put_u64(&mut out, *members);
                out.push(u8::from(*stabilized));
                out.push(u8::from(*quorum_owner));
                put_u64(&mut out, *holding);
                put_u64(&mut out, *refusing);
            }
            Body::JoinRequest => {}
            Body::RegroupStatus(status) => {
                for value in [
                    status.round,
                    status.epoch,
                    status.members,
                    status.acked_epoch,
                    status.acked_members,
                    status.heard,
                    status.joiners,
                    status.online_groups,
                    status.refusing,
                ] {
                    put_u64(&mut out, value);
                }
                out.push(u8::from(status.quorum_owner));
            }
            Body::Install(install) => encode_install(install, &mut out),
            Body::InstallAck { round, epoch } | Body::Stabilize { round, epoch } => {
                put_u64(&mut out, *round);
                put_u64(&mut out, *epoch);
            }
            Body::Halt { round } => put_u64(&mut out, *round),
            Body::Gum(message) => message.encode(&mut out),
            Body::Leaving { epoch } => put_u64(&mut out, *epoch),
        }
        assert!(
            out.len() <= MESSAGE_SIZE_MAX,
            "message of {} bytes",
            out.len()
        );
        out
    }

    fn kind(&self) -> u8 {
        match &self.body {
            Body::Heartbeat { .. } => 1,
            Body::JoinRequest => 2,
            Body::RegroupStatus(_) => 3,
            Body::Install(_) => 4,
            Body::InstallAck { .. } => 5,
            Body::Stabilize { .. } => 6,
            Body::Halt { .. } => 7,
            Body::Gum(message) => message.kind(),
            Body::Leaving { .. } => 15,
        }
    }

    /// Every node the message names, as a set: its node sets (members, views, heard, joiners,
    /// unconfirmed holders, unresolved lockers) and its node ids (owners, the quorum holder,
    /// an update's origin, the last locker). The receiver refuses a message naming a node that
    /// is not configured, so no set from the network indexes past the node table.
    pub fn nodes_named(&self) -> u64 {
        let id = |node: u8| if node == 0 { 0 } else { super::bit(node) };
        match &self.body {
            Body::Heartbeat { members, .. } => *members,
            Body::RegroupStatus(status) => {
                status.members | status.acked_members | status.heard | status.joiners
            }
            Body::Install(install) => {
                let views = install.judged_views.iter().fold(0, |set, view| set | view);
                let groups = install
                    .groups
                    .iter()
                    .fold(0, |set, group| set | id(group.owner) | group.unconfirmed);
                install.members
                    | install.previous_members
                    | id(install.quorum_holder)
                    | views
                    | groups
            }
            Body::Gum(GumMessage::Commit { committed, .. }) => id(committed.entry.origin),
            Body::Gum(GumMessage::SyncReply { reply, .. }) => {
                reply.unresolved | id(reply.last_locker)
            }
            Body::JoinRequest
            | Body::InstallAck { .. }
            | Body::Stabilize { .. }
            | Body::Halt { .. }
            | Body::Leaving { .. }
            | Body::Gum(_) => 0,
        }
    }

    /// Parses bytes from the network; any inconsistency is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
        if bytes.len() > MESSAGE_SIZE_MAX {
            return Err(MessageError::TooLarge);
        }
        let mut reader = Reader { bytes };
        if reader.u16()? != MAGIC {
            return Err(MessageError::BadMagic);
        }
        if reader.u8()? != VERSION {
            return Err(MessageError::BadVersion);
        }
        let kind = reader.u8()?;
        let from = reader.u8()?;
        if from == 0 || from > 64 {
            return Err(MessageError::OutOfRange);
        }
        let incarnation = reader.counter()?;
        let body = match kind {
            1 => Body::Heartbeat {
                epoch: reader.counter()?,
                members: reader.u64()?,
                stabilized: reader.bool()?,
                quorum_owner: reader.bool()?,
                holding: reader.u64()?,
                refusing: reader.u64()?,
            },
            2 => Body::JoinRequest,
            3 => Body::RegroupStatus(RegroupStatus {
                round: reader.counter()?,
                epoch: reader.counter()?,
                members: reader.u64()?,
                acked_epoch: reader.counter()?,
                acked_members: reader.u64()?,
                heard: reader.u64()?,
                joiners: reader.u64()?,
                online_groups: reader.u64()?,
                refusing: reader.u64()?,
                quorum_owner: reader.bool()?,
            }),
            4 => Body::Install(decode_install(&mut reader)?),
            5 => Body::InstallAck {
                round: reader.counter()?,
                epoch: reader.counter()?,
            },
            6 => Body::Stabilize {
                round: reader.counter()?,
                epoch: reader.counter()?,
            },
            7 => Body::Halt {
                round: reader.counter()?,
            },
            kind if GumMessage::is_kind(kind) => Body::Gum(GumMessage::decode(kind, &mut reader)?),
            15 => Body::Leaving {
                epoch: reader.counter()?,
            },
            _ => return Err(MessageError::UnknownKind),
        };
        if !reader.bytes.is_empty() {
            return Err(MessageError::TrailingBytes);
        }
        Ok(Message {
            from,
            incarnation,
            body,
        })
    }
}

fn encode_install(install: &Install, out: &mut Vec<u8>) {
    put_u64(out, install.round);
    put_u64(out, install.epoch);
    put_u64(out, install.members);
    put_u64(out, install.previous_members);
    out.push(install.quorum_holder);
    put_u64(out, install.judged_epoch);
    assert!(install.judged_views.len() <= 64);
    out.push(install.judged_views.len() as u8);
    for view in &install.judged_views {
        put_u64(out, *view);
    }
    assert!(install.groups.len() <= 64);
    out.push(install.groups.len() as u8);
    for group in &install.groups {
        out.push(group.owner);
        put_u64(out, group.unconfirmed);
    }
}

fn decode_install(reader: &mut Reader<'_>) -> Result<Install, MessageError> {
    let round = reader.counter()?;
    let epoch = reader.counter()?;
    let members = reader.u64()?;
    let previous_members = reader.u64()?;
    let quorum_holder = reader.u8()?;
    if quorum_holder > 64 || (quorum_holder != 0 && members & super::bit(quorum_holder) == 0) {
        return Err(MessageError::OutOfRange);
    }
    let judged_epoch = reader.counter()?;
    let view_count = reader.u8()?;
    if view_count > 64 {
        return Err(MessageError::OutOfRange);
    }
    let mut judged_views = Vec::with_capacity(usize::from(view_count));
    for _ in 0..view_count {
        judged_views.push(reader.u64()?);
    }
    let group_count = reader.u8()?;
    if group_count > 64 {
        return Err(MessageError::OutOfRange);
    }
    let mut groups = Vec::with_capacity(usize::from(group_count));
    for _ in 0..group_count {
        let owner = reader.u8()?;
        if owner > 64 {
            return Err(MessageError::OutOfRange);
        }
        groups.push(GroupAssignment {
            owner,
            unconfirmed: reader.u64()?,
        });
    }
    Ok(Install {
        round,
        epoch,
        members,
        previous_members,
        quorum_holder,
        judged_epoch,
        judged_views,
        groups,
    })
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], MessageError> {
        if self.bytes.len() < count {
            return Err(MessageError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn bool(&mut self) -> Result<bool, MessageError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(MessageError::OutOfRange),
        }
    }
    pub(crate) fn u16(&mut self) -> Result<u16, MessageError> {
        Ok(LittleEndian::read_u16(self.take(2)?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, MessageError> {
        Ok(LittleEndian::read_u64(self.take(8)?))
    }
    /// An epoch, round, sequence, incarnation or position: refused above `COUNTER_MAX`, so a
    /// peer's number plus one (the next epoch, the next sequence) never overflows.
    pub(crate) fn counter(&mut self) -> Result<u64, MessageError> {
        let value = self.u64()?;
        if disklayout::is_counter(value) {
            Ok(value)
        } else {
            Err(MessageError::OutOfRange)
        }
    }
    /// A node id, or 0 where the field may name nobody.
    pub(crate) fn node_or_none(&mut self) -> Result<u8, MessageError> {
        let id = self.u8()?;
        if usize::from(id) <= super::NODES_MAX {
            Ok(id)
        } else {
            Err(MessageError::OutOfRange)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prng::Prng;

    fn samples() -> Vec<Message> {
        let install = Install {
            round: 3,
            epoch: 4,
            members: 0b101,
            previous_members: 0b111,
            quorum_holder: 3,
            judged_epoch: 3,
            judged_views: vec![0b111, 0b101],
            groups: vec![GroupAssignment {
                owner: 1,
                unconfirmed: 0b10,
            }],
        };
        let committed = crate::core::gum::Committed {
            sequence: 7,
            position: 3,
            entry: crate::core::gum::Entry {
                origin: 2,
                incarnation: 5,
                request_id: 11,
                body: b"update".to_vec(),
            },
        };
        let bodies = vec![
            Body::Heartbeat {
                epoch: 1,
                members: 3,
                stabilized: true,
                quorum_owner: false,
                holding: 5,
                refusing: 2,
            },
            Body::JoinRequest,
            Body::RegroupStatus(RegroupStatus {
                round: 1,
                epoch: 2,
                members: 3,
                acked_epoch: 2,
                acked_members: 3,
                heard: 3,
                joiners: 4,
                online_groups: 1,
                refusing: 8,
                quorum_owner: true,
            }),
            Body::Install(install),
            Body::InstallAck { round: 1, epoch: 2 },
            Body::Stabilize { round: 1, epoch: 2 },
            Body::Halt { round: 9 },
            Body::Gum(GumMessage::Propose {
                epoch: 4,
                request_id: 1,
                body: vec![1; 1024],
            }),
            Body::Gum(GumMessage::Commit {
                epoch: 4,
                committed,
            }),
            Body::Gum(GumMessage::Applied {
                epoch: 4,
                applied: 9,
                valid: true,
            }),
            Body::Gum(GumMessage::Ack {
                epoch: 4,
                incarnation: 5,
                request_id: 1,
                sequence: 9,
                rejected: true,
            }),
            Body::Gum(GumMessage::Sync { epoch: 4 }),
            Body::Leaving { epoch: 4 },
            Body::Gum(GumMessage::SyncReply {
                epoch: 4,
                reply: crate::core::gum::wire::SyncReply {
                    applied: 9,
                    valid: true,
                    unresolved: 0b100,
                    last_locker: 3,
                },
            }),
            Body::Gum(GumMessage::SnapshotChunk {
                epoch: 4,
                sequence: 9,
                position: 2,
                total: 5000,
                offset: 1024,
                bytes: vec![7; 1024],
            }),
        ];
        bodies
            .into_iter()
            .map(|body| Message {
                from: 2,
                incarnation: 5,
                body,
            })
            .collect()
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn truncated_extended_and_mangled_bytes_never_panic_and_are_rejected() {
        let mut prng = Prng::new(3);
        for message in samples() {
            let bytes = message.encode();
            for size in 0..bytes.len() {
                assert!(Message::decode(&bytes[..size]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Message::decode(&longer), Err(MessageError::TrailingBytes));
            for _ in 0..200 {
                let mut mangled = bytes.clone();
                let index = prng.below(mangled.len() as u64) as usize;
                mangled[index] = prng.next_u64() as u8;
                let _ = Message::decode(&mangled);
            }
        }
        assert_eq!(
            Message::decode(&[0x57, 0x50, 1, 99, 1]),
            Err(MessageError::Truncated)
        );
    }
}
