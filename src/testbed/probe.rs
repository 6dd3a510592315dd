//! `wolfpack testbed probe` (hidden; run by the bed in the client namespace): what a user of
//! the services sees, and whether two nodes serve one group at once.
//!
//! Every `interval` (10 ms) is one round. In each round, for every group G, one thread connects
//! to G's service address the way a user would (from 198.18.0.200: ARP on the segment picks
//! the node), and one thread per node N connects from 198.18.0.(200+N), which policy routing
//! sends through node N only: node N answers it only while N itself has the address and serves
//! it (another node's packets are not forwarded; nodes do not route). All threads of a round
//! start at the same CLOCK_MONOTONIC instant, so two different names answering group G in one
//! round means both nodes served G within that round's window: the samples' [start, end]
//! intervals (bounded by the connect timeout) say how close together.
//!
//! `--service G=ADDRESS` (repeatable) probes ADDRESS as group G instead of group G's service
//! address: a catalog group's virtual IP (see `vip.rs`).
//!
//! Output, one line per sample: `<round> <start µs> <end µs> <group> <path> <result>`, where
//! path is `user` or `nN` and result is the node name that answered or `!timeout`,
//! `!refused`, `!error`. Paths through a node record answers only (failure is their normal).
use super::{host_address, micros, service_address, CLIENT_HOST, SERVICE_PORT};
use std::io::{LineWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// What the prober is told.
pub struct ProbeOptions {
    pub out: std::path::PathBuf,
    /// Groups 1..=groups at their service addresses, unless `services` names the targets.
    pub groups: u8,
    /// (group, address) pairs to probe instead.
    pub services: Vec<(u8, Ipv4Addr)>,
    pub nodes: u8,
    pub interval_ms: u64,
    pub timeout_ms: u64,
}

/// Probes until SIGTERM/SIGINT, then flushes and returns.
pub fn run(options: &ProbeOptions) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [libc::SIGTERM, libc::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|error| format!("cannot handle signal {signal}: {error}"))?;
    }
    let file = std::fs::File::create(&options.out)
        .map_err(|error| format!("cannot create {}: {error}", options.out.display()))?;
    let (sender, receiver) = mpsc::channel::<String>();
    let origin_us = micros() + 20_000;
    let mut threads = Vec::new();
    let mut services = options.services.clone();
    if services.is_empty() {
        for group in 1..=options.groups {
            let address = service_address(group)
                .parse()
                .map_err(|_| "bad service address")?;
            services.push((group, address));
        }
    }
    for (group, destination) in services {
        let mut paths = vec![("user".to_string(), None, true)];
        for node in 1..=options.nodes {
            let source: Ipv4Addr = host_address(0, CLIENT_HOST + node)
                .parse()
                .map_err(|_| "bad source address")?;
            paths.push((format!("n{node}"), Some(source), false));
        }
        for (path, source, record_failures) in paths {
            let target = Target {
                group,
                path,
                source,
                destination: SocketAddrV4::new(destination, SERVICE_PORT),
                record_failures,
            };
            let sender = sender.clone();
            let stop = Arc::clone(&stop);
            let (interval_us, timeout) = (
                options.interval_ms * 1000,
                Duration::from_millis(options.timeout_ms),
            );
            threads.push(std::thread::spawn(move || {
                target.run(origin_us, interval_us, timeout, &stop, &sender)
            }));
        }
    }
    drop(sender);
    // Line by line (a few hundred writes a second), so a test can follow the samples while
    // the prober runs (`watch.rs`).
    let mut writer = LineWriter::new(file);
    for line in receiver {
        writer
            .write_all(line.as_bytes())
            .map_err(|error| format!("cannot write samples: {error}"))?;
    }
    for thread in threads {
        let _ = thread.join();
    }
    writer
        .flush()
        .map_err(|error| format!("cannot write samples: {error}"))
}

struct Target {
    group: u8,
    path: String,
    source: Option<Ipv4Addr>,
    destination: SocketAddrV4,
    record_failures: bool,
}

impl Target {
    fn run(
        &self,
        origin_us: u64,
        interval_us: u64,
        timeout: Duration,
        stop: &AtomicBool,
        samples: &mpsc::Sender<String>,
    ) {
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let start_at = origin_us + round * interval_us;
            let now = micros();
            if now < start_at {
                std::thread::sleep(Duration::from_micros(start_at - now));
            }
            let start = micros();
            let result = probe_once(self.source, self.destination, timeout);
            let end = micros();
            if result.is_ok() || self.record_failures {
                let text = result.unwrap_or_else(|failure| failure.to_string());
                let line = format!(
                    "{round} {start} {end} {} {} {text}\n",
                    self.group, self.path
                );
                if samples.send(line).is_err() {
                    return;
                }
            }
            // The next round that has not started yet (a slow probe skips rounds, not time).
            round = (micros().saturating_sub(origin_us) / interval_us + 1).max(round + 1);
        }
    }
}

/// One connection: the name the service answered, or why none.
fn probe_once(
    source: Option<Ipv4Addr>,
    destination: SocketAddrV4,
    timeout: Duration,
) -> Result<String, &'static str> {
    let mut stream = connect(source, destination, timeout)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|_| "!error")?;
    let mut answer = [0u8; 64];
    let mut length = 0;
    while length < answer.len() {
        match stream.read(&mut answer[length..]) {
            Ok(0) => break,
            Ok(read) => {
                length += read;
                if answer[..length].contains(&b'\n') {
                    break;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Err("!timeout"),
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => return Err("!timeout"),
            Err(_) => return Err("!error"),
        }
    }
    let text = String::from_utf8_lossy(&answer[..length]);
    let name = text.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("!error");
    }
    Ok(name.to_string())
}

/// A TCP connection from `source` (when given) with a connect timeout (std cannot bind first).
fn connect(
    source: Option<Ipv4Addr>,
    destination: SocketAddrV4,
    timeout: Duration,
) -> Result<TcpStream, &'static str> {
    // SAFETY: plain socket calls on a descriptor this function owns; it is either closed here
    // or handed to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err("!error");
        }
        let stream = TcpStream::from_raw_fd(fd);
        if let Some(source) = source {
            let address = sockaddr(SocketAddrV4::new(source, 0));
            let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(fd, (&address as *const libc::sockaddr_in).cast(), size) != 0 {
                return Err("!error");
            }
        }
        let address = sockaddr(destination);
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let started = libc::connect(fd, (&address as *const libc::sockaddr_in).cast(), size);
        if started != 0 && *libc::__errno_location() != libc::EINPROGRESS {
            return Err(connect_error(*libc::__errno_location()));
        }
        let mut ready = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        if libc::poll(&mut ready, 1, timeout.as_millis() as i32) <= 0 {
            return Err("!timeout");
        }
        let mut error: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut error as *mut libc::c_int).cast(),
            &mut length,
        );
        if error != 0 {
            return Err(connect_error(error));
        }
        stream.set_nonblocking(false).map_err(|_| "!error")?;
        Ok(stream)
    }
}

fn connect_error(errno: i32) -> &'static str {
    match errno {
        libc::ECONNREFUSED => "!refused",
        libc::ETIMEDOUT => "!timeout",
        _ => "!error",
    }
}

fn sockaddr(address: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: address.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*address.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}
