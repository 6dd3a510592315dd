//! The replicated database: typed keys versioned by global update sequence.

use std::collections::BTreeMap;
use std::fmt;

use super::codec::{Sink, StateHash};
use super::path::Path;
use super::snapshot;
use super::update::{Op, Update, UpdateError};
use super::value::Value;

/// The most entries a database holds.
pub const ENTRIES_MAX: usize = 65_536;
/// The most snapshot bytes: the payload of the largest checkpoint slot (FORMAT.md §2: at most
/// 8192 blocks, one of them the header), so a database within its limits can be checkpointed.
pub const SNAPSHOT_BYTES_MAX: usize = 8191 * disklayout::BLOCK_SIZE;

/// Bounds that `apply` keeps. Every node must use the same limits, or one node would refuse an
/// update that another applies; derive them from the shared disk's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub entries_max: usize,
    pub snapshot_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            entries_max: ENTRIES_MAX,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX,
        }
    }
}

impl Limits {
    /// Never above [`ENTRIES_MAX`] and [`SNAPSHOT_BYTES_MAX`]: a snapshot beyond them would
    /// not decode on another node.
    fn clamped(self) -> Limits {
        Limits {
            entries_max: self.entries_max.min(ENTRIES_MAX),
            snapshot_bytes_max: self.snapshot_bytes_max.min(SNAPSHOT_BYTES_MAX),
        }
    }

    /// The limits under which a snapshot always fits this disk's checkpoint slots.
    pub fn for_geometry(geometry: &disklayout::Geometry) -> Limits {
        let payload_blocks = geometry.checkpoint_region(0).blocks.saturating_sub(1);
        let payload_bytes = payload_blocks.saturating_mul(disklayout::BLOCK_SIZE as u64);
        Limits {
            entries_max: ENTRIES_MAX,
            snapshot_bytes_max: usize::try_from(payload_bytes)
                .unwrap_or(SNAPSHOT_BYTES_MAX)
                .min(SNAPSHOT_BYTES_MAX),
        }
    }
}

/// What applying an update did. Both outcomes advance the sequence: every node reaches the same
/// one from the same database, so a failed precondition is a result, not a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The first `Require` (in list order) that did not hold; nothing else changed.
    PreconditionFailed {
        path: Path,
    },
}

/// Why an update was not applied. The database, its sequence included, is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// Updates apply in sequence order without holes.
    SequenceGap {
        expected: u64,
        got: u64,
    },
    Invalid(UpdateError),
    /// The result would exceed a limit. Not a deterministic outcome like a failed
    /// precondition: the caller decides (refuse the update to its sender, or treat the node as
    /// unable to apply it), so the sequence does not advance.
    Full {
        entries: usize,
        entries_max: usize,
        snapshot_bytes: usize,
        snapshot_bytes_max: usize,
    },
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::SequenceGap { expected, got } => write!(
                f,
                "update {got} arrived where update {expected} was next (sequence gap)"
            ),
            ApplyError::Invalid(error) => write!(f, "invalid update: {error}"),
            ApplyError::Full {
                entries,
                entries_max,
                snapshot_bytes,
                snapshot_bytes_max,
            } => write!(
                f,
                "the database would be full: {entries} entries ({entries_max} allowed), \
                 {snapshot_bytes} snapshot bytes ({snapshot_bytes_max} allowed)"
            ),
        }
    }
}

impl std::error::Error for ApplyError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    /// The sequence of the update that last put this value.
    pub(crate) version: u64,
}

impl Entry {
    pub(crate) fn snapshot_len(&self, path: &Path) -> usize {
        snapshot::entry_encoded_len(path, &self.value)
    }

    /// This entry's part of `Database::digest`: a hash of its snapshot encoding.
    fn digest_part(&self, path: &Path) -> u64 {
        let mut hash = StateHash::new();
        snapshot::encode_entry(path, self, &mut hash);
        hash.finish()
    }
}

/// The cluster database: a tree of typed keys, each with the sequence of its last change, and
/// the sequence of the last update applied (0 = nothing yet).
///
/// Equality and the digest cover the content and the sequence, not the limits.
#[derive(Clone)]
pub struct Database {
    sequence: u64,
    entries: BTreeMap<Path, Entry>,
    limits: Limits,
    /// Kept up to date by `apply` so the byte limit costs nothing to check.
    snapshot_bytes: usize,
    /// The wrapping sum of every entry's `digest_part`, kept up to date beside
    /// `snapshot_bytes`: the simulator compares every replica's digest after every update, and
    /// hashing the whole database each time was a fifth of its time.
    entries_digest: u64,
    /// Per namespace (`Namespace::ALL` order), the sequence of the last update that changed
    /// something in it (the snapshot's sequence after a restore): lets a reader of one
    /// namespace notice a change without scanning. Local bookkeeping, not content.
    changed_at: [u64; 5],
}

