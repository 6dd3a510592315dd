//! Runs the `wolfpack disk` commands as a user would, on temporary files (and on a loop device
//! when root), and checks exit codes, messages, and that dump and check never write.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BLOCK: u64 = 4096;
/// Where the node-slots region starts on a disk with 256 resource leases (FORMAT.md §2).
const NODE_SLOTS_OFFSET: u64 = (1 + 64 + 1) * BLOCK;

fn wolfpack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wolfpack"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-disk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn format(path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec![
        "disk",
        "format",
        path,
        "--cluster-name",
        "test",
        "--node",
        "1=alpha@198.18.0.1:7400,198.19.0.1:7400",
        "--node",
        "2=beta@198.18.0.2:7400",
        "--node",
        "3=gamma@[2001:db8::3]:7400",
    ];
    args.extend_from_slice(extra);
    wolfpack(&args)
}

fn check(path: &Path) -> Output {
    wolfpack(&["disk", "check", path.to_str().expect("utf-8 path")])
}

/// Flips a byte of a control record in both of its copies (sectors 0 and 1 of its block,
/// FORMAT.md §3): one copy alone is masked by the other.
fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read image");
    bytes[offset as usize] ^= 0x20;
    bytes[offset as usize + 512] ^= 0x20;
    std::fs::write(path, bytes).expect("write image");
}

#[test]
fn fresh_disk_checks_clean_and_a_flipped_lease_slot_byte_is_named() {
    let dir = scratch("flip");
    let disk = dir.join("disk.img");
    let formatted = format(&disk, &["--size", "8M"]);
    assert!(formatted.status.success(), "{}", stderr(&formatted));
    let clean = check(&disk);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        stdout(&clean),
        stderr(&clean)
    );
    assert!(stdout(&clean).contains("0 bad"));

    let slot_of_node_2 = NODE_SLOTS_OFFSET + BLOCK;
    flip_byte(&disk, slot_of_node_2 + 100);
    let damaged = check(&disk);
    assert_eq!(damaged.status.code(), Some(1));
    let report = stdout(&damaged);
    assert!(
        report.contains(&format!("BAD node-slots[1] @{slot_of_node_2}:")),
        "{report}"
    );
    assert!(report.contains("1 bad"), "{report}");
}

#[test]
fn a_flipped_bit_in_a_written_record_is_a_checksum_error() {
    let dir = scratch("crc");
    let disk = dir.join("disk.img");
    assert!(format(&disk, &["--size", "8M"]).status.success());
    let node_entry_of_node_3 = 3 * BLOCK;
    flip_byte(&disk, node_entry_of_node_3 + 40);
    let damaged = check(&disk);
    assert_eq!(damaged.status.code(), Some(1));
    assert!(
        stdout(&damaged).contains("BAD node-table[2]"),
        "{}",
        stdout(&damaged)
    );
    assert!(
        stdout(&damaged).contains("checksum mismatch"),
        "{}",
        stdout(&damaged)
    );
}

#[test]
fn dump_prints_every_record_and_valid_json() {
    let dir = scratch("dump");
    let disk = dir.join("disk.img");
    assert!(
        format(&disk, &["--size", "8M", "--heartbeat-interval-ms", "40"])
            .status
            .success()
    );
    let text = wolfpack(&["disk", "dump", disk.to_str().expect("utf-8")]);
    assert_eq!(text.status.code(), Some(0));
    let text = stdout(&text);
    for expected in [
        "cluster \"test\"",
        "heartbeat 40 ms",
        "node 1 \"alpha\" 198.18.0.1:7400 198.19.0.1:7400",
        "node 3 \"gamma\" [2001:db8::3]:7400",
        "region log",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let json = wolfpack(&["disk", "dump", "--json", disk.to_str().expect("utf-8")]);
    assert_eq!(json.status.code(), Some(0));
    let value: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("dump --json prints valid JSON");
    assert_eq!(value["superblock"]["cluster_name"], "test");
    assert_eq!(value["superblock"]["heartbeat_interval_ms"], 40);
    assert_eq!(value["blocks"].as_array().map(Vec::len), Some(3));
    assert_eq!(value["blocks"][1]["fields"]["name"], "beta");
    assert_eq!(value["bad_records"], 0);

    flip_byte(&disk, NODE_SLOTS_OFFSET + 10);
    let damaged = wolfpack(&["disk", "dump", "--json", disk.to_str().expect("utf-8")]);
    assert_eq!(
        damaged.status.code(),
        Some(1),
        "dump exits non-zero on a bad record"
    );
    let value: serde_json::Value =
        serde_json::from_slice(&damaged.stdout).expect("still valid JSON");
    assert_eq!(value["bad_records"], 1);
    let bad = &value["blocks"].as_array().expect("blocks")[3];
    assert_eq!(bad["region"], "node-slots");
    assert_eq!(bad["status"], "bad");
    assert_eq!(bad["offset_bytes"], NODE_SLOTS_OFFSET);
}

#[test]
fn format_refuses_existing_data_without_force() {
    let dir = scratch("force");
    let disk = dir.join("disk.img");
    assert!(format(&disk, &["--size", "8M"]).status.success());
    let again = format(&disk, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds wolfpack cluster \"test\""),
        "{}",
        stderr(&again)
    );
    assert!(format(&disk, &["--force"]).status.success());
    assert_eq!(check(&disk).status.code(), Some(0));

    let other = dir.join("other.img");
    std::fs::write(&other, vec![0xabu8; 8 << 20]).expect("write");
    let refused = format(&other, &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not a wolfpack superblock"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn format_creates_a_sparse_file_of_the_default_size() {
    let dir = scratch("default");
    let disk = dir.join("new.img");
    assert!(format(&disk, &[]).status.success());
    assert_eq!(std::fs::metadata(&disk).expect("created").len(), 64 << 20);
    assert_eq!(check(&disk).status.code(), Some(0));
}

#[test]
fn format_creates_an_image_only_its_owner_may_read() {
    let dir = scratch("private");
    let disk = dir.join("new.img");
    assert!(format(&disk, &[]).status.success());
    let mode = std::fs::metadata(&disk)
        .expect("created")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600, "mode {mode:04o}: disk contents are private");
}

