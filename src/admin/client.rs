//! The `wolfpack ctl` side of the admin socket: blocking, one command per connection.
use std::io::{self, BufRead, BufReader};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long `ctl` waits for an answer before it gives up (a hung daemon must not hang scripts).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a command failed.
#[derive(Debug)]
pub enum ClientError {
    /// No node answers at the path.
    Connect { path: String, source: io::Error },
    /// The connection broke or timed out.
    Io(io::Error),
    /// The node refused the command; the text is its reason.
    Refused(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect { path, source } => {
                write!(f, "cannot reach a node at {path}: {source}")
            }
            ClientError::Io(source) => write!(f, "admin connection failed: {source}"),
            ClientError::Refused(reason) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends one command and hands each line of the answer's body to `on_line` (streaming commands
/// call it until the node closes or `on_line` returns false).
pub fn request(
    socket: &Path,
    words: &[&str],
    timeout: Option<Duration>,
    mut on_line: impl FnMut(&str) -> bool,
) -> Result<(), ClientError> {
    let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(timeout).map_err(ClientError::Io)?;
    let mut line = words.join("\t");
    line.push('\n');
    send_all(&stream, line.as_bytes()).map_err(ClientError::Io)?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(ClientError::Io)?;
    match status.trim_end() {
        "ok" => {}
        "" => {
            return Err(ClientError::Refused(
                "the node closed the connection without an answer".into(),
            ))
        }
        other => {
            return Err(ClientError::Refused(
                other.strip_prefix("error ").unwrap_or(other).to_string(),
            ))
        }
    }
    for line in reader.lines() {
        let line = line.map_err(ClientError::Io)?;
        if !on_line(&line) {
            break;
        }
    }
    Ok(())
}

/// Writes all of `bytes` to the node without raising SIGPIPE: `ctl` ends quietly from SIGPIPE
/// when its stdout closes, but a node that hung up on it must be reported, not end it silently.
fn send_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length, and the descriptor is open while `stream` is.
        let sent = unsafe {
            libc::send(
                stream.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        match usize::try_from(sent) {
            Ok(count) => bytes = &bytes[count..],
            Err(_) => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(())
}
