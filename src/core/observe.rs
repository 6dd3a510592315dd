//! Observation of peers that may still hold groups, on the shared disk.
//!
//! A survivor may bring a lost node's group online only once that node is confirmed stopped:
//! - it acknowledged our fence request in its mailbox (fast path); or
//! - after our fence request landed, its slot was seen unchanged for
//!   `lease_expiry_observed_ticks` (timed from the read that first showed the value to a read
//!   issued that long after): its lease expired; or
//! - after our fence request landed, its slot showed it not a member (it writes a non-member
//!   slot only after stopping everything); or
//! - its slot shows a newer incarnation (the observed run is gone).
//!
//! Why "after our fence request landed": a node starting a *new* lease (a fresh member) counts
//! it only after reading its mailbox once its first member write completed (`lease.rs`), so a
//! node that looked stopped or expired to us cannot start holding later without seeing our
//! request first and obeying it. A node whose incarnation we never learned cannot be fenced;
//! for it the expiry rule applies from the first read.
//!
//! A silent peer whose slot keeps changing is reported partitioned, not dead.

use super::disk_records::{self, FenceAck, FenceRequest, NodeSlot, NodeState, Sealed, BLOCK_SIZE};
use super::node::{Node, Purpose, Role};
use super::{bit, Event};

/// What a slot read showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotSeen {
    Empty,
    Unreadable,
    NotMember { incarnation: u64, sequence: u64 },
    Member { incarnation: u64, sequence: u64 },
}

/// The fence request we sent a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fence {
    NotSent,
    InFlight,
    /// Landed at `landed_tick` (our clock).
    Sent {
        request: u64,
        landed_tick: u64,
    },
}

/// Observation of one peer that may still hold groups.
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    pub target_incarnation: u64,
    pub seen: Option<SlotSeen>,
    pub unchanged_since_tick: u64,
    pub confirmed: bool,
    pub partitioned_reported: bool,
    pub slot_read_in_flight: bool,
    pub ack_read_in_flight: bool,
    pub fence: Fence,
}

impl Node {
    /// Starts observing `peer` (idempotent): its first slot read, and its fence when we may
    /// fence it, go out now rather than at the next renew interval (a new owner waits on them).
    pub(super) fn observe(&mut self, peer: u8) {
        assert_ne!(peer, self.me());
        if self.observations.contains_key(&peer) {
            return;
        }
        let target_incarnation = self.peers.incarnations[usize::from(peer - 1)];
        self.observations.insert(
            peer,
            Observation {
                target_incarnation,
                seen: None,
                unchanged_since_tick: 0,
                confirmed: false,
                partitioned_reported: false,
                slot_read_in_flight: false,
                ack_read_in_flight: false,
                fence: Fence::NotSent,
            },
        );
        self.renew_observation(peer);
    }

    /// True once `peer` is confirmed to hold nothing.
    pub(super) fn confirmed_stopped(&self, peer: u8) -> bool {
        self.observations
            .get(&peer)
            .is_some_and(|observation| observation.confirmed)
    }

    fn confirm(&mut self, peer: u8, how: &'static str) {
        if let Some(observation) = self.observations.get_mut(&peer) {
            if !observation.confirmed {
                observation.confirmed = true;
                self.emit(Event::PeerStopped { peer, how });
            }
        }
    }

    /// Every renew interval, for each observed peer: read its slot, fence it, read its ack.
    pub(super) fn renew_observation(&mut self, peer: u8) {
        let geometry = self.config.geometry;
        let may_fence =
            self.role == Role::Member && self.stabilized && self.members & bit(peer) == 0;
        let Some(observation) = self.observations.get_mut(&peer) else {
            return;
        };
        if observation.confirmed {
            return;
        }
        let read_slot = !observation.slot_read_in_flight;
        let fence_now =
            may_fence && observation.fence == Fence::NotSent && observation.target_incarnation != 0;
        let read_ack =
            matches!(observation.fence, Fence::Sent { .. }) && !observation.ack_read_in_flight;
        observation.slot_read_in_flight |= read_slot;
        observation.ack_read_in_flight |= read_ack;
        if fence_now {
            observation.fence = Fence::InFlight;
        }
        if read_slot {
            let purpose = Purpose::PeerSlotRead {
                peer,
                issue_tick: self.now_ticks,
            };
            self.disk_read(purpose, geometry.node_slot_offset(peer));
        }
        if fence_now {
            self.disk_read(
                Purpose::PeerMailboxRead { peer },
                geometry.fence_request_offset(peer),
            );
        }
        if read_ack {
            self.disk_read(
                Purpose::PeerAckRead { peer },
                geometry.fence_ack_offset(peer),
            );
        }
    }

