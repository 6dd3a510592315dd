//! Helpers shared by the monitor's integration tests: a scratch directory, a monitor spawned
//! through the daemon's API, waiting for events while pinging (or not), the event log, and
//! checks by pid. Deadlines are generous and nothing asserts how fast anything is.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use wolfpack::monitor::{Command, Event, MonitorClient, MonitorConfig};

/// How long any wait in these tests may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh directory under the system temp dir, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let serial = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("wolfpack-{name}-{}-{serial}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Spawns the monitor as the daemon would, with its event log in `scratch`.
pub fn spawn_monitor(
    scratch: &Scratch,
    fence_timeout_ms: u32,
    watchdog: Option<&Path>,
) -> MonitorClient {
    let mut config = MonitorConfig::new(2, fence_timeout_ms, scratch.file("events.log"));
    config.watchdog = watchdog.map(Path::to_path_buf);
    MonitorClient::spawn(Path::new(env!("CARGO_BIN_EXE_wolfpack")), config).expect("spawn monitor")
}

/// A `Start` of a `process` resource running `command`, with more parameters.
pub fn start_process(
    resource: &str,
    command: &str,
    extra: &[(&str, &str)],
    timeout_ms: Option<u32>,
) -> Command {
    let mut params = vec![("command".to_string(), command.to_string())];
    params.extend(
        extra
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string())),
    );
    Command::Start {
        resource: resource.to_string(),
        kind: "process".to_string(),
        params,
        depends: Vec::new(),
        timeout_ms,
    }
}

/// A shell command that writes its pid (= its process group) to `pid_file`, then runs `rest`.
pub fn recording_pid(pid_file: &Path, rest: &str) -> String {
    format!("echo $$ > {}; {rest}", pid_file.display())
}

/// Receives events, pinging every 100 ms, until one matches; returns it and every event
/// before it. Panics after PATIENCE.
pub fn wait_for(
    client: &mut MonitorClient,
    mut wanted: impl FnMut(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let end = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    let mut next_ping = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next_ping {
            client.ping().expect("ping the monitor");
            next_ping += Duration::from_millis(100);
        }
        while let Some(event) = client.try_recv().expect("receive from the monitor") {
            if wanted(&event) {
                return (event, seen);
            }
            seen.push(event);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no wanted event within {PATIENCE:?}; saw {seen:?}");
}

/// Waits (without pinging) until `condition` holds; panics after PATIENCE.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while Instant::now() < end {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not within {PATIENCE:?}: {what}");
}

/// The pid a `recording_pid` command wrote, once it has.
pub fn read_pid(pid_file: &Path) -> i32 {
    let mut pid = 0;
    wait_until("the resource wrote its pid", || {
        pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        pid > 1
    });
    pid
}

/// Whether process `pid` exists (zombies included).
pub fn process_exists(pid: i32) -> bool {
    assert!(pid > 1);
    // SAFETY: signal 0 only probes.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Whether any process of group `pgid` exists (zombies included).
pub fn group_exists(pgid: i32) -> bool {
    assert!(pgid > 1);
    // SAFETY: signal 0 only probes.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub micros: u64,
    pub node: String,
    pub resource: String,
    pub word: String,
}

/// Every line of the event log, checked for the documented format.
pub fn event_log(scratch: &Scratch) -> Vec<Transition> {
    let text = std::fs::read_to_string(scratch.file("events.log")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 4, "bad event line {line:?}");
            Transition {
                micros: fields[0].parse().expect("time in microseconds"),
                node: fields[1].strip_prefix("node=").expect("node=").to_string(),
                resource: fields[2]
                    .strip_prefix("resource=")
                    .expect("resource=")
                    .to_string(),
                word: fields[3].to_string(),
            }
        })
        .collect()
}

/// The transitions of `resource`, as words.
pub fn transitions_of(scratch: &Scratch, resource: &str) -> Vec<String> {
    event_log(scratch)
        .into_iter()
        .filter(|transition| transition.resource == resource)
        .map(|transition| transition.word)
        .collect()
}

/// Waits until the monitor has exited and returns its exit code.
pub fn wait_exit(client: &mut MonitorClient) -> Option<i32> {
    let mut code = None;
    wait_until("the monitor exited", || {
        match client.try_wait().expect("try_wait") {
            Some(status) => {
                code = status.code();
                true
            }
            None => false,
        }
    });
    code
}

pub mod system;

/// A `Start` of `resource` as `kind` with `params`.
pub fn start_kind(
    resource: &str,
    kind: &str,
    params: &[(&str, &str)],
    timeout_ms: Option<u32>,
) -> Command {
    Command::Start {
        resource: resource.to_string(),
        kind: kind.to_string(),
        params: params
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        depends: Vec::new(),
        timeout_ms,
    }
}

