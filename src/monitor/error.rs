//! The monitor's two operating-error types: `CodecError` (a frame that breaks the protocol) and
//! `MonitorError` (the daemon side: spawning, talking to, and waiting for the monitor). Each
//! variant says whether anything changed.
use std::fmt;
use std::io;

/// A frame or field that breaks the protocol in `codec.rs`. Nothing was decoded or encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The body ended inside a field.
    Truncated,
    /// A frame length of 0 or above FRAME_BYTES_MAX; the stream cannot be resynchronized.
    BadFrameLength(u32),
    /// An unknown message tag, level, operation or outcome, or a presence or flag byte not 0 or 1.
    UnknownTag(u8),
    /// A string that is not UTF-8.
    NotUtf8,
    /// A resource name outside `[A-Za-z0-9_.-]{1,64}` or starting with '.'.
    InvalidName,
    /// A parameter key outside `[A-Za-z0-9_]{1,64}`.
    InvalidParamKey,
    /// The same parameter key twice in one `Start`.
    DuplicateParam,
    /// The same dependency twice in one `Start`.
    DuplicateDependency,
    /// A count or length above its `_MAX`; the text names which.
    LimitExceeded(&'static str),
    /// Bytes after the last field.
    TrailingBytes,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated => f.write_str("message truncated"),
            CodecError::BadFrameLength(length) => write!(f, "bad frame length {length}"),
            CodecError::UnknownTag(tag) => write!(f, "unknown tag {tag}"),
            CodecError::NotUtf8 => f.write_str("string is not UTF-8"),
            CodecError::InvalidName => f.write_str("invalid resource name"),
            CodecError::InvalidParamKey => f.write_str("invalid parameter key"),
            CodecError::DuplicateParam => f.write_str("duplicate parameter key"),
            CodecError::DuplicateDependency => f.write_str("duplicate dependency"),
            CodecError::LimitExceeded(what) => write!(f, "too many or too long: {what}"),
            CodecError::TrailingBytes => f.write_str("trailing bytes after the message"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Why an operation of `MonitorClient` failed.
#[derive(Debug)]
pub enum MonitorError {
    /// The socketpair or the child could not be created; nothing is running.
    Spawn(io::Error),
    /// The command breaks a protocol limit; nothing was sent.
    Invalid(CodecError),
    /// The monitor sent bytes that break the protocol. The connection is useless now: drop the
    /// client, which makes the monitor fence and exit.
    Protocol(CodecError),
    /// Reading or writing the socket failed; treat the monitor as gone.
    Io(io::Error),
    /// The monitor closed the connection (it exited or is exiting).
    Closed,
    /// More than OUTGOING_BYTES_MAX of commands are waiting: the monitor does not read.
    Backlogged,
    /// `shutdown` waited past its deadline; the monitor was killed.
    ShutdownTimedOut,
}

impl fmt::Display for MonitorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorError::Spawn(error) => write!(f, "cannot start the resource monitor: {error}"),
            MonitorError::Invalid(error) => write!(f, "invalid monitor command: {error}"),
            MonitorError::Protocol(error) => write!(f, "resource monitor protocol error: {error}"),
            MonitorError::Io(error) => write!(f, "resource monitor connection: {error}"),
            MonitorError::Closed => f.write_str("the resource monitor closed its connection"),
            MonitorError::Backlogged => f.write_str("the resource monitor does not read"),
            MonitorError::ShutdownTimedOut => {
                f.write_str("the resource monitor did not shut down in time and was killed")
            }
        }
    }
}

impl std::error::Error for MonitorError {}
