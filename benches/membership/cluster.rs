//! A loopback cluster of real `wolfpack node` processes for the membership benchmarks (join,
//! regroup, footprint, false evictions): a temp dir, a formatted disk file, a key, one daemon
//! per node on its own 127.x.y.z address. Times come from the nodes' own event rings
//! (`ctl events`: CLOCK_MONOTONIC µs, the clock every process of the host shares), so polling
//! only decides when to look, never what is measured. Every daemon is stopped by the PID
//! recorded when it was started (its monitor follows it); the temp dir is removed on drop.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wolfpack::admin::client;

/// Conditions are waited for this long: a loaded machine delays a run but does not fail it.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// CLOCK_MONOTONIC in µs, the clock of every event line.
pub fn micros() -> u64 {
    wolfpack::monitor::event_log::monotonic_micros()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wolfpack")
}

/// One event of a node's ring: (CLOCK_MONOTONIC µs, text).
pub type Event = (u64, String);

/// What `ctl status --json` says (the fields the benchmarks use).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub stabilized: bool,
    pub epoch: u64,
    pub members: Vec<u8>,
    pub quorum_owner: bool,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub size: u8,
    daemons: BTreeMap<u8, Child>,
    /// CLOCK_MONOTONIC µs just before each node's latest spawn.
    pub started_us: BTreeMap<u8, u64>,
    keep_dir: bool,
}

impl Cluster {
    /// Formats a disk for `configured` nodes with the default timing; starts none.
    pub fn new(name: &str, configured: u8) -> Result<Cluster, String> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "wp-bench-{name}-{}-{}",
            std::process::id(),
            micros()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cluster = Cluster {
            dir,
            size: configured,
            daemons: BTreeMap::new(),
            started_us: BTreeMap::new(),
            keep_dir: false,
        };
        cluster.tool(&["keygen", &cluster.path("cluster.key")])?;
        // A loopback /16 per benchmark process (and a /24 per cluster) so concurrent runs and
        // the loopback tests never share an address.
        let lane = 100 + (std::process::id() % 100) as u8;
        let cluster_lane = (micros() / 1000 % 250) as u8;
        let mut format = vec![
            "disk".to_string(),
            "format".into(),
            cluster.path("disk.img"),
            "--cluster-name".into(),
            name.into(),
            "--size".into(),
            "16M".into(),
        ];
        for id in 1..=configured {
            format.push("--node".into());
            format.push(format!("{id}=n{id}@127.{lane}.{cluster_lane}.{id}:7400"));
        }
        let words: Vec<&str> = format.iter().map(String::as_str).collect();
        cluster.tool(&words)?;
        Ok(cluster)
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn tool(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new(binary())
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e}", args[0]))?;
        match output.status.success() {
            true => Ok(()),
            false => Err(format!(
                "wolfpack {} failed: {}",
                args[0],
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }

    pub fn socket(&self, id: u8) -> PathBuf {
        self.dir.join(format!("n{id}.sock"))
    }

    /// Spawns node `id`; its start time is taken just before the spawn.
    pub fn start(&mut self, id: u8) -> Result<(), String> {
        let _ = std::fs::remove_file(self.socket(id));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("n{id}.log")))
            .map_err(|e| e.to_string())?;
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(binary());
        command
            .args(["node", "--disk", &self.path("disk.img")])
            .args([
                "--node-id",
                &id.to_string(),
                "--key",
                &self.path("cluster.key"),
            ])
            .args(["--admin-socket", &self.socket(id).display().to_string()])
            .args(["--event-log", &self.path("events.log")])
            .args(["--resource-log-dir", &self.path(&format!("resources-{id}"))])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        self.started_us.insert(id, micros());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        self.daemons.insert(id, child);
        Ok(())
    }

    pub fn pid(&self, id: u8) -> Option<u32> {
        self.daemons.get(&id).map(Child::id)
    }

    pub fn running(&self) -> Vec<u8> {
        self.daemons.keys().copied().collect()
    }

