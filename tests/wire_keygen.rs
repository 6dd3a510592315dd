//! Runs `wolfpack keygen` as a user would and loads what it writes: mode 0600 and 65 bytes,
//! an existing file refused without `--force` and replaced with it, and `ClusterKey::load`
//! refusing a key file that group or others can read (with the chmod hint), that another user
//! owns, or that is a FIFO (at once, without waiting for a writer).
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wolfpack::wire::{ClusterKey, KeyError};

fn wolfpack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wolfpack"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wire-keygen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn keygen(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["keygen", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    wolfpack(&args)
}

#[test]
fn keygen_writes_a_private_65_byte_key_that_loads() {
    let path = scratch("fresh").join("cluster.key");
    let output = keygen(&path, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(mode(&path), 0o600);
    let contents = std::fs::read(&path).expect("read key");
    assert_eq!(contents.len(), 65);
    assert_eq!(contents[64], b'\n');
    assert!(contents[..64]
        .iter()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte)));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains(std::str::from_utf8(&contents[..16]).expect("hex")));
    ClusterKey::load(&path).expect("loads");
}

#[test]
fn keygen_refuses_an_existing_file_unless_forced() {
    let path = scratch("existing").join("cluster.key");
    std::fs::write(&path, "precious\n").expect("write");
    let output = keygen(&path, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains("--force"), "{message}");
    assert_eq!(std::fs::read(&path).expect("read"), b"precious\n");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let output = keygen(&path, &["--force"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        mode(&path),
        0o600,
        "a replaced key does not keep the old mode"
    );
    assert_eq!(std::fs::read(&path).expect("read").len(), 65);
    let leftovers = std::fs::read_dir(path.parent().expect("dir")).expect("list");
    assert_eq!(leftovers.count(), 1, "no temporary file left behind");
}

#[test]
fn two_keys_differ() {
    let dir = scratch("two");
    let (first, second) = (dir.join("a.key"), dir.join("b.key"));
    assert_eq!(keygen(&first, &[]).status.code(), Some(0));
    assert_eq!(keygen(&second, &[]).status.code(), Some(0));
    assert_ne!(
        std::fs::read(first).expect("a"),
        std::fs::read(second).expect("b")
    );
}

#[test]
fn keygen_usage_errors_name_what_is_wrong() {
    for (args, expected) in [
        (vec!["keygen"], "keygen: missing FILE"),
        (vec!["keygen", "a", "b"], "unexpected argument 'b'"),
        (
            vec!["keygen", "a", "--frobnicate"],
            "unknown flag '--frobnicate'",
        ),
    ] {
        let output = wolfpack(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains(expected), "{message}");
    }
    let help = wolfpack(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("keygen FILE"));
    let help = wolfpack(&["keygen", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--force"));
}

#[test]
fn keygen_into_a_missing_directory_fails_in_one_line() {
    let path = scratch("missing").join("no-such-dir").join("cluster.key");
    let output = keygen(&path, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("cannot create key file"), "{message}");
}

#[test]
fn load_refuses_a_key_others_can_read_and_says_how_to_fix_it() {
    let path = scratch("exposed").join("cluster.key");
    assert_eq!(keygen(&path, &[]).status.code(), Some(0));
    let secret = std::fs::read_to_string(&path).expect("read");
    for exposed_mode in [0o644, 0o640, 0o604, 0o620, 0o601] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(exposed_mode))
            .expect("chmod");
        let error = ClusterKey::load(&path).expect_err("exposed key");
        assert!(matches!(error, KeyError::Exposed { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&format!("mode {exposed_mode:04o}")),
            "{message}"
        );
        assert!(message.contains("group or others"), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        assert!(!message.contains(secret.trim_end()), "never shows the key");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    ClusterKey::load(&path).expect("owner-only read is fine");
}

#[test]
fn load_says_what_is_wrong_with_a_malformed_key() {
    let dir = scratch("malformed");
    let write_private = |name: &str, contents: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    };
    let mut upper = [b'a'; 65];
    upper[64] = b'\n';
    upper[9] = b'F';
    for (path, expected) in [
        (
            write_private("short.key", b"abcd\n"),
            "5 bytes long, not 65",
        ),
        (
            write_private("long.key", &[b'a'; 200]),
            "200 bytes long, not 65",
        ),
        (
            write_private("upper.key", &upper),
            "character 10 is not a lowercase hex",
        ),
    ] {
        let error = ClusterKey::load(&path).expect_err("malformed");
        assert!(matches!(error, KeyError::Malformed { .. }), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    let missing = ClusterKey::load(&dir.join("absent.key")).expect_err("missing");
    assert!(missing.to_string().contains("absent.key"), "{missing}");
    let directory = ClusterKey::load(&dir).expect_err("a directory");
    assert!(
        matches!(directory, KeyError::NotAFile { .. }),
        "{directory:?}"
    );
}

#[test]
fn load_refuses_a_fifo_at_once_instead_of_hanging() {
    let path = scratch("fifo").join("cluster.key");
    let made = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
    let (sender, receiver) = std::sync::mpsc::channel();
    let loading = path.clone();
    // On a thread, so a load that blocks in open fails the test instead of hanging it.
    std::thread::spawn(move || {
        let _ = sender.send(ClusterKey::load(&loading).map(|_| ()));
    });
    let outcome = receiver
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("load returns within 5 s");
    let error = outcome.expect_err("a FIFO is not a key file");
    assert!(matches!(error, KeyError::NotAFile { .. }), "{error:?}");
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

/// Whether this test may chown files to another user; says loudly when it skips. Under CI the
/// test must run, so there not being root fails it.
fn can_chown(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root to chown and CI=true requires it to run"
    );
    eprintln!("SKIPPED {test}: needs root to chown a key file to another user");
    false
}

#[test]
fn load_refuses_a_key_another_user_owns() {
    if !can_chown("load_refuses_a_key_another_user_owns") {
        return;
    }
    let path = scratch("foreign").join("cluster.key");
    assert_eq!(keygen(&path, &[]).status.code(), Some(0));
    ClusterKey::load(&path).expect("our own key loads");
    let nobody = 65534;
    std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).expect("chown");
    assert_eq!(mode(&path), 0o600, "chown leaves the mode private");
    let error = ClusterKey::load(&path).expect_err("a key another user owns");
    assert!(matches!(error, KeyError::ForeignOwner { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("owned by uid 65534"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}
