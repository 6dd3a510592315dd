//! The event exchange: how `ctl events` gathers every node's event ring. A frame kind of its
//! own beside the core's and the time service's, authenticated by the frame layer; the payloads
//! are `event_codec`'s. No I/O here: the daemon feeds frames and the clock in, and sends what
//! `take_outgoing` returns.
//!
//! Asking: `start` sends every other configured node a request "your events after 0". Each
//! answers with one page, at most `PAGE_DATAGRAMS_MAX` datagrams (a bounded burst, so the
//! answers of many peers cannot crowd heartbeats out of a socket buffer). Once a page has fully
//! arrived, the next request asks for the events after it; a page missing a datagram is asked
//! for again after `RETRY_MS`, from the first sequence missing, on the next network. The
//! collection ends when every peer sent everything up to its newest sequence, or after
//! `ANSWER_WAIT_MS` with what arrived; a peer that sent nothing did not answer.
//!
//! Answering is stateless: a request is answered from the ring as it is.
use super::event_codec::{self, EventMessage, EventRequest, ReplyHeader};
use super::event_record::EventRecord;
use super::event_ring::EventRing;
use super::report::Metrics;
use mio::Token;
use std::collections::BTreeMap;

/// The frame kind after the core's (1) and the time service's (2).
pub const FRAME_KIND_EVENTS: u8 = 3;
/// How long `ctl events` waits for the peers before answering with what it has.
pub const ANSWER_WAIT_MS: u64 = 1000;
/// How long a request waits for its page before it is sent again.
const RETRY_MS: u64 = 200;
/// Datagrams one answer may take (about 10 KB).
const PAGE_DATAGRAMS_MAX: usize = 8;

/// A peer to ask, and on how many networks it can be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub node: u8,
    pub networks: u8,
}

/// Every configured node but `own`, member or not (only those that answer count), with the
/// networks both it and this node are on.
pub fn peers(nodes: &[disklayout::NodeEntry], own: u8, own_networks: usize) -> Vec<Peer> {
    nodes
        .iter()
        .filter(|node| node.node_id != own)
        .map(|node| Peer {
            node: node.node_id,
            networks: node.addresses.len().min(own_networks) as u8,
        })
        .collect()
}

/// A payload for the daemon to seal (kind `FRAME_KIND_EVENTS`) and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingFrame {
    pub to: u8,
    pub network: u8,
    pub payload: Vec<u8>,
}

/// What a finished collection gathered, for `event_merge`.
#[derive(Debug)]
pub struct CollectedEvents {
    /// The admin connection waiting for it.
    pub connection: Token,
    pub json: bool,
    /// This node's newest sequence when it asked: its own events are shown up to there, as
    /// of the moment the peers were asked (a dead peer holds the answer back a second, and the
    /// others' events stop where they answered).
    pub own_newest: u64,
    pub peers: Vec<PeerEvents>,
}

#[derive(Debug)]
pub struct PeerEvents {
    pub node: u8,
    /// It sent at least one reply.
    pub answered: bool,
    /// It sent everything up to its newest event (what is older than its ring is gone anyway).
    pub complete: bool,
    /// In sequence order.
    pub records: Vec<EventRecord>,
}

#[derive(Default)]
pub struct EventExchange {
    next_request_id: u64,
    collections: BTreeMap<u64, Collection>,
    outgoing: Vec<OutgoingFrame>,
}

struct Collection {
    connection: Token,
    json: bool,
    own_newest: u64,
    started_ms: u64,
    peers: BTreeMap<u8, PeerProgress>,
}

struct PeerProgress {
    networks: u8,
    records: BTreeMap<u64, EventRecord>,
    /// Every sequence up to here arrived (or is no longer kept by the peer).
    frontier: u64,
    /// The peer's newest sequence, once it answered.
    newest: Option<u64>,
    /// The `after` of the last request sent.
    requested_after: u64,
    last_request_ms: u64,
    requests_sent: u8,
}

impl PeerProgress {
    fn complete(&self) -> bool {
        self.newest.is_some_and(|newest| self.frontier >= newest)
    }

    fn absorb(&mut self, header: &ReplyHeader, records: Vec<EventRecord>) {
        self.newest = Some(self.newest.unwrap_or(0).max(header.newest));
        // What is older than the peer's ring is gone: nothing to wait for.
        self.frontier = self.frontier.max(header.oldest.saturating_sub(1));
        for record in records {
            if record.sequence > self.frontier {
                self.records.entry(record.sequence).or_insert(record);
            }
        }
        while self.records.contains_key(&(self.frontier + 1)) {
            self.frontier += 1;
        }
    }
}

impl EventExchange {
    /// Request ids start at `first_request_id`; the daemon derives it from its incarnation so
    /// a late reply to a previous incarnation's request matches nothing.
    pub fn new(first_request_id: u64) -> EventExchange {
        EventExchange {
            next_request_id: first_request_id,
            ..EventExchange::default()
        }
    }

