//! The dead-man switch and the watchdog, through the real monitor process. A daemon that stops
//! pinging (hung, SIGSTOPped: to the monitor it is the same silence) or whose socket closes (it
//! died) must make the monitor stop every resource, write their `offline` lines, and exit 1.
//! The watchdog is a regular file standing in for /dev/watchdog (this machine has neither a
//! watchdog device nor softdog): the test reads the bytes the monitor wrote.
mod monitor_support;

use monitor_support::*;
use std::time::{Duration, Instant};
use wolfpack::monitor::watchdog::{WATCHDOG_KEEPALIVE, WATCHDOG_MAGIC_CLOSE};
use wolfpack::monitor::{Event, MonitorClient, Operation, Outcome};

/// Starts `count` long-running resources and returns their pids. With `ignore_term`, a child
/// ignores SIGTERM: the fence must not wait for a graceful stop.
fn start_sleepers(
    client: &mut MonitorClient,
    scratch: &Scratch,
    count: usize,
    ignore_term: bool,
) -> Vec<i32> {
    (0..count)
        .map(|index| {
            let name = format!("sleeper{index}");
            let pid_file = scratch.file(&format!("{name}.pid"));
            let script = match ignore_term {
                true => "trap '' TERM; sleep 1000 & wait",
                false => "exec sleep 1000",
            };
            let command = recording_pid(&pid_file, script);
            client.send(&start_process(&name, &command, &[], None)).expect("send");
            let (done, _) = wait_for(client, |event| {
                matches!(event, Event::Done { resource, operation: Operation::Start, .. } if *resource == name)
            });
            assert!(matches!(done, Event::Done { outcome: Outcome::Success, .. }), "{done:?}");
            read_pid(&pid_file)
        })
        .collect()
}

fn assert_fenced(scratch: &Scratch, pids: &[i32], count: usize) {
    for index in 0..count {
        let name = format!("sleeper{index}");
        assert_eq!(
            transitions_of(scratch, &name),
            ["online", "offline"],
            "{name}"
        );
    }
    for &pid in pids {
        assert!(!group_exists(pid), "group {pid} survived the fence");
    }
}

#[test]
fn silence_from_the_daemon_fences_every_resource() {
    let scratch = Scratch::new("monitor-silence");
    let mut client = spawn_monitor(&scratch, 1_000, None);
    let pids = start_sleepers(&mut client, &scratch, 2, true);
    let monitor = client.child_pid() as i32;
    // Stop pinging: this is also what a SIGSTOPped or hung daemon looks like.
    let silent_since = Instant::now();
    assert_eq!(wait_exit(&mut client), Some(1), "a fenced monitor exits 1");
    assert!(
        silent_since.elapsed() >= Duration::from_millis(900),
        "fenced only after the timeout"
    );
    assert_fenced(&scratch, &pids, 2);
    assert!(!process_exists(monitor));
}

#[test]
fn pings_keep_resources_online_past_the_fence_timeout() {
    let scratch = Scratch::new("monitor-pinged");
    let mut client = spawn_monitor(&scratch, 1_000, None);
    let pids = start_sleepers(&mut client, &scratch, 1, false);
    let end = Instant::now() + Duration::from_millis(3_000);
    while Instant::now() < end {
        client.ping().expect("ping");
        while client.try_recv().expect("receive").is_some() {}
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        client.try_wait().expect("try_wait").is_none(),
        "pinged, so still running"
    );
    assert!(process_exists(pids[0]));
    assert_eq!(transitions_of(&scratch, "sleeper0"), ["online"]);
    let (status, _) = client.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(status.code(), Some(0));
    assert!(!group_exists(pids[0]));
}

#[test]
fn a_closed_connection_fences_every_resource() {
    let scratch = Scratch::new("monitor-closed");
    // A fence timeout far beyond the test's patience: only the closed socket can explain a fence.
    let mut client = spawn_monitor(&scratch, 600_000, None);
    let pids = start_sleepers(&mut client, &scratch, 2, true);
    let monitor = client.child_pid() as i32;
    drop(client); // The daemon died: its end of the socket closes.
    wait_until("the monitor exited", || {
        // The monitor is the test's child: reap it so its pid disappears.
        let mut status = 0;
        // SAFETY: waitpid on our own child's pid with a valid status pointer.
        let reaped = unsafe { libc::waitpid(monitor, &mut status, libc::WNOHANG) };
        reaped == monitor && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1
    });
    assert_fenced(&scratch, &pids, 2);
}

