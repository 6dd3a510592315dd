//! The wall clock the core reads for failback windows and failover thresholds: unix seconds and
//! the local hour of day (the host's time zone, as the administrator writes `window=H-H`).

use crate::core::Input;

/// How often the core is told the time (ms of the monotonic clock).
pub const WALL_CLOCK_EVERY_MS: u64 = 10_000;

/// The input to step now, or None if the clock cannot be read.
pub fn reading() -> Option<Input<'static>> {
    let unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Input::WallClock {
        unix_s,
        local_hour: local_hour(unix_s)?,
    })
}

fn local_hour(unix_s: u64) -> Option<u8> {
    let time = libc::time_t::try_from(unix_s).ok()?;
    // SAFETY: localtime_r writes only into `broken_down`, which lives across the call; a null
    // return means it failed and we do not read the struct.
    let mut broken_down: libc::tm = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::localtime_r(&time, &mut broken_down) };
    if result.is_null() {
        return None;
    }
    u8::try_from(broken_down.tm_hour)
        .ok()
        .filter(|hour| *hour < 24)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_local_hour_is_an_hour_of_the_day() {
        let hour = super::local_hour(1_800_000_000);
        assert!(hour.is_some_and(|hour| hour < 24), "{hour:?}");
    }
}
