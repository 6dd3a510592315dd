//! A reader that closes the pipe early (`wolfpack simulate ... | head`) ends the printing
//! commands quietly, as it ends every Unix tool, instead of a panic and an abort with a core dump.
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// Runs `wolfpack ARGS`, reads one line of its stdout and closes the pipe, then waits for it:
/// (that line, its stderr, how it ended).
fn run_reading_one_line(args: &[&str]) -> (String, String, std::process::ExitStatus) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wolfpack"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("one line");
    // The BufReader and with it the pipe's read end are gone: the next write finds no reader.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    (first, stderr, status)
}

#[test]
fn simulate_into_a_pipe_closed_after_one_line_ends_without_an_abort() {
    // The failover timeline prints every seed as it goes, about 110 KB for these 300: more
    // than the pipe and the reader's buffer hold, so some write surely comes after the reader
    // is gone. (Plain `simulate` prints only its summary, all of it before the reader can act.)
    let (first, stderr, status) =
        run_reading_one_line(&["simulate", "--seeds", "1..300", "--failover-timeline"]);
    assert!(!first.is_empty(), "simulate printed a line");
    assert_ne!(status.signal(), Some(libc::SIGABRT), "aborted: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE as Unix tools are: {stderr}"
    );
}

/// Issue 16, finding 9: `wolfpack demo | head -1` aborted on the closed pipe and left its three
/// daemons and monitors running with their folder. Now the demo stops its cluster, removes the
/// folder and exits 0, as a tool whose reader went away.
#[test]
fn demo_into_a_pipe_closed_after_one_line_stops_its_cluster_and_ends_quietly() {
    let (first, stderr, status) = run_reading_one_line(&["demo", "--nodes", "2"]);
    // "wolfpack demo: 2 nodes on 127.0.0.1 sharing /tmp/wolfpack-demo-.../disk.img"
    let folder = first
        .split_whitespace()
        .last()
        .and_then(|disk| std::path::Path::new(disk).parent())
        .map(std::path::Path::to_path_buf)
        .expect("the first line names the disk");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!folder.exists(), "{} left behind", folder.display());
    let needle = folder.to_string_lossy().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&needle))
        .collect();
    assert!(
        left.is_empty(),
        "processes of the demo left running: {left:?}"
    );
}