/// Bad input: dump and check say what and where, exit 1, never panic, never write.
#[test]
fn bad_disks_are_reported_and_never_written() {
    let dir = scratch("bad");
    let good = dir.join("good.img");
    assert!(format(&good, &["--size", "8M"]).status.success());
    let good_bytes = std::fs::read(&good).expect("read");

    let truncated = dir.join("truncated.img");
    std::fs::write(&truncated, &good_bytes[..4 << 20]).expect("write");
    let random = dir.join("random.img");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, &noise).expect("write");
    let newer = dir.join("newer.img");
    let mut newer_bytes = good_bytes.clone();
    newer_bytes[4] = 4;
    newer_bytes[512 + 4] = 4;
    std::fs::write(&newer, &newer_bytes).expect("write");
    let zeros = dir.join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).expect("write");
    let empty = dir.join("empty.img");
    std::fs::write(&empty, b"").expect("write");

    for (path, expected) in [
        (
            &truncated,
            "truncated: formatted for 8388608 bytes but only 4194304 are there",
        ),
        (&random, "not a wolfpack disk"),
        (&newer, "layout version 4 is not supported"),
        (&zeros, "never formatted"),
        (&empty, "holds 0 bytes, fewer than the 4096 needed"),
    ] {
        let before = std::fs::read(path).expect("read");
        for command in ["dump", "check"] {
            let output = wolfpack(&["disk", command, path.to_str().expect("utf-8")]);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{command} {path:?}: {}",
                stderr(&output)
            );
            let message = stderr(&output);
            assert!(message.contains(expected), "{command} {path:?}: {message}");
            assert_eq!(message.lines().count(), 1, "one line: {message}");
        }
        assert_eq!(
            std::fs::read(path).expect("read"),
            before,
            "{path:?} was written"
        );
    }
}

