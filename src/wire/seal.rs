//! The sending side: one [`Sealer`] per node turns payloads into authenticated frames.
//!
//! Invariants: every frame a sealer makes carries the next sequence number of its incarnation,
//! so sequence numbers are strictly increasing and never reused within an incarnation; the
//! incarnation must be new for every start of the node's process (the daemon takes it from its
//! disk slot, incremented and flushed before the first frame), or peers drop the new process's
//! frames as replays of the old one's.
use super::frame::{self, Header, EVERY_NODE, HEADER_BYTES, NETWORKS_MAX, PAYLOAD_BYTES_MAX};
use super::key::ClusterKey;
use super::mac::MacKey;

/// Seals this node's outgoing frames.
#[derive(Debug)]
pub struct Sealer {
    mac_key: MacKey,
    cluster_id: u64,
    node_id: u8,
    incarnation: u64,
    next_sequence: u64,
}

impl Sealer {
    /// A sealer for node `node_id` (1..=64) of cluster `cluster_id`, in its `incarnation`.
    /// Its first frame has sequence number 0.
    ///
    /// # Panics
    /// When `node_id` is not 1..=64.
    pub fn new(key: &ClusterKey, cluster_id: u64, node_id: u8, incarnation: u64) -> Sealer {
        assert!(disklayout::is_node_id(node_id), "node id {node_id}");
        Sealer {
            mac_key: MacKey::derive(key),
            cluster_id,
            node_id,
            incarnation,
            next_sequence: 0,
        }
    }

    /// Replaces the contents of `out` with a frame of `kind` carrying `payload` to `receiver`
    /// (a node id, or [`EVERY_NODE`]) on network `network`, and returns its sequence number.
    /// `out` keeps its allocation, so a reused buffer makes sealing allocation-free.
    ///
    /// # Panics
    /// On a programmer error: a payload over [`PAYLOAD_BYTES_MAX`], a receiver that is neither
    /// a node id nor `EVERY_NODE` or is this node, a network index of [`NETWORKS_MAX`] or more,
    /// or a spent sequence space (2^64 frames).
    pub fn seal(
        &mut self,
        kind: u8,
        receiver: u8,
        network: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> u64 {
        assert!(
            payload.len() <= PAYLOAD_BYTES_MAX,
            "payload of {} bytes",
            payload.len()
        );
        assert!(
            receiver == EVERY_NODE || disklayout::is_node_id(receiver),
            "receiver {receiver}"
        );
        assert!(
            receiver != self.node_id,
            "node {receiver} sealing for itself"
        );
        assert!(usize::from(network) < NETWORKS_MAX, "network {network}");
        let sequence = self.next_sequence;
        self.next_sequence = sequence.checked_add(1).expect("sequence numbers spent");

        let header = Header {
            kind,
            cluster_id: self.cluster_id,
            sender: self.node_id,
            receiver,
            network,
            incarnation: self.incarnation,
            sequence,
        };
        let mut header_bytes = [0u8; HEADER_BYTES];
        frame::encode_header(&header, payload.len(), &mut header_bytes);
        out.clear();
        out.extend_from_slice(&header_bytes);
        out.extend_from_slice(payload);
        let tag = self.mac_key.tag(out);
        out.extend_from_slice(&tag);
        debug_assert!(out.len() <= frame::FRAME_BYTES_MAX);
        sequence
    }

    /// The sequence number the next frame will carry.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// This node's id.
    pub fn node_id(&self) -> u8 {
        self.node_id
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
}

/// Seals a frame with exactly these header fields, checking nothing but the payload's length:
/// for tests and the simulator, which need frames a [`Sealer`] never makes (a sender id out of
/// range, a reused sequence number) to show that the key alone earns no trust in the fields.
/// Derives the MAC key on every call: not for the data path.
///
/// # Panics
/// When the payload is over [`PAYLOAD_BYTES_MAX`].
pub fn seal_crafted(key: &ClusterKey, header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    let mut header_bytes = [0u8; HEADER_BYTES];
    frame::encode_header(header, payload.len(), &mut header_bytes);
    out.clear();
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let tag = MacKey::derive(key).tag(out);
    out.extend_from_slice(&tag);
}
