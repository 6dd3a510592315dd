//! The shared timing (FORMAT.md §4) and the lease arithmetic of `ARBITRATION.md` §1.
//!
//! `Timing::validate` is the one place that decides whether a timing is usable: the superblock
//! codec refuses a timing it rejects, so every node runs only validated numbers, and the core's
//! `Timeouts::new` derives its tick intervals from them asserting nothing this does not
//! guarantee. A watchdog's timeout is checked against the same arithmetic
//! (`watchdog_timeout_max_ms`, ARBITRATION.md rule 5).

use crate::error::EncodeError;

/// The core's time unit: every interval is a whole number of ticks.
pub const TICK_MS: u64 = 10;
/// Media assumption: a disk operation completes, or is abandoned with nothing written, within
/// this bound (the driver's I/O timeout).
pub const DISK_IO_LATENCY_MAX_MS: u64 = 100;
/// A node stops all its resources within this bound once it decides to.
pub const RESOURCE_STOP_DEADLINE_MS: u64 = 100;
/// The largest clock drift bound the arithmetic accepts (10%).
const CLOCK_DRIFT_PPM_LIMIT: u32 = 100_000;
/// The longest lease expiry `fitting_watchdog` proposes (one hour): beyond it no cluster fails
/// over in a useful time.
const LEASE_EXPIRY_MS_PROPOSED_MAX: u64 = 3_600_000;
const MILLION: u64 = 1_000_000;

/// The timing parameters every node must share; they live on the disk so nodes cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often a node heartbeats on every network and on its disk slot.
    pub heartbeat_interval_ms: u32,
    /// How often a node renews its lease (its slot; the quorum lease if it owns it).
    pub lease_renew_interval_ms: u32,
    /// How long after its last renewal a lease still counts as held.
    pub lease_expiry_ms: u32,
    /// How long the resource monitor waits for its daemon before stopping every resource.
    pub fence_timeout_ms: u32,
    /// The largest clock-rate difference between two nodes the timing argument tolerates.
    pub clock_drift_ppm_max: u32,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat_interval_ms: 50,
            lease_renew_interval_ms: 100,
            lease_expiry_ms: 1000,
            fence_timeout_ms: 500,
            clock_drift_ppm_max: 1000,
        }
    }
}

