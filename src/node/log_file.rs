//! The node's log file: env_logger writes through it, and SIGHUP reopens it so `logrotate` can
//! move the old file away (the classic daemon contract). Without `--log-file` logs go to stderr.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A shared, reopenable append-only log file.
#[derive(Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = open_append(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Opens the path again (a rotated file is left to its new name) and writes there from now.
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = open_append(&self.path)?;
        match self.file.lock() {
            Ok(mut file) => *file = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens `path` for appending, creating it mode 0600: logs name resources, parameters and
/// peers, which are no other local user's business.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogFile({})", self.path.display())
    }
}

impl Write for LogFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.file.lock() {
            Ok(mut file) => file.write(bytes),
            Err(poisoned) => poisoned.into_inner().write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.lock() {
            Ok(mut file) => file.flush(),
            Err(poisoned) => poisoned.into_inner().flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_the_path_after_a_rotation() {
        let dir = std::env::temp_dir().join(format!("wp-logfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("node.log");
        let mut log = LogFile::open(&path).expect("open");
        log.write_all(b"before\n").expect("write");
        std::fs::rename(&path, dir.join("node.log.1")).expect("rotate");
        log.write_all(b"still old\n").expect("write");
        log.reopen().expect("reopen");
        log.write_all(b"after\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(dir.join("node.log.1")).expect("old"),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("new"), "after\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_created_log_file_and_its_reopened_successor_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("wp-logfile-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("node.log");
        let mode =
            |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777;
        let log = LogFile::open(&path).expect("open");
        assert_eq!(mode(&path), 0o600);
        std::fs::rename(&path, dir.join("node.log.1")).expect("rotate");
        log.reopen().expect("reopen");
        assert_eq!(mode(&path), 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
