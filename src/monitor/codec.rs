//! The byte format of `Command`s and `Event`s on the daemon–monitor stream socket.
//!
//! Frame: `length: u32 BE` (1 ..= FRAME_BYTES_MAX) then a body of that many bytes. Body: a tag
//! byte, then the fields in order. Integers are big-endian; a string is `u16 BE length` + UTF-8;
//! an optional timeout is a presence byte (0 or 1) and, when 1, a `u32`; a flag is a byte, 0
//! (false) or 1 (true), anything else a protocol error.
//!
//! | tag | command                                                                  |
//! |-----|--------------------------------------------------------------------------|
//! | 1   | Ping: sequence u64                                                       |
//! | 2   | Start: resource, kind, count u16, count × (key, value),                  |
//! |     | depends u16, depends × resource, timeout                                 |
//! | 3   | Stop: resource, timeout                                                  |
//! | 4   | Check: resource, level u8 (1 LooksAlive, 2 IsAlive), timeout             |
//! | 5   | StopAll                                                                  |
//! | 6   | Shutdown                                                                 |
//!
//! | tag | event                                                                    |
//! |-----|--------------------------------------------------------------------------|
//! | 1   | Pong: sequence u64                                                       |
//! | 2   | Done: resource, operation u8 (1 start, 2 stop, 3 looks-alive, 4 is-alive), |
//! |     | outcome u8 (1 success, 2 failed + reason, 3 timed out, 4 rejected + reason, |
//! |     | 5 offline not confirmed + reason), elapsed_ms u64                        |
//! | 3   | ResourceFailed: resource, reason, offline_confirmed flag                 |
//! | 4   | AllStopped                                                               |
//!
//! There is no version number: the daemon runs the monitor from its own executable
//! (`current_exe`), so both ends always share this table. The layout changed twice: when outcome
//! 5 and the `ResourceFailed` flag replaced the reason's "offline not confirmed" ending as the
//! carrier of that fact (a `ResourceFailed` of the older layout decodes as `Truncated`), and
//! when `Start` gained its dependencies (a `Start` of the older layout is refused: its timeout
//! byte starts the dependency count).
//!
//! Invariants: decoding never panics and never allocates more than the frame it was given; it
//! accepts a body only when every field is in range (names, keys, limits, flags, a parameter
//! key or a dependency at most once) and no byte is left over. Anything `decode_*` returns,
//! `encode_*` writes back byte for byte.
use super::constants::PARAM_VALUE_BYTES_MAX;
use super::constants::{DEPENDS_MAX, FRAME_BYTES_MAX, KIND_BYTES_MAX, PARAMS_MAX};
use super::constants::{PARAM_KEY_BYTES_MAX, REASON_BYTES_MAX, RESOURCE_NAME_BYTES_MAX};
use super::error::CodecError;
use super::protocol::{is_param_key, is_resource_name, OFFLINE_NOT_CONFIRMED};
use super::protocol::{CheckLevel, Command, Event, Operation, Outcome};

/// Bytes of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Appends the frame of `command` to `out`. Fails, writing nothing, when a field breaks a limit.
pub fn encode_command(command: &Command, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut body = Vec::new();
    match command {
        Command::Ping { sequence } => {
            body.push(1);
            body.extend_from_slice(&sequence.to_be_bytes());
        }
        Command::Start {
            resource,
            kind,
            params,
            depends,
            timeout_ms,
        } => {
            body.push(2);
            put_name(&mut body, resource)?;
            put_string(&mut body, kind, KIND_BYTES_MAX)?;
            if params.len() > PARAMS_MAX {
                return Err(CodecError::LimitExceeded("parameters"));
            }
            body.extend_from_slice(&(params.len() as u16).to_be_bytes());
            for (key, value) in params {
                if !is_param_key(key) {
                    return Err(CodecError::InvalidParamKey);
                }
                put_string(&mut body, key, PARAM_KEY_BYTES_MAX)?;
                put_string(&mut body, value, PARAM_VALUE_BYTES_MAX)?;
            }
            if depends.len() > DEPENDS_MAX {
                return Err(CodecError::LimitExceeded("dependencies"));
            }
            body.extend_from_slice(&(depends.len() as u16).to_be_bytes());
            for (index, needed) in depends.iter().enumerate() {
                if depends[..index].contains(needed) {
                    return Err(CodecError::DuplicateDependency);
                }
                put_name(&mut body, needed)?;
            }
            put_timeout(&mut body, *timeout_ms);
        }
        Command::Stop {
            resource,
            timeout_ms,
        } => {
            body.push(3);
            put_name(&mut body, resource)?;
            put_timeout(&mut body, *timeout_ms);
        }
        Command::Check {
            resource,
            level,
            timeout_ms,
        } => {
            body.push(4);
            put_name(&mut body, resource)?;
            body.push(match level {
                CheckLevel::LooksAlive => 1,
                CheckLevel::IsAlive => 2,
            });
            put_timeout(&mut body, *timeout_ms);
        }
        Command::StopAll => body.push(5),
        Command::Shutdown => body.push(6),
    }
    put_frame(&body, out)
}

