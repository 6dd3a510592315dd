//! One update as GUM carries it: who proposed it (node, incarnation, request id) and its body.
//! In the log it is a `LogUpdate` whose payload is `incarnation u64 | request id u64 | body`.

use byteorder::{ByteOrder, LittleEndian};

use super::PROPOSAL_BYTES_MAX;
use crate::core::disk_records::LogUpdate;

/// Bytes before the body in a log payload: incarnation u64, request id u64.
pub(crate) const HEADER_BYTES: usize = 8 + 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub origin: u8,
    pub incarnation: u64,
    pub request_id: u64,
    /// The encoded database update; empty for a no-op (a new locker's barrier).
    pub body: Vec<u8>,
}

impl Entry {
    /// A no-op that takes a sequence number (see `takeover.rs`: the barrier after a takeover
    /// that discarded unreplicated updates).
    pub fn barrier(origin: u8, incarnation: u64) -> Entry {
        // A replay refuses origin 0 (`from_log`): a barrier must name the locker that writes it.
        debug_assert!(origin != 0 && usize::from(origin) <= crate::core::NODES_MAX);
        Entry {
            origin,
            incarnation,
            request_id: 0,
            body: Vec::new(),
        }
    }

    pub fn to_log(&self, sequence: u64) -> LogUpdate {
        let mut payload = vec![0u8; HEADER_BYTES + self.body.len()];
        LittleEndian::write_u64(&mut payload[0..8], self.incarnation);
        LittleEndian::write_u64(&mut payload[8..16], self.request_id);
        payload[HEADER_BYTES..].copy_from_slice(&self.body);
        let update = LogUpdate {
            sequence,
            origin: self.origin,
            payload,
        };
        // Pair assertion: what is logged replays to this very entry (a larger body or a bad
        // origin would be dropped by the replay, silently losing a committed update).
        debug_assert_eq!(Entry::from_log(&update).as_ref(), Some(self));
        update
    }

    /// The entry a log update carries; `None` if its payload is not one of ours.
    pub fn from_log(update: &LogUpdate) -> Option<Entry> {
        let payload = &update.payload;
        if payload.len() < HEADER_BYTES
            || payload.len() > HEADER_BYTES + PROPOSAL_BYTES_MAX
            || update.origin == 0
            || usize::from(update.origin) > crate::core::NODES_MAX
        {
            return None;
        }
        let entry = Entry {
            origin: update.origin,
            incarnation: LittleEndian::read_u64(&payload[0..8]),
            request_id: LittleEndian::read_u64(&payload[8..16]),
            body: payload[HEADER_BYTES..].to_vec(),
        };
        // Counters from the disk (FORMAT.md §3): the replica adds one to a request id.
        if !disklayout::is_counter(entry.incarnation) || !disklayout::is_counter(entry.request_id) {
            return None;
        }
        // The other half of the pair: the header layout is the one `to_log` writes.
        debug_assert_eq!(entry.body.len() + HEADER_BYTES, payload.len());
        Some(entry)
    }

    /// Identity of the update (FNV-1a), for the simulator's checker: equal digests at one
    /// sequence number mean the same update.
    pub fn digest(&self) -> u64 {
        // Every entry GUM handles names a real origin (decoding and replay refuse 0).
        debug_assert!(self.origin != 0);
        entry_digest(self.origin, self.incarnation, self.request_id, &self.body)
    }
}

/// FNV-1a over an update's identity and body.
pub fn entry_digest(origin: u8, incarnation: u64, request_id: u64, body: &[u8]) -> u64 {
    // The simulator's checker compares digests of updates of real nodes only.
    debug_assert!(origin != 0 && usize::from(origin) <= crate::core::NODES_MAX);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    eat(origin);
    incarnation.to_le_bytes().into_iter().for_each(&mut eat);
    request_id.to_le_bytes().into_iter().for_each(&mut eat);
    body.iter().copied().for_each(&mut eat);
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trip_and_bounds() {
        let entry = Entry {
            origin: 3,
            incarnation: 7,
            request_id: 9,
            body: b"put x".to_vec(),
        };
        let update = entry.to_log(42);
        assert_eq!(update.sequence, 42);
        assert_eq!(Entry::from_log(&update), Some(entry.clone()));
        let mut short = update.clone();
        short.payload.truncate(15);
        assert_eq!(Entry::from_log(&short), None);
        let mut foreign = update;
        foreign.origin = 0;
        assert_eq!(Entry::from_log(&foreign), None);
        assert_ne!(entry.digest(), Entry::barrier(3, 7).digest());
    }

    #[test]
    fn counters_above_the_largest_are_not_ours() {
        let at_limit = Entry {
            origin: 3,
            incarnation: disklayout::COUNTER_MAX,
            request_id: disklayout::COUNTER_MAX,
            body: Vec::new(),
        };
        assert_eq!(Entry::from_log(&at_limit.to_log(1)), Some(at_limit.clone()));
        for (at, value) in [(0, disklayout::COUNTER_MAX + 1), (8, u64::MAX)] {
            let mut update = at_limit.to_log(1);
            update.payload[at..at + 8].copy_from_slice(&value.to_le_bytes());
            assert_eq!(Entry::from_log(&update), None, "byte {at} = {value}");
        }
    }
}
