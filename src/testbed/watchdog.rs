//! The bed's hardware watchdog (issue 14): a timer that is NOT frozen with the node. Each node
//! started with `--watchdog` gets a FIFO (`/tmp/wp-<run>/wdN.fifo`) passed as `wolfpack node
//! --watchdog FIFO`; its monitor writes a keepalive byte per ping from the daemon
//! (`src/monitor/watchdog.rs`), and a thread of the testbed process, outside the node's
//! cgroup (as a watchdog chip is outside the CPU it resets), reads them. When `W` passes
//! without a byte it crashes the node with the `crash` verb's steps (`crash.rs`: every process
//! of its cgroup SIGKILLed while frozen, added addresses deleted) and records the crash, so the
//! overlap check closes the node's intervals there; the bed restarts it at the next heal, as
//! after a crash.
//!
//! Semantics, those of a Linux watchdog device as far as a FIFO shows them:
//! - armed by the first byte (a reader does not see a FIFO's open, so not by the open);
//! - every byte feeds it, 'V' included;
//! - end of file right after a 'V' (the monitor's graceful stop) disarms it; end of file after
//!   any other byte keeps the timer running (the kernel's "unexpected close"), so a monitor
//!   that fenced and exited, or died, is followed by a crash unless a new daemon (a new
//!   watchdog: the bed gives every start its own) takes over in time;
//! - it fires once; a node crashed by it gets a new watchdog when it starts again.
//!
//! Why this is enough for rule 5 of ARBITRATION.md: the monitor feeds only on a ping, a ping
//! comes only while every lease the node holds lasts `fence_timeout` more, and
//! `W ≤ Timing::watchdog_timeout_max_ms()` = F / (1 + ρ); so a node frozen (or hung) right after
//! its last feed is crashed before any of its leases can expire, and the survivors, which take
//! its groups only after the lease, never see it serve again. The bytes are timestamped when
//! this thread reads them, at or after the write: a starved testbed process makes the timer
//! late, never early, and the crash itself (freeze, kill, wait, delete addresses) takes a few
//! ms more; the lease's remaining F − W(1+ρ) plus what the node had left above F at its last
//! ping is the margin (measured in the README).
//!
//! The timer is `Timer`, sans-IO (bytes, end of file and times in, "fired" out), unit-tested;
//! `NodeWatchdog` is the thread with the FIFO.
use super::cgroup::NodeCgroup;
use super::crash::{kill_cgroups, remove_added_addresses};
use super::micros;
use super::names::RunNames;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The magic close character of the Linux watchdog API.
pub const MAGIC_CLOSE: u8 = b'V';
/// How often the thread looks at its stop flag while nothing is due.
const POLL_MS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No byte yet.
    Unarmed,
    /// Fed at `fed_us`; `magic`: the last byte was 'V'.
    Armed { fed_us: u64, magic: bool },
    /// 'V' then end of file: a graceful stop. A new byte arms it again.
    Disarmed,
    /// It fired; nothing changes it any more.
    Fired,
}

/// The watchdog's timer, without I/O: times are CLOCK_MONOTONIC µs given by the caller.
#[derive(Clone, Debug)]
pub struct Timer {
    timeout_us: u64,
    state: State,
}

impl Timer {
    pub fn new(timeout_ms: u64) -> Timer {
        Timer {
            timeout_us: timeout_ms * 1000,
            state: State::Unarmed,
        }
    }

    /// Bytes read at `now_us`: each feeds (and arms) the timer; the last says whether an end
    /// of file now would be a magic close.
    pub fn bytes(&mut self, bytes: &[u8], now_us: u64) {
        let Some(&last) = bytes.last() else {
            return;
        };
        if self.state != State::Fired {
            self.state = State::Armed {
                fed_us: now_us,
                magic: last == MAGIC_CLOSE,
            };
        }
    }

    /// The writer closed: disarmed after a 'V', else the timer keeps running.
    pub fn end_of_file(&mut self) {
        if let State::Armed { magic: true, .. } = self.state {
            self.state = State::Disarmed;
        }
    }

    /// When it fires unless fed before.
    pub fn deadline_us(&self) -> Option<u64> {
        match self.state {
            State::Armed { fed_us, .. } => Some(fed_us + self.timeout_us),
            _ => None,
        }
    }

