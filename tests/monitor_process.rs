//! The `process` resource type through the real monitor process: start, checks, stop, a process
//! that exits by itself, and operations that exceed their timeouts. Every test checks by pid
//! that what it started is gone, and shuts the monitor down gracefully (exit 0).
mod monitor_support;

use monitor_support::*;
use std::time::Duration;
use wolfpack::monitor::{CheckLevel, Command, Event, Operation, Outcome};

fn is_done(resource: &str, operation: Operation) -> impl FnMut(&Event) -> bool + '_ {
    move |event| matches!(event, Event::Done { resource: r, operation: o, .. } if r == resource && *o == operation)
}

fn outcome_of(event: &Event) -> Outcome {
    match event {
        Event::Done { outcome, .. } => outcome.clone(),
        other => panic!("not a Done: {other:?}"),
    }
}

fn shut_down(client: wolfpack::monitor::MonitorClient) -> Vec<Event> {
    let (status, events) = client.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(status.code(), Some(0), "a graceful shutdown exits 0");
    events
}

#[test]
fn start_check_stop_writes_online_then_offline() {
    let scratch = Scratch::new("monitor-start-stop");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("web.pid");
    client
        .send(&start_process(
            "web",
            &recording_pid(&pid_file, "exec sleep 1000"),
            &[],
            None,
        ))
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("web", Operation::Start));
    assert_eq!(outcome_of(&done), Outcome::Success);
    let pid = read_pid(&pid_file);
    assert!(process_exists(pid));
    assert_eq!(transitions_of(&scratch, "web"), ["online"]);

    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        client
            .send(&Command::Check {
                resource: "web".into(),
                level,
                timeout_ms: None,
            })
            .expect("send");
        let (done, _) = wait_for(&mut client, is_done("web", Operation::Check(level)));
        assert_eq!(outcome_of(&done), Outcome::Success, "{level:?}");
    }

    client
        .send(&Command::Stop {
            resource: "web".into(),
            timeout_ms: None,
        })
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("web", Operation::Stop));
    assert_eq!(outcome_of(&done), Outcome::Success);
    assert!(
        !group_exists(pid),
        "the process group is gone once the stop is done"
    );
    assert_eq!(transitions_of(&scratch, "web"), ["online", "offline"]);
    let log = event_log(&scratch);
    assert!(log[0].micros <= log[1].micros);
    assert_eq!(log[0].node, "2");

    // Stopping what is not held is already done; checking it is refused.
    client
        .send(&Command::Stop {
            resource: "web".into(),
            timeout_ms: None,
        })
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("web", Operation::Stop));
    assert_eq!(outcome_of(&done), Outcome::Success);
    let level = CheckLevel::LooksAlive;
    client
        .send(&Command::Check {
            resource: "web".into(),
            level,
            timeout_ms: None,
        })
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("web", Operation::Check(level)));
    assert!(matches!(outcome_of(&done), Outcome::Rejected(_)));
    let monitor = client.child_pid() as i32;
    shut_down(client);
    assert!(!process_exists(monitor));
}

#[test]
fn a_process_that_exits_by_itself_is_reported_failed_and_offline() {
    let scratch = Scratch::new("monitor-exits");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("flaky.pid");
    let gate = scratch.file("gate");
    let child_file = scratch.file("flaky-child.pid");
    // A background child outlives the main process unless the monitor cleans the group up.
    let script = format!(
        "sleep 1000 & echo $! > {}; while [ ! -e {} ]; do sleep 0.05; done; exit 3",
        child_file.display(),
        gate.display()
    );
    let command = recording_pid(&pid_file, &script);
    client
        .send(&start_process("flaky", &command, &[], None))
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("flaky", Operation::Start));
    assert_eq!(outcome_of(&done), Outcome::Success);
    let pid = read_pid(&pid_file);
    std::fs::write(&gate, b"").expect("open the gate");
    let (failed, _) = wait_for(&mut client, |event| {
        matches!(event, Event::ResourceFailed { .. })
    });
    let Event::ResourceFailed {
        resource,
        reason,
        offline_confirmed,
    } = failed
    else {
        unreachable!()
    };
    assert_eq!(resource, "flaky");
    assert!(offline_confirmed, "its process group is gone: {reason}");
    assert!(reason.contains("status 3"), "{reason}");
    assert!(!group_exists(pid));
    let child = read_pid(&child_file);
    assert!(
        !process_exists(child),
        "the orphaned child is killed and reaped"
    );
    assert_eq!(transitions_of(&scratch, "flaky"), ["online", "offline"]);
    shut_down(client);
}

#[test]
fn a_start_past_its_timeout_is_killed_and_reported_timed_out() {
    let scratch = Scratch::new("monitor-start-timeout");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("slow.pid");
    let command = recording_pid(&pid_file, "exec sleep 1000");
    client
        .send(&start_process(
            "slow",
            &command,
            &[("ready", "false")],
            Some(500),
        ))
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("slow", Operation::Start));
    assert_eq!(outcome_of(&done), Outcome::TimedOut);
    let pid = read_pid(&pid_file);
    assert!(
        !group_exists(pid),
        "a timed-out start leaves nothing running"
    );
    assert_eq!(transitions_of(&scratch, "slow"), ["online", "offline"]);
    shut_down(client);
}

