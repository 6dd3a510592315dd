//! Membership leases on the shared disk: this node's own lease, and observation of peers'.
//!
//! **Own lease.** The node rewrites its slot every renew interval; a successful write of a
//! `Member` slot issued at tick `t` makes the lease valid until `t + lease_hold_ticks` by its own
//! clock. Groups are held only while it is valid; at expiry they are stopped first thing on the
//! tick, and the resource monitor's dead-man (`Output::ArmDeadman`) stops them even if the
//! daemon hangs. A node writes a non-`Member` slot only after stopping all its groups.
//!
//! **Peers.** A survivor may bring a lost node's group online only once that node is confirmed
//! stopped: its slot is empty, of another incarnation, not `Member`, or unchanged for
//! `lease_expiry_observed_ticks` (timed from the read that first showed the value to a read
//! issued that long after); or it acknowledged our fence request in its mailbox (fast path).
//! A silent peer whose slot keeps changing is reported partitioned, not dead.

use super::disk_records::{self, FenceAck, FenceRequest, NodeSlot, NodeState, Sealed, BLOCK_SIZE};
use super::node::{Node, Purpose, Role};
use super::{bit, Event};

/// This node's own lease and mailbox state.
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnLease {
    /// Lease valid while `now < valid_until_tick` (0 = never valid).
    pub valid_until_tick: u64,
    pub slot_sequence: u64,
    pub slot_write_in_flight: bool,
    pub mailbox_read_in_flight: bool,
    pub ack_read_in_flight: bool,
    pub ack_write_in_flight: bool,
    /// Highest epoch written in our slot: an epoch is stabilized (by its coordinator, or by a
    /// forming node) only once durable, so a later former reading the slots never reuses it.
    pub durable_epoch: u64,
    /// Our slot as the previous run left it has been read (epoch and sequence carried on, so
    /// a restart never writes a lower epoch or an old sequence).
    pub slot_loaded: bool,
    pub slot_read_in_flight: bool,
    /// Highest fence request acknowledged; `None` until read from disk at start.
    pub last_acked_request: Option<u64>,
}

impl OwnLease {
    pub fn valid(&self, now_ticks: u64) -> bool {
        now_ticks < self.valid_until_tick
    }
}

/// What a slot read showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotSeen {
    Unreadable,
    Value { incarnation: u64, sequence: u64 },
}

