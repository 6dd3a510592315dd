//! The Linux watchdog device (`/dev/watchdog`), fed by the monitor each time the daemon proves
//! it is alive. A hung daemon stops the feeding and the hardware resets the machine: the last
//! line of defence when even the monitor cannot stop the resources (it is SIGSTOPped with the
//! whole node, or a process survives SIGKILL).
//!
//! Its timeout `W` is part of the lease arithmetic (ARBITRATION.md rule 5): the monitor feeds
//! only on a ping, a ping comes only while every lease held lasts `fence_timeout` more, so a
//! `W` no longer than `Timing::watchdog_timeout_max_ms` resets a node that stopped feeding
//! before any of its leases can expire. `open` sets the device's timeout to the longest whole
//! number of seconds within that bound, reads it back (drivers round), and refuses a device
//! that cannot give one.
//!
//! Invariant: the magic close character 'V' is written only on a graceful shutdown, or right
//! after an open that is refused (nothing was fed, and the node does not start). Every other
//! exit closes the device without it, and the kernel then keeps the timer running ("unexpected
//! close"), so a fenced node is reset unless a new daemon takes over feeding in time.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The byte written to keep the machine alive; any byte but 'V' works.
pub const WATCHDOG_KEEPALIVE: u8 = b'\0';
/// The magic close character: written before close, it disarms the watchdog.
pub const WATCHDOG_MAGIC_CLOSE: u8 = b'V';
/// `_IOWR('W', 6, int)` and `_IOR('W', 7, int)` of `linux/watchdog.h`.
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;
const WDIOC_GETTIMEOUT: libc::c_ulong = 0x8004_5707;

/// An open watchdog device (or, in tests and the network-namespace testbed, a file or FIFO
/// standing in for it, whose timeout is not ours to set).
#[derive(Debug)]
pub struct Watchdog {
    device: File,
    timeout_ms: Option<u64>,
}

/// Why a watchdog cannot be used.
#[derive(Debug)]
pub enum WatchdogError {
    Open(io::Error),
    /// The device refused `WDIOC_SETTIMEOUT` or `WDIOC_GETTIMEOUT`.
    Timeout(io::Error),
    /// The disk's timing covers less than the device can give.
    TooLong {
        device_ms: u64,
        max_ms: u64,
    },
}

impl std::fmt::Display for WatchdogError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchdogError::Open(error) => write!(formatter, "cannot open it: {error}"),
            WatchdogError::Timeout(error) => {
                write!(formatter, "cannot set or read its timeout: {error}")
            }
            WatchdogError::TooLong { device_ms, max_ms } => write!(
                formatter,
                "its timeout is {device_ms} ms at the least, but the disk's timing covers at \
                 most {max_ms} ms (the fence timeout, less the clock drift bound)"
            ),
        }
    }
}

impl Watchdog {
    /// Opens `path` for writing (opening a real device arms it). A character device gets the
    /// longest timeout of whole seconds within `timeout_max_ms`, read back; if that is longer
    /// (no whole second fits, or the driver rounded up) it is disarmed and refused.
    pub fn open(path: &Path, timeout_max_ms: u64) -> Result<Watchdog, WatchdogError> {
        let device = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(WatchdogError::Open)?;
        let is_device = device
            .metadata()
            .map_err(WatchdogError::Open)?
            .file_type()
            .is_char_device();
        let mut watchdog = Watchdog {
            device,
            timeout_ms: None,
        };
        if !is_device {
            return Ok(watchdog);
        }
        let set = timeout_seconds_within(timeout_max_ms)
            .map_or(Ok(()), |seconds| watchdog.set_timeout(seconds))
            .and_then(|()| watchdog.read_timeout());
        let refused = match set {
            Ok(seconds) => {
                let device_ms = u64::from(seconds) * 1000;
                watchdog.timeout_ms = Some(device_ms);
                (device_ms > timeout_max_ms).then_some(WatchdogError::TooLong {
                    device_ms: device_ms.max(1000),
                    max_ms: timeout_max_ms,
                })
            }
            Err(error) => Some(WatchdogError::Timeout(error)),
        };
        match refused {
            None => Ok(watchdog),
            Some(error) => {
                // Nothing was fed and the node will not start: do not let the timer reset
                // the machine for a refusal.
                let _ = watchdog.close_disarmed();
                Err(error)
            }
        }
    }