impl Default for Database {
    fn default() -> Database {
        Database::new(Limits::default())
    }
}

impl PartialEq for Database {
    fn eq(&self, other: &Database) -> bool {
        self.sequence == other.sequence && self.entries == other.entries
    }
}

impl Eq for Database {}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("sequence", &self.sequence)
            .field("entries", &self.entries.len())
            .field("digest", &format_args!("{:#018x}", self.digest()))
            .finish()
    }
}

impl Database {
    /// An empty database at sequence 0; limits above the ceilings are lowered to them.
    pub fn new(limits: Limits) -> Database {
        Database {
            sequence: 0,
            entries: BTreeMap::new(),
            limits: limits.clamped(),
            snapshot_bytes: snapshot::EMPTY_BYTES,
            entries_digest: 0,
            changed_at: [0; 5],
        }
    }

    pub(crate) fn from_parts(sequence: u64, entries: BTreeMap<Path, Entry>) -> Database {
        let snapshot_bytes = snapshot::EMPTY_BYTES
            + entries
                .iter()
                .map(|(path, entry)| entry.snapshot_len(path))
                .sum::<usize>();
        let entries_digest = entries.iter().fold(0u64, |sum, (path, entry)| {
            sum.wrapping_add(entry.digest_part(path))
        });
        Database {
            sequence,
            entries,
            limits: Limits::default(),
            snapshot_bytes,
            entries_digest,
            changed_at: [sequence; 5],
        }
    }

    /// The sequence of the last update that changed `namespace` (see the field).
    pub fn changed_at(&self, namespace: super::Namespace) -> u64 {
        self.changed_at[Self::namespace_index(namespace)]
    }

    fn namespace_index(namespace: super::Namespace) -> usize {
        super::Namespace::ALL
            .iter()
            .position(|candidate| *candidate == namespace)
            .unwrap_or(0)
    }

    pub(crate) fn entries(&self) -> &BTreeMap<Path, Entry> {
        &self.entries
    }

