//! The receiving side: one [`Opener`] per node decides which datagrams to trust.
//!
//! `open` checks, in this order, and drops at the first failure (counting it by reason):
//! 1. shape: length, magic, version, reserved byte, network index, payload length;
//! 2. the tag (`bad_mac`), before anything the datagram claims is believed;
//! 3. the cluster id (`other_cluster`): after the tag, so this counter only ever counts frames
//!    made with our key (a key file copied to a second cluster) and nothing unauthenticated can
//!    raise it. Checking it first would save one MAC on a neighbouring cluster's traffic (about
//!    a microsecond) but let anyone disguise forgeries as `other_cluster`. A neighbour with its
//!    own key shows up as `bad_mac`; [`super::claimed_cluster_id`] can say so in a log line;
//! 4. the receiver (`not_for_me`): this node or every node;
//! 5. with [`Opener::open_on`], the network (`wrong_network`): the one it arrived on, so a
//!    frame relayed from another network cannot make a dead link look alive;
//! 6. the sender (`unknown_sender`): 1..=64, not this node, and a configured peer;
//! 7. the incarnation (`stale_incarnation`): not older than the newest heard from that sender,
//!    nor than a floor set by [`Opener::set_incarnation_min`];
//! 8. the sequence (`replayed`, `too_old`) against that sender incarnation's replay window.
//!
//! Invariant: replay state changes only for a frame that passed every check, its tag first; a
//! newer incarnation replaces the sender's window only then. A dropped datagram changes nothing
//! but its counter.
//!
//! Limit: a node that restarts forgets its windows, so it would accept, once each, frames that
//! peers sent to its previous life within their current incarnations. The layers above reject
//! their content: the core by epoch, the time service by the receiver incarnation its frames
//! name, the event exchange by request ids drawn from the asker's incarnation. The daemon sets
//! `set_incarnation_min` from the incarnations it reads in the peers' disk slots at start, so
//! frames of a peer's earlier lives are refused outright.
use super::frame::{self, Frame, EVERY_NODE};
use super::key::ClusterKey;
use super::mac::MacKey;
use super::replay::ReplayWindow;
use super::{DropCounters, DropReason};
use disklayout::NODE_ID_MAX;

/// What this node has accepted from one sender.
#[derive(Clone, Debug, Default)]
struct SenderState {
    /// Frames of incarnations below this are stale, heard from or not.
    incarnation_min: u64,
    /// The newest incarnation accepted, with its replay window.
    current: Option<(u64, ReplayWindow)>,
}

/// Opens this node's incoming datagrams.
#[derive(Debug)]
pub struct Opener {
    mac_key: MacKey,
    cluster_id: u64,
    node_id: u8,
    /// Bit `n - 1` is set when node `n` is a peer frames are accepted from.
    peers: u64,
    /// Indexed by sender id - 1.
    senders: Vec<SenderState>,
    counters: DropCounters,
    accepted: u64,
}

fn bit(node_id: u8) -> u64 {
    1u64 << (node_id - 1)
}

impl Opener {
    /// An opener for node `node_id` (1..=64) of cluster `cluster_id`, accepting frames from
    /// every other node id until [`Opener::set_peers`] says otherwise.
    ///
    /// # Panics
    /// When `node_id` is not 1..=64.
    pub fn new(key: &ClusterKey, cluster_id: u64, node_id: u8) -> Opener {
        assert!(disklayout::is_node_id(node_id), "node id {node_id}");
        Opener {
            mac_key: MacKey::derive(key),
            cluster_id,
            node_id,
            peers: u64::MAX,
            senders: vec![SenderState::default(); usize::from(NODE_ID_MAX)],
            counters: DropCounters::default(),
            accepted: 0,
        }
    }

    /// Accepts frames only from these node ids (the node table's), and forgets what it knew of
    /// any other sender. This node's own id may be listed; its frames are refused anyway.
    ///
    /// # Panics
    /// When an id is not 1..=64.
    pub fn set_peers(&mut self, peers: &[u8]) {
        let mut mask = 0u64;
        for peer in peers {
            assert!(disklayout::is_node_id(*peer), "peer id {peer}");
            mask |= bit(*peer);
        }
        for sender in 1..=NODE_ID_MAX {
            if mask & bit(sender) == 0 {
                self.senders[usize::from(sender - 1)] = SenderState::default();
            }
        }
        self.peers = mask;
    }

