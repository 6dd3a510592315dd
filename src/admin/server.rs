//! The daemon's side of the admin socket, driven by the event loop (non-blocking, mio).
//!
//! The loop calls `accept_ready` and `connection_ready` on readiness; complete requests come out
//! of `next_request`; the loop answers with `respond` (or `stream` then `finish`). Connections
//! are bounded in number and in buffered bytes, so a stuck or hostile client costs little.
use super::REQUEST_BYTES_MAX;
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// How many admin connections may be open at once; more are closed at accept.
const CONNECTIONS_MAX: usize = 32;
/// How much answer may wait for a slow reader before the connection is dropped.
const PENDING_BYTES_MAX: usize = 4 << 20;

/// Why the admin socket could not start.
#[derive(Debug)]
pub enum AdminSocketError {
    /// A node answers on the socket at the path.
    InUse(PathBuf),
    /// Something other than a socket is at the path; it is never removed.
    NotASocket(PathBuf),
    /// Inspecting, removing, binding, chmod or registration failed.
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
}

impl std::fmt::Display for AdminSocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminSocketError::InUse(path) => write!(
                f,
                "admin socket {} is in use: another node answers on it",
                path.display()
            ),
            AdminSocketError::NotASocket(path) => write!(
                f,
                "admin socket path {} holds something that is not a socket; \
                 move it away or pass another --admin-socket",
                path.display()
            ),
            AdminSocketError::Io { path, step, source } => {
                write!(f, "cannot {step} admin socket {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for AdminSocketError {}

/// The `step` on `path` failed with `source`.
fn io_failure(path: &Path, step: &'static str, source: io::Error) -> AdminSocketError {
    AdminSocketError::Io {
        path: path.to_path_buf(),
        step,
        source,
    }
}

/// Clears the way to bind `path`. A node that crashed leaves its socket behind, and refusing
/// that would keep systemd's restart from ever bringing the node back; so a socket nobody
/// listens on is removed. A socket that answers belongs to a running node, and anything that
/// is not a socket is not ours to delete.
fn remove_stale_socket(path: &Path) -> Result<(), AdminSocketError> {
    let metadata = match path.symlink_metadata() {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(io_failure(path, "inspect", source)),
    };
    if !metadata.file_type().is_socket() {
        return Err(AdminSocketError::NotASocket(path.to_path_buf()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(AdminSocketError::InUse(path.to_path_buf())),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|source| io_failure(path, "remove stale", source))
        }
        Err(source) => Err(io_failure(path, "probe", source)),
    }
}

/// A complete request line from a client, split into its words (still escaped:
/// `AdminRequest::parse_received` decodes and parses them).
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine {
    /// Answer with this.
    pub connection: Token,
    /// The request's words as they arrived, escaped (`crate::admin::words`).
    pub words: Vec<String>,
}

struct Connection {
    stream: UnixStream,
    received: Vec<u8>,
    pending: Vec<u8>,
    /// A request was taken from this connection; it reads nothing more.
    requested: bool,
    /// Close once `pending` is written.
    finishing: bool,
}

/// The listening socket and its connections.
pub struct AdminServer {
    path: PathBuf,
    listener: UnixListener,
    listener_token: Token,
    next_token: usize,
    first_connection_token: usize,
    connections: BTreeMap<Token, Connection>,
    requests: Vec<RequestLine>,
    allowed_uid: u32,
    /// Connections refused: wrong user, too many, or a malformed request.
    pub refused: u64,
}

impl AdminServer {
    /// Binds `path` with mode 0600. Connection tokens are taken from `first_connection_token` up.
    pub fn bind(
        path: &Path,
        registry: &Registry,
        listener_token: Token,
        first_connection_token: usize,
    ) -> Result<AdminServer, AdminSocketError> {
        remove_stale_socket(path)?;
        let io_error = |step| move |source| io_failure(path, step, source);
        let mut listener = UnixListener::bind(path).map_err(io_error("bind"))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("chmod"))?;
        registry
            .register(&mut listener, listener_token, Interest::READABLE)
            .map_err(io_error("register"))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let allowed_uid = unsafe { libc::geteuid() };
        Ok(AdminServer {
            path: path.to_path_buf(),
            listener,
            listener_token,
            next_token: first_connection_token,
            first_connection_token,
            connections: BTreeMap::new(),
            requests: Vec::new(),
            allowed_uid,
            refused: 0,
        })
    }

    /// Whether `token` is the listener's or one of this server's connections.
    pub fn owns(&self, token: Token) -> bool {
        token == self.listener_token || self.connections.contains_key(&token)
    }

    /// Handles readiness of `token` (listener or connection).
    pub fn ready(&mut self, registry: &Registry, token: Token) {
        if token == self.listener_token {
            self.accept_all(registry);
        } else {
            self.serve(registry, token);
        }
    }

    /// The next complete request, if any.
    pub fn next_request(&mut self) -> Option<RequestLine> {
        match self.requests.is_empty() {
            true => None,
            false => Some(self.requests.remove(0)),
        }
    }

    /// Answers a request and closes the connection once the answer is written.
    pub fn respond(
        &mut self,
        registry: &Registry,
        connection: Token,
        result: Result<String, String>,
    ) {
        let text = match result {
            Ok(body) => format!("ok\n{body}"),
            Err(message) => format!("error {}\n", message.replace('\n', " ")),
        };
        self.queue(registry, connection, text.as_bytes(), true);
    }

    /// Starts or continues a streamed answer (the `ok` line must be the first thing streamed).
    pub fn stream(&mut self, registry: &Registry, connection: Token, text: &str) {
        self.queue(registry, connection, text.as_bytes(), false);
    }

    /// Whether a connection is still open (a streaming client may have hung up).
    pub fn is_open(&self, connection: Token) -> bool {
        self.connections.contains_key(&connection)
    }

    fn accept_all(&mut self, registry: &Registry) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    log::warn!("admin socket accept failed: {error}");
                    return;
                }
            };
            if self.connections.len() >= CONNECTIONS_MAX || !self.peer_allowed(&stream) {
                self.refused += 1;
                let _ = stream.write_all(b"error permission denied or too many connections\n");
                continue;
            }
            let token = Token(self.next_token);
            self.next_token = self
                .next_token
                .wrapping_add(1)
                .max(self.first_connection_token);
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            let connection = Connection {
                stream,
                received: Vec::new(),
                pending: Vec::new(),
                requested: false,
                finishing: false,
            };
            self.connections.insert(token, connection);
            self.serve(registry, token);
        }
    }

    fn peer_allowed(&self, stream: &UnixStream) -> bool {
        let mut credentials = libc::ucred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        };
        let mut length = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED writes at most `length` bytes into `credentials`, a valid ucred.
        let result = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut credentials as *mut libc::ucred).cast(),
                &mut length,
            )
        };
        result == 0 && (credentials.uid == 0 || credentials.uid == self.allowed_uid)
    }

    fn serve(&mut self, registry: &Registry, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let mut closed = false;
        if !connection.requested {
            let mut chunk = [0u8; 4096];
            loop {
                match connection.stream.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(count) => connection.received.extend_from_slice(&chunk[..count]),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
                if connection.received.len() > REQUEST_BYTES_MAX {
                    break;
                }
            }
            if let Some(end) = connection.received.iter().position(|&byte| byte == b'\n') {
                connection.requested = true;
                match std::str::from_utf8(&connection.received[..end]) {
                    Ok(line) => {
                        let words = line
                            .split('\t')
                            .filter(|word| !word.is_empty())
                            .map(String::from)
                            .collect();
                        self.requests.push(RequestLine {
                            connection: token,
                            words,
                        });
                    }
                    Err(_) => {
                        self.refused += 1;
                        connection
                            .pending
                            .extend_from_slice(b"error request is not UTF-8\n");
                        connection.finishing = true;
                    }
                }
            } else if connection.received.len() > REQUEST_BYTES_MAX {
                self.refused += 1;
                connection.requested = true;
                connection
                    .pending
                    .extend_from_slice(b"error request too long\n");
                connection.finishing = true;
            }
        } else {
            // A client that hangs up while we stream is noticed by a zero-length read.
            let mut probe = [0u8; 64];
            if let Ok(0) = connection.stream.read(&mut probe) {
                closed = true;
            }
        }
        if closed && connection.pending.is_empty() {
            self.close(registry, token);
            return;
        }
        self.flush(registry, token);
    }

    fn queue(&mut self, registry: &Registry, token: Token, bytes: &[u8], finish: bool) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.pending.len() + bytes.len() > PENDING_BYTES_MAX {
            self.close(registry, token);
            return;
        }
        connection.pending.extend_from_slice(bytes);
        connection.finishing |= finish;
        self.flush(registry, token);
    }

    fn flush(&mut self, registry: &Registry, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        while !connection.pending.is_empty() {
            match connection.stream.write(&connection.pending) {
                Ok(0) => break,
                Ok(count) => {
                    connection.pending.drain(..count);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(registry, token);
                    return;
                }
            }
        }
        if connection.pending.is_empty() && connection.finishing {
            self.close(registry, token);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut connection) = self.connections.remove(&token) {
            let _ = registry.deregister(&mut connection.stream);
        }
        self.requests.retain(|request| request.connection != token);
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
