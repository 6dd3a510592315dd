//! The monitor process: `wolfpack monitor --fd 3 ...`, started by the node daemon. One mio loop
//! over the daemon's socket and a signal self-pipe; resources live in `holder.rs`.
//!
//! The dead-man switch: the fence deadline is `fence_timeout_ms` after the last command. It is
//! checked right after every wakeup, before any newly arrived command is read, so commands that
//! queued up while this process (or the whole node) was stopped cannot excuse a missed deadline.
//! It fences (stops every resource with SIGKILL after FENCE_GRACE_MS) and exits 1 when the
//! deadline passes, the connection closes or breaks, a frame breaks the protocol, the daemon
//! stops reading, or SIGTERM/SIGINT/SIGHUP arrives.
//!
//! Exit codes: 0 after `Shutdown`; 1 fenced or failed to set up; 2 bad arguments.
use super::children;
use super::codec::{decode_command, encode_event, FrameReader};
use super::config::MonitorConfig;
use super::constants::{LOOP_SLEEP_MS_MAX, OUTGOING_BYTES_MAX, READY_RETRY_MS};
use super::event_log::EventLog;
use super::holder::Holder;
use super::protocol::{Command, Event};
use super::watchdog::Watchdog;
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::os::unix::io::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);
const SIGNALS: Token = Token(1);

/// Why the loop ended.
enum Ending {
    /// `Shutdown` completed.
    Graceful,
    /// The dead-man switch fired; the text says why.
    Fence(String),
}

/// Runs the monitor until it shuts down or fences; returns the exit code.
pub fn run(config: &MonitorConfig, socket_fd: RawFd) -> i32 {
    match serve(config, socket_fd) {
        Ok(code) => code,
        Err(error) => {
            log::error!("monitor node={}: {error}", config.node_id);
            1
        }
    }
}

fn open_socket(fd: RawFd) -> io::Result<std::os::unix::net::UnixStream> {
    // SAFETY: fstat writes only into `stat`; an fd that is not open fails with EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::other(format!(
            "fd {fd} is not the daemon's socket"
        )));
    }
    // SAFETY: the fd is an open socket handed to this process for its sole use.
    Ok(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
}

