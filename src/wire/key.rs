//! The cluster key: 32 secret bytes every node of a cluster shares, from which the frame MAC
//! key is derived. Its file holds 64 lowercase hex characters and a newline (65 bytes), and only
//! its owner may read or write it (mode 0600 or stricter).
//!
//! Invariants: nothing here ever prints, logs or formats a key byte (`Debug` shows
//! `ClusterKey(..)`, errors name the file and the fault only); a key file that another user
//! owns, or whose mode gives group or others any access, is refused; the key bytes are zeroed
//! when dropped.
use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bytes of a cluster key.
pub const KEY_BYTES: usize = 32;
/// Bytes of a key file: two hex characters per key byte, then a newline.
pub const KEY_FILE_BYTES: usize = 2 * KEY_BYTES + 1;
/// Permission bits of group and others; a key file must have none of them.
const GROUP_OTHER_BITS: u32 = 0o077;

/// The 32-byte cluster key.
#[derive(Clone)]
pub struct ClusterKey {
    bytes: [u8; KEY_BYTES],
}

impl PartialEq for ClusterKey {
    /// Compares in constant time, like everything that touches secrets.
    fn eq(&self, other: &ClusterKey) -> bool {
        constant_time_eq::constant_time_eq_32(&self.bytes, &other.bytes)
    }
}

impl Eq for ClusterKey {}

/// Why a key file could not be loaded or written. Nothing was written when loading fails; the
/// text of each variant names the file and never shows key bytes.
#[derive(Debug)]
pub enum KeyError {
    /// The file could not be opened, read, created or written.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file's mode gives group or others access to it.
    Exposed { path: PathBuf, mode: u32 },
    /// The file is not a regular file.
    NotAFile { path: PathBuf },
    /// The file belongs to another user, who could read or replace the key.
    ForeignOwner { path: PathBuf, owner: u32, us: u32 },
    /// The file is not 64 lowercase hex characters and a newline; `why` says where it differs.
    Malformed { path: PathBuf, why: String },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io { path, error } => write!(f, "key file {}: {error}", path.display()),
            KeyError::Exposed { path, mode } => write!(
                f,
                "key file {0} has mode {mode:04o}, which lets group or others read or write it; \
                 run 'chmod 600 {0}' (and check who may have copied it)",
                path.display()
            ),
            KeyError::NotAFile { path } => {
                write!(f, "key file {} is not a regular file", path.display())
            }
            KeyError::ForeignOwner { path, owner, us } => write!(
                f,
                "key file {0} is owned by uid {owner}, not by uid {us} that runs this node; \
                 run 'chown {us} {0}' if the file is yours",
                path.display()
            ),
            KeyError::Malformed { path, why } => write!(
                f,
                "key file {} is not a cluster key: {why} (expected 64 lowercase hex characters \
                 and a newline, as 'wolfpack keygen' writes)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl ClusterKey {
    /// A key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> ClusterKey {
        ClusterKey { bytes }
    }

    /// A fresh key from the kernel's random source.
    pub fn generate() -> std::io::Result<ClusterKey> {
        let mut bytes = [0u8; KEY_BYTES];
        File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(ClusterKey { bytes })
    }