impl Timing {
    /// Checks the relations FORMAT.md §4 and ARBITRATION.md §1 require; the error names the
    /// field at fault and the bound it missed.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let fail = |field, problem: String| Err(EncodeError::field(field, problem));
        let tick = TICK_MS;
        if u64::from(self.heartbeat_interval_ms) < tick {
            return fail("heartbeat_interval_ms", format!("must be at least {tick}"));
        }
        if u64::from(self.lease_renew_interval_ms) < tick {
            return fail(
                "lease_renew_interval_ms",
                format!("must be at least {tick}"),
            );
        }
        if self.clock_drift_ppm_max >= CLOCK_DRIFT_PPM_LIMIT {
            return fail(
                "clock_drift_ppm_max",
                format!("must be below {CLOCK_DRIFT_PPM_LIMIT} (10%)"),
            );
        }
        // A holder has at least two renewals in hand before its lease can run out.
        let renew_ticks = u64::from(self.lease_renew_interval_ms) / tick;
        if self.lease_hold_ticks() <= 2 * renew_ticks {
            return fail(
                "lease_expiry_ms",
                format!(
                    "too short for the renewal interval with the I/O, stop and drift margins: \
                     the lease a renewal gives ({} ms) must exceed two renewal intervals",
                    self.lease_hold_ticks() * tick
                ),
            );
        }
        // A renewal that completes as late as the I/O bound allows must still re-arm the
        // dead-man (`fence_timeout` ahead within the lease), or a holder's monitor fences it.
        let fence_max_ms = self.fence_timeout_max_ms();
        if u64::from(self.fence_timeout_ms) < tick
            || u64::from(self.fence_timeout_ms) > fence_max_ms
        {
            return fail(
                "fence_timeout_ms",
                format!(
                    "must be {tick} to {fence_max_ms}: the lease a renewal gives, less one disk \
                     I/O (raise the lease expiry for a longer one)"
                ),
            );
        }
        Ok(())
    }

    /// The holder's validity after issuing a successful write, in its own clock's
    /// milliseconds: `hold / (1 - drift) + max(io, stop) + 2 ticks <= expiry / (1 + drift)`,
    /// rounded down (ARBITRATION.md §1, `H_ms`).
    pub fn lease_hold_ms(&self) -> u64 {
        let drift_ppm = u64::from(self.clock_drift_ppm_max).min(MILLION - 1);
        let observed_real_ms = u64::from(self.lease_expiry_ms) * MILLION / (MILLION + drift_ppm);
        let margin_ms = DISK_IO_LATENCY_MAX_MS.max(RESOURCE_STOP_DEADLINE_MS) + 2 * TICK_MS;
        let real_budget_ms = observed_real_ms.saturating_sub(margin_ms);
        real_budget_ms * (MILLION - drift_ppm) / MILLION
    }

    /// `H` in ticks: one less than the whole ticks of `lease_hold_ms` (the holder's tick count
    /// may start up to one tick late).
    pub fn lease_hold_ticks(&self) -> u64 {
        (self.lease_hold_ms() / TICK_MS).saturating_sub(1)
    }

    /// The longest fence timeout this timing supports: a renewal issued at `t` holds until
    /// `t + H`, completes by `t + D_io` (plus a tick to notice), and must then still find
    /// `fence_timeout` of lease ahead to re-arm the dead-man.
    pub fn fence_timeout_max_ms(&self) -> u64 {
        let io_ticks = DISK_IO_LATENCY_MAX_MS.div_ceil(TICK_MS) + 1;
        self.lease_hold_ticks().saturating_sub(io_ticks) * TICK_MS
    }

    /// The longest hardware watchdog timeout this timing covers, in real milliseconds
    /// (ARBITRATION.md rule 5). The monitor feeds the watchdog on each ping; a ping comes only
    /// while every lease the node holds lasts at least `fence_timeout` more on its own clock,
    /// which is at least `fence_timeout / (1 + drift)` of real time. A watchdog no longer than
    /// that resets a node that stopped feeding before any lease it held can expire.
    pub fn watchdog_timeout_max_ms(&self) -> u64 {
        let drift_ppm = u64::from(self.clock_drift_ppm_max);
        u64::from(self.fence_timeout_ms) * MILLION / (MILLION + drift_ppm)
    }

    /// The smallest change of this timing that covers a watchdog of `watchdog_ms`: the same
    /// heartbeat, renewal and drift; the fence timeout raised to cover it and the lease expiry
    /// raised as little as that needs. `None` if no lease expiry up to an hour does.
    pub fn fitting_watchdog(&self, watchdog_ms: u64) -> Option<Timing> {
        if watchdog_ms <= self.watchdog_timeout_max_ms() && self.validate().is_ok() {
            return Some(*self);
        }
        if self.clock_drift_ppm_max >= CLOCK_DRIFT_PPM_LIMIT {
            return None;
        }
        let drift_ppm = u64::from(self.clock_drift_ppm_max);
        let fence_ms = watchdog_ms
            .checked_mul(MILLION + drift_ppm)?
            .div_ceil(MILLION)
            .checked_next_multiple_of(TICK_MS)?
            .max(u64::from(self.fence_timeout_ms));
        let mut fitted = *self;
        fitted.fence_timeout_ms = u32::try_from(fence_ms).ok()?;
        let mut expiry_ms = u64::from(self.lease_expiry_ms).next_multiple_of(TICK_MS);
        while expiry_ms <= LEASE_EXPIRY_MS_PROPOSED_MAX {
            fitted.lease_expiry_ms = u32::try_from(expiry_ms).ok()?;
            if fitted.validate().is_ok() && watchdog_ms <= fitted.watchdog_timeout_max_ms() {
                return Some(fitted);
            }
            expiry_ms += TICK_MS;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_timing_is_valid_and_gives_the_documented_numbers() {
        let timing = Timing::default();
        assert_eq!(timing.validate(), Ok(()));
        assert_eq!(timing.lease_hold_ms(), 878);
        assert_eq!(timing.lease_hold_ticks(), 86);
        assert_eq!(timing.fence_timeout_max_ms(), 750);
        assert_eq!(timing.watchdog_timeout_max_ms(), 499);
    }

    #[test]
    fn each_bound_names_its_field() {
        let field_of = |timing: Timing| match timing.validate() {
            Err(error) => error.to_string(),
            Ok(()) => "valid".to_string(),
        };
        let base = Timing::default();
        let cases = [
            (
                Timing {
                    heartbeat_interval_ms: 9,
                    ..base
                },
                "heartbeat_interval_ms",
            ),
            (
                Timing {
                    lease_renew_interval_ms: 0,
                    ..base
                },
                "lease_renew_interval_ms",
            ),
            (
                Timing {
                    lease_expiry_ms: 300,
                    ..base
                },
                "lease_expiry_ms",
            ),
            (
                Timing {
                    fence_timeout_ms: 0,
                    ..base
                },
                "fence_timeout_ms",
            ),
            (
                Timing {
                    fence_timeout_ms: 760,
                    ..base
                },
                "fence_timeout_ms",
            ),
            (
                Timing {
                    clock_drift_ppm_max: 100_000,
                    ..base
                },
                "clock_drift_ppm_max",
            ),
        ];
        for (timing, field) in cases {
            assert!(
                field_of(timing).contains(field),
                "{timing:?}: {}",
                field_of(timing)
            );
        }
        assert_eq!(
            field_of(Timing {
                fence_timeout_ms: 750,
                ..base
            }),
            "valid"
        );
    }

    #[test]
    fn extreme_fields_are_refused_without_overflow() {
        let extreme = Timing {
            heartbeat_interval_ms: u32::MAX,
            lease_renew_interval_ms: u32::MAX,
            lease_expiry_ms: u32::MAX,
            fence_timeout_ms: u32::MAX,
            clock_drift_ppm_max: u32::MAX,
        };
        assert!(extreme.validate().is_err());
        let no_drift = Timing {
            clock_drift_ppm_max: 0,
            ..extreme
        };
        assert!(
            no_drift.validate().is_err(),
            "a renewal interval of 49 days"
        );
        assert!(extreme.fitting_watchdog(u64::from(u32::MAX)).is_none());
    }

    #[test]
    fn a_one_second_watchdog_needs_a_longer_fence_timeout_and_lease_expiry() {
        let base = Timing::default();
        assert_eq!(base.fitting_watchdog(499), Some(base));
        let fitted = base.fitting_watchdog(1000).expect("an expiry fits");
        assert!(fitted.validate().is_ok());
        assert!(fitted.watchdog_timeout_max_ms() >= 1000);
        assert_eq!(fitted.fence_timeout_ms, 1010);
        // The smallest: ten milliseconds less no longer fits.
        let shorter = Timing {
            lease_expiry_ms: fitted.lease_expiry_ms - 10,
            ..fitted
        };
        assert!(shorter.validate().is_err());
        assert_eq!(
            (fitted.heartbeat_interval_ms, fitted.lease_renew_interval_ms),
            (50, 100)
        );
    }
}
