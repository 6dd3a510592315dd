//! `Node`: the one state machine the driver steps. Only `step` branches on the input kind;
//! the parts (`membership`, `regroup`, `quorum`, `lease`, `groups`) compute, `Node` applies.

use std::collections::{BTreeMap, VecDeque};

use super::database::{Database, VersionedMap};
use super::disk_records::{self, Sealed, BLOCK_SIZE};
use super::lease::{Observation, OwnLease};
use super::membership::Peers;
use super::message::{Body, GroupAssignment, Message};
use super::quorum::{Identity, Quorum};
use super::regroup::Round;
use super::timeout::{Timeouts, TICK_MS};
use super::{bit, ids, AdminCommand, Config, DropCounters, Event, Input, Output, Status};
use crate::prng::Prng;

/// Bound on queued outputs between two drains; exceeding it is a design bug.
pub(crate) const OUTPUTS_MAX: usize = 64 * 64 * 8;

/// Whether the node belongs to a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// No cluster: asks to join; forms after `form_wait_ticks` of hearing no member.
    Searching {
        since_tick: u64,
        form_wait_ticks: u64,
    },
    /// Arbitrating for the quorum to form a cluster.
    Forming,
    /// In a membership (stabilized, or regrouping from one).
    Member,
}

/// Why a disk operation was issued (op id → purpose).
#[derive(Clone, Debug)]
pub(crate) enum Purpose {
    OwnSlotWrite {
        issue_tick: u64,
        member: bool,
        epoch: u64,
    },
    OwnMailboxRead,
    OwnSlotRead,
    OwnAckRead,
    OwnAckWrite {
        request: u64,
    },
    QuorumRead {
        issue_tick: u64,
    },
    QuorumWrite {
        issue_tick: u64,
    },
    PeerSlotRead {
        peer: u8,
        issue_tick: u64,
    },
    PeerMailboxRead {
        peer: u8,
    },
    FenceRequestWrite {
        peer: u8,
        request: u64,
    },
    PeerAckRead {
        peer: u8,
    },
    FormSlotRead {
        peer: u8,
        second: bool,
    },
}

/// One node of the cluster. See the module docs of `core`.
pub struct Node {
    pub(super) config: Config,
    pub(super) timeouts: Timeouts,
    pub(super) prng: Prng,
    pub(super) now_ticks: u64,
    pub(super) start_tick: Option<u64>,
    pub(super) outputs: VecDeque<Output>,
    pub(super) dropped: DropCounters,
    pub(super) peers: Peers,
    pub(super) role: Role,
    pub(super) stabilized: bool,
    pub(super) epoch: u64,
    pub(super) members: u64,
    /// Highest epoch this node acknowledged an install for, and that install's members: the
    /// membership its survival is judged against until a later one.
    pub(super) acked_epoch: u64,
    pub(super) basis_members: u64,
    pub(super) table: Vec<GroupAssignment>,
    pub(super) regroup: Option<Round>,
    pub(super) regroup_started_tick: u64,
    pub(super) round_max_seen: u64,
    /// Joiners waiting for the next round (sponsor only).
    pub(super) joiners_waiting: u64,
    pub(super) quorum_owner_seen_tick: Option<u64>,
    pub(super) database: VersionedMap,
    pub(super) op_next: u64,
    pub(super) pending: BTreeMap<u64, Purpose>,
    pub(super) own_lease: OwnLease,
    pub(super) observations: BTreeMap<u8, Observation>,
    pub(super) form_snapshot: BTreeMap<u8, (u64, u64, bool, u64)>,
    pub(super) form_reads_left: u32,
    pub(super) form_second_pass: bool,
    /// A formed epoch waiting for the own slot write that makes it durable.
    pub(super) form_pending_epoch: Option<u64>,
    pub(super) quorum: Quorum,
    pub(super) online: u64,
    pub(super) last_heartbeat_tick: u64,
    pub(super) last_renew_tick: Option<u64>,
    /// When this node last became a member (formed or stabilized from outside).
    pub(super) member_since_tick: u64,
}

