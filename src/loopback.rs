//! A cluster of real `wolfpack node` processes on loopback, on one host: a folder, a key, a
//! formatted disk file, one daemon per node on its own 127.x.y.z address (or 127.0.0.1 and a
//! free port). `wolfpack demo`, the integration tests (`tests/common`) and the membership
//! benchmarks (`benches/membership/cluster.rs`) all launch their clusters with it.
//!
//! Every daemon is stopped by the PID recorded when it was started (SIGCONT, SIGTERM, then
//! SIGKILL after 20 s; its monitor follows it), also when the caller fails (`Drop`). The folder
//! is removed on drop unless `keep` was called or the thread is panicking (a failed test's
//! logs stay).
use crate::admin::client;
use crate::admin::words::encode_word;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Conditions are waited for this long: a loaded machine delays a run but does not fail it.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// How long a stopped daemon may take to leave before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long `ask` waits for a node's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// CLOCK_MONOTONIC in µs, the clock of every event line (shared by every process of the host).
pub fn micros() -> u64 {
    crate::monitor::event_log::monotonic_micros()
}

/// Where the nodes listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// Node N on 127.`a`.`b`.N port 7400: callers pick `a` and `b` per process and cluster so
    /// parallel runs never share an address (Linux routes all of 127/8 to loopback).
    Lane { a: u8, b: u8 },
    /// Every node on 127.0.0.1, each on a UDP port free when the disk is formatted.
    FreePorts,
}

/// What cluster to make.
#[derive(Clone, Debug)]
pub struct LoopbackSpec {
    /// The cluster's name on its disk.
    pub cluster_name: String,
    /// The nodes configured on the disk (ids 1 to `nodes`); none is started.
    pub nodes: u8,
    /// The folder made for the cluster (disk, key, sockets, logs); emptied first if it exists.
    pub dir: PathBuf,
    /// The `wolfpack` binary to run.
    pub binary: PathBuf,
    pub addresses: Addresses,
    /// Node N's name is `{node_prefix}N`; so are its socket (`.sock`) and its log (`.log`).
    pub node_prefix: String,
    /// Test mode: every node's built-in group runs this command (`--test-group`); `None`: only
    /// the groups of the catalog run.
    pub test_group_command: Option<String>,
}

/// A loopback cluster and the daemons it started.
pub struct Loopback {
    pub dir: PathBuf,
    pub disk: PathBuf,
    pub key: PathBuf,
    /// Every node's resource transitions (`<µs> node=N resource=R online|offline`).
    pub event_log: PathBuf,
    /// The number of configured nodes.
    pub size: u8,
    /// CLOCK_MONOTONIC µs just before each node's latest start.
    pub started_us: BTreeMap<u8, u64>,
    /// Flags added to a node's command line (e.g. `--watchdog FILE`), by node id.
    pub extra_args: BTreeMap<u8, Vec<String>>,
    binary: PathBuf,
    node_prefix: String,
    test_group_command: Option<String>,
    daemons: BTreeMap<u8, Child>,
    keep_dir: bool,
}

impl Loopback {
    /// Makes the folder, a key and a formatted disk for `spec.nodes` nodes; starts none.
    pub fn create(spec: LoopbackSpec) -> Result<Loopback, String> {
        let dir = spec.dir;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let cluster = Loopback {
            disk: dir.join("disk.img"),
            key: dir.join("cluster.key"),
            event_log: dir.join("events.log"),
            dir,
            size: spec.nodes,
            started_us: BTreeMap::new(),
            extra_args: BTreeMap::new(),
            binary: spec.binary,
            node_prefix: spec.node_prefix,
            test_group_command: spec.test_group_command,
            daemons: BTreeMap::new(),
            keep_dir: false,
        };
        cluster.tool(&["keygen", &text(&cluster.key)])?;
        let mut format = vec![
            "disk".to_string(),
            "format".into(),
            text(&cluster.disk),
            "--cluster-name".into(),
            spec.cluster_name,
            "--size".into(),
            "16M".into(),
        ];
        for id in 1..=spec.nodes {
            let address = match spec.addresses {
                Addresses::Lane { a, b } => format!("127.{a}.{b}.{id}:7400"),
                Addresses::FreePorts => format!("127.0.0.1:{}", free_udp_port()?),
            };
            format.push("--node".into());
            format.push(format!("{id}={}@{address}", cluster.node_name(id)));
        }
        let words: Vec<&str> = format.iter().map(String::as_str).collect();
        cluster.tool(&words)?;
        Ok(cluster)
    }

