//! The byte budgets the const asserts in `gum/mod.rs` are written with are the real encodings:
//! the largest `Commit` and `SnapshotChunk` encode to exactly the sizes those asserts add up.

use crate::core::gum::wire::{
    GumMessage, COMMIT_FIXED_BYTES, SNAPSHOT_CHUNK_BYTES, SNAPSHOT_CHUNK_FIXED_BYTES,
};
use crate::core::gum::{Committed, Entry, PROPOSAL_BYTES_MAX};
use crate::core::message::{Body, Message, MESSAGE_HEADER_BYTES, MESSAGE_SIZE_MAX};
use disklayout::COUNTER_MAX;

fn encoded_len(message: GumMessage) -> usize {
    let bytes = Message {
        from: 64,
        incarnation: COUNTER_MAX,
        body: Body::Gum(message),
    }
    .encode();
    let decoded = Message::decode(&bytes).expect("decodes back");
    assert!(matches!(decoded.body, Body::Gum(_)));
    bytes.len()
}

/// Counters travel as fixed-width u64s, so the largest decodable counter, COUNTER_MAX, takes
/// the same bytes as any other.
#[test]
fn the_largest_commit_and_snapshot_chunk_fit_one_message_exactly_as_budgeted() {
    let commit = GumMessage::Commit {
        epoch: COUNTER_MAX,
        committed: Committed {
            sequence: COUNTER_MAX,
            position: COUNTER_MAX,
            entry: Entry {
                origin: 64,
                incarnation: COUNTER_MAX,
                request_id: COUNTER_MAX,
                body: vec![0xA5; PROPOSAL_BYTES_MAX],
            },
        },
    };
    let length = encoded_len(commit);
    assert_eq!(
        length,
        MESSAGE_HEADER_BYTES + COMMIT_FIXED_BYTES + PROPOSAL_BYTES_MAX
    );
    assert!(length <= MESSAGE_SIZE_MAX);

    let chunk = GumMessage::SnapshotChunk {
        epoch: COUNTER_MAX,
        sequence: COUNTER_MAX,
        position: COUNTER_MAX,
        total: u32::MAX,
        offset: 0,
        bytes: vec![0x5A; SNAPSHOT_CHUNK_BYTES],
    };
    let length = encoded_len(chunk);
    assert_eq!(
        length,
        MESSAGE_HEADER_BYTES + SNAPSHOT_CHUNK_FIXED_BYTES + SNAPSHOT_CHUNK_BYTES
    );
    assert!(length <= MESSAGE_SIZE_MAX);
}

#[test]
fn a_commit_one_byte_over_the_proposal_bound_is_refused_on_decode() {
    let commit = GumMessage::Commit {
        epoch: 1,
        committed: Committed {
            sequence: 1,
            position: 0,
            entry: Entry {
                origin: 2,
                incarnation: 1,
                request_id: 1,
                body: vec![0; PROPOSAL_BYTES_MAX + 1],
            },
        },
    };
    let bytes = Message {
        from: 2,
        incarnation: 1,
        body: Body::Gum(commit),
    }
    .encode();
    assert!(Message::decode(&bytes).is_err());
}