fn serve(config: &MonitorConfig, socket_fd: RawFd) -> io::Result<i32> {
    let node = config.node_id;
    let std_socket = open_socket(socket_fd)?;
    std_socket.set_nonblocking(true)?;
    let mut socket = UnixStream::from_std(std_socket);
    let mut log = EventLog::open(&config.event_log, node).map_err(|error| {
        io::Error::other(format!(
            "cannot open event log {}: {error}",
            config.event_log.display()
        ))
    })?;
    let mut watchdog = match &config.watchdog {
        Some(path) => Some(Watchdog::open(path).map_err(|error| {
            io::Error::other(format!("cannot open watchdog {}: {error}", path.display()))
        })?),
        None => None,
    };
    children::become_subreaper()?;
    let (mut signal_reader, signal_writer) = UnixStream::pair()?;
    let terminated_by = Arc::new(AtomicUsize::new(0));
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        signal_hook::flag::register_usize(signal, Arc::clone(&terminated_by), signal as usize)?;
    }
    for signal in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let writer: std::os::unix::net::UnixStream = signal_writer.try_clone_std()?;
        signal_hook::low_level::pipe::register(signal, writer)?;
    }
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
    poll.registry()
        .register(&mut signal_reader, SIGNALS, Interest::READABLE)?;

    let fence_timeout = Duration::from_millis(u64::from(config.fence_timeout_ms));
    let mut fence_deadline = Instant::now() + fence_timeout;
    let mut holder = Holder::new(node, config.resource_log_dir.clone());
    let mut frames = FrameReader::default();
    let mut outgoing: Vec<u8> = Vec::new();
    let mut events = Events::with_capacity(16);
    let mut stopping_all = false;
    let mut shutting_down = false;
    // After `Shutdown` the daemon may hang up; the graceful stop goes on (the fence deadline
    // still bounds it), and nothing more is written.
    let mut daemon_gone = false;
    log::info!(
        "monitor node={node}: running, fence timeout {} ms",
        config.fence_timeout_ms
    );

    let ending = loop {
        let now = Instant::now();
        let tick_ms = if holder.is_busy() {
            READY_RETRY_MS / 4
        } else {
            LOOP_SLEEP_MS_MAX
        };
        let mut wake_at = fence_deadline.min(now + Duration::from_millis(tick_ms));
        if let Some(deadline) = holder.next_deadline() {
            wake_at = wake_at.min(deadline);
        }
        match poll.poll(&mut events, Some(wake_at.saturating_duration_since(now))) {
            Err(error) if error.kind() != io::ErrorKind::Interrupted => return Err(error),
            _ => {}
        }
        let now = Instant::now();
        if now >= fence_deadline {
            break Ending::Fence(format!(
                "no command from the daemon for {} ms",
                config.fence_timeout_ms
            ));
        }
        drain(&mut signal_reader);
        let signal = terminated_by.load(Ordering::SeqCst);
        if signal != 0 {
            break Ending::Fence(format!("received signal {signal}"));
        }
        for (pid, status) in children::reap_exited() {
            holder.observe_exit(pid, status);
        }
        let mut out: Vec<Event> = Vec::new();
        let connection = match daemon_gone {
            true => Ok(()),
            false => read_available(&mut socket, &mut frames),
        };
        let mut commands = Vec::new();
        let ended = loop {
            match frames.next_body() {
                Ok(Some(body)) => match decode_command(&body) {
                    Ok(command) => commands.push(command),
                    Err(error) => break Some(format!("protocol error from the daemon: {error}")),
                },
                Ok(None) => break None,
                Err(error) => break Some(format!("protocol error from the daemon: {error}")),
            }
        };
        if !commands.is_empty() {
            fence_deadline = now + fence_timeout;
            if let Some(device) = &mut watchdog {
                if let Err(error) = device.feed() {
                    log::error!("monitor node={node}: cannot feed the watchdog: {error}");
                }
            }
        }
        for command in commands {
            match command {
                Command::Ping { sequence } => out.push(Event::Pong { sequence }),
                Command::Start {
                    resource,
                    kind,
                    params,
                    timeout_ms,
                } => {
                    if stopping_all {
                        let reason = "stopping all resources".to_string();
                        out.push(Event::Done {
                            resource,
                            operation: super::protocol::Operation::Start,
                            outcome: super::protocol::Outcome::Rejected(reason),
                            elapsed_ms: 0,
                        });
                    } else {
                        holder.start(
                            &resource, &kind, &params, timeout_ms, now, &mut log, &mut out,
                        );
                    }
                }
                Command::Stop {
                    resource,
                    timeout_ms,
                } => holder.stop(&resource, timeout_ms, now, &mut log, &mut out),
                Command::Check {
                    resource,
                    level,
                    timeout_ms,
                } => holder.check(&resource, level, timeout_ms, now, &mut log, &mut out),
                Command::StopAll | Command::Shutdown => {
                    shutting_down |= command == Command::Shutdown;
                    stopping_all = true;
                    holder.stop_all(now, &mut log, &mut out);
                }
            }
        }
        holder.advance(now, &mut log, &mut out);
        if stopping_all && holder.is_empty() {
            out.push(Event::AllStopped);
            stopping_all = false;
        }
        for event in &out {
            if let Err(error) = encode_event(event, &mut outgoing) {
                log::error!("monitor node={node}: cannot encode {event:?}: {error}");
            }
        }
        if let Some(why) = ended {
            break Ending::Fence(why);
        }
        match connection {
            Err(why) if !shutting_down => break Ending::Fence(why),
            Err(_) => daemon_gone = true,
            Ok(()) => {}
        }
        if daemon_gone {
            outgoing.clear();
        } else if let Err(why) = write_available(&mut socket, &mut outgoing) {
            break Ending::Fence(why);
        }
        if shutting_down && !stopping_all {
            break Ending::Graceful;
        }
    };

    match ending {
        Ending::Graceful => {
            log::info!("monitor node={node}: shut down; every resource stopped");
            let flush_end = Instant::now() + Duration::from_millis(LOOP_SLEEP_MS_MAX);
            while !outgoing.is_empty() && !daemon_gone && Instant::now() < flush_end {
                if write_available(&mut socket, &mut outgoing).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(device) = watchdog.take() {
                device.close_disarmed()?;
            }
            Ok(0)
        }
        Ending::Fence(why) => {
            log::error!("monitor node={node}: fencing: {why}; stopping every resource");
            let survivors = holder.fence(&mut log);
            match survivors.is_empty() {
                true => log::error!("monitor node={node}: fenced; every resource is offline"),
                false => {
                    log::error!("monitor node={node}: fenced, but survived SIGKILL: {survivors:?}")
                }
            }
            Ok(1)
        }
    }
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
        true => Err(format!(
            "the daemon left {} bytes of events unread",
            outgoing.len()
        )),
        false => Ok(()),
    }
}

/// Empties the signal self-pipe (before acting on the signals, so none is lost).
fn drain(reader: &mut UnixStream) {
    let mut buffer = [0u8; 64];
    while matches!(reader.read(&mut buffer), Ok(count) if count > 0) {}
}

trait TryCloneStd {
    fn try_clone_std(&self) -> io::Result<std::os::unix::net::UnixStream>;
}

impl TryCloneStd for UnixStream {
    /// A std handle on a duplicate of this socket's fd (for signal-hook's pipe writer).
    fn try_clone_std(&self) -> io::Result<std::os::unix::net::UnixStream> {
        use std::os::fd::AsFd;
        let owned = self.as_fd().try_clone_to_owned()?;
        Ok(std::os::unix::net::UnixStream::from(owned))
    }
}