/// Appends the frame of `event` to `out`. Reasons longer than REASON_BYTES_MAX are cut.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut body = Vec::new();
    match event {
        Event::Pong { sequence } => {
            body.push(1);
            body.extend_from_slice(&sequence.to_be_bytes());
        }
        Event::Done {
            resource,
            operation,
            outcome,
            elapsed_ms,
        } => {
            body.push(2);
            put_name(&mut body, resource)?;
            body.push(match operation {
                Operation::Start => 1,
                Operation::Stop => 2,
                Operation::Check(CheckLevel::LooksAlive) => 3,
                Operation::Check(CheckLevel::IsAlive) => 4,
            });
            match outcome {
                Outcome::Success => body.push(1),
                Outcome::Failed(reason) => {
                    body.push(2);
                    put_string(&mut body, &cut(reason, false), REASON_BYTES_MAX)?;
                }
                Outcome::TimedOut => body.push(3),
                Outcome::Rejected(reason) => {
                    body.push(4);
                    put_string(&mut body, &cut(reason, false), REASON_BYTES_MAX)?;
                }
                Outcome::OfflineNotConfirmed(reason) => {
                    body.push(5);
                    put_string(&mut body, &cut(reason, true), REASON_BYTES_MAX)?;
                }
            }
            body.extend_from_slice(&elapsed_ms.to_be_bytes());
        }
        Event::ResourceFailed {
            resource,
            reason,
            offline_confirmed,
        } => {
            body.push(3);
            put_name(&mut body, resource)?;
            put_string(
                &mut body,
                &cut(reason, !offline_confirmed),
                REASON_BYTES_MAX,
            )?;
            body.push(u8::from(*offline_confirmed));
        }
        Event::AllStopped => body.push(4),
    }
    put_frame(&body, out)
}

/// Decodes one frame body (without its length prefix) as a command.
pub fn decode_command(body: &[u8]) -> Result<Command, CodecError> {
    let mut reader = Reader { rest: body };
    let command = match reader.u8()? {
        1 => Command::Ping {
            sequence: reader.u64()?,
        },
        2 => {
            let resource = reader.name()?;
            let kind = reader.string(KIND_BYTES_MAX)?;
            let count = usize::from(reader.u16()?);
            if count > PARAMS_MAX {
                return Err(CodecError::LimitExceeded("parameters"));
            }
            let mut params: Vec<(String, String)> = Vec::with_capacity(count);
            for _ in 0..count {
                let key = reader.string(PARAM_KEY_BYTES_MAX)?;
                if !is_param_key(&key) {
                    return Err(CodecError::InvalidParamKey);
                }
                if params.iter().any(|(seen, _)| *seen == key) {
                    return Err(CodecError::DuplicateParam);
                }
                let value = reader.string(PARAM_VALUE_BYTES_MAX)?;
                params.push((key, value));
            }
            let depends = reader.depends()?;
            let timeout_ms = reader.timeout()?;
            Command::Start {
                resource,
                kind,
                params,
                depends,
                timeout_ms,
            }
        }
        3 => Command::Stop {
            resource: reader.name()?,
            timeout_ms: reader.timeout()?,
        },
        4 => {
            let resource = reader.name()?;
            let level = match reader.u8()? {
                1 => CheckLevel::LooksAlive,
                2 => CheckLevel::IsAlive,
                other => return Err(CodecError::UnknownTag(other)),
            };
            Command::Check {
                resource,
                level,
                timeout_ms: reader.timeout()?,
            }
        }
        5 => Command::StopAll,
        6 => Command::Shutdown,
        other => return Err(CodecError::UnknownTag(other)),
    };
    reader.finish(command)
}

/// Decodes one frame body (without its length prefix) as an event.
pub fn decode_event(body: &[u8]) -> Result<Event, CodecError> {
    let mut reader = Reader { rest: body };
    let event = match reader.u8()? {
        1 => Event::Pong {
            sequence: reader.u64()?,
        },
        2 => {
            let resource = reader.name()?;
            let operation = match reader.u8()? {
                1 => Operation::Start,
                2 => Operation::Stop,
                3 => Operation::Check(CheckLevel::LooksAlive),
                4 => Operation::Check(CheckLevel::IsAlive),
                other => return Err(CodecError::UnknownTag(other)),
            };
            let outcome = match reader.u8()? {
                1 => Outcome::Success,
                2 => Outcome::Failed(reader.string(REASON_BYTES_MAX)?),
                3 => Outcome::TimedOut,
                4 => Outcome::Rejected(reader.string(REASON_BYTES_MAX)?),
                5 => Outcome::OfflineNotConfirmed(reader.string(REASON_BYTES_MAX)?),
                other => return Err(CodecError::UnknownTag(other)),
            };
            let elapsed_ms = reader.u64()?;
            Event::Done {
                resource,
                operation,
                outcome,
                elapsed_ms,
            }
        }
        3 => Event::ResourceFailed {
            resource: reader.name()?,
            reason: reader.string(REASON_BYTES_MAX)?,
            offline_confirmed: reader.flag()?,
        },
        4 => Event::AllStopped,
        other => return Err(CodecError::UnknownTag(other)),
    };
    reader.finish(event)
}