    /// The device's timeout as read back, `None` for a file standing in for a device.
    pub fn timeout_ms(&self) -> Option<u64> {
        self.timeout_ms
    }

    /// Writes one keepalive byte.
    pub fn feed(&mut self) -> io::Result<()> {
        self.device.write_all(&[WATCHDOG_KEEPALIVE])
    }

    /// Writes the magic close character and closes the device: a graceful shutdown.
    pub fn close_disarmed(mut self) -> io::Result<()> {
        self.device.write_all(&[WATCHDOG_MAGIC_CLOSE])
    }

    fn set_timeout(&self, seconds: u32) -> io::Result<()> {
        let mut value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
        // SAFETY: an ioctl on an open descriptor with a pointer to a live c_int, as
        // WDIOC_SETTIMEOUT expects; the driver writes the timeout it chose back into it.
        let result = unsafe { libc::ioctl(self.device.as_raw_fd(), WDIOC_SETTIMEOUT, &mut value) };
        match result {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    fn read_timeout(&self) -> io::Result<u32> {
        let mut value: libc::c_int = 0;
        // SAFETY: an ioctl on an open descriptor with a pointer to a live c_int, as
        // WDIOC_GETTIMEOUT expects.
        let result = unsafe { libc::ioctl(self.device.as_raw_fd(), WDIOC_GETTIMEOUT, &mut value) };
        match result {
            0 => u32::try_from(value).map_err(|_| {
                io::Error::other(format!("the driver reports a timeout of {value} s"))
            }),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// Start-up's check of `path` against the disk's bound, before the node writes anything: a
/// character device is opened, given its timeout, read back and disarmed again (the monitor
/// opens it for good); a file or FIFO standing in for one is taken as it is (`None`).
pub fn check(path: &Path, timeout_max_ms: u64) -> Result<Option<u64>, WatchdogError> {
    let metadata = std::fs::metadata(path).map_err(WatchdogError::Open)?;
    if !metadata.file_type().is_char_device() {
        return Ok(None);
    }
    let watchdog = Watchdog::open(path, timeout_max_ms)?;
    let timeout_ms = watchdog.timeout_ms();
    watchdog.close_disarmed().map_err(WatchdogError::Open)?;
    Ok(timeout_ms)
}

/// The longest watchdog timeout of whole seconds (what drivers count) within `max_ms`; `None`
/// when not even one second fits.
pub fn timeout_seconds_within(max_ms: u64) -> Option<u32> {
    let seconds = max_ms / 1000;
    (seconds > 0).then(|| u32::try_from(seconds).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_the_longest_whole_second_within_the_bound() {
        assert_eq!(timeout_seconds_within(499), None);
        assert_eq!(timeout_seconds_within(999), None);
        assert_eq!(timeout_seconds_within(1000), Some(1));
        assert_eq!(timeout_seconds_within(2999), Some(2));
        assert_eq!(timeout_seconds_within(u64::MAX), Some(u32::MAX));
    }

    #[test]
    fn a_file_standing_in_for_a_device_has_no_timeout_of_ours() {
        let path = std::env::temp_dir().join(format!("wp-watchdog-{}", std::process::id()));
        std::fs::write(&path, b"").expect("the temporary directory is writable");
        let opened = Watchdog::open(&path, 10);
        let _ = std::fs::remove_file(&path);
        assert_eq!(opened.expect("a plain file opens").timeout_ms(), None);
    }

    #[test]
    fn a_refusal_says_what_the_disk_covers() {
        let text = WatchdogError::TooLong {
            device_ms: 1000,
            max_ms: 499,
        }
        .to_string();
        assert!(
            text.contains("1000 ms") && text.contains("499 ms"),
            "{text}"
        );
    }
}