    /// SIGKILLs node `id`'s daemon and reaps it; returns the CLOCK_MONOTONIC µs taken just
    /// before the signal.
    pub fn kill(&mut self, id: u8) -> Option<u64> {
        let mut child = self.daemons.remove(&id)?;
        let at = micros();
        let _ = child.kill();
        let _ = child.wait();
        Some(at)
    }

    /// SIGTERM (a graceful leave), then waits for the daemon to exit.
    pub fn stop(&mut self, id: u8) {
        if let Some(child) = self.daemons.remove(&id) {
            stop_child(child);
        }
    }

    /// Sends one admin command; the answer's body, or `None` when the node does not answer.
    pub fn ask(&self, id: u8, words: &[&str]) -> Option<String> {
        let mut text = String::new();
        client::request(
            &self.socket(id),
            words,
            Some(Duration::from_secs(5)),
            |line| {
                text.push_str(line);
                text.push('\n');
                true
            },
        )
        .ok()?;
        Some(text)
    }

    pub fn status(&self, id: u8) -> Option<Status> {
        let json = self.ask(id, &["status", "--json"])?;
        Some(Status {
            stabilized: json.contains("\"state\":\"stabilized\""),
            epoch: json_number(&json, "epoch").unwrap_or(0),
            members: wolfpack::json::number_array::<u8>(&json, "members"),
            quorum_owner: json.contains("\"quorum_owner\":true"),
        })
    }

    /// Every event in node `id`'s ring (its own only: the monotonic clocks of one host line up).
    pub fn events(&self, id: u8) -> Vec<Event> {
        let text = self.ask(id, &["events", "--local"]).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (at, what) = wolfpack::node::event_record::monotonic_and_text(line)?;
                Some((at, what.to_string()))
            })
            .collect()
    }

    pub fn metrics(&self, id: u8) -> String {
        self.ask(id, &["metrics"]).unwrap_or_default()
    }

    /// Whether every node of `ids` is stabilized with exactly `ids` as members.
    pub fn has_membership(&self, ids: &[u8]) -> bool {
        ids.iter().all(|&id| {
            self.status(id)
                .is_some_and(|s| s.stabilized && s.members == ids)
        })
    }

    /// Polls every `every` until every node of `ids` reports exactly `ids`, stabilized.
    pub fn wait_membership(&self, ids: &[u8], every: Duration) -> Result<(), String> {
        let deadline = Instant::now() + DEADLINE;
        while !self.has_membership(ids) {
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out after {}s waiting for membership {ids:?}; logs kept in {}",
                    DEADLINE.as_secs(),
                    self.dir.display()
                ));
            }
            std::thread::sleep(every);
        }
        Ok(())
    }

    /// Keeps the temp dir (a failed run's logs) instead of removing it on drop.
    pub fn keep(&mut self) {
        self.keep_dir = true;
    }
}

/// The first event of `events` at or after `since` whose text satisfies `matches`.
pub fn first_after(events: &[Event], since: u64, matches: impl Fn(&str) -> bool) -> Option<&Event> {
    events
        .iter()
        .find(|(at, what)| *at >= since && matches(what))
}

/// The text `{1,2,3}` the daemon writes for a member set.
pub fn members_text(ids: &[u8]) -> String {
    let list: Vec<String> = ids.iter().map(u8::to_string).collect();
    format!("{{{}}}", list.join(","))
}

/// Whether `text` is a "stabilized epoch E members {ids}" event.
pub fn is_stabilized_with(text: &str, ids: &[u8]) -> bool {
    text.starts_with("stabilized epoch ")
        && text.ends_with(&format!("members {}", members_text(ids)))
}

fn stop_child(mut child: Child) {
    // SAFETY: kill(2) on a PID this process started and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGCONT);
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in std::mem::take(&mut self.daemons) {
            stop_child(child);
        }
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn json_number(json: &str, name: &str) -> Option<u64> {
    let key = format!("\"{name}\":");
    let start = json.find(&key)? + key.len();
    let digits: String = json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The child processes of `pid` (the daemon's monitor), from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect()
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// utime + stime of `pid` in clock ticks (USER_HZ).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields restart after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5); utime is field 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}
