//! One cgroup per node, so the whole node (daemon, monitor, resources) can be frozen at once
//! and every process of it found by PID at teardown. cgroup v2 (`cgroup.freeze`) when the
//! unified hierarchy is mounted at /sys/fs/cgroup, else the v1 freezer controller. Without
//! either, freezing a whole node is unavailable and says so.
use std::ffi::CString;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Which freezer interface a cgroup uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A cgroup this run created (a clone is another handle on the same cgroup: the watchdog's
/// thread crashes the node through one).
#[derive(Clone, Debug)]
pub struct NodeCgroup {
    path: PathBuf,
    version: Version,
    /// `cgroup.procs`, ready for `pre_exec` (no allocation between fork and exec).
    procs: CString,
}

impl NodeCgroup {
    /// Creates the cgroup `name`; `None` when this host has no usable freezer.
    pub fn create(name: &str) -> Option<NodeCgroup> {
        let (parent, version) = if Path::new(ROOT).join("cgroup.controllers").exists() {
            (PathBuf::from(ROOT), Version::V2)
        } else if Path::new(ROOT).join("freezer").is_dir() {
            (Path::new(ROOT).join("freezer"), Version::V1)
        } else {
            return None;
        };
        let path = parent.join(name);
        std::fs::create_dir(&path).ok()?;
        let procs = CString::new(path.join("cgroup.procs").display().to_string()).ok()?;
        Some(NodeCgroup {
            path,
            version,
            procs,
        })
    }

    /// A `pre_exec` hook that moves the new process into this cgroup before it execs, so the
    /// daemon and everything it starts are in it from the first instruction.
    pub fn entry_hook(&self) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
        let procs = self.procs.clone();
        move || enter(&procs)
    }

    /// Freezes (true) or thaws (false) every process of the node.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), String> {
        let (file, value) = match (self.version, frozen) {
            (Version::V2, true) => ("cgroup.freeze", "1"),
            (Version::V2, false) => ("cgroup.freeze", "0"),
            (Version::V1, true) => ("freezer.state", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED"),
        };
        std::fs::write(self.path.join(file), value)
            .map_err(|error| format!("cannot write {}: {error}", self.path.join(file).display()))
    }

    /// Whether every process of the cgroup is frozen (v1 passes through FREEZING first).
    pub fn is_frozen(&self) -> bool {
        let (file, frozen) = match self.version {
            Version::V2 => ("cgroup.events", "frozen 1"),
            Version::V1 => ("freezer.state", "FROZEN"),
        };
        std::fs::read_to_string(self.path.join(file))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == frozen))
    }

    /// The PIDs in the cgroup: processes this run started and their descendants.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    /// Removes the (empty) cgroup.
    pub fn remove(&self) -> Result<(), String> {
        std::fs::remove_dir(&self.path)
            .map_err(|error| format!("cannot remove {}: {error}", self.path.display()))
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs`. Async-signal-safe:
/// only open/write/close on a path prepared before the fork.
fn enter(procs: &CString) -> std::io::Result<()> {
    // SAFETY: `procs` is NUL-terminated; "0" means "the writing process" in both versions.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if written != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
