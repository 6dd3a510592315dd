//! The `script` resource type through the real monitor process: a controller script that keeps
//! a daemon, words passed without a shell, a status that fails after start, a missing program.
mod monitor_support;

use monitor_support::*;
use std::path::Path;
use wolfpack::monitor::{CheckLevel, Outcome};

/// A controller: `ctl start|stop|status` of a `sleep` daemon whose pid is in `pid_file`.
fn write_controller(path: &Path, pid_file: &Path) {
    let text = format!(
        r#"#!/bin/sh
pidfile={pid}
case "$1" in
start) sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$pidfile"; exit 0;;
stop) [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; rm -f "$pidfile"; exit 0;;
status) [ -e "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null;;
esac
"#,
        pid = pid_file.display()
    );
    write_executable(path, &text);
}

#[test]
fn a_controller_script_starts_checks_and_stops_its_daemon() {
    let scratch = Scratch::new("script-ctl");
    let ctl = scratch.file("ctl");
    let pid_file = scratch.file("daemon.pid");
    write_controller(&ctl, &pid_file);
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let ctl_text = ctl.to_string_lossy().into_owned();
    let (start, stop, status) = (
        format!("{ctl_text} start"),
        format!("{ctl_text}   stop"),
        format!("{ctl_text}\tstatus"),
    );
    let params = [
        ("start", start.as_str()),
        ("stop", stop.as_str()),
        ("status", status.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "svc", "script", &params, None),
        Outcome::Success
    );
    let pid = read_pid(&pid_file);
    assert!(process_exists(pid));
    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        assert_eq!(check_op(&mut client, "svc", level, None), Outcome::Success);
    }
    // The daemon dies: status fails.
    // SAFETY: kill with a pid the test read from the daemon's own pid file.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_until("the daemon is reaped", || !process_exists(pid));
    let reason = reason_of(
        &check_op(&mut client, "svc", CheckLevel::LooksAlive, None),
        false,
    );
    assert!(reason.contains("not running"), "{reason}");
    // Restart it by hand; the stop then must stop it.
    assert_eq!(stop_op(&mut client, "svc", None), Outcome::Success);
    assert_eq!(
        start_op(&mut client, "svc", "script", &params, None),
        Outcome::Success
    );
    let pid = read_pid(&pid_file);
    assert_eq!(stop_op(&mut client, "svc", None), Outcome::Success);
    assert!(!process_exists(pid), "the stop stopped the daemon");
    assert_eq!(
        transitions_of(&scratch, "svc"),
        ["online", "offline", "online", "offline"]
    );
    shut_down(client);
}

#[test]
fn words_reach_the_program_verbatim_without_a_shell_in_a_clean_environment() {
    let scratch = Scratch::new("script-words");
    let record = scratch.file("record");
    let args_file = scratch.file("args");
    let env_file = scratch.file("env");
    let state = scratch.file("state");
    let canary = scratch.file("canary");
    write_executable(
        &record,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {args}; env > {env}; touch {state}\n",
            args = args_file.display(),
            env = env_file.display(),
            state = state.display()
        ),
    );
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let start = format!(
        "{} $HOME ;touch|{} 'q' \"d\" `x` $(y) *",
        record.display(),
        canary.display()
    );
    let status = format!("/usr/bin/test -e {}", state.display());
    let params = [
        ("start", start.as_str()),
        ("stop", "true"),
        ("status", status.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "words", "script", &params, None),
        Outcome::Success
    );
    let args = std::fs::read_to_string(&args_file).expect("args");
    let expected: Vec<String> = [
        "$HOME".to_string(),
        ";touch|".to_string() + &canary.to_string_lossy(),
        "'q'".to_string(),
        "\"d\"".to_string(),
        "`x`".to_string(),
        "$(y)".to_string(),
        "*".to_string(),
    ]
    .to_vec();
    assert_eq!(args.lines().collect::<Vec<_>>(), expected);
    assert!(!canary.exists());
    let environment = std::fs::read_to_string(&env_file).expect("env");
    assert!(
        environment.contains("WOLFPACK_RESOURCE=words\n"),
        "{environment}"
    );
    assert!(
        environment.contains("WOLFPACK_NODE_ID=2\n"),
        "{environment}"
    );
    for leaked in ["HOME=", "CARGO", "RUST_LOG="] {
        assert!(
            !environment.lines().any(|line| line.starts_with(leaked)),
            "{leaked} leaked:\n{environment}"
        );
    }
    // `stop` ("true") leaves the state file, so status after stop still passes: the stop
    // fails, and the cleanup keeps the resource until status says it is stopped.
    let reason = unconfirmed_reason_of(&stop_op(&mut client, "words", Some(3_000)));
    assert!(reason.contains("still running"), "{reason}");
    assert_eq!(transitions_of(&scratch, "words"), ["online"]);
    std::fs::remove_file(&state).expect("stop it by hand");
    wait_pinging(&mut client, "the cleanup confirms the stop", || {
        transitions_of(&scratch, "words") == ["online", "offline"]
    });
    shut_down(client);
}

#[test]
fn a_failing_status_after_start_fails_the_start_and_missing_programs_are_rejected() {
    let scratch = Scratch::new("script-bad");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let params = [("start", "true"), ("stop", "true"), ("status", "false")];
    let reason = reason_of(
        &start_op(&mut client, "never", "script", &params, None),
        false,
    );
    assert!(
        reason.contains("status after a successful start"),
        "{reason}"
    );
    assert_eq!(transitions_of(&scratch, "never"), ["online", "offline"]);

    let missing = [
        ("start", "/nonexistent/program x"),
        ("stop", "true"),
        ("status", "true"),
    ];
    let reason = reason_of(&start_op(&mut client, "m", "script", &missing, None), true);
    assert!(reason.contains("/nonexistent/program"), "{reason}");
    let reason = reason_of(
        &start_op(&mut client, "m", "script", &[("start", "true")], None),
        true,
    );
    assert!(reason.contains("'stop'"), "{reason}");
    let reason = reason_of(
        &start_op(
            &mut client,
            "m",
            "script",
            &[
                ("start", "true"),
                ("stop", "true"),
                ("status", "true"),
                ("bogus", "1"),
            ],
            None,
        ),
        true,
    );
    assert!(reason.contains("bogus"), "{reason}");
    assert!(transitions_of(&scratch, "m").is_empty());
    shut_down(client);
}