/// The fence request we sent a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fence {
    NotSent,
    InFlight,
    Sent { request: u64 },
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
    /// Starts observing `peer` (idempotent).
    pub(super) fn observe(&mut self, peer: u8) {
        assert_ne!(peer, self.me());
        let target_incarnation = self.peers.incarnations[usize::from(peer - 1)];
        self.observations.entry(peer).or_insert(Observation {
            target_incarnation,
            seen: None,
            unchanged_since_tick: 0,
            confirmed: false,
            partitioned_reported: false,
            slot_read_in_flight: false,
            ack_read_in_flight: false,
            fence: Fence::NotSent,
        });
    }

    /// True once `peer` is confirmed to hold nothing.
    pub(super) fn confirmed_stopped(&self, peer: u8) -> bool {
        self.observations
            .get(&peer)
            .is_some_and(|observation| observation.confirmed)
    }

    fn confirm(&mut self, peer: u8) {
        if let Some(observation) = self.observations.get_mut(&peer) {
            if !observation.confirmed {
                observation.confirmed = true;
                self.emit(Event::PeerStopped { peer });
            }
        }
    }

    /// First thing on every tick: an expired lease stops every group, and ends membership.
    pub(super) fn enforce_own_lease(&mut self) {
        if self.own_lease.valid(self.now_ticks) {
            return;
        }
        self.stop_all_groups();
        // A new member gets its lease with its first member write; it leaves only once a lease
        // it held lapsed, or when no member write succeeded for a whole hold period.
        let member_ticks = self.now_ticks.saturating_sub(self.member_since_tick);
        let lapsed = self.own_lease.valid_until_tick > self.member_since_tick
            || member_ticks >= self.timeouts.lease_hold_ticks;
        if self.role == Role::Member && self.stabilized && lapsed {
            self.leave("membership lease expired");
        }
    }

    /// Every renew interval: own slot, own mailbox, observed peers.
    pub(super) fn renew_leases(&mut self) {
        let me = self.me();
        let geometry = self.config.geometry.clone();
        if !self.own_lease.slot_loaded && !self.own_lease.slot_read_in_flight {
            self.own_lease.slot_read_in_flight = true;
            self.disk_read(Purpose::OwnSlotRead, geometry.node_slot_offset(me));
        }
        if self.own_lease.slot_loaded && !self.own_lease.slot_write_in_flight {
            let member = self.role == Role::Member;
            self.own_lease.slot_sequence += 1;
            let hold_ms = self.timeouts.lease_hold_ticks * super::timeout::TICK_MS;
            let slot = Sealed {
                cluster_id: self.config.cluster_id,
                sequence: self.own_lease.slot_sequence,
                record: NodeSlot {
                    node_id: me,
                    state: if member {
                        NodeState::Member
                    } else {
                        NodeState::Joining
                    },
                    incarnation: self.config.incarnation,
                    epoch: self.acked_epoch,
                    members: self.members,
                    realtime_ms: self.now_ticks * super::timeout::TICK_MS,
                    lease_valid_ms: if member { hold_ms as u32 } else { 0 },
                },
            };
            self.own_lease.slot_write_in_flight = true;
            let epoch = self.acked_epoch;
            let purpose = Purpose::OwnSlotWrite {
                issue_tick: self.now_ticks,
                member,
                epoch,
            };
            self.disk_write(purpose, geometry.node_slot_offset(me), &slot);
        }
        if self.own_lease.last_acked_request.is_none() && !self.own_lease.ack_read_in_flight {
            self.own_lease.ack_read_in_flight = true;
            self.disk_read(Purpose::OwnAckRead, geometry.fence_ack_offset(me));
        }
        if self.own_lease.last_acked_request.is_some() && !self.own_lease.mailbox_read_in_flight {
            self.own_lease.mailbox_read_in_flight = true;
            self.disk_read(Purpose::OwnMailboxRead, geometry.fence_request_offset(me));
        }
        let peers: Vec<u8> = self.observations.keys().copied().collect();
        for peer in peers {
            self.renew_observation(peer);
        }
    }

    fn renew_observation(&mut self, peer: u8) {
        let geometry = self.config.geometry.clone();
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

    pub(super) fn on_own_slot_written(
        &mut self,
        ok: bool,
        issue_tick: u64,
        member: bool,
        epoch: u64,
    ) {
        self.own_lease.slot_write_in_flight = false;
        if ok {
            self.own_lease.durable_epoch = self.own_lease.durable_epoch.max(epoch);
        }
        // Only a member write that is still wanted extends the lease: a node that left while
        // the write was in flight must not be revived by it.
        if ok && member && self.role == Role::Member {
            let until = issue_tick + self.timeouts.lease_hold_ticks;
            if until > self.own_lease.valid_until_tick {
                self.own_lease.valid_until_tick = until;
                let stop_resources_at_ms = until * super::timeout::TICK_MS;
                self.outputs.push_back(super::Output::ArmDeadman {
                    stop_resources_at_ms,
                });
            }
        }
    }

    pub(super) fn on_own_slot_read(&mut self, block: Option<&[u8; BLOCK_SIZE]>) {
        self.own_lease.slot_read_in_flight = false;
        let Some(block) = block else { return };
        match disk_records::decode::<NodeSlot>(&block[..]) {
            Ok(Some(sealed)) if sealed.cluster_id == self.config.cluster_id => {
                self.own_lease.slot_sequence = self.own_lease.slot_sequence.max(sealed.sequence);
                self.acked_epoch = self.acked_epoch.max(sealed.record.epoch);
                self.own_lease.durable_epoch =
                    self.own_lease.durable_epoch.max(sealed.record.epoch);
            }
            Ok(_) => {}
            // Torn by a crash mid-write: the previous run's epoch is lost from our slot, but
            // it was also in every member's slot and in the quorum record.
            Err(_) => self.dropped.disk_records_invalid += 1,
        }
        self.own_lease.slot_loaded = true;
    }

    pub(super) fn on_own_ack_read(&mut self, block: Option<&[u8; BLOCK_SIZE]>) {
        self.own_lease.ack_read_in_flight = false;
        let Some(block) = block else { return };
        let acked = match disk_records::decode::<FenceAck>(&block[..]) {
            Ok(Some(sealed)) if sealed.cluster_id == self.config.cluster_id => {
                sealed.record.acknowledged_request
            }
            Ok(_) => 0,
            Err(_) => {
                self.dropped.disk_records_invalid += 1;
                0
            }
        };
        self.own_lease.last_acked_request = Some(acked);
    }

    pub(super) fn on_own_mailbox(&mut self, block: Option<&[u8; BLOCK_SIZE]>) {
        self.own_lease.mailbox_read_in_flight = false;
        let Some(block) = block else { return };
        let request = match disk_records::decode::<FenceRequest>(&block[..]) {
            Ok(Some(sealed)) => sealed,
            Ok(None) => return,
            Err(_) => {
                self.dropped.disk_records_invalid += 1;
                return;
            }
        };
        let last_acked = self.own_lease.last_acked_request.unwrap_or(u64::MAX);
        let for_me = request.cluster_id == self.config.cluster_id
            && request.record.target == self.me()
            && request.record.target_incarnation == self.config.incarnation;
        if !for_me || request.sequence <= last_acked || self.own_lease.ack_write_in_flight {
            return;
        }
        // A survivor fences only nodes outside its membership, so a request from an epoch not
        // newer than the one we are a member of is stale (written before we rejoined): ignore.
        if self.stabilized && request.record.requester_epoch <= self.epoch {
            return;
        }
        // Fenced: stop everything first, then say so.
        match self.role {
            Role::Member => self.leave("fenced by a survivor"),
            Role::Forming => self.abort_forming(),
            Role::Searching { .. } => {}
        }
        assert_eq!(self.online, 0);
        let ack = Sealed {
            cluster_id: self.config.cluster_id,
            sequence: request.sequence,
            record: FenceAck {
                node_id: self.me(),
                incarnation: self.config.incarnation,
                acknowledged_request: request.sequence,
                resources_stopped: true,
            },
        };
        self.own_lease.ack_write_in_flight = true;
        let offset = self.config.geometry.fence_ack_offset(self.me());
        self.disk_write(
            Purpose::OwnAckWrite {
                request: request.sequence,
            },
            offset,
            &ack,
        );
    }

    pub(super) fn on_own_ack_written(&mut self, ok: bool, request: u64) {
        self.own_lease.ack_write_in_flight = false;
        if ok {
            let last = self.own_lease.last_acked_request.unwrap_or(0);
            self.own_lease.last_acked_request = Some(last.max(request));
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
            Ok(None) => None,
            Ok(Some(sealed)) if sealed.cluster_id != cluster_id => None,
            Ok(Some(sealed)) if sealed.record.node_id != peer => Some(SlotSeen::Unreadable),
            Ok(Some(sealed)) => {
                if observation.target_incarnation == 0 {
                    observation.target_incarnation = sealed.record.incarnation;
                }
                let other_run = sealed.record.incarnation != observation.target_incarnation;
                if other_run || sealed.record.state != NodeState::Member {
                    None
                } else {
                    Some(SlotSeen::Value {
                        incarnation: sealed.record.incarnation,
                        sequence: sealed.sequence,
                    })
                }
            }
            Err(_) => Some(SlotSeen::Unreadable),
        };
        let Some(seen) = seen else {
            // Empty, stale, another run, or not a member: holds nothing.
            self.confirm(peer);
            return;
        };
        if observation.seen != Some(seen) {
            let changed_again = observation.seen.is_some();
            observation.seen = Some(seen);
            observation.unchanged_since_tick = now;
            if changed_again && silent && !observation.partitioned_reported {
                observation.partitioned_reported = true;
                self.emit(Event::PeerPartitioned { peer });
            }
            if seen == SlotSeen::Unreadable {
                self.dropped.disk_records_invalid += 1;
            }
        } else if issue_tick >= observation.unchanged_since_tick + expiry {
            self.confirm(peer);
        }
    }

    pub(super) fn on_peer_mailbox(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        let Some(observation) = self.observations.get(&peer) else {
            return;
        };
        let target_incarnation = observation.target_incarnation;
        let Some(block) = block else {
            if let Some(observation) = self.observations.get_mut(&peer) {
                observation.fence = Fence::NotSent;
            }
            return;
        };
        let previous = match disk_records::decode::<FenceRequest>(&block[..]) {
            Ok(Some(sealed)) => sealed.sequence,
            _ => 0,
        };
        let request = Sealed {
            cluster_id: self.config.cluster_id,
            sequence: previous + 1,
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
                request: previous + 1,
            },
            offset,
            &request,
        );
    }

    pub(super) fn on_fence_written(&mut self, peer: u8, request: u64, ok: bool) {
        if let Some(observation) = self.observations.get_mut(&peer) {
            observation.fence = if ok {
                Fence::Sent { request }
            } else {
                Fence::NotSent
            };
        }
    }

    pub(super) fn on_peer_ack(&mut self, peer: u8, block: Option<&[u8; BLOCK_SIZE]>) {
        let cluster_id = self.config.cluster_id;
        let Some(observation) = self.observations.get_mut(&peer) else {
            return;
        };
        observation.ack_read_in_flight = false;
        let (Some(block), Fence::Sent { request }) = (block, observation.fence) else {
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
            self.confirm(peer);
        }
    }
}