    /// The key bytes; for deriving keys, never for printing.
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.bytes
    }

    /// The key file's contents: 64 lowercase hex characters and a newline.
    pub fn to_file_text(&self) -> String {
        let mut text = String::with_capacity(KEY_FILE_BYTES);
        for byte in self.bytes {
            text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
        text.push('\n');
        text
    }

    /// Parses a key file's contents; the error says what is wrong without showing any of it.
    pub fn parse(contents: &[u8]) -> Result<ClusterKey, String> {
        if contents.len() != KEY_FILE_BYTES {
            return Err(format!(
                "it is {} bytes long, not {KEY_FILE_BYTES}",
                contents.len()
            ));
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (index, pair) in contents[..2 * KEY_BYTES].chunks_exact(2).enumerate() {
            let digit = |offset: usize| {
                hex_value(pair[offset]).ok_or_else(|| {
                    format!(
                        "character {} is not a lowercase hex digit (0-9, a-f)",
                        2 * index + offset + 1
                    )
                })
            };
            bytes[index] = digit(0)? << 4 | digit(1)?;
        }
        if contents[2 * KEY_BYTES] != b'\n' {
            return Err(format!(
                "character {KEY_FILE_BYTES} is not the closing newline"
            ));
        }
        Ok(ClusterKey { bytes })
    }

    /// Loads the key file at `path`, refusing one that group or others may access, that another
    /// user owns, that is not a regular file, or that is malformed. Type, owner and mode are read
    /// from the opened file, so they are those of the file whose bytes are read.
    pub fn load(path: &Path) -> Result<ClusterKey, KeyError> {
        let io = |error| KeyError::Io {
            path: path.to_path_buf(),
            error,
        };
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever, and
        // the node would hang before it could say what is wrong. Regular files ignore the flag.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        check_private(path, &metadata)?;
        if metadata.len() != KEY_FILE_BYTES as u64 {
            return Err(KeyError::Malformed {
                path: path.to_path_buf(),
                why: format!("it is {} bytes long, not {KEY_FILE_BYTES}", metadata.len()),
            });
        }
        // One byte more than a key file has, so a file that grew since the stat is seen as such.
        let mut contents = Vec::with_capacity(KEY_FILE_BYTES + 1);
        file.take(KEY_FILE_BYTES as u64 + 1)
            .read_to_end(&mut contents)
            .map_err(io)?;
        let parsed = ClusterKey::parse(&contents).map_err(|why| KeyError::Malformed {
            path: path.to_path_buf(),
            why,
        });
        zero(&mut contents);
        parsed
    }
}

/// Refuses a key file that is not a regular file, that another user owns, or whose mode lets
/// group or others at it.
fn check_private(path: &Path, metadata: &Metadata) -> Result<(), KeyError> {
    if !metadata.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let us = unsafe { libc::geteuid() };
    if metadata.uid() != us {
        return Err(KeyError::ForeignOwner {
            path: path.to_path_buf(),
            owner: metadata.uid(),
            us,
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl Drop for ClusterKey {
    fn drop(&mut self) {
        zero(&mut self.bytes);
    }
}

/// Overwrites secret bytes with zeros. `black_box` keeps the optimizer from removing the
/// stores to memory about to be freed (best effort, without the `unsafe` of a volatile write).
pub(super) fn zero(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex_value(character: u8) -> Option<u8> {
    match character {
        b'0'..=b'9' => Some(character - b'0'),
        b'a'..=b'f' => Some(character - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_round_trips() {
        let key = ClusterKey::from_bytes(std::array::from_fn(|index| index as u8 * 7));
        let text = key.to_file_text();
        assert_eq!(text.len(), KEY_FILE_BYTES);
        assert!(text.starts_with("00070e15"));
        assert_eq!(ClusterKey::parse(text.as_bytes()), Ok(key));
    }

    #[test]
    fn malformed_files_say_where_without_showing_the_key() {
        let text = ClusterKey::from_bytes([0xab; 32]).to_file_text();
        let short = ClusterKey::parse(&text.as_bytes()[..64]).expect_err("short");
        assert_eq!(short, "it is 64 bytes long, not 65");
        let mut upper = text.clone().into_bytes();
        upper[16] = b'A';
        let error = ClusterKey::parse(&upper).expect_err("upper case");
        assert_eq!(
            error,
            "character 17 is not a lowercase hex digit (0-9, a-f)"
        );
        let mut no_newline = text.into_bytes();
        no_newline[64] = b' ';
        let error = ClusterKey::parse(&no_newline).expect_err("no newline");
        assert!(error.contains("newline"));
        assert!(!error.contains("ab"), "{error}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ClusterKey::from_bytes([0x5a; 32]);
        assert_eq!(format!("{key:?}"), "ClusterKey(..)");
    }

    #[test]
    fn fresh_keys_differ() {
        let first = ClusterKey::generate().expect("urandom");
        let second = ClusterKey::generate().expect("urandom");
        assert_ne!(first, second);
    }
}