#[test]
fn the_watchdog_is_fed_on_pings_and_disarmed_only_on_shutdown() {
    let scratch = Scratch::new("monitor-watchdog");
    let device = scratch.file("watchdog");
    std::fs::write(&device, b"").expect("create the stand-in device");
    let mut client = spawn_monitor(&scratch, 5_000, Some(&device));
    for _ in 0..3 {
        let sequence = client.ping().expect("ping");
        wait_for(&mut client, |event| *event == Event::Pong { sequence });
    }
    let (status, _) = client.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(status.code(), Some(0));
    let bytes = std::fs::read(&device).expect("read the stand-in device");
    let (last, feeds) = bytes.split_last().expect("something was written");
    assert_eq!(
        *last, WATCHDOG_MAGIC_CLOSE,
        "graceful shutdown disarms: {bytes:?}"
    );
    assert!(feeds.len() >= 3, "fed at least once per ping: {bytes:?}");
    assert!(
        feeds.iter().all(|&byte| byte == WATCHDOG_KEEPALIVE),
        "{bytes:?}"
    );

    // A fenced monitor closes the device without the magic character: the machine resets.
    let fenced_device = scratch.file("watchdog-fenced");
    std::fs::write(&fenced_device, b"").expect("create the stand-in device");
    let mut client = spawn_monitor(&scratch, 500, Some(&fenced_device));
    client.ping().expect("ping");
    assert_eq!(wait_exit(&mut client), Some(1));
    let bytes = std::fs::read(&fenced_device).expect("read the stand-in device");
    assert!(!bytes.contains(&WATCHDOG_MAGIC_CLOSE), "{bytes:?}");
}

#[test]
fn sigterm_to_the_monitor_fences_every_resource() {
    let scratch = Scratch::new("monitor-sigterm");
    let mut client = spawn_monitor(&scratch, 600_000, None);
    let pids = start_sleepers(&mut client, &scratch, 1, true);
    let monitor = client.child_pid() as i32;
    // SAFETY: signalling our own child by its pid.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGTERM) }, 0);
    assert_eq!(wait_exit(&mut client), Some(1));
    assert_fenced(&scratch, &pids, 1);
}

/// Nothing can run before the daemon's first command, so a slow daemon start-up (seen under
/// QEMU TCG: over 2 s) must not make the monitor fence and exit.
#[test]
fn the_dead_man_switch_is_armed_only_by_the_first_command() {
    let scratch = Scratch::new("monitor-unarmed");
    let mut client = spawn_monitor(&scratch, 200, None);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        client.try_wait().expect("wait").is_none(),
        "the monitor fenced before any command"
    );
    let pids = start_sleepers(&mut client, &scratch, 1, true);
    let monitor = client.child_pid() as i32;
    wait_until(
        "the monitor fenced after the first command went quiet",
        || {
            let mut status = 0;
            // SAFETY: waitpid on our own child's pid with a valid status pointer.
            let reaped = unsafe { libc::waitpid(monitor, &mut status, libc::WNOHANG) };
            reaped == monitor && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1
        },
    );
    assert_fenced(&scratch, &pids, 1);
}

