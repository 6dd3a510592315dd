//! The database against a reference model: random updates, limits, listing, snapshots.
mod db_support;

use db_support::*;
use proptest::prelude::*;
use wolfpack::core::db::{ApplyError, Database, Limits, Outcome, SNAPSHOT_BYTES_MAX};

fn check_apply(
    database: &mut Database,
    model: &mut Model,
    update: &wolfpack::core::db::Update,
    entries_max: usize,
) -> Result<(), TestCaseError> {
    let before = database.clone();
    let result = database.apply(database.sequence() + 1, update);
    let expected = model.apply(update, entries_max);
    match (&result, &expected) {
        (Ok(Outcome::Applied), ModelOutcome::Applied) => {}
        (
            Ok(Outcome::PreconditionFailed { path }),
            ModelOutcome::PreconditionFailed(model_path),
        ) => {
            prop_assert_eq!(path.as_str(), model_path.as_str());
        }
        (Err(ApplyError::Full { .. }), ModelOutcome::Full) => {
            prop_assert_eq!(&*database, &before, "Full changes nothing");
            prop_assert_eq!(database.snapshot_len(), before.snapshot_len());
        }
        _ => prop_assert!(false, "database {:?} but model {:?}", result, expected),
    }
    prop_assert_eq!(contents(database), model.clone());
    prop_assert_eq!(database.snapshot_len(), database.snapshot_bytes().len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every update does what the model does; the snapshot of the result decodes to an equal
    /// database with the same digest.
    #[test]
    fn random_updates_match_the_model_and_survive_a_snapshot(
        updates in proptest::collection::vec(update(6), 1..40),
        entries_max in prop_oneof![Just(65_536usize), 2usize..8],
    ) {
        let mut database = Database::new(Limits { entries_max, snapshot_bytes_max: SNAPSHOT_BYTES_MAX });
        let mut model = Model::default();
        for update in &updates {
            check_apply(&mut database, &mut model, update, entries_max)?;
        }
        let bytes = database.snapshot_bytes();
        let copy = Database::from_snapshot(&bytes).expect("a snapshot decodes");
        prop_assert_eq!(&copy, &database);
        prop_assert_eq!(copy.digest(), database.digest());
        prop_assert_eq!(copy.snapshot_bytes(), bytes);
        for key in KEYS {
            let prefix = path(key);
            let listed: Vec<String> = database.list(&prefix).map(|(path, _, _)| path.to_string()).collect();
            let expected: Vec<String> = model
                .entries
                .keys()
                .filter(|entry| *entry == key || entry.starts_with(&format!("{key}/")))
                .cloned()
                .collect();
            let mut expected_sorted = expected.clone();
            expected_sorted.sort_by_key(|entry| path(entry));
            prop_assert_eq!(listed, expected_sorted);
        }
    }

    /// Two nodes that apply the same updates agree on the digest; a node one update behind
    /// (which changed something) does not.
    #[test]
    fn equal_histories_give_equal_digests(updates in proptest::collection::vec(update(3), 1..20)) {
        let mut first = Database::default();
        let mut second = Database::default();
        for (index, update) in updates.iter().enumerate() {
            let sequence = index as u64 + 1;
            prop_assert_eq!(first.apply(sequence, update), second.apply(sequence, update));
        }
        prop_assert_eq!(first.digest(), second.digest());
        let mut behind = Database::default();
        for (index, update) in updates[..updates.len() - 1].iter().enumerate() {
            behind.apply(index as u64 + 1, update).expect("applies");
        }
        prop_assert_ne!(behind.digest(), first.digest(), "the sequence alone differs");
    }
}