    /// Whether it fires at `now_us`: `Some(µs since the last feed)` once, then never again.
    pub fn check(&mut self, now_us: u64) -> Option<u64> {
        let deadline = self.deadline_us()?;
        if now_us < deadline {
            return None;
        }
        let State::Armed { fed_us, .. } = self.state else {
            return None;
        };
        self.state = State::Fired;
        Some(now_us - fed_us)
    }

    pub fn armed(&self) -> bool {
        matches!(self.state, State::Armed { .. })
    }

    pub fn fired(&self) -> bool {
        self.state == State::Fired
    }
}

/// A watchdog that fired: when, and after how long unfed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    pub node: u8,
    /// When it fired (CLOCK_MONOTONIC µs).
    pub fired_us: u64,
    /// How long it had gone unfed then.
    pub unfed_us: u64,
    /// By when nothing of the node ran and no address it added remained (as `crash`
    /// records); 0 if the crash failed.
    pub crashed_us: u64,
}

/// What the thread needs to crash its node, and where it says so.
pub struct Target {
    pub node: u8,
    pub cgroup: NodeCgroup,
    pub names: RunNames,
    pub networks: u8,
    /// `actions.log` of the run.
    pub actions_log: PathBuf,
    /// Also print what it does (the bed's `verbose`).
    pub verbose: bool,
    /// Every watchdog of the bed appends here when it fires.
    pub fired: Arc<Mutex<Vec<Fired>>>,
}

/// A node's watchdog: the FIFO and the thread reading it. Dropping it stops the thread (a
/// crash it was doing is finished first).
pub struct NodeWatchdog {
    pub fifo: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NodeWatchdog {
    /// Creates the FIFO `fifo` (replacing an old one), opens its reading end (so the
    /// monitor's open for writing does not wait), and starts the thread.
    pub fn start(fifo: &Path, timeout_ms: u64, target: Target) -> Result<NodeWatchdog, String> {
        let _ = std::fs::remove_file(fifo);
        let path = std::ffi::CString::new(fifo.display().to_string())
            .map_err(|_| format!("{}: a NUL in the path", fifo.display()))?;
        // SAFETY: a NUL-terminated path and a mode.
        if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
            return Err(format!(
                "cannot create the watchdog FIFO {}: {}",
                fifo.display(),
                std::io::Error::last_os_error()
            ));
        }
        let reader = open_reader(fifo)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let fifo = fifo.to_path_buf();
            std::thread::Builder::new()
                .name(format!("watchdog-n{}", target.node))
                .spawn(move || run(reader, &fifo, Timer::new(timeout_ms), &target, &stop))
                .map_err(|error| format!("cannot start the watchdog thread: {error}"))?
        };
        Ok(NodeWatchdog {
            fifo: fifo.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for NodeWatchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.fifo);
    }
}

/// The FIFO's reading end, non-blocking (opening it does not wait for a writer).
fn open_reader(fifo: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .map_err(|error| format!("cannot open the watchdog FIFO {}: {error}", fifo.display()))
}

/// Appends to `actions.log` as `Bed::note` does (and prints when verbose).
fn note(target: &Target, what: &str) {
    use std::io::Write;
    let line = format!("{} {what}\n", micros());
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&target.actions_log)
    {
        let _ = file.write_all(line.as_bytes());
    }
    if target.verbose {
        print!("{line}");
    }
}

/// The thread: read bytes as they come, fire when due, stop when asked.
fn run(mut reader: File, fifo: &Path, mut timer: Timer, target: &Target, stop: &AtomicBool) {
    let mut buffer = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let now = micros();
        if let Some(unfed_us) = timer.check(now) {
            fire(target, now, unfed_us);
            return;
        }
        let wait_ms = timer
            .deadline_us()
            .map_or(POLL_MS, |deadline| {
                deadline.saturating_sub(now).div_ceil(1000)
            })
            .min(POLL_MS);
        let mut poll = libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, wait_ms as libc::c_int) };
        if ready <= 0 || poll.revents == 0 {
            continue;
        }
        match reader.read(&mut buffer) {
            Ok(0) => {
                // Every writer closed. A FIFO then polls as hung up until a writer opens it
                // again; a fresh reading end waits quietly instead.
                timer.end_of_file();
                match open_reader(fifo) {
                    Ok(fresh) => reader = fresh,
                    Err(error) => {
                        note(
                            target,
                            &format!("watchdog of node {}: {error}", target.node),
                        );
                        std::thread::sleep(std::time::Duration::from_millis(POLL_MS));
                    }
                }
            }
            Ok(read) => timer.bytes(&buffer[..read], micros()),
            Err(_) => {}
        }
    }
}

