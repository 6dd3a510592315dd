//! The replicated state: the cluster database plus, per origin node, its last committed request
//! (so a retransmitted proposal is acknowledged, not committed twice, also across a locker
//! succession and a recovery from the disk log). Every node computes the same state from the
//! same updates; a snapshot and a checkpoint carry both parts.

use std::collections::BTreeMap;

use byteorder::{ByteOrder, LittleEndian};

use super::Entry;
use crate::core::db::{Database, Update};

const SNAPSHOT_MAGIC: u32 = 0x5750_5253; // "WPRS"
const SNAPSHOT_VERSION: u8 = 1;
const ORIGIN_RECORD_BYTES: usize = 1 + 3 * 8 + 1;

/// The last update committed from one origin node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OriginRecord {
    pub incarnation: u64,
    pub request_id: u64,
    pub sequence: u64,
    /// The update was refused (its sender is told so again if it asks again).
    pub rejected: bool,
}

/// What applying one update did (the same on every node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// A deterministic refusal (bad encoding, failed precondition, database full): the update
    /// takes its sequence number and changes nothing.
    Rejected(String),
    /// A barrier or a duplicate of a committed request: nothing to do.
    Nothing,
}

#[derive(Clone, Debug, Default)]
pub struct Replica {
    pub sequence: u64,
    pub origins: BTreeMap<u8, OriginRecord>,
    pub database: Database,
}

/// Why a snapshot was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotError(pub String);

impl Replica {
    /// Whether `(origin, incarnation, request_id)` is already committed, and at which sequence
    /// at most.
    pub fn committed(&self, origin: u8, incarnation: u64, request_id: u64) -> Option<u64> {
        let record = self.origins.get(&origin)?;
        // The origin table never runs ahead of the replica.
        debug_assert!(record.sequence <= self.sequence);
        (record.incarnation == incarnation && request_id <= record.request_id)
            .then_some(record.sequence)
    }

    /// The next request id this origin's incarnation may commit (1 for an unknown incarnation).
    pub fn next_request(&self, origin: u8, incarnation: u64) -> u64 {
        match self.origins.get(&origin) {
            Some(record) if record.incarnation == incarnation => {
                // The record is of an update this replica applied (snapshots are checked so).
                debug_assert!(record.sequence <= self.sequence);
                record.request_id + 1
            }
            _ => 1,
        }
    }

    /// Applies the update at `sequence` (exactly one above ours: the caller orders).
    pub fn apply(&mut self, sequence: u64, entry: &Entry) -> Outcome {
        assert_eq!(sequence, self.sequence + 1, "updates are applied in order");
        self.sequence = sequence;
        if entry.request_id == 0 {
            // A barrier keeps the database's own sequence in step.
            let _ = self.database.advance(sequence);
            return Outcome::Nothing;
        }
        let known = self.origins.get(&entry.origin).copied();
        let duplicate = known.is_some_and(|record| {
            record.incarnation > entry.incarnation
                || (record.incarnation == entry.incarnation
                    && entry.request_id <= record.request_id)
        });
        if duplicate {
            let _ = self.database.advance(sequence);
            return Outcome::Nothing;
        }
        let outcome = self.apply_body(sequence, &entry.body);
        // Whatever the outcome, the database took this sequence too: both stay in step.
        debug_assert_eq!(self.database.sequence(), sequence, "database out of step");
        self.origins.insert(
            entry.origin,
            OriginRecord {
                incarnation: entry.incarnation,
                request_id: entry.request_id,
                sequence,
                rejected: matches!(outcome, Outcome::Rejected(_)),
            },
        );
        outcome
    }

    fn apply_body(&mut self, sequence: u64, body: &[u8]) -> Outcome {
        // The database is exactly one behind: `advance` and `apply` below cannot gap.
        debug_assert_eq!(self.database.sequence() + 1, sequence);
        let update = match Update::decode(body) {
            Ok(update) => update,
            Err(error) => {
                let _ = self.database.advance(sequence);
                return Outcome::Rejected(format!("undecodable update: {error}"));
            }
        };
        match self.database.apply(sequence, &update) {
            Ok(crate::core::db::Outcome::Applied) => Outcome::Applied,
            Ok(crate::core::db::Outcome::PreconditionFailed { path }) => {
                Outcome::Rejected(format!("precondition failed on {path}"))
            }
            Err(error) => {
                // Nothing changed in the database (e.g. full): advance its sequence with an
                // empty update so both stay in step, and refuse the update everywhere.
                let _ = self.database.advance(sequence);
                Outcome::Rejected(format!("{error}"))
            }
        }
    }

