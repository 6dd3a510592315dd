//! Observation of peers that may still hold groups, on the shared disk.
//!
//! A survivor may bring a lost node's group online only once that node is confirmed stopped:
//! - it acknowledged our fence request in its mailbox (fast path): its acknowledgement echoes
//!   our request's identity (us, our incarnation, our sequence), or acknowledges every request
//!   of its incarnation (its monitor fenced it); or
//! - after our fence request landed, its slot was seen unchanged for
//!   `lease_expiry_observed_ticks` (timed from the read that first showed the value to a read
//!   issued that long after): its lease expired; or
//! - after our fence request landed, its slot showed it not a member (it writes a non-member
//!   slot only after stopping everything).
//!
//! A slot showing a newer incarnation than the one we observe proves the observed run gone,
//! not the node stopped: the newer run may have joined a membership we were not in and taken
//! groups (simulator seed 30124784: node 4 restarted behind a partition, joined node 3 and took
//! a group; node 1, which knew only node 4's first run, took the slot's newer incarnation for
//! proof and started the group beside it). So the observation moves to the newer run: a fence
//! request for it, and the rules above from its landing. A peer whose incarnation we never
//! learned is observed under the first incarnation its slot shows, the same way.
//!
//! Why "after our fence request landed": a node starting a *new* lease (a fresh member) counts
//! it only after reading its mailbox once its first member write completed (`lease.rs`), so a
//! node that looked stopped or expired to us cannot start holding later without seeing our
//! request first and obeying it. A node whose incarnation we never learned cannot be fenced;
//! for it the expiry rule applies from the first read.
//!
//! A silent peer whose slot keeps changing is reported partitioned, not dead.

use std::collections::BTreeMap;

use super::disk_records::{
    self, Acknowledged, FenceAck, FenceRequest, NodeSlot, NodeState, Sealed, BLOCK_SIZE,
};
use super::node::{Node, Purpose, Role};
use super::{bit, Event};
use crate::core::Dropped;

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
    /// Request `request` is being written.
    InFlight {
        request: u64,
    },
    /// Landed at `landed_tick` (our clock).
    Sent {
        request: u64,
        landed_tick: u64,
    },
}

/// Observation of one peer that may still hold groups.
#[derive(Clone, Debug)]
struct Observation {
    /// The run of the peer to confirm stopped (0: none learned yet).
    target_incarnation: u64,
    seen: Option<SlotSeen>,
    unchanged_since_tick: u64,
    confirmed: bool,
    partitioned_reported: bool,
    slot_read_in_flight: bool,
    ack_read_in_flight: bool,
    fence: Fence,
}

/// Every peer observed, and what observing them needs.
#[derive(Clone, Debug, Default)]
pub(super) struct Observer {
    observations: BTreeMap<u8, Observation>,
    /// The sequence of our last fence request: this incarnation never reuses one.
    fence_sequence: u64,
    /// Highest epoch read in any node's slot: a new epoch is chosen above it (the quorum
    /// record copy of a lost owner's epoch may be torn by its crash; its slot is not).
    epoch_seen_on_disk: u64,
}

impl Observer {
    /// What we confirmed about `peer` says nothing about it from now on (it restarted, or it
    /// is a member again).
    pub(super) fn forget(&mut self, peer: u8) {
        self.observations.remove(&peer);
    }

    /// Every other node is a possible holder again (a new membership's table).
    pub(super) fn forget_all(&mut self) {
        self.observations.clear();
    }

    /// The peers observed.
    pub(super) fn observed(&self) -> Vec<u8> {
        self.observations.keys().copied().collect()
    }

    pub(super) fn epoch_seen_on_disk(&self) -> u64 {
        self.epoch_seen_on_disk
    }

    /// Scripted tests (`gum/tests`) stand in for the disk reads that would confirm `peer`
    /// stopped; false when `peer` is not observed.
    #[cfg(test)]
    pub(super) fn confirm_for_test(&mut self, peer: u8) -> bool {
        self.observations
            .get_mut(&peer)
            .map(|observation| observation.confirmed = true)
            .is_some()
    }
}