#[test]
fn checks_without_pings_do_not_keep_the_dead_man_switch_armed() {
    let scratch = Scratch::new("monitor-checks-only");
    let mut client = spawn_monitor(&scratch, 1_000, None);
    let pids = start_sleepers(&mut client, &scratch, 1, true);
    // A daemon whose core stopped renewing its lease still runs checks: they must not count.
    let since = Instant::now();
    let fenced = loop {
        if let Some(code) = client.try_wait().expect("try_wait").and_then(|s| s.code()) {
            break Some(code);
        }
        if since.elapsed() > Duration::from_secs(30) {
            break None;
        }
        let _ = client.send(&wolfpack::monitor::Command::Check {
            resource: "sleeper0".into(),
            level: wolfpack::monitor::CheckLevel::LooksAlive,
            timeout_ms: None,
        });
        while client
            .try_recv()
            .map(|event| event.is_some())
            .unwrap_or(false)
        {}
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(fenced, Some(1), "checks alone kept the monitor armed");
    assert_fenced(&scratch, &pids, 1);
}

/// `start_process` of a resource that needs `depends`.
fn start_needing(name: &str, command: &str, depends: &[&str]) -> wolfpack::monitor::Command {
    let mut start = start_process(name, command, &[], None);
    if let wolfpack::monitor::Command::Start { depends: slot, .. } = &mut start {
        *slot = depends.iter().map(|needed| needed.to_string()).collect();
    }
    start
}

fn start_all(client: &mut MonitorClient, starts: &[(&str, String, &[&str])]) {
    for (name, command, depends) in starts {
        client
            .send(&start_needing(name, command, depends))
            .expect("send");
        let (done, _) = wait_for(
            client,
            |event| matches!(event, Event::Done { resource, operation: Operation::Start, .. } if resource == name),
        );
        assert!(
            matches!(
                done,
                Event::Done {
                    outcome: Outcome::Success,
                    ..
                }
            ),
            "{done:?}"
        );
    }
}

/// Ends the daemon's side of the socket (the daemon died) and waits until the monitor fenced.
fn close_and_wait_for_the_fence(client: MonitorClient) {
    let monitor = client.child_pid() as i32;
    drop(client);
    wait_until("the monitor fenced and exited", || {
        let mut status = 0;
        // SAFETY: waitpid on our own child's pid with a valid status pointer.
        let reaped = unsafe { libc::waitpid(monitor, &mut status, libc::WNOHANG) };
        reaped == monitor && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1
    });
}

/// The position of `resource`'s `offline` line in the event log.
fn offline_position(scratch: &Scratch, resource: &str) -> usize {
    event_log(scratch)
        .iter()
        .filter(|transition| transition.word == "offline")
        .position(|transition| transition.resource == resource)
        .unwrap_or_else(|| panic!("no offline line for {resource}: {:?}", event_log(scratch)))
}

/// b needs a; c needs nothing. When the daemon dies, the fence stops b (and c, in parallel)
/// and only once b is gone a: as a normal stop would, never a dependency under a running
/// dependent. Each resource's SIGTERM trap writes a line: a's must come after b's, and b's
/// trap waits (up to 100 ms) for c's, which comes only if c stops alongside b.
#[test]
fn the_fence_stops_dependents_before_what_they_need() {
    let scratch = Scratch::new("monitor-fence-order");
    let order = scratch.file("order");
    let c_stopping = scratch.file("c-stopping");
    let (order, c_stopping) = (order.display(), c_stopping.display());
    let a = format!("trap 'echo a-stopping >> {order}; exit 0' TERM; sleep 1000 & wait");
    let b = format!(
        "trap 'i=0; while [ $i -lt 10 ] && [ ! -e {c_stopping} ]; do sleep 0.01; i=$((i+1)); \
         done; echo b-stopped >> {order}; exit 0' TERM; sleep 1000 & wait"
    );
    let c = format!(
        "trap ': > {c_stopping}; echo c-stopping >> {order}; exit 0' TERM; sleep 1000 & wait"
    );
    let mut client = spawn_monitor(&scratch, 600_000, None);
    start_all(
        &mut client,
        &[("a", a, &[]), ("b", b, &["a"]), ("c", c, &[])],
    );
    close_and_wait_for_the_fence(client);
    let lines = std::fs::read_to_string(scratch.file("order")).unwrap_or_default();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        ["c-stopping", "b-stopped", "a-stopping"],
        "each stopped gracefully, c alongside b, a only after b"
    );
    for name in ["a", "b", "c"] {
        assert_eq!(
            transitions_of(&scratch, name),
            ["online", "offline"],
            "{name}"
        );
    }
    assert!(offline_position(&scratch, "b") < offline_position(&scratch, "a"));
}

/// b needs a and ignores SIGTERM: the fence waits for it only as long as its budget lasts, then
/// kills both; a never gets the graceful stop that b held back, and nothing survives.
#[test]
fn a_fence_whose_budget_is_spent_kills_what_still_runs() {
    let scratch = Scratch::new("monitor-fence-budget");
    let order = scratch.file("order");
    let a = format!(
        "echo $$ > {}; trap 'echo a-stopping >> {}; exit 0' TERM; sleep 1000 & wait",
        scratch.file("a.pid").display(),
        order.display()
    );
    let b = recording_pid(&scratch.file("b.pid"), "trap '' TERM; sleep 1000 & wait");
    let mut client = spawn_monitor(&scratch, 600_000, None);
    start_all(&mut client, &[("a", a, &[]), ("b", b, &["a"])]);
    let pids = [
        read_pid(&scratch.file("a.pid")),
        read_pid(&scratch.file("b.pid")),
    ];
    close_and_wait_for_the_fence(client);
    assert_eq!(
        std::fs::read_to_string(&order).unwrap_or_default(),
        "",
        "a was killed, not stopped, while b still ran"
    );
    for pid in pids {
        assert!(!group_exists(pid), "group {pid} survived the fence");
    }
    for name in ["a", "b"] {
        assert_eq!(
            transitions_of(&scratch, name),
            ["online", "offline"],
            "{name}"
        );
    }
}
