//! The frame MAC: keyed BLAKE3 over header and payload, truncated to 16 bytes.
//!
//! The MAC key is derived from the cluster key (BLAKE3 `derive_key` with a context string of
//! its own), so the same cluster key can later authenticate something else (admin requests,
//! disk records) without one use's tags ever being valid for the other.
//!
//! Why 16 bytes are enough: a forger without the key must guess a tag, and each guess is one
//! datagram sent and checked online; at a billion datagrams a second for a century (2^61.5
//! tries) the chance of one accepted forgery is 2^-66. Birthday bounds do not apply: finding
//! two frames with the same tag needs the key. Poly1305, GCM and WireGuard use 16 bytes too.
//!
//! Invariants: tags are compared in constant time, so the time to reject a forgery says
//! nothing about how many bytes of it were right; the key bytes are zeroed when dropped.
use super::frame::TAG_BYTES;
use super::key::ClusterKey;

/// The context of the MAC key derivation; never reused for anything else.
const MAC_KEY_CONTEXT: &str = "wolfpack 2026-01 wire frame MAC, version 1";

/// The key that computes frame tags.
pub struct MacKey {
    bytes: [u8; 32],
}

impl MacKey {
    /// Derives the frame MAC key from the cluster key.
    pub fn derive(cluster_key: &ClusterKey) -> MacKey {
        MacKey {
            bytes: blake3::derive_key(MAC_KEY_CONTEXT, cluster_key.as_bytes()),
        }
    }

    /// The tag of `covered` (a frame's header and payload).
    pub fn tag(&self, covered: &[u8]) -> [u8; TAG_BYTES] {
        let hash = blake3::keyed_hash(&self.bytes, covered);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&hash.as_bytes()[..TAG_BYTES]);
        tag
    }

    /// Whether `tag` is the tag of `covered`, compared in constant time.
    pub fn verify(&self, covered: &[u8], tag: &[u8; TAG_BYTES]) -> bool {
        constant_time_eq::constant_time_eq_16(&self.tag(covered), tag)
    }
}

impl Drop for MacKey {
    fn drop(&mut self) {
        super::key::zero(&mut self.bytes);
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_key_and_every_byte() {
        let key = MacKey::derive(&ClusterKey::from_bytes([7; 32]));
        let other = MacKey::derive(&ClusterKey::from_bytes([8; 32]));
        let tag = key.tag(b"header and payload");
        assert!(key.verify(b"header and payload", &tag));
        assert!(!key.verify(b"header and payloae", &tag));
        assert!(!other.verify(b"header and payload", &tag));
        assert_ne!(key.tag(b""), other.tag(b""));
    }

    #[test]
    fn the_mac_key_is_not_the_cluster_key() {
        let cluster_key = ClusterKey::from_bytes([7; 32]);
        let direct = blake3::keyed_hash(cluster_key.as_bytes(), b"x");
        assert_ne!(
            &direct.as_bytes()[..TAG_BYTES],
            &MacKey::derive(&cluster_key).tag(b"x")
        );
    }
}
