//! Child processes of the monitor: spawning a shell command in its own process group with its
//! output appended to a log file, signalling whole groups, reaping, and deciding when a group is
//! gone. Every resource type that runs programs (process, script, ocf:) builds on these.
//!
//! Invariants:
//! - Every child leads its own process group (pgid = pid), so one `kill(-pgid)` reaches it and
//!   every descendant that did not leave the group.
//! - The monitor is a child subreaper, so orphaned descendants are reparented to it and reaped by
//!   `reap_exited`; a group is "gone" only when `kill(-pgid, 0)` finds no process, zombies
//!   included, which makes "gone" mean that nothing of it can run any more.
//! - Children get SIGKILL when the monitor dies (PR_SET_PDEATHSIG): a net for `kill -9` of the
//!   whole node's daemon and monitor. It reaches only the group leader.
//! - Children start in `/`, never in the daemon's working directory (wherever it was started
//!   from, which may be unmounted, or a filesystem a resource mounts over), as Pacemaker and
//!   systemd start their resources.
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Makes the calling process a child subreaper (see the module invariants).
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument and touches no memory.
    let result = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Resources' output files and logs: mode 0600, as the event log (a resource's output may hold
/// secrets of its configuration, and is no other local user's business).
pub const RESOURCE_LOG_MODE: u32 = 0o600;

/// Runs `sh -c script` as the leader of a new process group, stdin from /dev/null, stdout and
/// stderr appended to `log_path`, with `environment` added. Returns its pid, which is also its
/// process group id.
pub fn spawn_shell(script: &str, log_path: &Path, environment: &[(&str, &str)]) -> io::Result<i32> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(RESOURCE_LOG_MODE)
        .open(log_path)?;
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(script)
        .envs(environment.iter().copied());
    spawn_in_group(command, log)
}

/// Runs `program` with `args` (no shell: every argument arrives verbatim) as the leader of a new
/// process group, stdin from /dev/null, stdout and stderr to `output`, with exactly
/// `environment` and nothing inherited from the monitor's. Returns its pid (= its group).
pub fn spawn_program(
    program: &Path,
    args: &[String],
    environment: &[(String, String)],
    output: File,
) -> io::Result<i32> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(environment.iter().map(|(key, value)| (key, value)));
    spawn_in_group(command, output)
}

/// Spawns `command` as described by the module invariants, its output going to `output`.
fn spawn_in_group(mut command: Command, output: File) -> io::Result<i32> {
    let output_for_stderr = output.try_clone()?;
    let parent_pid = std::process::id();
    command
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(output_for_stderr)
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The monitor may have died before PDEATHSIG was set: then nobody would kill us.
            if libc::getppid() as u32 != parent_pid {
                return Err(io::Error::other("the monitor exited during spawn"));
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // Dropping `Child` neither waits nor kills; `reap_exited` collects its status.
    drop(child);
    Ok(pid)
}

/// Sends `signal` to every process of group `pgid`. A group that is already gone is fine.
pub fn signal_group(pgid: i32, signal: i32) {
    assert!(
        pgid > 1,
        "signalling group {pgid} would reach unrelated processes"
    );
    // SAFETY: kill has no memory effects; a negative pid addresses exactly one process group.
    let _ = unsafe { libc::kill(-pgid, signal) };
}

/// Whether any process, zombies included, is still in group `pgid`.
pub fn group_exists(pgid: i32) -> bool {
    assert!(
        pgid > 1,
        "probing group {pgid} would reach unrelated processes"
    );
    // SAFETY: signal 0 only checks for existence and permission.
    let result = unsafe { libc::kill(-pgid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Reaps every child that has exited, without blocking: (pid, raw wait status) each.
pub fn reap_exited() -> Vec<(i32, i32)> {
    let mut exited = Vec::new();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer; WNOHANG makes this return at once.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return exited; // 0: children remain, none exited; -1: no children at all.
        }
        exited.push((pid, status));
    }
}

/// Says how a process ended, from its raw wait status.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended with wait status {status}")
    }
}

/// Whether the raw wait status is a normal exit with status 0.
pub fn succeeded(status: i32) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

#[cfg(test)]
mod log_mode_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_resource_log_is_created_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("wp-log-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
        let log_path = dir.join("resource.log");
        let pid = spawn_shell("echo hello", &log_path, &[]).expect("sh runs");
        let mut status = 0;
        // SAFETY: waitpid on the child just spawned, with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let mode = std::fs::metadata(&log_path)
            .expect("created")
            .permissions()
            .mode();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(mode & 0o777, RESOURCE_LOG_MODE);
    }
}
