//! The Linux watchdog device (`/dev/watchdog`), fed by the monitor each time the daemon proves
//! it is alive. A hung daemon stops the feeding and the hardware resets the machine: the last
//! line of defence when even the monitor cannot stop the resources (it is SIGSTOPped with the
//! whole node, or a process survives SIGKILL).
//!
//! Invariant: the magic close character 'V' is written only on a graceful shutdown. Every other
//! exit closes the device without it, and the kernel then keeps the timer running ("unexpected
//! close"), so a fenced node is reset unless a new daemon takes over feeding in time.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The byte written to keep the machine alive; any byte but 'V' works.
pub const WATCHDOG_KEEPALIVE: u8 = b'\0';
/// The magic close character: written before close, it disarms the watchdog.
pub const WATCHDOG_MAGIC_CLOSE: u8 = b'V';

/// An open watchdog device (or, in tests, a file standing in for it).
#[derive(Debug)]
pub struct Watchdog {
    device: File,
}

impl Watchdog {
    /// Opens `path` for writing. Opening a real device arms it.
    pub fn open(path: &Path) -> io::Result<Watchdog> {
        let device = OpenOptions::new().write(true).open(path)?;
        Ok(Watchdog { device })
    }

    /// Writes one keepalive byte.
    pub fn feed(&mut self) -> io::Result<()> {
        self.device.write_all(&[WATCHDOG_KEEPALIVE])
    }

    /// Writes the magic close character and closes the device: a graceful shutdown.
    pub fn close_disarmed(mut self) -> io::Result<()> {
        self.device.write_all(&[WATCHDOG_MAGIC_CLOSE])
    }
}