    /// The sequence of the last update applied; 0 for an empty database.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits for later updates (lowered to the ceilings); content already above
    /// them stays.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits.clamped();
    }

    /// The value and its version (the sequence of the update that last put it).
    pub fn get(&self, path: &Path) -> Option<(&Value, u64)> {
        self.entries
            .get(path)
            .map(|entry| (&entry.value, entry.version))
    }

    /// The key's version, 0 when absent (what `Op::Require` compares).
    pub fn version(&self, path: &Path) -> u64 {
        self.entries.get(path).map_or(0, |entry| entry.version)
    }

    /// `prefix` itself and every key under it, in key order.
    pub fn list<'a>(
        &'a self,
        prefix: &'a Path,
    ) -> impl Iterator<Item = (&'a Path, &'a Value, u64)> + 'a {
        self.entries
            .range(prefix..)
            .take_while(move |(path, _)| path.is_within(prefix))
            .map(|(path, entry)| (path, &entry.value, entry.version))
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &Value, u64)> + '_ {
        self.entries
            .iter()
            .map(|(path, entry)| (path, &entry.value, entry.version))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The length of [`snapshot_bytes`](Database::snapshot_bytes), without encoding.
    pub fn snapshot_len(&self) -> usize {
        self.snapshot_bytes
    }

    /// Equal databases (content and sequence) have equal digests on every platform: a hash of
    /// the sequence, the entry count and the sum of the entries' hashes (each over its snapshot
    /// encoding). For comparing copies, not for integrity.
    pub fn digest(&self) -> u64 {
        let mut hash = StateHash::new();
        hash.put(&self.sequence.to_le_bytes());
        hash.put(&(self.entries.len() as u64).to_le_bytes());
        hash.put(&self.entries_digest.to_le_bytes());
        hash.finish()
    }

    /// Takes number `sequence` without changing anything: GUM numbers updates the database
    /// refuses and barriers too, and versions stay GUM sequence numbers.
    pub fn advance(&mut self, sequence: u64) -> Result<(), ApplyError> {
        let expected = self.sequence.checked_add(1);
        if expected != Some(sequence) {
            return Err(ApplyError::SequenceGap {
                expected: expected.unwrap_or(u64::MAX),
                got: sequence,
            });
        }
        self.sequence = sequence;
        Ok(())
    }

    /// Applies update number `sequence`, atomically.
    pub fn apply(&mut self, sequence: u64, update: &Update) -> Result<Outcome, ApplyError> {
        let expected = self.sequence.checked_add(1);
        if expected != Some(sequence) {
            return Err(ApplyError::SequenceGap {
                expected: expected.unwrap_or(u64::MAX),
                got: sequence,
            });
        }
        update.validate().map_err(ApplyError::Invalid)?;
        let failed = update.ops.iter().find_map(|op| match op {
            Op::Require { path, version } if self.version(path) != *version => Some(path),
            _ => None,
        });
        if let Some(path) = failed {
            self.sequence = sequence;
            return Ok(Outcome::PreconditionFailed { path: path.clone() });
        }
        let before = (self.entries.len(), self.snapshot_bytes);
        let mut undo: Vec<(Path, Option<Entry>)> = Vec::new();
        for op in &update.ops {
            match op {
                Op::Put { path, value } => {
                    let entry = Entry {
                        value: value.clone(),
                        version: sequence,
                    };
                    self.snapshot_bytes += entry.snapshot_len(path);
                    self.entries_digest = self.entries_digest.wrapping_add(entry.digest_part(path));
                    let previous = self.entries.insert(path.clone(), entry);
                    self.forget(path, &previous);
                    undo.push((path.clone(), previous));
                }
                Op::Delete { path } => {
                    let doomed: Vec<Path> =
                        self.list(path).map(|(key, _, _)| key.clone()).collect();
                    for key in doomed {
                        let previous = self.entries.remove(&key);
                        self.forget(&key, &previous);
                        undo.push((key, previous));
                    }
                }
                Op::Require { .. } => {}
            }
        }
        if let Some(full) = self.exceeded(before) {
            self.roll_back(undo);
            debug_assert_eq!((self.entries.len(), self.snapshot_bytes), before);
            return Err(full);
        }
        for op in &update.ops {
            if !matches!(op, Op::Require { .. }) {
                self.changed_at[Self::namespace_index(op.path().namespace())] = sequence;
            }
        }
        self.sequence = sequence;
        Ok(Outcome::Applied)
    }

    fn forget(&mut self, path: &Path, previous: &Option<Entry>) {
        if let Some(previous) = previous {
            self.snapshot_bytes -= previous.snapshot_len(path);
            self.entries_digest = self.entries_digest.wrapping_sub(previous.digest_part(path));
        }
    }

    /// A limit is exceeded only by an update that grows past it, so a database above a lowered
    /// limit can still shrink.
    fn exceeded(&self, (entries_before, bytes_before): (usize, usize)) -> Option<ApplyError> {
        let entries = self.entries.len();
        let bytes = self.snapshot_bytes;
        let too_many = entries > self.limits.entries_max && entries > entries_before;
        let too_big = bytes > self.limits.snapshot_bytes_max && bytes > bytes_before;
        (too_many || too_big).then_some(ApplyError::Full {
            entries,
            entries_max: self.limits.entries_max,
            snapshot_bytes: bytes,
            snapshot_bytes_max: self.limits.snapshot_bytes_max,
        })
    }

    fn roll_back(&mut self, undo: Vec<(Path, Option<Entry>)>) {
        for (path, previous) in undo.into_iter().rev() {
            let replaced = match previous {
                Some(entry) => {
                    self.snapshot_bytes += entry.snapshot_len(&path);
                    self.entries_digest =
                        self.entries_digest.wrapping_add(entry.digest_part(&path));
                    self.entries.insert(path.clone(), entry)
                }
                None => self.entries.remove(&path),
            };
            self.forget(&path, &replaced);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).expect("a valid path")
    }

    fn put(key: &str, value: Value) -> Op {
        Op::Put {
            path: path(key),
            value,
        }
    }

    fn database_with(keys: &[&str]) -> Database {
        let mut database = Database::default();
        let ops = keys.iter().map(|key| put(key, Value::U64(1))).collect();
        assert_eq!(database.apply(1, &Update::new(ops)), Ok(Outcome::Applied));
        database
    }

    fn keys(database: &Database, prefix: &str) -> Vec<String> {
        database
            .list(&path(prefix))
            .map(|(key, _, _)| key.to_string())
            .collect()
    }

    #[test]
    fn an_empty_database_is_at_sequence_zero() {
        let database = Database::default();
        assert_eq!(database.sequence(), 0);
        assert!(database.is_empty());
        assert_eq!(database.get(&path("cluster")), None);
        assert_eq!(database.version(&path("cluster")), 0);
        assert_eq!(database.snapshot_len(), database.snapshot_bytes().len());
    }

    #[test]
    fn a_put_stores_the_value_with_the_update_sequence_as_version() {
        let mut database = Database::default();
        let update = Update::put(path("groups/web/owner"), Value::U64(3));
        assert_eq!(database.apply(1, &update), Ok(Outcome::Applied));
        assert_eq!(database.apply(2, &update), Ok(Outcome::Applied));
        assert_eq!(database.sequence(), 2);
        assert_eq!(
            database.get(&path("groups/web/owner")),
            Some((&Value::U64(3), 2))
        );
        let retyped = Update::put(path("groups/web/owner"), Value::Text("n3".into()));
        assert_eq!(database.apply(3, &retyped), Ok(Outcome::Applied));
        assert_eq!(
            database.get(&path("groups/web/owner")),
            Some((&Value::Text("n3".into()), 3)),
            "a Put may change the type; the last one decides"
        );
    }

    #[test]
    fn sequences_must_follow_without_holes_and_a_gap_changes_nothing() {
        let mut database = database_with(&["cluster/name"]);
        let update = Update::put(path("cluster/name"), Value::Bool(true));
        for wrong in [0, 1, 3, u64::MAX] {
            assert_eq!(
                database.apply(wrong, &update),
                Err(ApplyError::SequenceGap {
                    expected: 2,
                    got: wrong
                })
            );
        }
        assert_eq!(database.sequence(), 1);
        assert_eq!(
            database.get(&path("cluster/name")),
            Some((&Value::U64(1), 1))
        );
    }

    #[test]
    fn delete_removes_the_key_and_its_subtree_only() {
        let mut database = database_with(&[
            "groups/web",
            "groups/web/owner",
            "groups/web/res/ip",
            "groups/web-2",
            "groups/webs",
            "groups/we",
        ]);
        assert_eq!(
            keys(&database, "groups/web"),
            ["groups/web", "groups/web/owner", "groups/web/res/ip"]
        );
        assert_eq!(
            database.apply(2, &Update::delete(path("groups/web"))),
            Ok(Outcome::Applied)
        );
        assert_eq!(
            keys(&database, "groups"),
            ["groups/we", "groups/web-2", "groups/webs"]
        );
        assert_eq!(
            database.apply(3, &Update::delete(path("groups/none"))),
            Ok(Outcome::Applied),
            "deleting nothing is fine"
        );
        assert_eq!(database.sequence(), 3);
    }

    #[test]
    fn a_failed_precondition_changes_nothing_but_the_sequence() {
        let mut database = database_with(&["resources/ip"]);
        let digest = database.digest();
        let update = Update::new(vec![
            put("resources/disk", Value::Bool(true)),
            Op::Require {
                path: path("resources/ip"),
                version: 1,
            },
            Op::Require {
                path: path("resources/disk"),
                version: 1,
            },
        ]);
        assert_eq!(
            database.apply(2, &update),
            Ok(Outcome::PreconditionFailed {
                path: path("resources/disk")
            }),
            "requires see the database before the update, not the Put before them"
        );
        assert_eq!(database.sequence(), 2);
        assert_eq!(database.get(&path("resources/disk")), None);
        assert_ne!(
            database.digest(),
            digest,
            "the sequence is part of the digest"
        );
        let absent = Update::new(vec![
            Op::Require {
                path: path("resources/disk"),
                version: 0,
            },
            put("resources/disk", Value::Bool(true)),
        ]);
        assert_eq!(database.apply(3, &absent), Ok(Outcome::Applied));
        assert_eq!(
            database.get(&path("resources/disk")),
            Some((&Value::Bool(true), 3))
        );
    }

    #[test]
    fn ops_apply_in_order_so_a_put_after_a_delete_survives() {
        let mut database = database_with(&["groups/web", "groups/web/a"]);
        let update = Update::new(vec![
            Op::Delete {
                path: path("groups/web"),
            },
            put("groups/web/b", Value::I64(-1)),
        ]);
        assert_eq!(database.apply(2, &update), Ok(Outcome::Applied));
        assert_eq!(keys(&database, "groups"), ["groups/web/b"]);
    }

    #[test]
    fn the_digest_kept_up_to_date_equals_the_digest_of_the_same_content_read_back() {
        let mut database = Database::default();
        let updates = [
            Update::new(vec![
                put("properties/a", Value::U64(1)),
                put("properties/b/c", Value::Text("x".to_string())),
                put("properties/b/d", Value::U64(2)),
            ]),
            Update::put(path("properties/a"), Value::U64(3)),
            Update::new(vec![Op::Delete {
                path: path("properties/b"),
            }]),
            Update::put(path("properties/e"), Value::Text("y".to_string())),
        ];
        let mut digests = vec![database.digest()];
        for (index, update) in updates.iter().enumerate() {
            assert_eq!(
                database.apply(index as u64 + 1, update),
                Ok(Outcome::Applied)
            );
            let read_back =
                Database::from_snapshot(&database.snapshot_bytes()).expect("a valid snapshot");
            assert_eq!(
                read_back.digest(),
                database.digest(),
                "after update {index}"
            );
            digests.push(database.digest());
        }
        digests.sort_unstable();
        digests.dedup();
        assert_eq!(
            digests.len(),
            updates.len() + 1,
            "every state has its own digest"
        );
    }

    #[test]
    fn an_invalid_update_is_refused_without_advancing() {
        let mut database = Database::default();
        let bad = Update::put(path("nodes/1"), Value::NodeList(vec![9, 9]));
        assert!(matches!(
            database.apply(1, &bad),
            Err(ApplyError::Invalid(_))
        ));
        assert_eq!(
            database.apply(1, &Update::default()),
            Err(ApplyError::Invalid(UpdateError::NoOperations))
        );
        assert_eq!(database.sequence(), 0);
    }

    #[test]
    fn full_refuses_the_whole_update_and_keeps_the_sequence() {
        let mut database = Database::new(Limits {
            entries_max: 3,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX,
        });
        let first = Update::new(vec![
            put("properties/a", Value::U64(1)),
            put("properties/b", Value::U64(1)),
        ]);
        assert_eq!(database.apply(1, &first), Ok(Outcome::Applied));
        let before = database.clone();
        let too_many = Update::new(vec![
            put("properties/a", Value::U64(2)),
            Op::Delete {
                path: path("properties/b"),
            },
            put("properties/c", Value::U64(1)),
            put("properties/d", Value::U64(1)),
            put("properties/e", Value::U64(1)),
        ]);
        assert!(matches!(
            database.apply(2, &too_many),
            Err(ApplyError::Full {
                entries: 4,
                entries_max: 3,
                ..
            })
        ));
        assert_eq!(database, before);
        assert_eq!(database.snapshot_len(), before.snapshot_len());
        assert_eq!(database.snapshot_bytes(), before.snapshot_bytes());
        assert_eq!(
            database.digest(),
            before.digest(),
            "the roll-back restored the digest"
        );
        let fits = Update::new(vec![
            put("properties/c", Value::U64(1)),
            Op::Delete {
                path: path("properties/a"),
            },
            put("properties/d", Value::U64(1)),
        ]);
        assert_eq!(
            database.apply(2, &fits),
            Ok(Outcome::Applied),
            "the result counts, not the way there"
        );
    }

    #[test]
    fn a_database_over_a_lowered_limit_can_still_shrink() {
        let mut database = database_with(&["properties/a", "properties/b", "properties/c"]);
        database.set_limits(Limits {
            entries_max: 1,
            snapshot_bytes_max: 10,
        });
        assert!(matches!(
            database.apply(2, &Update::put(path("properties/d"), Value::U64(1))),
            Err(ApplyError::Full { .. })
        ));
        assert_eq!(
            database.apply(2, &Update::delete(path("properties/a"))),
            Ok(Outcome::Applied)
        );
    }

    #[test]
    fn the_byte_limit_counts_snapshot_bytes() {
        let empty = Database::default().snapshot_len();
        let update = Update::put(path("properties/a"), Value::Bytes(vec![0; 100]));
        let mut measure = Database::default();
        assert_eq!(measure.apply(1, &update), Ok(Outcome::Applied));
        let needed = measure.snapshot_len();
        assert!(needed > empty + 100);
        let mut tight = Database::new(Limits {
            entries_max: ENTRIES_MAX,
            snapshot_bytes_max: needed - 1,
        });
        assert!(matches!(
            tight.apply(1, &update),
            Err(ApplyError::Full { .. })
        ));
        tight.set_limits(Limits {
            entries_max: ENTRIES_MAX,
            snapshot_bytes_max: needed,
        });
        assert_eq!(tight.apply(1, &update), Ok(Outcome::Applied));
    }

    #[test]
    fn limits_follow_the_checkpoint_slot() {
        let geometry = disklayout::Geometry::for_disk(4 << 20, 8).expect("a small disk");
        let slot_blocks = geometry.checkpoint_region(0).blocks;
        let limits = Limits::for_geometry(&geometry);
        assert_eq!(limits.snapshot_bytes_max as u64, (slot_blocks - 1) * 4096);
        assert_eq!(limits.entries_max, ENTRIES_MAX);
    }
}