    pub(super) fn on_peer_slot(
        &mut self,
        peer: u8,
        block: Option<&[u8; BLOCK_SIZE]>,
        issue_tick: u64,
    ) {
        let now = self.now_ticks;
        let expiry = self.timeouts.lease_expiry_observed_ticks;
        let cluster_id = self.config.cluster_id;
        let silent = !self
            .peers
            .alive(peer, now, self.timeouts.peer_silence_ticks);
        let Some(observation) = self.observations.get_mut(&peer) else {
            return;
        };
        observation.slot_read_in_flight = false;
        let Some(block) = block else { return };
        if observation.confirmed {
            return;
        }
        let seen = match disk_records::decode::<NodeSlot>(&block[..]) {
            Ok(None) => SlotSeen::Empty,
            Ok(Some(sealed)) if sealed.cluster_id != cluster_id => SlotSeen::Empty,
            Ok(Some(sealed)) if sealed.record.node_id != peer => SlotSeen::Unreadable,
            Ok(Some(sealed)) => {
                self.epoch_seen_on_disk = self.epoch_seen_on_disk.max(sealed.record.epoch);
                let (incarnation, sequence) = (sealed.record.incarnation, sealed.sequence);
                if observation.target_incarnation != 0
                    && incarnation > observation.target_incarnation
                {
                    // A newer run of the node started: the observed run is gone.
                    self.confirm(peer, "newer incarnation");
                    return;
                }
                match sealed.record.state {
                    NodeState::Member => SlotSeen::Member {
                        incarnation,
                        sequence,
                    },
                    _ => SlotSeen::NotMember {
                        incarnation,
                        sequence,
                    },
                }
            }
            Err(_) => SlotSeen::Unreadable,
        };
        if seen == SlotSeen::Unreadable {
            self.dropped.disk_records_invalid += 1;
        }
        let Some(observation) = self.observations.get_mut(&peer) else {
            return;
        };
        // Confirmations by what the slot shows count only from a read issued after our fence
        // request landed (see the module docs); unfenceable peers count from the start.
        let window_start = match observation.fence {
            Fence::Sent { landed_tick, .. } => Some(landed_tick),
            _ if observation.target_incarnation == 0 => Some(0),
            _ => None,
        };
        let changed = observation.seen != Some(seen);
        let mut partitioned = false;
        if changed {
            let changed_again = observation.seen.is_some();
            observation.seen = Some(seen);
            observation.unchanged_since_tick = now;
            if changed_again && silent && !observation.partitioned_reported {
                observation.partitioned_reported = true;
                partitioned = true;
            }
        }
        let unchanged_since_tick = observation.unchanged_since_tick;
        if partitioned {
            self.emit(Event::PeerPartitioned { peer });
        }
        let Some(window_start) = window_start else {
            return;
        };
        if issue_tick < window_start {
            return;
        }
        let not_member =
            matches!(seen, SlotSeen::NotMember { .. } | SlotSeen::Empty) && window_start > 0;
        let expired = !changed && issue_tick >= unchanged_since_tick.max(window_start) + expiry;
        if not_member || expired {
            self.confirm(
                peer,
                if expired {
                    "lease expired"
                } else {
                    "not a member"
                },
            );
        }
    }

