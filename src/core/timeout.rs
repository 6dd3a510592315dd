//! Time in the core: ticks of `TICK_MS`, and every protocol interval converted to ticks.
//!
//! The driver steps `Input::Tick { now_ms }` with the host's monotonic clock reading; the core
//! only ever compares tick counts derived from it. The lease arithmetic (why `lease_hold_ticks`
//! is safe against `lease_expiry_observed_ticks`) is argued in `disklayout/ARBITRATION.md` and
//! computed with the timing's validation in `disklayout/src/timing.rs`: a timing the disk
//! accepts is one this derivation works for.

use super::disk_records::Timing;

pub use disklayout::timing::{DISK_IO_LATENCY_MAX_MS, RESOURCE_STOP_DEADLINE_MS, TICK_MS};
/// Consecutive heartbeat intervals missed on every network before a peer is lost (MSCS: six).
pub const HEARTBEATS_MISSED_MAX: u64 = 6;

/// Every interval the protocol uses, in ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub heartbeat_interval_ticks: u64,
    /// Silence on all networks after which a peer is lost.
    pub peer_silence_ticks: u64,
    pub lease_renew_interval_ticks: u64,
    /// An observer declares a lease expired after seeing it unchanged this long.
    pub lease_expiry_observed_ticks: u64,
    /// A holder counts its lease valid this long after issuing a write that then succeeded.
    pub lease_hold_ticks: u64,
    pub fence_timeout_ticks: u64,
    /// Activate phase: the coordinator waits this long for missing statuses.
    pub regroup_activate_ticks: u64,
    /// A regroup round that has not stabilized after this long starts the next round.
    pub regroup_round_ticks: u64,
    /// A regroup that has not stabilized after this long gives up: stop resources, rejoin.
    pub regroup_give_up_ticks: u64,
    pub join_retry_ticks: u64,
    /// A searching node that heard no member for this long tries to form.
    pub form_wait_ticks: u64,
}

fn ticks_floor(milliseconds: u64) -> u64 {
    milliseconds / TICK_MS
}

impl Timeouts {
    /// Derives the tick intervals from a validated timing (`Timing::validate`: every timing
    /// read from a disk is, since the superblock codec refuses others).
    pub fn new(timing: &Timing) -> Timeouts {
        if let Err(error) = timing.validate() {
            panic!("Timeouts::new takes a validated timing: {error}");
        }
        let expiry_ms = u64::from(timing.lease_expiry_ms);
        let renew_ms = u64::from(timing.lease_renew_interval_ms);
        let heartbeat_ms = u64::from(timing.heartbeat_interval_ms);
        // One extra tick: the observer's tick count may start up to one tick late.
        let lease_expiry_observed_ticks = ticks_floor(expiry_ms) + 1;
        let lease_hold_ticks = timing.lease_hold_ticks();
        let peer_silence_ticks = ticks_floor(heartbeat_ms * HEARTBEATS_MISSED_MAX);
        let regroup_round_ticks = 4 * peer_silence_ticks;
        Timeouts {
            heartbeat_interval_ticks: ticks_floor(heartbeat_ms),
            peer_silence_ticks,
            lease_renew_interval_ticks: ticks_floor(renew_ms),
            lease_expiry_observed_ticks,
            lease_hold_ticks,
            fence_timeout_ticks: ticks_floor(u64::from(timing.fence_timeout_ms)),
            regroup_activate_ticks: peer_silence_ticks / 2,
            regroup_round_ticks,
            // Long enough for one quorum challenge (expiry plus I/O) inside a regroup.
            regroup_give_up_ticks: 2 * lease_expiry_observed_ticks + 4 * regroup_round_ticks,
            join_retry_ticks: 2 * ticks_floor(heartbeat_ms),
            form_wait_ticks: 2 * peer_silence_ticks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timing_gives_a_safe_hold_shorter_than_the_observed_expiry() {
        let timeouts = Timeouts::new(&Timing::default());
        assert_eq!(timeouts.heartbeat_interval_ticks, 5);
        assert_eq!(timeouts.peer_silence_ticks, 30);
        assert_eq!(timeouts.lease_expiry_observed_ticks, 101);
        // Holder: worst case real time it may still hold, from the issue of its write.
        let drift = 1000.0 / 1_000_000.0;
        let hold_real_ms = ((timeouts.lease_hold_ticks + 1) * TICK_MS) as f64 / (1.0 - drift);
        let holder_done_ms =
            hold_real_ms + RESOURCE_STOP_DEADLINE_MS.max(DISK_IO_LATENCY_MAX_MS) as f64;
        // Observer: earliest real time it may declare expiry, from the same write's landing.
        let observer_ms =
            ((timeouts.lease_expiry_observed_ticks - 1) * TICK_MS) as f64 / (1.0 + drift);
        assert!(
            holder_done_ms < observer_ms,
            "{holder_done_ms} !< {observer_ms}"
        );
        assert!(timeouts.lease_hold_ticks < timeouts.lease_expiry_observed_ticks);
    }

    #[test]
    #[should_panic(expected = "takes a validated timing")]
    fn an_expiry_shorter_than_the_margins_is_rejected() {
        let timing = Timing {
            lease_expiry_ms: 300,
            ..Timing::default()
        };
        let _ = Timeouts::new(&timing);
    }

    /// Issue 16, finding 3: `disk format` accepted timings every node then aborted on. Now
    /// `Timing::validate` is the only judge: the two timings are refused, and every
    /// timing it accepts, the edges of each field included, builds timeouts the protocol can
    /// run on.
    #[test]
    fn every_timing_validate_accepts_builds_working_timeouts() {
        let base = Timing::default();
        for refused in [
            Timing {
                heartbeat_interval_ms: 5,
                ..base
            },
            Timing {
                lease_renew_interval_ms: 450,
                ..base
            },
        ] {
            assert!(refused.validate().is_err(), "{refused:?}");
        }
        const MAX: u64 = u32::MAX as u64;
        let mut prng = crate::prng::Prng::new(16);
        let mut pick = |edges: &[u64]| -> u64 {
            match prng.below(3) {
                0 => edges[prng.below(edges.len() as u64) as usize],
                _ => prng.below(edges[edges.len() - 1] + 1),
            }
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            let timing = Timing {
                heartbeat_interval_ms: pick(&[0, 1, 9, 10, 11, 50, 1000, 65_535, MAX]) as u32,
                lease_renew_interval_ms: pick(&[0, 1, 9, 10, 11, 100, 450, 65_535, MAX]) as u32,
                lease_expiry_ms: pick(&[0, 1, 300, 1000, 10_000, 65_535, MAX]) as u32,
                fence_timeout_ms: pick(&[0, 1, 10, 500, 750, 65_535, MAX]) as u32,
                clock_drift_ppm_max: pick(&[0, 1, 100, 99_999, 100_000, MAX]) as u32,
            };
            if timing.validate().is_err() {
                continue;
            }
            accepted += 1;
            let timeouts = Timeouts::new(&timing);
            assert!(timeouts.heartbeat_interval_ticks >= 1, "{timing:?}");
            assert!(timeouts.lease_renew_interval_ticks >= 1, "{timing:?}");
            assert!(
                timeouts.lease_hold_ticks > 2 * timeouts.lease_renew_interval_ticks,
                "{timing:?}: {timeouts:?}"
            );
            assert!(timeouts.lease_hold_ticks < timeouts.lease_expiry_observed_ticks);
            assert!(timeouts.fence_timeout_ticks >= 1, "{timing:?}");
        }
        assert!(
            accepted > 1000,
            "the search reached valid timings: {accepted}"
        );
    }
}
