//! The event log of resource transitions, the evidence the overlap checker reads.
//!
//! One line per transition: `<CLOCK_MONOTONIC µs> node=<id> resource=<name> online|offline`.
//! CLOCK_MONOTONIC is shared by every network namespace of a host (not by time namespaces,
//! which the testbeds do not use), so lines from several nodes on one host compare directly.
//!
//! Invariant: the logged interval contains every instant the resource's processes could exist.
//! `online` is written (and its clock read) before the first process is spawned; `offline` only
//! after the resource's process groups are confirmed gone. Each line is one `write` to a file
//! opened with O_APPEND, so lines from several monitors sharing one file never interleave.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Microseconds of CLOCK_MONOTONIC.
pub fn monotonic_micros() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(
        result, 0,
        "clock_gettime(CLOCK_MONOTONIC) cannot fail on Linux"
    );
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanoseconds = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds * 1_000_000 + nanoseconds / 1_000
}

/// A transition the event log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The resource may be running from now on.
    Online,
    /// Nothing of the resource runs any more.
    Offline,
}

/// The append-only event log of one monitor.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    node_id: u8,
}

impl EventLog {
    /// Opens (creating, mode 0600: resource names are no other local user's business) `path`
    /// for appending.
    pub fn open(path: &Path, node_id: u8) -> io::Result<EventLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(EventLog { file, node_id })
    }

    /// Appends one line for `resource` with the current time. A failed write is returned: the
    /// caller must not start a resource whose `online` line is not on file.
    pub fn record(&mut self, resource: &str, transition: Transition) -> io::Result<()> {
        let word = match transition {
            Transition::Online => "online",
            Transition::Offline => "offline",
        };
        let line = format!(
            "{} node={} resource={resource} {word}\n",
            monotonic_micros(),
            self.node_id
        );
        self.file.write_all(line.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_created_event_log_is_private() {
        let dir = std::env::temp_dir().join(format!("wp-eventlog-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("events.log");
        let mut log = EventLog::open(&path, 1).expect("open");
        log.record("web", Transition::Online).expect("record");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "mode {mode:04o}: the event log is private");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
