//! Handling of untrusted input (datagrams, disk completions) and the node's local invariants.
//!
//! A datagram is decoded, its sender checked against the configuration (known node, not us, a
//! network both have, and every node it names configured) and its incarnation against the
//! highest heard; anything else is dropped and counted, never trusted. Then exactly one
//! protocol handler runs.

use super::disk_records::BLOCK_SIZE;
use super::membership::RunHeard;
use super::message::{Body, Message};
use super::node::{Node, Purpose, Role};
use super::{bit, ids};
use crate::core::Dropped;

impl Node {
    pub(super) fn on_message(&mut self, network: u8, payload: &[u8]) {
        let message = match Message::decode(payload) {
            Ok(message) => message,
            Err(_) => {
                self.count_drop(Dropped::Undecodable);
                return;
            }
        };
        let from = message.from;
        let configured_networks = self
            .config()
            .networks
            .get(usize::from(from) - 1)
            .copied()
            .unwrap_or(0);
        let my_networks = self.config().networks[usize::from(self.me() - 1)];
        if from == self.me()
            || configured_networks == 0
            || network >= configured_networks.min(my_networks)
            || message.nodes_named() & !self.configured() != 0
        {
            self.count_drop(Dropped::UnknownNode);
            return;
        }
        match self.peers.heard_run(from, message.incarnation) {
            RunHeard::Stale => {
                self.count_drop(Dropped::Stale);
                return;
            }
            RunHeard::Restarted => self.on_peer_restarted(from),
            RunHeard::Known | RunHeard::First => {}
        }
        self.peers.heard(from, network, self.now());
        match message.body {
            Body::Heartbeat {
                epoch,
                members,
                stabilized,
                quorum_owner,
                holding,
                refusing,
            } => {
                if stabilized {
                    self.record_peer_groups(from, epoch, holding, refusing);
                }
                self.on_heartbeat(from, epoch, members, stabilized, quorum_owner)
            }
            Body::JoinRequest => self.on_join_request(from),
            Body::RegroupStatus(status) => self.on_status(from, status),
            Body::Install(install) => self.on_install(from, install),
            Body::InstallAck { round, epoch } => self.on_install_ack(from, round, epoch),
            Body::Stabilize { round, epoch } => self.on_stabilize(from, round, epoch),
            Body::Halt { round } => self.on_halt(from, round),
            Body::Gum(gum) => self.on_gum_message(from, message.incarnation, gum),
            Body::Leaving { .. } => self.on_leaving(from),
        }
    }

    pub(super) fn on_disk_done(&mut self, op: u64, block: Option<&[u8; BLOCK_SIZE]>) {
        let Some(purpose) = self.take_purpose(op) else {
            // Not ours (e.g. a completion from before a restart of the driver): ignore.
            self.count_drop(Dropped::Unexpected);
            return;
        };
        match purpose {
            Purpose::OwnSlotWrite {
                issue_tick,
                member,
                epoch,
            } => self.on_own_slot_written(block.is_some(), issue_tick, member, epoch),
            Purpose::OwnMailboxRead { issue_tick } => self.on_own_mailbox(block, issue_tick),
            Purpose::OwnSlotRead => self.on_own_slot_read(block),
            Purpose::StartQuorumRead => self.on_start_quorum_read(block),
            Purpose::StartSlotRead { peer } => self.on_start_slot_read(peer, block),
            Purpose::OwnAckRead => self.on_own_ack_read(block),
            Purpose::OwnAckWrite { acknowledged } => {
                self.on_own_ack_written(block.is_some(), acknowledged)
            }
            Purpose::QuorumRead { issue_tick } => self.on_quorum_read(block, issue_tick),
            Purpose::QuorumWrite { issue_tick } => {
                self.on_quorum_written(block.is_some(), issue_tick)
            }
            Purpose::PeerSlotRead { peer, issue_tick } => {
                self.on_peer_slot(peer, block, issue_tick)
            }
            Purpose::FenceRequestWrite { peer, request } => {
                self.on_fence_written(peer, request, block.is_some())
            }
            Purpose::PeerAckRead { peer } => self.on_peer_ack(peer, block),
            Purpose::FormSlotRead {
                peer,
                second,
                attempt,
            } => self.on_form_slot(peer, second, attempt, block),
            Purpose::GumLogWrite { position } => self.on_gum_log_written(position, block.is_some()),
            Purpose::GumRecoveryRead { attempt, what } => {
                self.on_recovery_read(attempt, what, block)
            }
            Purpose::GumCheckpointWrite { what } => {
                self.on_checkpoint_written(what, block.is_some())
            }
            Purpose::ResourceLeaseRead {
                acquisition,
                block: index,
            } => self.on_resource_lease_read(acquisition, index, block),
            Purpose::ResourceLeaseWrite {
                acquisition,
                issue_tick,
            } => self.on_resource_lease_written(acquisition, block.is_some(), issue_tick),
        }
    }

    /// Local invariants, split (TigerBeetle style): positive and negative space.
    pub(super) fn assert_invariants(&self) {
        if self.placement.online() != 0 {
            assert!(
                self.membership.stabilized(),
                "holds groups only while stabilized"
            );
            assert_eq!(
                self.membership.role(),
                Role::Member,
                "holds groups only as a member"
            );
            assert!(
                self.own_lease.valid(self.now()),
                "holds groups only with a valid lease"
            );
            assert!(
                self.deadman.armed_at(self.now()),
                "holds groups only while the dead-man is armed"
            );
        }
        self.assert_resource_lease_invariants();
        for group in ids(self.placement.online()) {
            assert_eq!(
                self.placement.table()[usize::from(group - 1)].owner,
                self.me(),
                "holds only its own groups"
            );
        }
        if self.membership.stabilized() {
            assert!(
                self.membership.members() & bit(self.me()) != 0,
                "a stabilized membership includes this node"
            );
            assert!(self.membership.epoch() > 0);
            assert!(self.membership.epoch() <= self.membership.acked_epoch());
        } else {
            assert_eq!(self.placement.online(), 0);
        }
        if self.membership.role() != Role::Member {
            assert!(!self.membership.stabilized(), "only members are stabilized");
            assert_eq!(
                self.membership.basis_members(),
                0,
                "a non-member judges no survival"
            );
        }
    }
}