#[test]
fn a_stop_past_its_timeout_kills_the_group_and_reports_timed_out() {
    let scratch = Scratch::new("monitor-stop-timeout");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("stubborn.pid");
    let command = recording_pid(&pid_file, "trap '' TERM; while :; do sleep 0.1; done");
    client
        .send(&start_process("stubborn", &command, &[], None))
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("stubborn", Operation::Start));
    assert_eq!(outcome_of(&done), Outcome::Success);
    let pid = read_pid(&pid_file);
    client
        .send(&Command::Stop {
            resource: "stubborn".into(),
            timeout_ms: Some(500),
        })
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("stubborn", Operation::Stop));
    assert_eq!(outcome_of(&done), Outcome::TimedOut);
    assert!(!group_exists(pid));
    assert_eq!(transitions_of(&scratch, "stubborn"), ["online", "offline"]);
    shut_down(client);
}

#[test]
fn ready_and_check_commands_decide_start_and_is_alive() {
    let scratch = Scratch::new("monitor-ready");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("svc.pid");
    let healthy = scratch.file("healthy");
    let probe = format!("test -e {}", healthy.display());
    let command = recording_pid(
        &pid_file,
        &format!("sleep 0.3; touch {}; exec sleep 1000", healthy.display()),
    );
    let params = [("ready", probe.as_str()), ("check", probe.as_str())];
    client
        .send(&start_process("svc", &command, &params, None))
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("svc", Operation::Start));
    assert_eq!(outcome_of(&done), Outcome::Success);
    assert!(
        healthy.exists(),
        "online only once the ready command passes"
    );

    std::fs::remove_file(&healthy).expect("make it unhealthy");
    let level = CheckLevel::IsAlive;
    client
        .send(&Command::Check {
            resource: "svc".into(),
            level,
            timeout_ms: None,
        })
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("svc", Operation::Check(level)));
    assert!(matches!(outcome_of(&done), Outcome::Failed(_)), "{done:?}");
    let pid = read_pid(&pid_file);
    assert!(
        process_exists(pid),
        "a failed check leaves the resource to the daemon"
    );

    let events = shut_down(client);
    assert!(events.contains(&Event::AllStopped), "{events:?}");
    assert!(!group_exists(pid));
    assert_eq!(transitions_of(&scratch, "svc"), ["online", "offline"]);
}

#[test]
fn bad_starts_are_rejected_and_change_nothing() {
    let scratch = Scratch::new("monitor-reject");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let unknown_type = Command::Start {
        resource: "x".into(),
        kind: "teleport".into(),
        params: vec![],
        depends: vec![],
        timeout_ms: None,
    };
    let missing_command = Command::Start {
        resource: "y".into(),
        kind: "process".into(),
        params: vec![],
        depends: vec![],
        timeout_ms: None,
    };
    for (command, resource) in [(unknown_type, "x"), (missing_command, "y")] {
        client.send(&command).expect("send");
        let (done, _) = wait_for(&mut client, is_done(resource, Operation::Start));
        assert!(
            matches!(outcome_of(&done), Outcome::Rejected(_)),
            "{done:?}"
        );
    }
    assert!(
        event_log(&scratch).is_empty(),
        "nothing started, nothing logged"
    );
    shut_down(client);
}

#[test]
fn a_check_past_its_timeout_is_killed_and_the_resource_stays_online() {
    let scratch = Scratch::new("monitor-check-timeout");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("svc.pid");
    let check_pid_file = scratch.file("check.pid");
    let check = recording_pid(&check_pid_file, "exec sleep 1000");
    let command = recording_pid(&pid_file, "exec sleep 1000");
    client
        .send(&start_process("svc", &command, &[("check", &check)], None))
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("svc", Operation::Start));
    assert_eq!(outcome_of(&done), Outcome::Success);
    let level = CheckLevel::IsAlive;
    client
        .send(&Command::Check {
            resource: "svc".into(),
            level,
            timeout_ms: Some(300),
        })
        .expect("send");
    let (done, _) = wait_for(&mut client, is_done("svc", Operation::Check(level)));
    assert_eq!(outcome_of(&done), Outcome::TimedOut);
    let check_pid = read_pid(&check_pid_file);
    wait_until("the timed-out check's group is gone", || {
        !group_exists(check_pid)
    });
    let pid = read_pid(&pid_file);
    assert!(
        process_exists(pid),
        "a timed-out check leaves the resource to the daemon"
    );
    assert_eq!(transitions_of(&scratch, "svc"), ["online"]);
    shut_down(client);
    assert!(!group_exists(pid));
}

#[test]
fn a_stop_during_start_cancels_the_start_and_stops() {
    let scratch = Scratch::new("monitor-stop-during-start");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pid_file = scratch.file("svc.pid");
    let command = recording_pid(&pid_file, "exec sleep 1000");
    client
        .send(&start_process("svc", &command, &[("ready", "false")], None))
        .expect("send");
    let pid = read_pid(&pid_file);
    client
        .send(&Command::Stop {
            resource: "svc".into(),
            timeout_ms: None,
        })
        .expect("send");
    let (stop, before) = wait_for(&mut client, is_done("svc", Operation::Stop));
    assert_eq!(outcome_of(&stop), Outcome::Success);
    let start = before
        .iter()
        .find(|event| {
            matches!(
                event,
                Event::Done {
                    operation: Operation::Start,
                    ..
                }
            )
        })
        .expect("the start is answered before the stop");
    assert!(matches!(outcome_of(start), Outcome::Failed(_)), "{start:?}");
    assert!(!group_exists(pid));
    assert_eq!(transitions_of(&scratch, "svc"), ["online", "offline"]);
    shut_down(client);
}