    /// Refuses, from now on, frames of `sender` older than `incarnation`: for incarnations the
    /// daemon learns elsewhere (the sender's disk slot). Never lowers an earlier floor.
    ///
    /// # Panics
    /// When `sender` is not 1..=64.
    pub fn set_incarnation_min(&mut self, sender: u8, incarnation: u64) {
        assert!(disklayout::is_node_id(sender), "sender id {sender}");
        let state = &mut self.senders[usize::from(sender - 1)];
        state.incarnation_min = state.incarnation_min.max(incarnation);
        if let Some((current, _)) = state.current {
            if current < state.incarnation_min {
                state.current = None;
            }
        }
    }

    /// Checks `datagram`, which arrived on network `network`, in the order of the module doc,
    /// and returns its frame; or drops it, counts the drop and says why. What the daemon calls
    /// for each datagram read from a network's socket. Never panics, whatever the bytes.
    pub fn open_on<'datagram>(
        &mut self,
        network: u8,
        datagram: &'datagram [u8],
    ) -> Result<Frame<'datagram>, DropReason> {
        let outcome = self.check(Some(network), datagram);
        self.count(outcome)
    }

    /// [`Opener::open_on`] without the network check: for a node on one network, and tests.
    pub fn open<'datagram>(
        &mut self,
        datagram: &'datagram [u8],
    ) -> Result<Frame<'datagram>, DropReason> {
        let outcome = self.check(None, datagram);
        self.count(outcome)
    }

    fn count<'datagram>(
        &mut self,
        outcome: Result<Frame<'datagram>, DropReason>,
    ) -> Result<Frame<'datagram>, DropReason> {
        match &outcome {
            Ok(_) => self.accepted = self.accepted.saturating_add(1),
            Err(reason) => self.counters.record(*reason),
        }
        outcome
    }

    fn check<'datagram>(
        &mut self,
        arrived_on_network: Option<u8>,
        datagram: &'datagram [u8],
    ) -> Result<Frame<'datagram>, DropReason> {
        let parsed = frame::parse(datagram)?;
        if !self.mac_key.verify(parsed.covered, parsed.tag) {
            return Err(DropReason::BadMac);
        }
        let header = parsed.header;
        if header.cluster_id != self.cluster_id {
            return Err(DropReason::OtherCluster);
        }
        if header.receiver != EVERY_NODE && header.receiver != self.node_id {
            return Err(DropReason::NotForMe);
        }
        if arrived_on_network.is_some_and(|network| network != header.network) {
            return Err(DropReason::WrongNetwork);
        }
        if !disklayout::is_node_id(header.sender)
            || header.sender == self.node_id
            || self.peers & bit(header.sender) == 0
        {
            return Err(DropReason::UnknownSender);
        }
        let state = &mut self.senders[usize::from(header.sender - 1)];
        if header.incarnation < state.incarnation_min {
            return Err(DropReason::StaleIncarnation);
        }
        match &mut state.current {
            Some((current, _)) if header.incarnation < *current => {
                return Err(DropReason::StaleIncarnation);
            }
            Some((current, window)) if header.incarnation == *current => {
                window.check(header.sequence)?;
                window.accept(header.sequence);
            }
            // A newer incarnation, or the first frame heard: a fresh window.
            _ => {
                let mut window = ReplayWindow::default();
                window.accept(header.sequence);
                state.current = Some((header.incarnation, window));
            }
        }
        Ok(Frame {
            header,
            payload: parsed.payload,
        })
    }

    /// The datagrams dropped so far, by reason.
    pub fn drop_counters(&self) -> &DropCounters {
        &self.counters
    }

    /// The frames accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// The newest incarnation accepted from `sender`, if any.
    pub fn incarnation_of(&self, sender: u8) -> Option<u64> {
        if !disklayout::is_node_id(sender) {
            return None;
        }
        let state = &self.senders[usize::from(sender - 1)];
        state.current.as_ref().map(|(incarnation, _)| *incarnation)
    }
}