    /// A digest of the whole replicated state (equal on nodes that applied the same updates).
    pub fn digest(&self) -> u64 {
        // Equal digests mean equal states only if the two parts agree on the sequence.
        debug_assert_eq!(self.database.sequence(), self.sequence);
        let mut hash = self.database.digest() ^ self.sequence.rotate_left(17);
        for (origin, record) in &self.origins {
            for value in [
                u64::from(*origin),
                record.incarnation,
                record.request_id,
                record.sequence,
                u64::from(record.rejected),
            ] {
                hash ^= value;
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    }

    /// `magic u32 | version u8 | sequence u64 | origins u8 | origin records | database
    /// snapshot` (the database snapshot carries its own CRC).
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut word = [0u8; 8];
        LittleEndian::write_u32(&mut word[..4], SNAPSHOT_MAGIC);
        out.extend_from_slice(&word[..4]);
        out.push(SNAPSHOT_VERSION);
        LittleEndian::write_u64(&mut word, self.sequence);
        out.extend_from_slice(&word);
        // The origin count travels as one byte: origins are node ids, at most `NODES_MAX`.
        debug_assert!(self.origins.len() <= crate::core::NODES_MAX);
        out.push(self.origins.len() as u8);
        for (origin, record) in &self.origins {
            out.push(*origin);
            for value in [record.incarnation, record.request_id, record.sequence] {
                LittleEndian::write_u64(&mut word, value);
                out.extend_from_slice(&word);
            }
            out.push(u8::from(record.rejected));
        }
        out.extend_from_slice(&self.database.snapshot_bytes());
        out
    }

    pub fn from_snapshot(bytes: &[u8]) -> Result<Replica, SnapshotError> {
        let fail = |what: &str| SnapshotError(what.to_string());
        let fixed = 4 + 1 + 8 + 1;
        if bytes.len() < fixed {
            return Err(fail("replica snapshot truncated"));
        }
        if LittleEndian::read_u32(&bytes[..4]) != SNAPSHOT_MAGIC {
            return Err(fail("replica snapshot: bad magic"));
        }
        if bytes[4] != SNAPSHOT_VERSION {
            return Err(fail("replica snapshot: unknown version"));
        }
        let sequence = LittleEndian::read_u64(&bytes[5..13]);
        // Every number of a snapshot (from the disk or a peer) is a counter (FORMAT.md §3):
        // the replica adds one to its sequence and to a request id.
        if !disklayout::is_counter(sequence) {
            return Err(fail("replica snapshot: sequence above 2^62-1"));
        }
        let count = usize::from(bytes[13]);
        let mut at = fixed;
        let mut origins = BTreeMap::new();
        for _ in 0..count {
            let Some(record) = bytes.get(at..at + ORIGIN_RECORD_BYTES) else {
                return Err(fail("replica snapshot: origin table truncated"));
            };
            let origin = record[0];
            if origin == 0 || usize::from(origin) > crate::core::NODES_MAX {
                return Err(fail("replica snapshot: origin out of range"));
            }
            let parsed = OriginRecord {
                incarnation: LittleEndian::read_u64(&record[1..9]),
                request_id: LittleEndian::read_u64(&record[9..17]),
                sequence: LittleEndian::read_u64(&record[17..25]),
                rejected: match record[25] {
                    0 => false,
                    1 => true,
                    _ => return Err(fail("replica snapshot: bad rejected flag")),
                },
            };
            if !disklayout::is_counter(parsed.incarnation)
                || !disklayout::is_counter(parsed.request_id)
            {
                return Err(fail("replica snapshot: origin counter above 2^62-1"));
            }
            if parsed.sequence > sequence || origins.insert(origin, parsed).is_some() {
                return Err(fail("replica snapshot: inconsistent origin table"));
            }
            at += ORIGIN_RECORD_BYTES;
        }
        debug_assert_eq!(origins.len(), count, "a duplicate origin was refused above");
        let database = Database::from_snapshot(&bytes[at..])
            .map_err(|error| SnapshotError(format!("database snapshot: {error}")))?;
        if database.sequence() != sequence {
            return Err(fail(
                "replica snapshot: database and replica sequences differ",
            ));
        }
        Ok(Replica {
            sequence,
            origins,
            database,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::db::{Op, Path, Value};

    #[test]
    fn snapshot_round_trip_keeps_state_and_digest() {
        let mut replica = Replica::default();
        let empty = Replica::from_snapshot(&replica.snapshot_bytes()).expect("empty round trip");
        assert_eq!(empty.digest(), replica.digest());
        let update = Update {
            ops: vec![Op::Put {
                path: Path::parse("properties/a").expect("path"),
                value: Value::Text("x".into()),
            }],
        };
        let entry = Entry {
            origin: 2,
            incarnation: 1,
            request_id: 1,
            body: update.encode().expect("encode"),
        };
        assert_eq!(replica.apply(1, &entry), Outcome::Applied);
        assert_eq!(
            replica.apply(2, &entry),
            Outcome::Nothing,
            "duplicate request"
        );
        let copy = Replica::from_snapshot(&replica.snapshot_bytes()).expect("round trip");
        assert_eq!(copy.digest(), replica.digest());
        assert_eq!(copy.sequence, 2);
        // An origin's request id (bytes 23..31: after the header, the origin's id and its
        // incarnation) above the largest counter: the replica would add one to it.
        let mut hostile = replica.snapshot_bytes();
        hostile[23..31].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Replica::from_snapshot(&hostile).is_err());
        hostile[23..31].copy_from_slice(&1u64.to_le_bytes());
        assert!(
            Replica::from_snapshot(&hostile).is_ok(),
            "the offsets above are right"
        );
    }
}