#[test]
fn wrong_flags_name_themselves_in_one_line_and_exit_2() {
    for (args, expected) in [
        (
            vec!["disk", "format", "x.img", "--node", "1=a@1.2.3.4:5"],
            "missing required flag '--cluster-name'",
        ),
        (
            vec!["disk", "format", "x.img", "--cluster-name", "c"],
            "missing required flag '--node'",
        ),
        (
            vec!["disk", "dump", "x.img", "--bogus"],
            "unknown flag '--bogus'",
        ),
        (vec!["disk", "check"], "missing PATH"),
        (vec!["disk", "check", "a", "b"], "unexpected argument 'b'"),
        (
            vec![
                "disk",
                "format",
                "x.img",
                "--cluster-name",
                "c",
                "--node",
                "1=a@1.2.3.4:5",
                "--size",
                "12Q",
            ],
            "--size '12Q'",
        ),
        (
            vec![
                "disk",
                "format",
                "x.img",
                "--cluster-name",
                "c",
                "--node",
                "1=a@1.2.3.4:5",
                "--fence-timeout-ms",
                "5000",
            ],
            "--fence-timeout-ms",
        ),
        (
            vec![
                "disk",
                "format",
                "x.img",
                "--cluster-name",
                "c",
                "--node",
                "1=a@1.2.3.4:5",
                "--node",
                "1=b@1.2.3.4:6",
            ],
            "node id 1 is given twice",
        ),
        (
            vec!["disk", "dump", "x.img", "--disk-io", "aio"],
            "--disk-io 'aio'",
        ),
        (vec!["disk", "sing"], "unknown subcommand 'sing'"),
        (vec!["dance"], "unknown command 'dance'"),
    ] {
        let output = wolfpack(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
        assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
    }
    assert!(
        !Path::new("x.img").exists(),
        "a usage error creates nothing"
    );
}

#[test]
fn help_lists_every_subcommand_and_flag() {
    let top = wolfpack(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    for subcommand in ["disk format", "disk dump", "disk check"] {
        assert!(stdout(&top).contains(subcommand), "{subcommand}");
    }
    let disk = wolfpack(&["disk", "--help"]);
    assert_eq!(disk.status.code(), Some(0));
    for flag in [
        "--cluster-name",
        "--node",
        "--size",
        "--resource-leases",
        "--force",
        "--disk-io",
        "--json",
        "--heartbeat-interval-ms",
        "--lease-renew-interval-ms",
        "--lease-expiry-ms",
        "--fence-timeout-ms",
        "--clock-drift-ppm-max",
    ] {
        assert!(
            stdout(&disk).contains(flag),
            "{flag} missing from disk --help"
        );
    }
}

/// A loop device is a real block device: the default backend must be direct, and the disk must
/// check clean after a format through it. Needs root; under CI it must run.
#[test]
fn format_and_check_on_a_loop_device() {
    if !is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root: this test must run"
        );
        eprintln!("SKIPPED: format_and_check_on_a_loop_device needs root (loop devices)");
        return;
    }
    let dir = scratch("loop");
    let backing = dir.join("backing.img");
    std::fs::write(&backing, vec![0u8; 8 << 20]).expect("backing file");
    let device = LoopDevice::attach(&backing);
    let formatted = format(&device.path, &[]);
    assert!(formatted.status.success(), "{}", stderr(&formatted));
    assert!(
        stdout(&formatted).contains("direct backend"),
        "{}",
        stdout(&formatted)
    );
    let checked = check(&device.path);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    let dumped = wolfpack(&["disk", "dump", device.path.to_str().expect("utf-8")]);
    assert!(
        stdout(&dumped).contains("(direct backend)"),
        "{}",
        stdout(&dumped)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| stdout(&output).trim() == "0")
        .unwrap_or(false)
}

/// Detaches the loop device when dropped, also when the test fails.
struct LoopDevice {
    path: PathBuf,
}

impl LoopDevice {
    fn attach(backing: &Path) -> LoopDevice {
        let output = Command::new("losetup")
            .args(["--find", "--show", backing.to_str().expect("utf-8")])
            .output()
            .expect("losetup runs");
        assert!(output.status.success(), "losetup: {}", stderr(&output));
        LoopDevice {
            path: PathBuf::from(stdout(&output).trim()),
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup")
            .arg("--detach")
            .arg(&self.path)
            .status();
    }
}

/// Issue 14, part 3: the cluster's watchdog policy lives on the disk. `--watchdog required`
/// is shown by dump, a wrong word names the flag, and a node started without `--watchdog` on
/// such a disk refuses to start, naming what to do.
#[test]
fn a_cluster_that_requires_a_watchdog_refuses_a_node_without_one() {
    let dir = scratch("watchdog-policy");
    let disk = dir.join("disk.img");
    let wrong = format(&disk, &["--watchdog", "sometimes"]);
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("--watchdog"), "{}", stderr(&wrong));
    assert!(!disk.exists(), "a usage error creates nothing");
    let formatted = format(&disk, &["--watchdog", "required"]);
    assert!(formatted.status.success(), "{}", stderr(&formatted));
    let dump = wolfpack(&["disk", "dump", disk.to_str().expect("utf-8")]);
    assert!(
        stdout(&dump).contains("watchdog: required"),
        "{}",
        stdout(&dump)
    );
    let key = dir.join("cluster.key");
    let keygen = wolfpack(&["keygen", key.to_str().expect("utf-8")]);
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let node = wolfpack(&[
        "node",
        "--disk",
        disk.to_str().expect("utf-8"),
        "--node-id",
        "1",
        "--key",
        key.to_str().expect("utf-8"),
        "--admin-socket",
        dir.join("n1.sock").to_str().expect("utf-8"),
    ]);
    assert_eq!(node.status.code(), Some(1), "{}", stderr(&node));
    assert!(
        stderr(&node).contains("requires a hardware watchdog")
            && stderr(&node).contains("--watchdog DEV"),
        "{}",
        stderr(&node)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