    /// Starts gathering the events of `peers` for the admin `connection`; `own_newest` is this
    /// node's newest sequence now.
    pub fn start(
        &mut self,
        connection: Token,
        json: bool,
        own_newest: u64,
        peers: &[Peer],
        now_ms: u64,
    ) {
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let mut collection = Collection {
            connection,
            json,
            own_newest,
            started_ms: now_ms,
            peers: BTreeMap::new(),
        };
        for peer in peers {
            let mut progress = PeerProgress {
                networks: peer.networks.max(1),
                records: BTreeMap::new(),
                frontier: 0,
                newest: None,
                requested_after: 0,
                last_request_ms: now_ms,
                requests_sent: 0,
            };
            self.outgoing
                .push(request(request_id, peer.node, &mut progress, now_ms));
            collection.peers.insert(peer.node, progress);
        }
        self.collections.insert(request_id, collection);
    }

    /// A frame of kind `FRAME_KIND_EVENTS` from `from` on `network` (already authenticated):
    /// a request is answered from `ring`, a reply joins its collection. A payload that does
    /// not decode is counted and dropped.
    pub fn on_frame(
        &mut self,
        from: u8,
        network: u8,
        payload: &[u8],
        ring: &EventRing,
        metrics: &mut Metrics,
        now_ms: u64,
    ) {
        match event_codec::decode(payload, from) {
            Err(malformed) => {
                metrics.event_frames_malformed += 1;
                log::debug!("event exchange payload from node {from} refused: {malformed:?}");
            }
            Ok(EventMessage::Request(request)) => {
                metrics.event_requests_answered += 1;
                let datagrams = event_codec::pack_reply(
                    request.request_id,
                    ring.oldest_sequence(),
                    ring.newest_sequence(),
                    ring.after(request.after),
                    PAGE_DATAGRAMS_MAX,
                );
                self.outgoing
                    .extend(datagrams.into_iter().map(|payload| OutgoingFrame {
                        to: from,
                        network,
                        payload,
                    }));
            }
            Ok(EventMessage::Reply(reply)) => {
                let request_id = reply.header.request_id;
                let Some(progress) = self
                    .collections
                    .get_mut(&request_id)
                    .and_then(|collection| collection.peers.get_mut(&from))
                else {
                    // Late, after the collection ended: nothing waits for it.
                    return;
                };
                progress.absorb(&reply.header, reply.records);
                let page_arrived = progress.frontier >= reply.header.page_last;
                if page_arrived
                    && !progress.complete()
                    && progress.frontier > progress.requested_after
                {
                    self.outgoing
                        .push(request(request_id, from, progress, now_ms));
                }
            }
        }
    }

    /// The collections that are done (every peer complete, or `ANSWER_WAIT_MS` passed); asks
    /// again where a page is overdue.
    pub fn finished(&mut self, now_ms: u64) -> Vec<CollectedEvents> {
        let done: Vec<u64> = self
            .collections
            .iter()
            .filter(|(_, collection)| {
                collection.peers.values().all(PeerProgress::complete)
                    || now_ms >= collection.started_ms + ANSWER_WAIT_MS
            })
            .map(|(request_id, _)| *request_id)
            .collect();
        let finished = done
            .iter()
            .filter_map(|request_id| self.collections.remove(request_id))
            .map(|collection| CollectedEvents {
                connection: collection.connection,
                json: collection.json,
                own_newest: collection.own_newest,
                peers: collection
                    .peers
                    .into_iter()
                    .map(|(node, progress)| PeerEvents {
                        node,
                        answered: progress.newest.is_some(),
                        complete: progress.complete(),
                        records: progress.records.into_values().collect(),
                    })
                    .collect(),
            })
            .collect();
        for (request_id, collection) in &mut self.collections {
            for (node, progress) in &mut collection.peers {
                if !progress.complete() && now_ms >= progress.last_request_ms + RETRY_MS {
                    self.outgoing
                        .push(request(*request_id, *node, progress, now_ms));
                }
            }
        }
        finished
    }

    /// The frames to send now.
    pub fn take_outgoing(&mut self) -> Vec<OutgoingFrame> {
        std::mem::take(&mut self.outgoing)
    }
}