/// Sends `command` and waits for the `Done` of `resource` and `operation`; returns its outcome
/// and elapsed time.
pub fn run_op(
    client: &mut MonitorClient,
    command: &Command,
    resource: &str,
    operation: wolfpack::monitor::Operation,
) -> (wolfpack::monitor::Outcome, u64) {
    client.send(command).expect("send");
    let (event, _) = wait_for(
        client,
        |event| matches!(event, Event::Done { resource: r, operation: o, .. } if r == resource && *o == operation),
    );
    match event {
        Event::Done {
            outcome,
            elapsed_ms,
            ..
        } => (outcome, elapsed_ms),
        _ => unreachable!(),
    }
}

/// `Start` and wait for its outcome.
pub fn start_op(
    client: &mut MonitorClient,
    resource: &str,
    kind: &str,
    params: &[(&str, &str)],
    timeout_ms: Option<u32>,
) -> wolfpack::monitor::Outcome {
    let command = start_kind(resource, kind, params, timeout_ms);
    run_op(
        client,
        &command,
        resource,
        wolfpack::monitor::Operation::Start,
    )
    .0
}

/// `Stop` and wait for its outcome.
pub fn stop_op(
    client: &mut MonitorClient,
    resource: &str,
    timeout_ms: Option<u32>,
) -> wolfpack::monitor::Outcome {
    let command = Command::Stop {
        resource: resource.to_string(),
        timeout_ms,
    };
    run_op(
        client,
        &command,
        resource,
        wolfpack::monitor::Operation::Stop,
    )
    .0
}

/// A check at `level` and wait for its outcome.
pub fn check_op(
    client: &mut MonitorClient,
    resource: &str,
    level: wolfpack::monitor::CheckLevel,
    timeout_ms: Option<u32>,
) -> wolfpack::monitor::Outcome {
    let command = Command::Check {
        resource: resource.to_string(),
        level,
        timeout_ms,
    };
    let operation = wolfpack::monitor::Operation::Check(level);
    run_op(client, &command, resource, operation).0
}

/// The reason of a `Failed` or `Rejected` outcome; panics on anything else.
pub fn reason_of(outcome: &wolfpack::monitor::Outcome, want_rejected: bool) -> String {
    use wolfpack::monitor::Outcome;
    match (outcome, want_rejected) {
        (Outcome::Rejected(reason), true) | (Outcome::Failed(reason), false) => reason.clone(),
        _ => panic!(
            "expected {}, got {outcome:?}",
            if want_rejected { "Rejected" } else { "Failed" }
        ),
    }
}

/// The reason of an `OfflineNotConfirmed` outcome (the resource may still run, the monitor
/// keeps cleaning up); panics on anything else.
pub fn unconfirmed_reason_of(outcome: &wolfpack::monitor::Outcome) -> String {
    match outcome {
        wolfpack::monitor::Outcome::OfflineNotConfirmed(reason) => {
            assert!(
                reason.ends_with(wolfpack::monitor::protocol::OFFLINE_NOT_CONFIRMED),
                "the reason says so to humans too: {reason}"
            );
            reason.clone()
        }
        _ => panic!("expected OfflineNotConfirmed, got {outcome:?}"),
    }
}

/// Shuts the monitor down and asserts it exited 0 (every resource stopped).
pub fn shut_down(client: MonitorClient) -> Vec<Event> {
    let (status, events) = client.shutdown(PATIENCE).expect("shutdown");
    assert_eq!(
        status.code(),
        Some(0),
        "a graceful shutdown exits 0: {events:?}"
    );
    events
}

/// Spawns the monitor as the daemon would, but through `executable` (a wrapper script).
///
/// Why the retry: the wrapper was just written, and a test on another thread may fork at that
/// moment; its child holds the write descriptor until it execs, and exec of a file open for
/// writing fails with ETXTBSY ("Text file busy") meanwhile.
pub fn spawn_monitor_via(scratch: &Scratch, executable: &Path) -> MonitorClient {
    for _ in 0..50 {
        let config = MonitorConfig::new(2, 5_000, scratch.file("events.log"));
        match MonitorClient::spawn(executable, config) {
            Err(wolfpack::monitor::MonitorError::Spawn(error))
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            spawned => return spawned.expect("spawn monitor"),
        }
    }
    panic!("spawn monitor: {} stayed busy", executable.display());
}

/// Writes an executable file.
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the directory");
    }
    std::fs::write(path, text).expect("write the file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Waits, pinging the monitor every 100 ms, until `condition` holds; panics after PATIENCE.
pub fn wait_pinging(client: &mut MonitorClient, what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while Instant::now() < end {
        client.ping().expect("ping the monitor");
        while client
            .try_recv()
            .expect("receive from the monitor")
            .is_some()
        {}
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("not within {PATIENCE:?}: {what}");
}
