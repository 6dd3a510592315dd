//! The time service: every node tells its peers its wall clock once a second (an authenticated
//! frame of its own kind), and keeps, per peer, the difference to its own wall clock when the
//! frame arrived. The protocol never compares wall clocks (ARBITRATION.md); this is for
//! operators, whose logs from several nodes must line up. The one-way transit time counts as
//! skew: on a LAN it is well below a millisecond. A skew beyond `SKEW_WARN_MS` is logged once
//! per peer until it is back in bounds.
//!
//! A time frame names the receiver's incarnation (learnt from the receiver's own frames), so a
//! frame captured before the receiver restarted is refused after the restart, even though the
//! sender's incarnation, and so the wire's replay window, are unchanged: without it, replayed
//! time frames could skew `ctl events` at will. Payload: wall ms (u64), receiver incarnation
//! (u64), little-endian.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The frame kind beside the protocol's.
pub const FRAME_KIND_TIME: u8 = 2;
/// How often a node sends its clock to each peer.
pub const INTERVAL_MS: u64 = 1000;
/// Skew above which the node logs a warning.
pub const SKEW_WARN_MS: i64 = 500;

/// A peer's skew: its wall clock minus ours (ms), and when (our monotonic ms) it was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skew {
    pub skew_ms: i64,
    pub measured_at_ms: u64,
}

#[derive(Debug, Default)]
pub struct TimeService {
    last_sent_ms: Option<u64>,
    skews: BTreeMap<u8, Skew>,
    warned: BTreeMap<u8, bool>,
}

/// This host's wall clock in ms since the Unix epoch (0 if it reads before 1970).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl TimeService {
    /// True when a second has passed since the last sending: tell every peer now.
    pub fn due(&mut self, now_ms: u64) -> bool {
        if self
            .last_sent_ms
            .is_some_and(|sent| now_ms < sent.saturating_add(INTERVAL_MS))
        {
            return false;
        }
        self.last_sent_ms = Some(now_ms);
        true
    }

    /// A peer's clock arrived (already authenticated) at this node, `own_incarnation`.
    /// Returns a line to log when the skew crosses `SKEW_WARN_MS` either way. A payload of
    /// the wrong size, a clock beyond `COUNTER_MAX` or a frame meant for another incarnation
    /// of this node (a replay from before a restart) is refused and changes nothing.
    pub fn on_frame(
        &mut self,
        from: u8,
        payload: &[u8],
        own_incarnation: u64,
        own_wall_ms: u64,
        now_ms: u64,
    ) -> Result<Option<String>, &'static str> {
        let (peer_wall_ms, receiver_incarnation) =
            decode(payload).ok_or("time frame of the wrong size")?;
        if receiver_incarnation != own_incarnation {
            return Err("time frame for another incarnation of this node");
        }
        // Both clocks are at most COUNTER_MAX (2^62-1), so their difference and its negation
        // fit an i64.
        if !disklayout::is_counter(peer_wall_ms) || !disklayout::is_counter(own_wall_ms) {
            return Err("time frame with a clock out of range");
        }
        let skew_ms = peer_wall_ms as i64 - own_wall_ms as i64;
        self.skews.insert(
            from,
            Skew {
                skew_ms,
                measured_at_ms: now_ms,
            },
        );
        let beyond = skew_ms.abs() > SKEW_WARN_MS;
        let was_beyond = self.warned.insert(from, beyond).unwrap_or(false);
        Ok(match (was_beyond, beyond) {
            (false, true) => Some(format!(
                "clock of node {from} is {skew_ms:+} ms from ours (more than {SKEW_WARN_MS} ms): logs will not line up"
            )),
            (true, false) => Some(format!(
                "clock of node {from} is back within {SKEW_WARN_MS} ms of ours ({skew_ms:+} ms)"
            )),
            _ => None,
        })
    }

    pub fn skew(&self, node: u8) -> Option<Skew> {
        self.skews.get(&node).copied()
    }
}

/// The payload telling a peer of incarnation `receiver_incarnation` our clock.
pub fn payload(wall_ms: u64, receiver_incarnation: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&wall_ms.to_le_bytes());
    out[8..].copy_from_slice(&receiver_incarnation.to_le_bytes());
    out
}

fn decode(payload: &[u8]) -> Option<(u64, u64)> {
    let bytes: &[u8; 16] = payload.try_into().ok()?;
    let (wall, receiver) = bytes.split_at(8);
    Some((
        u64::from_le_bytes(wall.try_into().ok()?),
        u64::from_le_bytes(receiver.try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_measured_warned_once_and_cleared() {
        let mut service = TimeService::default();
        assert!(service.due(0));
        assert!(!service.due(500));
        assert!(service.due(1000));
        let at = |wall: u64| payload(wall, 77);
        assert_eq!(service.on_frame(2, &at(10_100), 77, 10_000, 5), Ok(None));
        assert_eq!(service.skew(2).map(|skew| skew.skew_ms), Some(100));
        let warning = service.on_frame(2, &at(9_000), 77, 10_000, 6).unwrap();
        assert!(warning.is_some_and(|text| text.contains("-1000 ms")));
        assert_eq!(
            service.on_frame(2, &at(9_000), 77, 10_000, 7),
            Ok(None),
            "warned once"
        );
        assert!(service
            .on_frame(2, &at(10_000), 77, 10_000, 8)
            .unwrap()
            .is_some());
        assert!(service.on_frame(2, &[1, 2, 3], 77, 10_000, 9).is_err());
    }

    /// Issue 16, finding 4: a clock of 2^63 overflowed `peer - own` and `.abs()` (an abort in
    /// release); every clock the frame can carry is now refused or measured, never a panic.
    #[test]
    fn clocks_at_the_edges_are_refused_not_fatal() {
        let mut service = TimeService::default();
        for wall in [
            1u64 << 63,
            u64::MAX,
            u64::MAX - 1,
            disklayout::COUNTER_MAX + 1,
        ] {
            assert!(service
                .on_frame(2, &payload(wall, 77), 77, 10_000, 1)
                .is_err());
        }
        assert_eq!(service.skew(2), None, "a refused frame measures nothing");
        for wall in [0, 1, disklayout::COUNTER_MAX] {
            assert!(service
                .on_frame(2, &payload(wall, 77), 77, 10_000, 1)
                .is_ok());
        }
        assert!(service
            .on_frame(2, &payload(5, 77), 77, u64::MAX, 1)
            .is_err());
    }

    /// Issue 16, finding 5: a time frame captured before this node restarted names its old
    /// incarnation and is refused, though the sender's incarnation is unchanged.
    #[test]
    fn a_frame_for_a_previous_incarnation_is_a_replay() {
        let mut service = TimeService::default();
        let captured = payload(25_000, 41);
        assert!(service.on_frame(2, &captured, 42, 10_000, 1).is_err());
        assert_eq!(service.skew(2), None);
        assert!(service
            .on_frame(2, &payload(10_000, 42), 42, 10_000, 1)
            .is_ok());
    }
}