    /// Runs `wolfpack ARGS` to completion; `Err` carries its stderr.
    fn tool(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new(&self.binary)
            .args(args)
            .output()
            .map_err(|error| format!("{}: {error}", args[0]))?;
        match output.status.success() {
            true => Ok(()),
            false => Err(format!(
                "wolfpack {} failed: {}",
                args[0],
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }

    /// A file in the cluster's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn node_name(&self, id: u8) -> String {
        format!("{}{id}", self.node_prefix)
    }

    /// Node `id`'s admin socket.
    pub fn socket(&self, id: u8) -> PathBuf {
        self.path(&format!("{}.sock", self.node_name(id)))
    }

    /// Node `id`'s log (stdout and stderr, appended across restarts).
    pub fn log(&self, id: u8) -> PathBuf {
        self.path(&format!("{}.log", self.node_name(id)))
    }

    /// Node `id`'s HA_RSCTMP for OCF agents: the nodes share one filesystem, so each gets its
    /// own OCF state and pid files.
    pub fn ocf_state_dir(&self, id: u8) -> PathBuf {
        self.path(&format!("ocf-{id}"))
    }

    /// No `--test-group`: the cluster runs only the groups of its catalog (`ctl group add`).
    pub fn catalog_mode(&mut self) {
        self.test_group_command = None;
    }

    /// The command line of node `id` (after the binary).
    pub fn node_args(&self, id: u8) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--disk".into(),
            text(&self.disk),
            "--node-id".into(),
            id.to_string(),
            "--key".into(),
            text(&self.key),
            "--admin-socket".into(),
            text(&self.socket(id)),
            "--event-log".into(),
            text(&self.event_log),
            "--resource-log-dir".into(),
            text(&self.path(&format!("resources-{id}"))),
            "--ocf-state-dir".into(),
            text(&self.ocf_state_dir(id)),
        ];
        if let Some(command) = &self.test_group_command {
            for group in 1..=self.size {
                args.push("--test-group".into());
                args.push(format!("{group}={command}"));
            }
        }
        args.extend(self.extra_args.get(&id).into_iter().flatten().cloned());
        args
    }

