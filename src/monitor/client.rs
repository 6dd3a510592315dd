//! The daemon's side of the monitor: `MonitorClient` spawns `wolfpack monitor` connected by a
//! Unix socketpair, sends `Command`s and receives `Event`s without blocking, so the daemon's
//! mio loop can register the socket (`socket()` or `as_raw_fd()`) and call `try_recv` and
//! `flush` when it is readable or writable.
//!
//! Invariants:
//! - The monitor gets its end of the socketpair as fd MONITOR_SOCKET_FD and nothing else of the
//!   daemon's (every other fd is close-on-exec); it runs in its own process group, so a Ctrl-C
//!   meant for the daemon's terminal does not kill it before it stops the resources.
//! - Dropping the client closes the socket: the monitor then fences and exits (1). A clean end
//!   is `shutdown`.
//! - The daemon must send some command at least every `fence_timeout_ms` (a `Ping` when it has
//!   nothing else to say); the monitor fences otherwise.
use super::codec::{decode_event, encode_command, FrameReader};
use super::config::{MonitorConfig, MONITOR_SOCKET_FD};
use super::constants::OUTGOING_BYTES_MAX;
use super::error::MonitorError;
use super::protocol::{Command, Event};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running monitor process and the daemon's end of its socket.
#[derive(Debug)]
pub struct MonitorClient {
    socket: mio::net::UnixStream,
    child: Child,
    frames: FrameReader,
    outgoing: Vec<u8>,
    fence_timeout_ms: u32,
    ping_sequence: u64,
}

impl MonitorClient {
    /// Starts `executable monitor ...` (normally `std::env::current_exe()`) with `config`.
    /// Fails with `Spawn` (InvalidInput) for a node id outside 1..=64 or a zero fence timeout.
    pub fn spawn(executable: &Path, config: MonitorConfig) -> Result<MonitorClient, MonitorError> {
        if !(1..=64).contains(&config.node_id) || config.fence_timeout_ms == 0 {
            return Err(MonitorError::Spawn(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the node id must be 1 to 64 and the fence timeout at least 1 ms",
            )));
        }
        let (daemon_end, monitor_end) =
            std::os::unix::net::UnixStream::pair().map_err(MonitorError::Spawn)?;
        daemon_end
            .set_nonblocking(true)
            .map_err(MonitorError::Spawn)?;
        let monitor_fd = monitor_end.as_raw_fd();
        let mut command = std::process::Command::new(executable);
        command
            .arg("monitor")
            .args(config.to_args())
            .stdin(Stdio::null())
            .process_group(0);
        // SAFETY: runs between fork and exec; dup2 and fcntl are async-signal-safe and the
        // closure allocates nothing. Both socket ends are close-on-exec (std creates them so);
        // dup2 gives the monitor a copy at MONITOR_SOCKET_FD without that flag.
        unsafe {
            command.pre_exec(move || {
                if monitor_fd == MONITOR_SOCKET_FD {
                    let flags = libc::fcntl(monitor_fd, libc::F_GETFD);
                    if flags < 0
                        || libc::fcntl(monitor_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(monitor_fd, MONITOR_SOCKET_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(MonitorError::Spawn)?;
        drop(monitor_end);
        Ok(MonitorClient {
            socket: mio::net::UnixStream::from_std(daemon_end),
            child,
            frames: FrameReader::default(),
            outgoing: Vec::new(),
            fence_timeout_ms: config.fence_timeout_ms,
            ping_sequence: 0,
        })
    }

    /// The monitor's process id.
    pub fn child_pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's end of the socket, to register with mio (READABLE, and WRITABLE while
    /// `has_pending_output`).
    pub fn socket(&mut self) -> &mut mio::net::UnixStream {
        &mut self.socket
    }

    /// Queues `command` and writes as much as the socket takes now; the rest goes out with
    /// `flush`. Nothing is queued when the command breaks a protocol limit.
    pub fn send(&mut self, command: &Command) -> Result<(), MonitorError> {
        encode_command(command, &mut self.outgoing).map_err(MonitorError::Invalid)?;
        self.flush()
    }

    /// Sends the next `Ping`; returns its sequence number, which the `Pong` carries back.
    pub fn ping(&mut self) -> Result<u64, MonitorError> {
        self.ping_sequence += 1;
        self.send(&Command::Ping {
            sequence: self.ping_sequence,
        })?;
        Ok(self.ping_sequence)
    }

    /// Writes queued commands until the socket would block.
    pub fn flush(&mut self) -> Result<(), MonitorError> {
        while !self.outgoing.is_empty() {
            match self.socket.write(&self.outgoing) {
                Ok(0) => return Err(MonitorError::Closed),
                Ok(count) => {
                    self.outgoing.drain(..count);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(MonitorError::Closed)
                }
                Err(error) => return Err(MonitorError::Io(error)),
            }
        }
        match self.outgoing.len() > OUTGOING_BYTES_MAX {
            true => Err(MonitorError::Backlogged),
            false => Ok(()),
        }
    }

    /// Whether commands wait for the socket to become writable.
    pub fn has_pending_output(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// The next whole event, `None` when none has fully arrived. Never blocks. After
    /// `Err(Closed)` the monitor is gone or going: reap it with `try_wait`.
    pub fn try_recv(&mut self) -> Result<Option<Event>, MonitorError> {
        if let Some(event) = self.next_buffered()? {
            return Ok(Some(event));
        }
        let mut buffer = [0u8; 4096];
        loop {
            match self.socket.read(&mut buffer) {
                Ok(0) => return Err(MonitorError::Closed),
                Ok(count) => {
                    self.frames.extend(&buffer[..count]);
                    if let Some(event) = self.next_buffered()? {
                        return Ok(Some(event));
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(MonitorError::Io(error)),
            }
        }
    }

    fn next_buffered(&mut self) -> Result<Option<Event>, MonitorError> {
        match self.frames.next_body().map_err(MonitorError::Protocol)? {
            Some(body) => decode_event(&body)
                .map(Some)
                .map_err(MonitorError::Protocol),
            None => Ok(None),
        }
    }

    /// The monitor's exit status once it has exited (reaping it), without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, MonitorError> {
        self.child.try_wait().map_err(MonitorError::Io)
    }

    /// Blocking: sends `Shutdown`, keeps pinging, collects events until the monitor exits, and
    /// returns its exit status (0 when every resource stopped) and the events. Past `timeout`
    /// the monitor is SIGKILLed (its resources then die of PR_SET_PDEATHSIG, leaders only).
    pub fn shutdown(mut self, timeout: Duration) -> Result<(ExitStatus, Vec<Event>), MonitorError> {
        let end = Instant::now() + timeout;
        let ping_interval = Duration::from_millis(u64::from(self.fence_timeout_ms / 3).max(1));
        let mut next_ping = Instant::now() + ping_interval;
        let mut events = Vec::new();
        let mut connected = self.send(&Command::Shutdown).is_ok();
        while Instant::now() < end {
            // Exited first, then read: the events it sent before exiting are all buffered.
            let exited = self.try_wait()?;
            while connected {
                match self.try_recv() {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => break,
                    Err(_) => connected = false,
                }
            }
            if let Some(status) = exited {
                return Ok((status, events));
            }
            if connected && Instant::now() >= next_ping {
                connected = self.ping().is_ok();
                next_ping += ping_interval;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(MonitorError::ShutdownTimedOut)
    }
}

impl AsRawFd for MonitorClient {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
