//! A reader that closes the pipe early (`wolfpack simulate ... | head`) ends the printing
//! commands quietly, as it ends every Unix tool, instead of a panic and an abort with a core dump.
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn simulate_into_a_pipe_closed_after_one_line_ends_without_an_abort() {
    // The failover timeline prints every seed as it goes, about 110 KB for these 300: more
    // than the pipe and the reader's buffer hold, so some write surely comes after the reader
    // is gone. (Plain `simulate` prints only its summary, all of it before the reader can act.)
    let mut child = Command::new(env!("CARGO_BIN_EXE_wolfpack"))
        .args(["simulate", "--seeds", "1..300", "--failover-timeline"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("one line");
    assert!(!first.is_empty(), "simulate printed a line");
    // The BufReader and with it the pipe's read end are gone: the next write finds no reader.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    assert_ne!(status.signal(), Some(libc::SIGABRT), "aborted: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE as Unix tools are: {stderr}"
    );
}