impl Node {
    /// A node that has just started: it will search for a cluster, and form one only with quorum.
    pub fn new(config: Config, seed: u64) -> Node {
        assert!(config.node_id >= 1);
        assert!(usize::from(config.node_id) <= config.networks.len());
        assert!(
            config.networks[usize::from(config.node_id - 1)] > 0,
            "this node is configured"
        );
        assert!(config.incarnation > 0);
        let timeouts = Timeouts::new(&config.timing);
        let quorum = Quorum::new(Identity {
            node_id: config.node_id,
            incarnation: config.incarnation,
            cluster_id: config.cluster_id,
            hold_ticks: timeouts.lease_hold_ticks,
            expiry_observed_ticks: timeouts.lease_expiry_observed_ticks,
        });
        Node {
            peers: Peers::new(&config.networks),
            timeouts,
            prng: Prng::new(seed),
            now_ticks: 0,
            start_tick: None,
            outputs: VecDeque::new(),
            dropped: DropCounters::default(),
            role: Role::Searching {
                since_tick: 0,
                form_wait_ticks: 0,
            },
            stabilized: false,
            epoch: 0,
            members: 0,
            acked_epoch: 0,
            basis_members: 0,
            table: vec![
                GroupAssignment {
                    owner: 0,
                    unconfirmed: 0
                };
                64
            ],
            regroup: None,
            regroup_started_tick: 0,
            round_max_seen: 0,
            joiners_waiting: 0,
            quorum_owner_seen_tick: None,
            database: VersionedMap::default(),
            op_next: 1,
            pending: BTreeMap::new(),
            own_lease: OwnLease::default(),
            observations: BTreeMap::new(),
            form_snapshot: BTreeMap::new(),
            form_reads_left: 0,
            form_second_pass: false,
            form_pending_epoch: None,
            quorum,
            online: 0,
            last_heartbeat_tick: 0,
            last_renew_tick: None,
            member_since_tick: 0,
            config,
        }
    }

    /// Processes one input. Never fails: bad input is counted and dropped.
    pub fn step(&mut self, input: Input<'_>) {
        match input {
            Input::Tick { now_ms } => self.on_tick(now_ms / TICK_MS),
            Input::Message { network, payload } => {
                if self.start_tick.is_some() {
                    self.on_message(network, payload);
                }
            }
            Input::DiskDone { op, result } => self.on_disk_done(op, result.ok()),
            Input::Admin(AdminCommand::Put { key, value }) => self.database.put(&key, &value),
        }
        assert!(self.outputs.len() <= OUTPUTS_MAX, "output queue overflow");
        self.assert_invariants();
    }

    /// The next thing to do; drain until `None` after every `step`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A read-only view.
    pub fn status(&self) -> Status {
        Status {
            node_id: self.config.node_id,
            stabilized: self.stabilized,
            epoch: self.epoch,
            members: self.members,
            quorum_owner: self.quorum.owned(self.now_ticks),
            quorum_valid_until_ms: self.quorum.valid_until_tick() * TICK_MS,
            lease_valid_until_ms: self.own_lease.valid_until_tick * TICK_MS,
            regrouping: self.regroup.is_some(),
            online_groups: self.online,
            database_version: self.database.version(),
            dropped: self.dropped.clone(),
        }
    }

    /// The configured nodes, as a bitmap.
    pub(super) fn configured(&self) -> u64 {
        let mut configured = 0;
        for (index, networks) in self.config.networks.iter().enumerate() {
            if *networks > 0 {
                configured |= 1u64 << index;
            }
        }
        configured
    }

    pub(super) fn me(&self) -> u8 {
        self.config.node_id
    }

    pub(super) fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Sends `body` to `to` on every network both nodes have.
    pub(super) fn send(&mut self, to: u8, body: &Body) {
        assert_ne!(to, self.me());
        let shared = self.config.networks[usize::from(to - 1)]
            .min(self.config.networks[usize::from(self.me() - 1)]);
        if shared == 0 {
            return;
        }
        let payload = Message {
            from: self.me(),
            incarnation: self.config.incarnation,
            body: body.clone(),
        }
        .encode();
        for network in 0..shared {
            self.outputs.push_back(Output::Send {
                to,
                network,
                payload: payload.clone(),
            });
        }
    }

    pub(super) fn send_all(&mut self, targets: u64, body: &Body) {
        for to in ids(targets & !bit(self.me())) {
            self.send(to, body);
        }
    }

    pub(super) fn disk_read(&mut self, purpose: Purpose, offset_bytes: u64) {
        let op = self.op_next;
        self.op_next += 1;
        self.pending.insert(op, purpose);
        self.outputs
            .push_back(Output::DiskRead { op, offset_bytes });
    }

    pub(super) fn disk_write<R: disk_records::Record>(
        &mut self,
        purpose: Purpose,
        offset_bytes: u64,
        sealed: &Sealed<R>,
    ) {
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        disk_records::encode(sealed, &mut block).expect("core records always fit a block");
        // Pair assertion: what we write decodes to what we meant.
        assert!(matches!(disk_records::decode::<R>(&block[..]), Ok(Some(_))));
        let op = self.op_next;
        self.op_next += 1;
        self.pending.insert(op, purpose);
        self.outputs.push_back(Output::DiskWrite {
            op,
            offset_bytes,
            block,
        });
    }

    fn on_tick(&mut self, now_ticks: u64) {
        // A clock reading from the past (should not happen with a monotonic clock): ignore it.
        if now_ticks < self.now_ticks {
            return;
        }
        self.now_ticks = now_ticks;
        if self.start_tick.is_none() {
            self.start(now_ticks);
        }
        self.enforce_own_lease();
        self.membership_tick();
        self.regroup_tick();
        self.search_tick();
        let renew_due = match self.last_renew_tick {
            None => true,
            Some(last) => now_ticks >= last + self.timeouts.lease_renew_interval_ticks,
        };
        if renew_due {
            self.last_renew_tick = Some(now_ticks);
            self.renew_tick();
        }
        self.evaluate_groups();
    }

