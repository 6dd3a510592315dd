//! The monitor process: `wolfpack monitor --fd 3 ...`, started by the node daemon. One mio loop
//! over the daemon's socket and a signal self-pipe; resources live in `holder/`.
//!
//! The dead-man switch: the fence deadline is `fence_timeout_ms` after the last `Ping`. It is
//! checked right after every wakeup, before any newly arrived command is read, so commands that
//! queued up while this process (or the whole node) was stopped cannot excuse a missed deadline.
//! It fences (stops every resource top-down along their dependencies within FENCE_GRACE_MS,
//! then SIGKILLs what still runs: `holder/fence.rs`) and exits 1 when the deadline passes, the
//! connection closes or breaks, a frame breaks the protocol, the daemon stops reading, or
//! SIGTERM/SIGINT/SIGHUP arrives.
//!
//! Exit codes: 0 after `Shutdown`; 1 fenced or failed to set up; 2 bad arguments.
use super::children;
use super::codec::{decode_command, encode_event, FrameReader};
use super::config::MonitorConfig;
use super::constants::{LOOP_SLEEP_MS_MAX, OUTGOING_BYTES_MAX, READY_RETRY_MS};
use super::event_log::EventLog;
use super::holder::Holder;
use super::protocol::Command;
use super::resource::ocf;
use super::watchdog::Watchdog;
use super::{EXIT_FENCED, EXIT_SHUTDOWN};
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);
const SIGNALS: Token = Token(1);

/// The running monitor.
struct Monitor {
    node: u8,
    /// `MonitorConfig::node_name`, given to OCF agents.
    node_name: Option<String>,
    poll: Poll,
    socket: UnixStream,
    signal_reader: UnixStream,
    /// The terminating signal received, 0 for none (set by the signal handler).
    terminated_by: Arc<AtomicUsize>,
    holder: Holder,
    watchdog: Option<Watchdog>,
    frames: FrameReader,
    outgoing: Vec<u8>,
    fence_timeout: Duration,
    /// `None` until the daemon's first command: nothing can be running before one (resources
    /// start only on command), and a slow daemon start-up (seen: 2.3 s under TCG) must not
    /// make the monitor fence a node that never held anything.
    fence_deadline: Option<Instant>,
    shutting_down: bool,
    /// After `Shutdown` the daemon may hang up: the graceful stop goes on (the fence deadline
    /// still bounds it) and nothing more is written.
    daemon_gone: bool,
    fence_ack: Option<super::fence_ack::FenceAckTarget>,
}

/// Runs the monitor until it shuts down or fences; returns the exit code.
pub fn run(config: &MonitorConfig, socket_fd: RawFd) -> i32 {
    let outcome = Monitor::set_up(config, socket_fd).and_then(|mut monitor| {
        let fence_reason = monitor.serve()?;
        monitor.finish(fence_reason)
    });
    outcome.unwrap_or_else(|error| {
        log::error!("monitor node={}: {error}", config.node_id);
        EXIT_FENCED
    })
}