    /// Starts node `id`'s daemon; `started_us` records the time just before.
    pub fn start(&mut self, id: u8) -> Result<(), String> {
        let _ = std::fs::remove_file(self.socket(id));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))
            .map_err(|error| format!("{}: {error}", self.log(id).display()))?;
        let stderr = log.try_clone().map_err(|error| error.to_string())?;
        let mut command = Command::new(&self.binary);
        command
            .args(self.node_args(id))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        self.started_us.insert(id, micros());
        let child = command
            .spawn()
            .map_err(|error| format!("cannot start node {id}: {error}"))?;
        self.daemons.insert(id, child);
        Ok(())
    }

    /// Node `id`'s daemon's PID, while this cluster runs it.
    pub fn pid(&self, id: u8) -> Option<u32> {
        self.daemons.get(&id).map(Child::id)
    }

    /// The nodes whose daemons this cluster started and has not stopped or killed.
    pub fn running(&self) -> Vec<u8> {
        self.daemons.keys().copied().collect()
    }

    /// Sends `signal` to node `id`'s daemon.
    pub fn signal(&self, id: u8, signal: i32) -> Result<(), String> {
        let pid = self
            .pid(id)
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or(format!("node {id} is not running"))?;
        // SAFETY: kill(2) on a PID this process started and has not reaped.
        match unsafe { libc::kill(pid, signal) } {
            0 => Ok(()),
            _ => Err(format!(
                "signal {signal} to node {id}: {}",
                std::io::Error::last_os_error()
            )),
        }
    }

    /// SIGKILLs node `id`'s daemon (its monitor notices and stops its resources) and reaps it;
    /// the CLOCK_MONOTONIC µs taken just before the signal.
    pub fn kill(&mut self, id: u8) -> Option<u64> {
        let mut child = self.daemons.remove(&id)?;
        let at = micros();
        let _ = child.kill();
        let _ = child.wait();
        Some(at)
    }

    /// SIGTERM (a graceful leave), then waits for the daemon to exit (SIGKILL after 20 s).
    pub fn stop(&mut self, id: u8) {
        if let Some(child) = self.daemons.remove(&id) {
            stop_child(child);
        }
    }

    /// Waits for node `id`'s daemon to exit by itself: its exit code. `Err` when it is not
    /// running, or still runs at the deadline (then it is killed).
    pub fn wait_exit(&mut self, id: u8) -> Result<Option<i32>, String> {
        let mut child = self
            .daemons
            .remove(&id)
            .ok_or(format!("node {id} is not running"))?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("node {id} did not exit"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends one admin command to node `id` (words escaped as `ctl` sends them); the answer's
    /// body, or `None` when the node does not answer or refuses.
    pub fn ask(&self, id: u8, words: &[&str]) -> Option<String> {
        let encoded: Vec<String> = words.iter().map(|word| encode_word(word)).collect();
        let encoded: Vec<&str> = encoded.iter().map(String::as_str).collect();
        let mut text = String::new();
        client::request(&self.socket(id), &encoded, Some(ASK_TIMEOUT), |line| {
            text.push_str(line);
            text.push('\n');
            true
        })
        .ok()?;
        Some(text)
    }

    /// Node `id`'s membership from `ctl status --json`: (stabilized, members), if it answers.
    pub fn membership(&self, id: u8) -> Option<(bool, Vec<u8>)> {
        let json = self.ask(id, &["status", "--json"])?;
        Some((
            json.contains("\"state\":\"stabilized\""),
            crate::json::number_array::<u8>(&json, "members"),
        ))
    }

    /// Whether every node of `ids` is stabilized with exactly `ids` as members.
    pub fn has_membership(&self, ids: &[u8]) -> bool {
        ids.iter().all(|&id| {
            self.membership(id)
                .is_some_and(|(stabilized, members)| stabilized && members == ids)
        })
    }

    /// Polls `probe` every `every` until it answers; `Err` names `what` and the folder
    /// holding the logs once `DEADLINE` passed.
    pub fn wait_for<T>(
        &self,
        what: &str,
        every: Duration,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(value) = probe(self) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out after {}s waiting for {what}; logs in {}",
                    DEADLINE.as_secs(),
                    self.dir.display()
                ));
            }
            std::thread::sleep(every);
        }
    }

    /// The last 30 lines of every node's log, then the resource event log.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for id in 1..=self.size {
            if let Ok(log) = std::fs::read_to_string(self.log(id)) {
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                text += &format!(
                    "\n--- node {id} log (last lines) ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        text + &format!(
            "\n--- events ---\n{}",
            std::fs::read_to_string(&self.event_log).unwrap_or_default()
        )
    }

    /// Keeps the folder (a failed run's logs) instead of removing it on drop.
    pub fn keep(&mut self) {
        self.keep_dir = true;
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        for (_, child) in std::mem::take(&mut self.daemons) {
            stop_child(child);
        }
        if !self.keep_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn stop_child(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SIGCONT first: a paused daemon cannot act on SIGTERM.
        // SAFETY: kill(2) on a PID this process started and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn free_udp_port() -> Result<u16, String> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("cannot find a free UDP port on 127.0.0.1: {error}"))
}