/// A request for what `progress` still misses, on the next of the peer's networks (a retry
/// then reaches a peer whose first network is down).
fn request(request_id: u64, to: u8, progress: &mut PeerProgress, now_ms: u64) -> OutgoingFrame {
    let network = progress.requests_sent % progress.networks;
    progress.requests_sent = progress.requests_sent.wrapping_add(1);
    progress.requested_after = progress.frontier;
    progress.last_request_ms = now_ms;
    OutgoingFrame {
        to,
        network,
        payload: event_codec::encode_request(&EventRequest {
            request_id,
            after: progress.frontier,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::event_record::EventKind;

    const ASKER: u8 = 1;

    fn ring_of(node: u8, count: usize) -> EventRing {
        let mut ring = EventRing::new(node);
        for index in 0..count {
            let text = format!("event {index} of node {node} {}", "x".repeat(100));
            ring.push(EventKind::Node, text);
        }
        ring
    }

    /// Delivers every frame between the asker and the peers' rings until none is left,
    /// dropping those `lose` picks (by their position in the whole run).
    fn exchange_until_quiet(
        asker: &mut EventExchange,
        rings: &BTreeMap<u8, (EventRing, EventExchange)>,
        lose: impl Fn(usize) -> bool,
        now_ms: u64,
    ) -> usize {
        let mut metrics = Metrics::default();
        let mut delivered = 0;
        let mut peers: BTreeMap<u8, EventExchange> = BTreeMap::new();
        loop {
            let requests = asker.take_outgoing();
            if requests.is_empty() {
                return delivered;
            }
            for frame in requests {
                delivered += 1;
                if lose(delivered) {
                    continue;
                }
                let Some((ring, _)) = rings.get(&frame.to) else {
                    continue;
                };
                let responder = peers.entry(frame.to).or_default();
                responder.on_frame(
                    ASKER,
                    frame.network,
                    &frame.payload,
                    ring,
                    &mut metrics,
                    now_ms,
                );
                for reply in responder.take_outgoing() {
                    delivered += 1;
                    if lose(delivered) {
                        continue;
                    }
                    let dummy = EventRing::new(ASKER);
                    asker.on_frame(
                        frame.to,
                        reply.network,
                        &reply.payload,
                        &dummy,
                        &mut metrics,
                        now_ms,
                    );
                }
            }
        }
    }

    fn peers(ids: &[u8]) -> Vec<Peer> {
        ids.iter().map(|&node| Peer { node, networks: 2 }).collect()
    }

    fn rings(sizes: &[(u8, usize)]) -> BTreeMap<u8, (EventRing, EventExchange)> {
        sizes
            .iter()
            .map(|&(node, count)| (node, (ring_of(node, count), EventExchange::default())))
            .collect()
    }

    #[test]
    fn pages_follow_each_other_until_every_ring_is_complete() {
        let rings = rings(&[(2, 1000), (3, 5)]);
        let mut asker = EventExchange::new(100);
        asker.start(Token(7), true, 0, &peers(&[2, 3]), 0);
        exchange_until_quiet(&mut asker, &rings, |_| false, 0);
        let finished = asker.finished(1);
        assert_eq!(finished.len(), 1, "complete before the deadline");
        let collected = &finished[0];
        assert_eq!((collected.connection, collected.json), (Token(7), true));
        for peer in &collected.peers {
            assert!(peer.answered && peer.complete, "node {}", peer.node);
            let expected: Vec<&EventRecord> = rings[&peer.node].0.records().collect();
            assert_eq!(peer.records.iter().collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn a_lost_datagram_is_asked_for_again_and_a_silent_peer_does_not_answer() {
        let rings = rings(&[(2, 300)]);
        let mut asker = EventExchange::new(1);
        asker.start(Token(1), false, 0, &peers(&[2, 4]), 0);
        // Lose the third datagram of the run: part of the first page.
        exchange_until_quiet(&mut asker, &rings, |index| index == 3, 0);
        assert!(
            asker.finished(RETRY_MS - 1).is_empty(),
            "waits for the page"
        );
        let retries = asker.take_outgoing();
        assert!(retries.is_empty());
        assert!(asker.finished(RETRY_MS).is_empty());
        let retries = asker.take_outgoing();
        assert_eq!(retries.len(), 2, "node 2 from its gap, node 4 again");
        assert!(
            retries.iter().all(|frame| frame.network == 1),
            "next network"
        );
        for frame in retries {
            asker.outgoing.push(frame);
        }
        exchange_until_quiet(&mut asker, &rings, |_| false, RETRY_MS);
        let finished = asker.finished(ANSWER_WAIT_MS);
        assert_eq!(finished.len(), 1);
        let by_node: BTreeMap<u8, &PeerEvents> = finished[0]
            .peers
            .iter()
            .map(|peer| (peer.node, peer))
            .collect();
        assert!(by_node[&2].complete);
        assert_eq!(by_node[&2].records.len(), 300);
        assert!(!by_node[&4].answered && by_node[&4].records.is_empty());
    }

    #[test]
    fn malformed_replies_and_late_replies_change_nothing_but_a_counter() {
        let ring = EventRing::new(2);
        let mut exchange = EventExchange::new(1);
        let mut metrics = Metrics::default();
        exchange.on_frame(2, 0, &[2, 0, 0], &ring, &mut metrics, 0);
        exchange.on_frame(2, 0, &[], &ring, &mut metrics, 0);
        assert_eq!(metrics.event_frames_malformed, 2);
        let late = event_codec::pack_reply(77, 1, 0, std::iter::empty::<EventRecord>(), 1);
        exchange.on_frame(2, 0, &late[0], &ring, &mut metrics, 0);
        assert_eq!(metrics.event_frames_malformed, 2);
        assert!(exchange.take_outgoing().is_empty());
        assert!(exchange.finished(0).is_empty());
    }

    #[test]
    fn with_no_peer_to_ask_the_answer_is_immediate() {
        let mut exchange = EventExchange::new(1);
        exchange.start(Token(3), false, 0, &[], 0);
        assert_eq!(exchange.finished(0).len(), 1);
    }
}