impl Node {
    /// Starts observing `peer` (idempotent): its first slot read, and its fence when we may
    /// fence it, go out now rather than at the next renew interval (a new owner waits on them).
    pub(super) fn observe(&mut self, peer: u8) {
        assert_ne!(peer, self.me());
        if self.observer.observations.contains_key(&peer) {
            return;
        }
        let target_incarnation = self.peers.incarnation(peer);
        self.observer.observations.insert(
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
        self.observer
            .observations
            .get(&peer)
            .is_some_and(|observation| observation.confirmed)
    }

    /// Confirms the run we observe stopped.
    fn confirm(&mut self, peer: u8, how: &'static str) {
        let Some(observation) = self.observer.observations.get(&peer) else {
            return;
        };
        self.confirm_runs_up_to(peer, observation.target_incarnation, how);
    }

    /// Records that every run of `peer` up to `incarnation` stopped. The event names the newest
    /// run the confirmation covers, so the simulator can check it is true.
    fn confirm_runs_up_to(&mut self, peer: u8, incarnation: u64, how: &'static str) {
        if let Some(observation) = self.observer.observations.get_mut(&peer) {
            if !observation.confirmed {
                observation.confirmed = true;
                self.emit(Event::PeerStopped {
                    peer,
                    incarnation,
                    how,
                });
            }
        }
    }

    /// Every renew interval, for each observed peer: read its slot, fence it, read its ack.
    pub(super) fn renew_observation(&mut self, peer: u8) {
        let geometry = self.config().geometry;
        let may_fence = self.membership.role() == Role::Member
            && self.membership.stabilized()
            && self.membership.members() & bit(peer) == 0;
        let Some(observation) = self.observer.observations.get_mut(&peer) else {
            return;
        };
        if observation.confirmed {
            return;
        }
        let read_slot = !observation.slot_read_in_flight;
        let target_incarnation = observation.target_incarnation;
        let fence_now =
            may_fence && observation.fence == Fence::NotSent && observation.target_incarnation != 0;
        let request = self.observer.fence_sequence + 1;
        let read_ack =
            matches!(observation.fence, Fence::Sent { .. }) && !observation.ack_read_in_flight;
        observation.slot_read_in_flight |= read_slot;
        observation.ack_read_in_flight |= read_ack;
        if fence_now {
            observation.fence = Fence::InFlight { request };
        }
        if read_slot {
            let purpose = Purpose::PeerSlotRead {
                peer,
                issue_tick: self.now(),
            };
            self.disk_read(purpose, geometry.node_slot_offset(peer));
        }
        if fence_now {
            let written = self.write_fence_request(peer, target_incarnation);
            assert_eq!(written, request);
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
        let now = self.now();
        let expiry = self.timeouts().lease_expiry_observed_ticks;
        let cluster_id = self.config().cluster_id;
        let silent = !self
            .peers
            .alive(peer, now, self.timeouts().peer_silence_ticks);
        let old_rule = self.config().mutation == super::Mutation::NewerIncarnationConfirms;
        let Some(observation) = self.observer.observations.get_mut(&peer) else {
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
                self.observer.epoch_seen_on_disk =
                    self.observer.epoch_seen_on_disk.max(sealed.record.epoch);
                let (incarnation, sequence) = (sealed.record.incarnation, sealed.sequence);
                if old_rule
                    && observation.target_incarnation != 0
                    && incarnation > observation.target_incarnation
                {
                    // The old rule took the newest run it had seen for stopped as well.
                    self.confirm_runs_up_to(peer, incarnation, "newer incarnation");
                    return;
                }
                if incarnation > observation.target_incarnation {
                    // A newer run (or the first we learn of): it may hold groups too, so it is
                    // the one to confirm stopped, from a fence request of its own.
                    observation.target_incarnation = incarnation;
                    observation.fence = Fence::NotSent;
                    observation.seen = None;
                    observation.unchanged_since_tick = 0;
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
            self.count_drop(Dropped::DiskRecordInvalid);
        }
        let Some(observation) = self.observer.observations.get_mut(&peer) else {
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

    /// Writes our fence request into `peer`'s mailbox. Its sequence is new for this incarnation
    /// of ours, so the identity (us, our incarnation, sequence) is one no other request has: an
    /// acknowledgement echoing it proves `peer` read this very request, after it landed
    /// (FORMAT.md §8; what the mailbox held before does not matter).
    fn write_fence_request(&mut self, peer: u8, target_incarnation: u64) -> u64 {
        self.observer.fence_sequence += 1;
        let sequence = self.observer.fence_sequence;
        let request = Sealed {
            cluster_id: self.config().cluster_id,
            sequence,
            record: FenceRequest {
                target: peer,
                target_incarnation,
                requester: self.me(),
                requester_epoch: self.membership.epoch(),
                requester_incarnation: self.config().incarnation,
            },
        };
        let offset = self.config().geometry.fence_request_offset(peer);
        self.disk_write(
            Purpose::FenceRequestWrite {
                peer,
                request: sequence,
            },
            offset,
            &request,
        );
        sequence
    }

    pub(super) fn on_fence_written(&mut self, peer: u8, request: u64, ok: bool) {
        let now = self.now();
        let Some(observation) = self.observer.observations.get_mut(&peer) else {
            return;
        };
        if observation.fence != (Fence::InFlight { request }) {
            // A request for a run we no longer observe (see the module docs).
            return;
        }
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
            let offset = self.config().geometry.fence_ack_offset(peer);
            self.disk_read(Purpose::PeerAckRead { peer }, offset);
        }
    }

    pub(super) fn on_peer_ack(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        let cluster_id = self.config().cluster_id;
        let (me, my_incarnation) = (self.me(), self.config().incarnation);
        let any_requester = self.config().mutation == super::Mutation::FenceAckAnyRequester;
        let Some(observation) = self.observer.observations.get_mut(&peer) else {
            return;
        };
        observation.ack_read_in_flight = false;
        let (Some(block), Fence::Sent { request, .. }) = (block, observation.fence) else {
            return;
        };
        // Only an echo of our own request counts (or the blanket acknowledgement of a node
        // whose monitor fenced it): a sequence alone may have been another requester's.
        let mine = |acknowledged: Acknowledged| match acknowledged {
            Acknowledged::Every => true,
            Acknowledged::Request { sequence, .. } if any_requester => sequence >= request,
            Acknowledged::Request {
                requester,
                requester_incarnation,
                sequence,
            } => requester == me && requester_incarnation == my_incarnation && sequence >= request,
        };
        let acknowledged = match disk_records::decode::<FenceAck>(&block[..]) {
            Ok(Some(sealed)) => {
                sealed.cluster_id == cluster_id
                    && sealed.record.node_id == peer
                    && sealed.record.incarnation == observation.target_incarnation
                    && mine(sealed.record.acknowledged)
                    && sealed.record.resources_stopped
            }
            _ => false,
        };
        if acknowledged {
            self.confirm(peer, "fence acknowledged");
        }
    }
}