    fn start(&mut self, now_ticks: u64) {
        self.start_tick = Some(now_ticks);
        let jitter = self.prng.below(self.timeouts.form_wait_ticks.max(1));
        self.role = Role::Searching {
            since_tick: now_ticks,
            form_wait_ticks: self.timeouts.form_wait_ticks + jitter,
        };
        let offset = self.config.geometry.fence_ack_offset(self.me());
        self.disk_read(Purpose::OwnAckRead, offset);
    }

    fn on_message(&mut self, network: u8, payload: &[u8]) {
        let message = match Message::decode(payload) {
            Ok(message) => message,
            Err(_) => {
                self.dropped.undecodable += 1;
                return;
            }
        };
        let from = message.from;
        let configured_networks = self
            .config
            .networks
            .get(usize::from(from) - 1)
            .copied()
            .unwrap_or(0);
        let my_networks = self.config.networks[usize::from(self.me() - 1)];
        if from == self.me()
            || configured_networks == 0
            || network >= configured_networks.min(my_networks)
        {
            self.dropped.unknown_node += 1;
            return;
        }
        let known = self.peers.incarnations[usize::from(from - 1)];
        if message.incarnation < known {
            self.dropped.stale += 1;
            return;
        }
        if message.incarnation > known {
            self.peers.incarnations[usize::from(from - 1)] = message.incarnation;
            if known != 0 {
                self.on_peer_restarted(from);
            }
        }
        self.peers.heard(from, network, self.now_ticks);
        match message.body {
            Body::Heartbeat {
                epoch,
                members,
                stabilized,
                quorum_owner,
            } => self.on_heartbeat(from, epoch, members, stabilized, quorum_owner),
            Body::JoinRequest => self.on_join_request(from),
            Body::RegroupStatus(status) => self.on_status(from, status),
            Body::Install(install) => self.on_install(from, install),
            Body::InstallAck { round, epoch } => self.on_install_ack(from, round, epoch),
            Body::Stabilize { round, epoch } => self.on_stabilize(from, round, epoch),
            Body::Halt { round } => self.on_halt(from, round),
        }
    }

    fn on_disk_done(&mut self, op: u64, block: Option<&[u8; BLOCK_SIZE]>) {
        let Some(purpose) = self.pending.remove(&op) else {
            // Not ours (e.g. a completion from before a restart of the driver): ignore.
            self.dropped.unexpected += 1;
            return;
        };
        match purpose {
            Purpose::OwnSlotWrite {
                issue_tick,
                member,
                epoch,
            } => self.on_own_slot_written(block.is_some(), issue_tick, member, epoch),
            Purpose::OwnMailboxRead => self.on_own_mailbox(block),
            Purpose::OwnSlotRead => self.on_own_slot_read(block),
            Purpose::OwnAckRead => self.on_own_ack_read(block),
            Purpose::OwnAckWrite { request } => self.on_own_ack_written(block.is_some(), request),
            Purpose::QuorumRead { issue_tick } => self.on_quorum_read(block, issue_tick),
            Purpose::QuorumWrite { issue_tick } => {
                self.on_quorum_written(block.is_some(), issue_tick)
            }
            Purpose::PeerSlotRead { peer, issue_tick } => {
                self.on_peer_slot(peer, block, issue_tick)
            }
            Purpose::PeerMailboxRead { peer } => self.on_peer_mailbox(peer, block),
            Purpose::FenceRequestWrite { peer, request } => {
                self.on_fence_written(peer, request, block.is_some())
            }
            Purpose::PeerAckRead { peer } => self.on_peer_ack(peer, block),
            Purpose::FormSlotRead { peer, second } => self.on_form_slot(peer, second, block),
        }
    }

    /// Local invariants, split (TigerBeetle style): positive and negative space.
    fn assert_invariants(&self) {
        if self.online != 0 {
            assert!(self.stabilized, "holds groups only while stabilized");
            assert_eq!(self.role, Role::Member, "holds groups only as a member");
            assert!(
                self.own_lease.valid(self.now_ticks),
                "holds groups only with a valid lease"
            );
        }
        for group in ids(self.online) {
            assert_eq!(
                self.table[usize::from(group - 1)].owner,
                self.me(),
                "holds only its own groups"
            );
        }
        if self.stabilized {
            assert!(
                self.members & bit(self.me()) != 0,
                "a stabilized membership includes this node"
            );
            assert!(self.epoch > 0);
            assert!(self.epoch <= self.acked_epoch);
        } else {
            assert_eq!(self.online, 0);
        }
        if self.role != Role::Member {
            assert!(!self.stabilized, "only members are stabilized");
            assert_eq!(self.basis_members, 0, "a non-member judges no survival");
        }
    }
}