/// Crashes the node (the `crash` verb's steps) and records it.
fn fire(target: &Target, fired_us: u64, unfed_us: u64) {
    let node = target.node;
    let crash = kill_cgroups(&[(target.cgroup.clone(), node)])
        .and_then(|()| remove_added_addresses(&target.names, node, target.networks));
    let crashed_us = match &crash {
        Ok(()) => micros(),
        Err(_) => 0,
    };
    match crash {
        Ok(()) => note(
            target,
            &format!(
                "watchdog of node {node} fired after {} ms unfed: crashed it (every process of \
                 its cgroup SIGKILLed, added addresses removed, {} µs after firing)",
                unfed_us / 1000,
                crashed_us - fired_us
            ),
        ),
        Err(error) => note(
            target,
            &format!(
                "watchdog of node {node} fired after {} ms unfed; the crash failed: {error}",
                unfed_us / 1000
            ),
        ),
    }
    if let Ok(mut fired) = target.fired.lock() {
        fired.push(Fired {
            node,
            fired_us,
            unfed_us,
            crashed_us,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_armed_by_the_first_byte_and_fires_w_after_the_last() {
        let mut timer = Timer::new(499);
        assert_eq!(timer.check(10_000_000), None, "unarmed: never fires");
        timer.bytes(&[0], 1_000_000);
        assert!(timer.armed());
        assert_eq!(timer.deadline_us(), Some(1_499_000));
        timer.bytes(&[0, 0], 1_200_000);
        assert_eq!(timer.check(1_698_999), None);
        assert_eq!(timer.check(1_699_000), Some(499_000));
        assert!(timer.fired());
        assert_eq!(timer.check(5_000_000), None, "it fires once");
        timer.bytes(&[0], 5_000_000);
        assert_eq!(
            timer.deadline_us(),
            None,
            "a fired watchdog is not fed again"
        );
    }

    #[test]
    fn v_then_end_of_file_disarms_it() {
        let mut timer = Timer::new(100);
        timer.bytes(&[0], 0);
        timer.bytes(&[MAGIC_CLOSE], 50_000);
        timer.end_of_file();
        assert!(!timer.armed());
        assert_eq!(timer.check(10_000_000), None);
        // Opened and fed again: armed again.
        timer.bytes(&[0], 20_000_000);
        assert_eq!(timer.check(20_100_000), Some(100_000));
    }

    #[test]
    fn end_of_file_without_v_keeps_the_timer_running() {
        let mut timer = Timer::new(100);
        timer.bytes(&[0], 0);
        timer.end_of_file();
        assert!(timer.armed(), "an unexpected close does not disarm");
        assert_eq!(timer.check(99_999), None);
        assert_eq!(timer.check(150_000), Some(150_000));
    }

    #[test]
    fn only_a_v_as_the_last_byte_before_end_of_file_counts() {
        let mut timer = Timer::new(100);
        timer.bytes(&[MAGIC_CLOSE, 0], 0);
        timer.end_of_file();
        assert!(
            timer.armed(),
            "a keepalive after the V cancels the magic close"
        );
        let mut timer = Timer::new(100);
        timer.bytes(&[0, MAGIC_CLOSE], 0);
        timer.bytes(&[], 50_000);
        timer.end_of_file();
        assert!(!timer.armed(), "no bytes read is not a byte");
        // The V fed it, too.
        let mut timer = Timer::new(100);
        timer.bytes(&[0], 0);
        timer.bytes(&[MAGIC_CLOSE], 80_000);
        assert_eq!(timer.check(150_000), None);
    }

    #[test]
    fn end_of_file_before_any_byte_changes_nothing() {
        let mut timer = Timer::new(100);
        timer.end_of_file();
        assert_eq!(timer.check(1_000_000), None);
        timer.bytes(&[0], 2_000_000);
        assert_eq!(timer.deadline_us(), Some(2_100_000));
    }
}