/// Splits a stream into frame bodies. Bytes go in with `extend`; whole bodies come out of
/// `next_body`. A bad length is permanent: a stream cannot resynchronize after it.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame body, `None` until one has fully arrived.
    pub fn next_body(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        let Some(header) = self.buffer.first_chunk::<FRAME_HEADER_BYTES>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*header);
        if length == 0 || length > FRAME_BYTES_MAX {
            return Err(CodecError::BadFrameLength(length));
        }
        let end = FRAME_HEADER_BYTES + length as usize;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let body = self.buffer[FRAME_HEADER_BYTES..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some(body))
    }
}

fn put_frame(body: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let length = u32::try_from(body.len()).map_err(|_| CodecError::LimitExceeded("frame"))?;
    if length > FRAME_BYTES_MAX {
        return Err(CodecError::LimitExceeded("frame"));
    }
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

fn put_name(body: &mut Vec<u8>, name: &str) -> Result<(), CodecError> {
    if !is_resource_name(name) {
        return Err(CodecError::InvalidName);
    }
    put_string(body, name, RESOURCE_NAME_BYTES_MAX)
}

fn put_string(body: &mut Vec<u8>, text: &str, bytes_max: usize) -> Result<(), CodecError> {
    if text.len() > bytes_max {
        return Err(CodecError::LimitExceeded("string"));
    }
    body.extend_from_slice(&(text.len() as u16).to_be_bytes());
    body.extend_from_slice(text.as_bytes());
    Ok(())
}

fn put_timeout(body: &mut Vec<u8>, timeout_ms: Option<u32>) {
    match timeout_ms {
        None => body.push(0),
        Some(milliseconds) => {
            body.push(1);
            body.extend_from_slice(&milliseconds.to_be_bytes());
        }
    }
}

/// `reason` within REASON_BYTES_MAX, cut at a character boundary. The reason of a report that
/// does not confirm the resource offline (`not_confirmed`) keeps its OFFLINE_NOT_CONFIRMED
/// ending across the cut, for whoever reads it; the fact itself travels in the report's type.
fn cut(reason: &str, not_confirmed: bool) -> std::borrow::Cow<'_, str> {
    if reason.len() <= REASON_BYTES_MAX {
        return std::borrow::Cow::Borrowed(reason);
    }
    let ending = if not_confirmed {
        format!(" ...; {OFFLINE_NOT_CONFIRMED}")
    } else {
        String::new()
    };
    let mut end = REASON_BYTES_MAX - ending.len();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}{ending}", &reason[..end]))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], CodecError> {
        if self.rest.len() < count {
            return Err(CodecError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    fn string(&mut self, bytes_max: usize) -> Result<String, CodecError> {
        let length = usize::from(self.u16()?);
        if length > bytes_max {
            return Err(CodecError::LimitExceeded("string"));
        }
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::NotUtf8)
    }

    fn name(&mut self) -> Result<String, CodecError> {
        let name = self.string(RESOURCE_NAME_BYTES_MAX)?;
        match is_resource_name(&name) {
            true => Ok(name),
            false => Err(CodecError::InvalidName),
        }
    }

    /// A `Start`'s dependencies: a count up to DEPENDS_MAX, then that many distinct names.
    fn depends(&mut self) -> Result<Vec<String>, CodecError> {
        let count = usize::from(self.u16()?);
        if count > DEPENDS_MAX {
            return Err(CodecError::LimitExceeded("dependencies"));
        }
        // A name takes at least 3 bytes (length and one byte): a count the rest of the frame
        // cannot hold reserves no more than the frame could fill.
        let mut depends: Vec<String> = Vec::with_capacity(count.min(self.rest.len() / 3));
        for _ in 0..count {
            let needed = self.name()?;
            if depends.contains(&needed) {
                return Err(CodecError::DuplicateDependency);
            }
            depends.push(needed);
        }
        Ok(depends)
    }

    fn timeout(&mut self) -> Result<Option<u32>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let bytes = self.take(4)?;
                Ok(Some(u32::from_be_bytes([
                    bytes[0], bytes[1], bytes[2], bytes[3],
                ])))
            }
            other => Err(CodecError::UnknownTag(other)),
        }
    }

    /// A flag: 0 or 1, anything else a protocol error.
    fn flag(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(CodecError::UnknownTag(other)),
        }
    }

    fn finish<T>(self, value: T) -> Result<T, CodecError> {
        match self.rest.is_empty() {
            true => Ok(value),
            false => Err(CodecError::TrailingBytes),
        }
    }
}
