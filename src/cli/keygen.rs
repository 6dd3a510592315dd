//! `wolfpack keygen FILE [--force]`: writes a fresh cluster key, readable by its owner only.
//!
//! Invariants: the key file is created with mode 0600 from its first byte (never created wider
//! and narrowed later); an existing file is never changed without `--force`, and with it is
//! replaced atomically (a new 0600 file renamed over the old one, so the old file's mode does not
//! carry over and a crash leaves the old key or the new one, never half of one); the key is never
//! printed.
use super::{parse_flags, CommandError, UsageError, EXIT_OK};
use crate::wire::ClusterKey;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const KEYGEN_HELP: &str = "\
Usage: wolfpack keygen FILE [--force]

Writes a fresh 32-byte cluster key from /dev/urandom to FILE: 64 lowercase hex characters and a
newline, mode 0600. Copy the same file to every node (e.g. with scp -p) and pass it to
'wolfpack node --key FILE'; a node refuses a key file that group or others can access.

Flags:
  --force     replace FILE if it exists
  -h, --help  print this help
";

const KEY_FILE_MODE: u32 = 0o600;

pub fn run(words: &[&str]) -> Result<i32, CommandError> {
    let mut options = getopts::Options::new();
    options.optflag("", "force", "replace FILE if it exists");
    options.optflag("h", "help", "print this help");
    let matches = parse_flags(&options, words, "keygen")?;
    if matches.opt_present("help") {
        print!("{KEYGEN_HELP}");
        return Ok(EXIT_OK);
    }
    let path = match matches.free.as_slice() {
        [path] => PathBuf::from(path),
        [] => return Err(UsageError("keygen: missing FILE".into()).into()),
        [_, extra, ..] => {
            return Err(UsageError(format!("keygen: unexpected argument '{extra}'")).into())
        }
    };
    let key = ClusterKey::generate()
        .map_err(|error| CommandError::Failed(format!("cannot read /dev/urandom: {error}")))?;
    let text = key.to_file_text();
    match matches.opt_present("force") {
        false => write_new(&path, text.as_bytes()),
        true => replace(&path, text.as_bytes()),
    }
    .map_err(CommandError::Failed)?;
    println!(
        "wrote a new cluster key to {} (mode 0600); copy it to every node",
        path.display()
    );
    Ok(EXIT_OK)
}

/// Creates `path`, which must not exist, with mode 0600 and `contents`, and flushes it.
fn write_new(path: &Path, contents: &[u8]) -> Result<(), String> {
    let file = create_private(path).map_err(|error| match error.kind() {
        ErrorKind::AlreadyExists => format!(
            "key file {} already exists; pass --force to replace it",
            path.display()
        ),
        _ => format!("cannot create key file {}: {error}", path.display()),
    })?;
    fill(file, contents).map_err(|error| {
        let _ = std::fs::remove_file(path);
        format!("cannot write key file {}: {error}", path.display())
    })
}

/// Writes `contents` to a fresh 0600 file beside `path` and renames it over `path`.
fn replace(path: &Path, contents: &[u8]) -> Result<(), String> {
    let file_name = path
        .file_name()
        .ok_or_else(|| format!("key file {} names no file", path.display()))?;
    let mut temporary_name = file_name.to_os_string();
    temporary_name.push(format!(".new-{}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let fail = |what: &str, error: std::io::Error| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot {what} key file {}: {error}", path.display())
    };
    let file = create_private(&temporary).map_err(|error| fail("create", error))?;
    fill(file, contents).map_err(|error| fail("write", error))?;
    std::fs::rename(&temporary, path).map_err(|error| fail("replace", error))?;
    // Make the rename durable; a directory that cannot be synced still holds the new key.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(directory) = File::open(directory) {
        let _ = directory.sync_all();
    }
    Ok(())
}

/// Creates a file that must not exist yet, with mode 0600 from the start.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(KEY_FILE_MODE)
        .open(path)
}

/// Writes `contents` and flushes them. The umask can only narrow the mode; the explicit chmod
/// makes the file exactly 0600 whatever the umask.
fn fill(mut file: File, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(KEY_FILE_MODE))?;
    file.write_all(contents)?;
    file.sync_all()
}
