//! Checkpoints: every single flipped bit is detected, and recovery then falls back to the
//! other slot instead of trusting the damaged one.
mod db_support;

use db_support::*;
use disklayout::BLOCK_SIZE;
use proptest::prelude::*;
use wolfpack::core::db::{
    decode_checkpoint, decode_checkpoint_header, encode_checkpoint, newest_valid, Database, Slot,
    Update,
};

const CLUSTER: u64 = 0xc1u64;

fn database_from(updates: &[Update]) -> Database {
    let mut database = Database::default();
    for update in updates {
        let _ = database.apply(database.sequence() + 1, update);
    }
    database
}

/// A database whose snapshot spans more than one block, so block boundaries are covered.
fn two_block_database() -> Database {
    let mut database = Database::default();
    for number in 0..12u64 {
        let key = path(&format!("properties/p{number}"));
        let update = Update::put(
            key,
            wolfpack::core::db::Value::Bytes(vec![number as u8; 400]),
        );
        database.apply(number + 1, &update).expect("applies");
    }
    assert!(database.snapshot_len() > BLOCK_SIZE);
    database
}

#[test]
fn every_flipped_bit_of_the_payload_blocks_is_detected() {
    let database = two_block_database();
    let blocks = encode_checkpoint(&database, 7, 3, CLUSTER, 4).expect("fits");
    let header = decode_checkpoint_header(&blocks[0][..]).unwrap().unwrap();
    assert_eq!(decode_checkpoint(&header, &blocks[1..]), Ok(database));
    let mut payload = blocks[1..].to_vec();
    let mut checked = 0;
    for block in 0..payload.len() {
        for byte in 0..BLOCK_SIZE {
            for bit in 0..8 {
                payload[block][byte] ^= 1 << bit;
                assert!(
                    decode_checkpoint(&header, &payload).is_err(),
                    "flipped bit {bit} of byte {byte} of payload block {block} went unnoticed"
                );
                payload[block][byte] ^= 1 << bit;
                checked += 1;
            }
        }
    }
    assert_eq!(checked, payload.len() * BLOCK_SIZE * 8);
}

#[test]
fn every_flipped_bit_of_the_header_block_is_detected_and_recovery_falls_back() {
    let older_database = database_from(&[Update::put(
        path("cluster/name"),
        wolfpack::core::db::Value::Text("old".into()),
    )]);
    let older = encode_checkpoint(&older_database, 6, 1, CLUSTER, 4).expect("fits");
    let newer = encode_checkpoint(&two_block_database(), 7, 3, CLUSTER, 4).expect("fits");
    let mut header = newer[0].clone();
    for byte in 0..BLOCK_SIZE {
        for bit in 0..8 {
            header[byte] ^= 1 << bit;
            assert!(
                decode_checkpoint_header(&header[..]).is_err(),
                "flipped bit {bit} of header byte {byte} went unnoticed"
            );
            header[byte] ^= 1 << bit;
        }
    }
    let mut damaged = newer.clone();
    damaged[0][20] ^= 0x02;
    let choice = newest_valid(&damaged, &older, CLUSTER).expect("the older slot is valid");
    assert_eq!(
        choice.chosen.map(|chosen| (chosen.slot, chosen.database)),
        Some((Slot::B, older_database))
    );
    assert!(choice.fallback);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random databases: a checkpoint round trips, and a random flipped bit anywhere in the
    /// slot (header or payload) makes the newest-valid choice fall back to the other slot.
    #[test]
    fn a_flipped_bit_anywhere_in_the_newer_slot_falls_back(
        updates in proptest::collection::vec(update(5), 1..30),
        block in any::<prop::sample::Index>(),
        byte in 0..BLOCK_SIZE,
        bit in 0..8u8,
    ) {
        let database = database_from(&updates);
        let newer = encode_checkpoint(&database, 2, 5, CLUSTER, 8).expect("fits");
        let older_database = Database::default();
        let older = encode_checkpoint(&older_database, 1, 0, CLUSTER, 8).expect("fits");
        let choice = newest_valid(&newer, &older, CLUSTER).expect("valid");
        prop_assert_eq!(choice.chosen.map(|chosen| chosen.database), Some(database));
        let mut damaged = newer.clone();
        let block = block.index(damaged.len());
        damaged[block][byte] ^= 1 << bit;
        let choice = newest_valid(&damaged, &older, CLUSTER).expect("the older is valid");
        prop_assert!(choice.fallback);
        prop_assert_eq!(choice.chosen.map(|chosen| chosen.database), Some(older_database));
    }
}
