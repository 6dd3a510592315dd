//! Encodings of updates and snapshots: round trips, canonical form, and any bytes decode to a
//! value or an error without panicking.
mod db_support;

use db_support::*;
use proptest::prelude::*;
use wolfpack::core::db::{Database, Op, Update, UpdateError, UPDATE_BYTES_MAX};

fn database_from(updates: &[Update]) -> Database {
    let mut database = Database::default();
    for update in updates {
        let _ = database.apply(database.sequence() + 1, update);
    }
    database
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// An update encodes exactly when it fits a log entry, and decodes back to itself.
    #[test]
    fn updates_round_trip_or_are_refused_as_too_large(
        ops in proptest::collection::vec(
            prop_oneof![
                op(u64::MAX),
                (proptest::sample::select(&KEYS[..]), large_value())
                    .prop_map(|(key, value)| Op::Put { path: path(key), value }),
            ],
            1..8,
        )
    ) {
        let update = Update::new(ops);
        match update.encode() {
            Ok(bytes) => {
                prop_assert!(bytes.len() <= UPDATE_BYTES_MAX);
                prop_assert_eq!(bytes.len(), update.encoded_len());
                prop_assert_eq!(Update::decode(&bytes), Ok(update));
            }
            Err(error) => {
                prop_assert_eq!(error, UpdateError::TooLarge { bytes: update.encoded_len() });
                prop_assert!(update.encoded_len() > UPDATE_BYTES_MAX);
            }
        }
    }

    #[test]
    fn any_bytes_are_an_update_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(update) = Update::decode(&bytes) {
            prop_assert_eq!(update.encode(), Ok(bytes), "one encoding per update");
        }
    }

    /// Damage to a valid encoding (the likelier input than noise) never panics, and whatever
    /// still decodes has exactly these bytes as its encoding.
    #[test]
    fn damaged_updates_decode_canonically_or_fail(
        update in update(9),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = update.encode().expect("small updates fit");
        for (index, byte) in damage {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(decoded) = Update::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), Ok(bytes));
        }
    }

    #[test]
    fn any_bytes_are_a_snapshot_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Database::from_snapshot(&bytes);
    }

    /// Damage behind a recomputed CRC reaches the entry parser: it never panics, and whatever
    /// decodes re-encodes to the same bytes.
    #[test]
    fn damaged_snapshots_behind_a_valid_crc_decode_canonically_or_fail(
        updates in proptest::collection::vec(update(4), 1..12),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = database_from(&updates).snapshot_bytes();
        let content = bytes.len() - 4;
        for (index, byte) in damage {
            let at = index.index(content);
            bytes[at] = byte;
        }
        let crc = disklayout::payload_crc32(&bytes[..content]);
        bytes[content..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(database) = Database::from_snapshot(&bytes) {
            prop_assert_eq!(database.snapshot_bytes(), bytes);
        }
    }

}