impl Monitor {
    fn set_up(config: &MonitorConfig, socket_fd: RawFd) -> io::Result<Monitor> {
        let context = |what: &str, path: &std::path::Path| {
            let what = format!("cannot open {what} {}", path.display());
            move |error: io::Error| io::Error::other(format!("{what}: {error}"))
        };
        let std_socket = adopt_socket(socket_fd)?;
        std_socket.set_nonblocking(true)?;
        let mut socket = UnixStream::from_std(std_socket);
        std::fs::create_dir_all(&config.resource_log_dir)
            .map_err(context("resource log directory", &config.resource_log_dir))?;
        let log = EventLog::open(&config.event_log, config.node_id)
            .map_err(context("event log", &config.event_log))?;
        let watchdog = match &config.watchdog {
            Some(path) => Some(
                Watchdog::open(path, config.watchdog_timeout_max_ms)
                    .map_err(|error| io::Error::other(error.to_string()))
                    .map_err(context("watchdog", path))?,
            ),
            None => None,
        };
        children::become_subreaper()?;
        let (mut signal_reader, signal_writer) = UnixStream::pair()?;
        let terminated_by = Arc::new(AtomicUsize::new(0));
        // The flag is registered first so it is set before the wakeup byte is written.
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            signal_hook::flag::register_usize(signal, Arc::clone(&terminated_by), signal as usize)?;
        }
        for signal in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            let writer = signal_writer.as_fd().try_clone_to_owned()?;
            signal_hook::low_level::pipe::register(signal, writer)?;
        }
        let poll = Poll::new()?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry().register(&mut socket, SOCKET, interest)?;
        poll.registry()
            .register(&mut signal_reader, SIGNALS, Interest::READABLE)?;
        let fence_timeout = Duration::from_millis(u64::from(config.fence_timeout_ms));
        log::info!(
            "monitor node={}: running, fence timeout {} ms",
            config.node_id,
            config.fence_timeout_ms
        );
        Ok(Monitor {
            node: config.node_id,
            node_name: config.node_name.clone(),
            poll,
            socket,
            signal_reader,
            terminated_by,
            holder: {
                let mut holder = Holder::new(config.node_id, config.resource_log_dir.clone(), log);
                holder.ocf_state_dir = config.ocf_state_dir.clone();
                holder
            },
            watchdog,
            frames: FrameReader::default(),
            outgoing: Vec::new(),
            fence_timeout,
            fence_deadline: None,
            shutting_down: false,
            daemon_gone: false,
            fence_ack: config.fence_ack.clone(),
        })
    }

    /// The event loop. Returns `None` after a graceful `Shutdown`, or why it must fence.
    fn serve(&mut self) -> io::Result<Option<String>> {
        let mut events = Events::with_capacity(16);
        loop {
            let now = Instant::now();
            let tick_ms = match self.holder.is_busy() {
                true => READY_RETRY_MS / 4,
                false => LOOP_SLEEP_MS_MAX,
            };
            let mut wake_at = now + Duration::from_millis(tick_ms);
            if let Some(deadline) = self.fence_deadline {
                wake_at = wake_at.min(deadline);
            }
            if let Some(deadline) = self.holder.next_deadline() {
                wake_at = wake_at.min(deadline);
            }
            let timeout = wake_at.saturating_duration_since(now);
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            if let Err(why) = self.step(Instant::now()) {
                return Ok(Some(why));
            }
            if self.shutting_down && !self.holder.is_stopping_all() {
                return Ok(None);
            }
        }
    }

    /// One wakeup: deadline, signals, children, commands, resources, events. `Err` = fence.
    fn step(&mut self, now: Instant) -> Result<(), String> {
        if self.fence_deadline.is_some_and(|deadline| now >= deadline) {
            let silence_ms = self.fence_timeout.as_millis();
            return Err(format!("no ping from the daemon for {silence_ms} ms"));
        }
        drain(&mut self.signal_reader);
        match self.terminated_by.load(Ordering::SeqCst) {
            0 => {}
            signal => return Err(format!("received signal {signal}")),
        }
        for (pid, status) in children::reap_exited() {
            self.holder.observe_exit(pid, status);
        }
        let connection = match self.daemon_gone {
            true => Ok(()),
            false => read_available(&mut self.socket, &mut self.frames),
        };
        let mut protocol = Ok(());
        let mut heard = false;
        let mut pinged = false;
        loop {
            let command = match self.frames.next_body() {
                Ok(Some(body)) => decode_command(&body),
                Ok(None) => break,
                Err(error) => Err(error),
            };
            match command {
                Ok(command) => {
                    // Only `Ping` re-arms: the daemon pings when its core renewed the lease (or
                    // holds nothing), so operations it sends for other reasons (a check, a stop
                    // retried) never keep resources running past the lease.
                    pinged |= matches!(command, Command::Ping { .. });
                    heard = true;
                    self.handle(command, now);
                }
                Err(error) => {
                    protocol = Err(format!("protocol error from the daemon: {error}"));
                    break;
                }
            }
        }
        // The first command of any kind arms the switch; from then on only pings extend it.
        if pinged || (heard && self.fence_deadline.is_none()) {
            self.fence_deadline = Some(now + self.fence_timeout);
            if let Some(Err(error)) = self.watchdog.as_mut().map(Watchdog::feed) {
                log::error!(
                    "monitor node={}: cannot feed the watchdog: {error}",
                    self.node
                );
            }
        }
        self.holder.advance(now);
        for event in self.holder.take_events() {
            if let Err(error) = encode_event(&event, &mut self.outgoing) {
                log::error!(
                    "monitor node={}: cannot encode {event:?}: {error}",
                    self.node
                );
            }
        }
        protocol?;
        match connection {
            Err(why) if !self.shutting_down => return Err(why),
            Err(_) => self.daemon_gone = true,
            Ok(()) => {}
        }
        match self.daemon_gone {
            true => self.outgoing.clear(),
            false => write_available(&mut self.socket, &mut self.outgoing)?,
        }
        Ok(())
    }

    fn handle(&mut self, command: Command, now: Instant) {
        let holder = &mut self.holder;
        match command {
            Command::Ping { sequence } => holder.pong(sequence),
            Command::Start {
                resource,
                kind,
                mut params,
                depends,
                timeout_ms,
            } => {
                if let (true, Some(name)) = (kind.starts_with("ocf:"), &self.node_name) {
                    ocf::set_node_name(&mut params, name);
                }
                holder.start(&resource, &kind, &params, &depends, timeout_ms, now)
            }
            Command::Stop {
                resource,
                timeout_ms,
            } => holder.stop(&resource, timeout_ms, now),
            Command::Check {
                resource,
                level,
                timeout_ms,
            } => holder.check(&resource, level, timeout_ms, now),
            Command::StopAll => holder.stop_all(now),
            Command::Shutdown => {
                self.shutting_down = true;
                holder.stop_all(now);
            }
        }
    }

    /// After the loop: a graceful end flushes the last events and disarms the watchdog; a
    /// fence stops everything at once and leaves the watchdog armed.
    fn finish(mut self, fence_reason: Option<String>) -> io::Result<i32> {
        let node = self.node;
        let Some(why) = fence_reason else {
            log::info!("monitor node={node}: shut down; every resource stopped");
            let flush_end = Instant::now() + Duration::from_millis(LOOP_SLEEP_MS_MAX);
            while !self.outgoing.is_empty() && !self.daemon_gone && Instant::now() < flush_end {
                if write_available(&mut self.socket, &mut self.outgoing).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(device) = self.watchdog.take() {
                device.close_disarmed()?;
            }
            return Ok(EXIT_SHUTDOWN);
        };
        log::error!("monitor node={node}: fencing: {why}; stopping every resource");
        let survivors = self.holder.fence();
        match survivors.is_empty() {
            true => log::error!("monitor node={node}: fenced; every resource is offline"),
            false => log::error!("monitor node={node}: fenced; survived SIGKILL: {survivors:?}"),
        }
        // Only a fence that left nothing running may tell the survivors so.
        if let (true, Some(ack)) = (survivors.is_empty(), &self.fence_ack) {
            match ack.write() {
                Ok(()) => log::info!(
                    "monitor node={node}: acknowledged every fence request on the shared disk"
                ),
                Err(error) => log::error!(
                    "monitor node={node}: cannot write the fence acknowledgement: {error}"
                ),
            }
        }
        Ok(EXIT_FENCED)
    }
}

