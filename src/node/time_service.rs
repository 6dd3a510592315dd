//! The time service: every node tells its peers its wall clock once a second (an authenticated
//! frame of its own kind), and keeps, per peer, the difference to its own wall clock when the
//! frame arrived. The protocol never compares wall clocks (ARBITRATION.md); this is for
//! operators, whose logs from several nodes must line up. The one-way transit time counts as
//! skew: on a LAN it is well below a millisecond. A skew beyond `SKEW_WARN_MS` is logged once
//! per peer until it is back in bounds.

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
    /// The payload to send to every peer now, if a second has passed.
    pub fn due(&mut self, now_ms: u64) -> Option<[u8; 8]> {
        if self
            .last_sent_ms
            .is_some_and(|sent| now_ms < sent + INTERVAL_MS)
        {
            return None;
        }
        self.last_sent_ms = Some(now_ms);
        Some(wall_ms().to_le_bytes())
    }

    /// A peer's clock arrived (already authenticated). Returns a line to log when the skew
    /// crosses `SKEW_WARN_MS` either way; a payload of the wrong size is refused.
    pub fn on_frame(
        &mut self,
        from: u8,
        payload: &[u8],
        own_wall_ms: u64,
        now_ms: u64,
    ) -> Result<Option<String>, &'static str> {
        let bytes: [u8; 8] = payload
            .try_into()
            .map_err(|_| "time frame of the wrong size")?;
        let peer_wall_ms = u64::from_le_bytes(bytes);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_measured_warned_once_and_cleared() {
        let mut service = TimeService::default();
        assert!(service.due(0).is_some());
        assert!(service.due(500).is_none());
        assert!(service.due(1000).is_some());
        let at = |wall: u64| wall.to_le_bytes();
        assert_eq!(service.on_frame(2, &at(10_100), 10_000, 5), Ok(None));
        assert_eq!(service.skew(2).map(|skew| skew.skew_ms), Some(100));
        let warning = service.on_frame(2, &at(9_000), 10_000, 6).unwrap();
        assert!(warning.is_some_and(|text| text.contains("-1000 ms")));
        assert_eq!(
            service.on_frame(2, &at(9_000), 10_000, 7),
            Ok(None),
            "warned once"
        );
        assert!(service
            .on_frame(2, &at(10_000), 10_000, 8)
            .unwrap()
            .is_some());
        assert!(service.on_frame(2, &[1, 2, 3], 10_000, 9).is_err());
    }
}
