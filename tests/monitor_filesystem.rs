//! The `filesystem` resource type through the real monitor process: an ext4 filesystem on a
//! loop device over a temporary file, mounted on a temporary directory, checked, and
//! unmounted for real (a busy filesystem's users are killed, or the stop fails and `offline`
//! waits). The loop device is detached and the mount removed also when a test fails.
//! Needs root (losetup, mount): skipped loudly without it, required under CI=true.
mod monitor_support;

use monitor_support::system::{is_mount_point, require_root, LoopDevice};
use monitor_support::*;
use std::process::{Child, Command};
use wolfpack::monitor::{CheckLevel, Outcome};

/// A process that keeps the filesystem busy (its working directory is inside it); killed on
/// drop, so a failing test can still unmount.
struct BusyUser(Child);

impl Drop for BusyUser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn busy_user(directory: &std::path::Path) -> BusyUser {
    BusyUser(
        Command::new("sleep")
            .arg("1000")
            .current_dir(directory)
            .spawn()
            .expect("spawn a user of the filesystem"),
    )
}

#[test]
fn an_ext4_loop_device_mounts_checks_and_unmounts_killing_its_users() {
    if !require_root("filesystem resource", "loop devices and mount") {
        return;
    }
    let scratch = Scratch::new("fs-mount");
    let mut device = LoopDevice::ext4(&scratch.file("disk.img"), 24);
    let directory = scratch.file("mnt");
    std::fs::create_dir(&directory).expect("mount point");
    device.mount_point = Some(directory.clone());
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let device_text = device.path.to_string_lossy().into_owned();
    let directory_text = directory.to_string_lossy().into_owned();
    let params = [
        ("device", device_text.as_str()),
        ("directory", directory_text.as_str()),
        ("fstype", "ext4"),
        ("options", "noatime"),
    ];
    assert_eq!(
        start_op(&mut client, "data", "filesystem", &params, None),
        Outcome::Success
    );
    assert!(is_mount_point(&directory));
    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        assert_eq!(check_op(&mut client, "data", level, None), Outcome::Success);
    }
    assert!(
        !directory.join(".wolfpack-check-data").exists(),
        "IsAlive removes its probe file"
    );
    // Unmounted behind the monitor's back: LooksAlive sees it; mounted again: fine.
    monitor_support::system::run("umount", &[&directory_text]);
    let reason = reason_of(
        &check_op(&mut client, "data", CheckLevel::LooksAlive, None),
        false,
    );
    assert!(reason.contains("not mounted"), "{reason}");
    monitor_support::system::run("mount", &[&device_text, &directory_text]);

    let mut user = busy_user(&directory);
    assert_eq!(stop_op(&mut client, "data", None), Outcome::Success);
    assert!(!is_mount_point(&directory), "the stop really unmounted it");
    let status = user.0.wait().expect("wait for the user");
    assert!(
        !status.success(),
        "the filesystem's user was killed: {status:?}"
    );
    assert_eq!(transitions_of(&scratch, "data"), ["online", "offline"]);

    // Mounted already (e.g. after a monitor restart): adopted.
    monitor_support::system::run("mount", &[&device_text, &directory_text]);
    assert_eq!(
        start_op(&mut client, "data", "filesystem", &params, None),
        Outcome::Success
    );
    shut_down(client);
    assert!(!is_mount_point(&directory), "the shutdown unmounted it");
}

#[test]
fn a_busy_filesystem_without_force_fails_the_stop_and_stays_online_until_unmounted() {
    if !require_root("filesystem resource", "loop devices and mount") {
        return;
    }
    let scratch = Scratch::new("fs-busy");
    let mut device = LoopDevice::ext4(&scratch.file("disk.img"), 24);
    let directory = scratch.file("mnt");
    std::fs::create_dir(&directory).expect("mount point");
    device.mount_point = Some(directory.clone());
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let device_text = device.path.to_string_lossy().into_owned();
    let directory_text = directory.to_string_lossy().into_owned();
    let params = [
        ("device", device_text.as_str()),
        ("directory", directory_text.as_str()),
        ("fstype", "ext4"),
        ("force_unmount", "false"),
    ];
    assert_eq!(
        start_op(&mut client, "busy", "filesystem", &params, None),
        Outcome::Success
    );
    let user = busy_user(&directory);
    let reason = unconfirmed_reason_of(&stop_op(&mut client, "busy", None));
    assert!(reason.contains("umount"), "{reason}");
    assert!(is_mount_point(&directory), "no lazy unmount: still mounted");
    assert_eq!(
        transitions_of(&scratch, "busy"),
        ["online"],
        "offline is not logged while it is mounted"
    );
    drop(user);
    wait_pinging(&mut client, "the cleanup unmounts it", || {
        transitions_of(&scratch, "busy") == ["online", "offline"]
    });
    assert!(!is_mount_point(&directory));

    // Bad parameters are rejected before anything runs.
    for bad in [
        vec![
            ("device", device_text.as_str()),
            ("directory", "relative"),
            ("fstype", "ext4"),
        ],
        vec![
            ("device", device_text.as_str()),
            ("directory", "/nonexistent-wp"),
            ("fstype", "ext4"),
        ],
        vec![
            ("device", "-oremount"),
            ("directory", directory_text.as_str()),
            ("fstype", "ext4"),
        ],
        vec![
            ("device", device_text.as_str()),
            ("directory", directory_text.as_str()),
            ("fstype", "ext4;x"),
        ],
        vec![
            ("device", device_text.as_str()),
            ("directory", directory_text.as_str()),
            ("fstype", "ext4"),
            ("options", "a b"),
        ],
        vec![
            ("device", device_text.as_str()),
            ("directory", "/"),
            ("fstype", "ext4"),
        ],
    ] {
        let outcome = start_op(&mut client, "bad", "filesystem", &bad, None);
        assert!(
            matches!(outcome, Outcome::Rejected(_)),
            "{bad:?}: {outcome:?}"
        );
    }
    // A wrong filesystem type fails the start with mount's words, and nothing stays mounted.
    let wrong = [
        ("device", device_text.as_str()),
        ("directory", directory_text.as_str()),
        ("fstype", "xfs"),
    ];
    let reason = reason_of(
        &start_op(&mut client, "wrong", "filesystem", &wrong, None),
        false,
    );
    assert!(reason.contains("mount"), "{reason}");
    assert!(!is_mount_point(&directory));
    shut_down(client);
}