/// Takes ownership of the inherited socket, after checking that `fd` is one.
fn adopt_socket(fd: RawFd) -> io::Result<std::os::unix::net::UnixStream> {
    // SAFETY: fstat writes only into `stat`; a closed fd fails with EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::fstat(fd, &mut stat) };
    if result != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::other(format!(
            "fd {fd} is not the daemon's socket"
        )));
    }
    // SAFETY: the fd is an open socket the daemon handed to this process for its sole use.
    Ok(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
}

/// Reads everything the socket has; `Err` says why the connection is over (EOF included).
fn read_available(socket: &mut UnixStream, frames: &mut FrameReader) -> Result<(), String> {
    let mut buffer = [0u8; 4096];
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => return Err("the daemon closed the connection".to_string()),
            Ok(count) => frames.extend(&buffer[..count]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("reading from the daemon: {error}")),
        }
    }
}

/// Writes as much of `outgoing` as the socket takes; a daemon that leaves more than
/// OUTGOING_BYTES_MAX unread counts as gone.
fn write_available(socket: &mut UnixStream, outgoing: &mut Vec<u8>) -> Result<(), String> {
    while !outgoing.is_empty() {
        match socket.write(outgoing) {
            Ok(count) => {
                outgoing.drain(..count);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("writing to the daemon: {error}")),
        }
    }
    match outgoing.len() > OUTGOING_BYTES_MAX {
        true => Err(format!("the daemon left {} bytes unread", outgoing.len())),
        false => Ok(()),
    }
}

/// Empties the signal self-pipe (before acting on the signals, so none is lost).
fn drain(reader: &mut UnixStream) {
    let mut buffer = [0u8; 64];
    while matches!(reader.read(&mut buffer), Ok(count) if count > 0) {}
}