    /// The incarnation a fence of `peer` targets and the block a fence read returned; `None`
    /// when `peer` is no longer observed, or the read failed (the fence starts over).
    fn fence_read<'a>(
        &mut self,
        peer: u8,
        block: Option<&'a [u8; BLOCK_SIZE]>,
    ) -> Option<(u64, &'a [u8; BLOCK_SIZE])> {
        let observation = self.observations.get_mut(&peer)?;
        match block {
            Some(block) => Some((observation.target_incarnation, block)),
            None => {
                observation.fence = Fence::NotSent;
                None
            }
        }
    }

    pub(super) fn on_peer_mailbox(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        let Some((target_incarnation, block)) = self.fence_read(peer, block) else {
            return;
        };
        match disk_records::decode::<FenceRequest>(&block[..]) {
            Ok(Some(sealed)) => self.write_fence_request(peer, target_incarnation, sealed.sequence),
            // Empty or torn (a requester crashed mid-write): the request numbers before are
            // unknown, and numbering from 0 would let an old acknowledgement count for the new
            // request. Number above the acknowledgement block instead.
            _ => {
                let offset = self.config.geometry.fence_ack_offset(peer);
                self.disk_read(Purpose::PeerAckBeforeRequest { peer }, offset);
            }
        }
    }

    /// The acknowledgement block read because the mailbox said nothing: request above it.
    pub(super) fn on_ack_before_request(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        let Some((target_incarnation, block)) = self.fence_read(peer, block) else {
            return;
        };
        // Only an acknowledgement by the incarnation we fence can count for our request
        // (`on_peer_ack`); a blanket one (its monitor fenced it: every request) counts for any
        // number, rightly, since that incarnation never holds anything again.
        let floor = match disk_records::decode::<FenceAck>(&block[..]) {
            Ok(Some(sealed))
                if sealed.cluster_id == self.config.cluster_id
                    && sealed.record.incarnation == target_incarnation
                    && sealed.record.acknowledged_request != u64::MAX =>
            {
                sealed.record.acknowledged_request
            }
            _ => 0,
        };
        self.write_fence_request(peer, target_incarnation, floor);
    }

    fn write_fence_request(&mut self, peer: u8, target_incarnation: u64, previous: u64) {
        // Saturating: a number read from disk is not trusted to leave room.
        let number = previous.saturating_add(1);
        let request = Sealed {
            cluster_id: self.config.cluster_id,
            sequence: number,
            record: FenceRequest {
                target: peer,
                target_incarnation,
                requester: self.me(),
                requester_epoch: self.epoch,
            },
        };
        let offset = self.config.geometry.fence_request_offset(peer);
        self.disk_write(
            Purpose::FenceRequestWrite {
                peer,
                request: number,
            },
            offset,
            &request,
        );
    }

    pub(super) fn on_fence_written(&mut self, peer: u8, request: u64, ok: bool) {
        let now = self.now_ticks;
        let Some(observation) = self.observations.get_mut(&peer) else {
            return;
        };
        observation.fence = if ok {
            Fence::Sent {
                request,
                landed_tick: now,
            }
        } else {
            Fence::NotSent
        };
        // A stopped node may have acknowledged already (its monitor writes an acknowledgement
        // covering every request once it fenced): read it now rather than a renew interval
        // later. Only an acknowledgement of this request or a later one counts (`on_peer_ack`).
        if ok && !observation.confirmed && !observation.ack_read_in_flight {
            observation.ack_read_in_flight = true;
            let offset = self.config.geometry.fence_ack_offset(peer);
            self.disk_read(Purpose::PeerAckRead { peer }, offset);
        }
    }

    pub(super) fn on_peer_ack(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        let cluster_id = self.config.cluster_id;
        let Some(observation) = self.observations.get_mut(&peer) else {
            return;
        };
        observation.ack_read_in_flight = false;
        let (Some(block), Fence::Sent { request, .. }) = (block, observation.fence) else {
            return;
        };
        let acknowledged = match disk_records::decode::<FenceAck>(&block[..]) {
            Ok(Some(sealed)) => {
                sealed.cluster_id == cluster_id
                    && sealed.record.node_id == peer
                    && sealed.record.incarnation == observation.target_incarnation
                    && sealed.record.acknowledged_request >= request
                    && sealed.record.resources_stopped
            }
            _ => false,
        };
        if acknowledged {
            self.confirm(peer, "fence acknowledged");
        }
    }
}
