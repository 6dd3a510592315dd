//! What the tests that touch the system need: root (loop devices, network namespaces, mounts),
//! installed packages, and guards that remove what a test created even when it panics.
//! Without root or a package a test prints a loud `SKIPPED` and passes, except under CI=true,
//! where skipping would hide a regression, so it fails.
use std::path::{Path, PathBuf};
use std::process::Command;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether the test may go on: it runs as root. Prints SKIPPED or panics (CI=true) if not.
pub fn require_root(test_name: &str, why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if ci() {
        panic!("{test_name} needs root ({why}), and CI=true forbids skipping it");
    }
    eprintln!("SKIPPED: {test_name} needs root ({why}) ***********************************");
    false
}

/// Whether `path` exists (an installed package's file). Prints SKIPPED or panics (CI=true).
pub fn require_file(test_name: &str, path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if ci() {
        panic!("{test_name} needs {path} (Debian package {package}; tools/test.sh installs it)");
    }
    eprintln!("SKIPPED: {test_name} needs {path} (apt-get install {package}) ****************");
    false
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A run id like the testbed's: `wp-XXXX`, not used by any namespace yet.
pub fn fresh_prefix() -> String {
    let existing = run("ip", &["netns", "list"]);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let mut candidate = u64::from(std::process::id()) ^ u64::from(nanos);
    loop {
        let prefix = format!("wp-{:04x}", candidate & 0xffff);
        if !existing.contains(&format!("{prefix}-")) {
            return prefix;
        }
        candidate = candidate.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
}

/// Two network namespaces joined by a veth: `host` (where the monitor runs, interface
/// `host_if`) and `peer` (interface `peer_if`, which watches the announcements). Both are
/// deleted on drop, which deletes the veth too.
pub struct NetnsPair {
    pub host: String,
    pub peer: String,
    pub host_if: String,
    pub peer_if: String,
}

impl NetnsPair {
    /// `tag` keeps the names of tests running in parallel apart.
    pub fn new(tag: &str) -> NetnsPair {
        let prefix = fresh_prefix();
        let pair = NetnsPair {
            host: format!("{prefix}-{tag}h"),
            peer: format!("{prefix}-{tag}p"),
            host_if: format!("{prefix}-{tag}h"),
            peer_if: format!("{prefix}-{tag}p"),
        };
        run("ip", &["netns", "add", &pair.host]);
        let pair = pair; // From here on, Drop removes what exists.
        run("ip", &["netns", "add", &pair.peer]);
        run(
            "ip",
            &[
                "link",
                "add",
                &pair.host_if,
                "netns",
                &pair.host,
                "type",
                "veth",
                "peer",
                "name",
                &pair.peer_if,
                "netns",
                &pair.peer,
            ],
        );
        for (namespace, interface) in [(&pair.host, &pair.host_if), (&pair.peer, &pair.peer_if)] {
            run("ip", &["-n", namespace, "link", "set", "lo", "up"]);
            run("ip", &["-n", namespace, "link", "set", interface, "up"]);
        }
        pair
    }

    /// `ip -n NAMESPACE ARGS...`, stdout.
    pub fn ip(&self, namespace: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", namespace];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A script that runs the wolfpack binary inside the host namespace.
    pub fn monitor_wrapper(&self, dir: &Path) -> PathBuf {
        let path = dir.join("wolfpack-in-netns");
        super::write_executable(
            &path,
            &format!(
                "#!/bin/sh\nexec ip netns exec {} {} \"$@\"\n",
                self.host,
                env!("CARGO_BIN_EXE_wolfpack")
            ),
        );
        path
    }

    /// The MAC address of the host's interface.
    pub fn host_mac(&self) -> String {
        let text = self.ip(&self.host, &["-o", "link", "show", &self.host_if]);
        let after = text
            .split("link/ether ")
            .nth(1)
            .expect("an ethernet address");
        after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The peer's neighbour entry for `address`, if any (one line).
    pub fn peer_neighbour(&self, address: &str) -> String {
        self.ip(
            &self.peer,
            &["neigh", "show", address, "dev", &self.peer_if],
        )
        .trim()
        .to_string()
    }

    /// Whether `address` (without prefix) is on the host's interface.
    pub fn host_has(&self, address: &str) -> bool {
        self.ip(&self.host, &["-o", "addr", "show", "dev", &self.host_if])
            .split_whitespace()
            .any(|word| word.split('/').next() == Some(address))
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for namespace in [&self.host, &self.peer] {
            let status = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
            if !status.is_ok_and(|status| status.success()) {
                eprintln!("could not delete namespace {namespace}: delete it by hand");
            }
        }
    }
}

/// A loop device over a file, detached on drop (after unmounting `mount_point` if it is
/// still mounted there, so a failing test leaves nothing behind).
pub struct LoopDevice {
    pub path: PathBuf,
    pub mount_point: Option<PathBuf>,
}

impl LoopDevice {
    /// A file of `megabytes` MiB formatted ext4, attached.
    pub fn ext4(file: &Path, megabytes: u64) -> LoopDevice {
        let image = std::fs::File::create(file).expect("create the image");
        image.set_len(megabytes << 20).expect("size the image");
        drop(image);
        run("mkfs.ext4", &["-q", "-F", &file.to_string_lossy()]);
        let path = run("losetup", &["--find", "--show", &file.to_string_lossy()]);
        LoopDevice {
            path: PathBuf::from(path.trim()),
            mount_point: None,
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Some(point) = &self.mount_point {
            if is_mount_point(point) {
                let _ = Command::new("umount").arg(point).status();
            }
        }
        let status = Command::new("losetup")
            .arg("--detach")
            .arg(&self.path)
            .status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!(
                "could not detach {}: detach it by hand",
                self.path.display()
            );
        }
    }
}

/// Whether something is mounted at `path` (per /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let path = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(&path))
}
