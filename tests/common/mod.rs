//! A cluster of real `wolfpack node` processes on loopback for integration tests: a temp dir, a
//! formatted disk file, a key, one process per node on its own 127.x.y.z address. Every process
//! is stopped by the PID recorded at start, also when a test fails (Drop).
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Conditions are waited for this long: shared, noisy machines must not fail a correct run.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn wolfpack() -> &'static str {
    env!("CARGO_BIN_EXE_wolfpack")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(wolfpack())
        .args(args)
        .output()
        .expect("the binary runs")
}

pub struct Cluster {
    pub dir: PathBuf,
    pub disk: PathBuf,
    pub key: PathBuf,
    pub event_log: PathBuf,
    pub size: u8,
    test_groups: Vec<String>,
    children: BTreeMap<u8, Child>,
}

impl Cluster {
    /// Formats a disk for `configured` nodes (all on 127.`lane`.x.y) without starting any.
    pub fn new(name: &str, configured: u8) -> Cluster {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let disk = dir.join("disk.img");
        let key = dir.join("cluster.key");
        let output = run(&["keygen", key.to_str().expect("utf-8")]);
        assert!(
            output.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // A loopback address unique to this process and test, so parallel tests never collide.
        let lane = 20 + (std::process::id() % 200) as u8;
        let test_lane = name
            .bytes()
            .fold(0u8, |acc, byte| acc.wrapping_mul(31).wrapping_add(byte));
        let mut args: Vec<String> =
            vec!["disk".into(), "format".into(), disk.display().to_string()];
        args.extend([
            "--cluster-name".into(),
            name.into(),
            "--size".into(),
            "16M".into(),
        ]);
        for id in 1..=configured {
            args.push("--node".into());
            args.push(format!("{id}=n{id}@127.{lane}.{test_lane}.{id}:7400"));
        }
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&words);
        assert!(
            output.status.success(),
            "format: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let test_groups = (1..=configured)
            .map(|id| format!("{id}=sleep 1000"))
            .collect();
        let event_log = dir.join("events.log");
        Cluster {
            dir,
            disk,
            key,
            event_log,
            size: configured,
            test_groups,
            children: BTreeMap::new(),
        }
    }

    /// No `--test-group`: the cluster runs only the groups of its catalog (`ctl group add`).
    pub fn catalog_mode(&mut self) {
        self.test_groups.clear();
    }

    /// Node `id`'s HA_RSCTMP for OCF agents (Dummy keeps its state file there).
    pub fn ocf_state_dir(&self, id: u8) -> PathBuf {
        self.dir.join(format!("ocf-{id}"))
    }

    /// `wolfpack ctl` on node `id`: exit code and stdout + stderr.
    pub fn ctl(&self, id: u8, words: &[&str]) -> (Option<i32>, String) {
        let socket = self.socket(id);
        let mut args = vec!["ctl", "--socket", socket.to_str().expect("utf-8 path")];
        args.extend_from_slice(words);
        let output = run(&args);
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    }

    /// `ctl` that must succeed.
    pub fn ctl_ok(&self, id: u8, words: &[&str]) -> String {
        let (code, text) = self.ctl(id, words);
        assert_eq!(code, Some(0), "ctl {words:?}: {text}");
        text
    }

    /// `ctl groups --json` of node `id`: group name → (owner, state), when it answers.
    pub fn groups(&self, id: u8) -> BTreeMap<String, (Option<u64>, String)> {
        let (code, text) = self.ctl(id, &["groups", "--json"]);
        let mut groups = BTreeMap::new();
        if code != Some(0) {
            return groups;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
            return groups;
        };
        for group in value["groups"].as_array().into_iter().flatten() {
            let name = group["name"].as_str().unwrap_or_default().to_string();
            let owner = group["owner"].as_u64();
            let state = group["state"].as_str().unwrap_or_default().to_string();
            groups.insert(name, (owner, state));
        }
        groups
    }

    pub fn socket(&self, id: u8) -> PathBuf {
        self.dir.join(format!("n{id}.sock"))
    }

    pub fn node_args(&self, id: u8) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--disk".into(),
            self.disk.display().to_string(),
            "--node-id".into(),
            id.to_string(),
            "--key".into(),
            self.key.display().to_string(),
            "--admin-socket".into(),
            self.socket(id).display().to_string(),
            "--event-log".into(),
            self.event_log.display().to_string(),
            "--resource-log-dir".into(),
            self.dir
                .join(format!("resources-{id}"))
                .display()
                .to_string(),
            // Loopback nodes share one filesystem: each gets its own OCF state and pid files.
            "--ocf-state-dir".into(),
            self.ocf_state_dir(id).display().to_string(),
        ];
        for group in &self.test_groups {
            args.push("--test-group".into());
            args.push(group.clone());
        }
        args
    }

    pub fn start(&mut self, id: u8) {
        let _ = std::fs::remove_file(self.socket(id));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("n{id}.log")))
            .expect("node log");
        let child = Command::new(wolfpack())
            .args(self.node_args(id))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("node starts");
        self.children.insert(id, child);
    }

    pub fn pid(&self, id: u8) -> u32 {
        self.children.get(&id).expect("started").id()
    }

    pub fn signal(&self, id: u8, signal: i32) {
        // SAFETY: kill(2) on a PID this test started and has not reaped.
        let result = unsafe { libc::kill(self.pid(id) as i32, signal) };
        assert_eq!(result, 0, "signal {signal} to node {id}");
    }

    /// SIGKILL the daemon (its monitor notices and stops its resources) and reap it.
    pub fn kill(&mut self, id: u8) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for a node to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, id: u8) -> Option<i32> {
        let mut child = self.children.remove(&id).expect("started");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} did not exit; {}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctl status --json` of a node, if it answers.
    pub fn status(&self, id: u8) -> Option<serde_json::Value> {
        let socket = self.socket(id);
        let output = run(&["ctl", "--socket", socket.to_str()?, "status", "--json"]);
        if !output.status.success() {
            return None;
        }
        serde_json::from_slice(&output.stdout).ok()
    }

    pub fn members(&self, id: u8) -> Option<Vec<u8>> {
        let status = self.status(id)?;
        if status["state"] != "stabilized" {
            return None;
        }
        status["members"].as_array().map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as u8)
                .collect()
        })
    }

    pub fn groups_online(&self, id: u8) -> Vec<u8> {
        self.status(id)
            .and_then(|status| {
                status["groups_online_here"].as_array().map(|ids| {
                    ids.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as u8)
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Waits until every node of `ids` is stabilized with exactly `ids` as members.
    pub fn wait_membership(&self, ids: &[u8]) {
        self.wait_for(&format!("membership {ids:?}"), || {
            ids.iter()
                .all(|&id| self.members(id).as_deref() == Some(ids))
        });
    }

    /// Waits until every group of the cluster is online on exactly one of `ids`.
    pub fn wait_groups_placed(&self, ids: &[u8]) {
        self.wait_for("every group online on one node", || {
            let mut held: Vec<u8> = ids.iter().flat_map(|&id| self.groups_online(id)).collect();
            held.sort();
            held == (1..=self.size).collect::<Vec<_>>()
        });
    }

    pub fn wait_for(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !condition() {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; {}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        let mut text = String::new();
        for id in 1..=self.size {
            if let Ok(log) = std::fs::read_to_string(self.dir.join(format!("n{id}.log"))) {
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

    /// Asserts that no resource was online on two nodes at the same CLOCK_MONOTONIC instant.
    pub fn assert_no_overlap(&self) {
        let text = std::fs::read_to_string(&self.event_log).unwrap_or_default();
        if let Err(problem) = check_no_overlap(&text) {
            panic!("split brain: {problem}\n{}", self.logs());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            // SIGCONT first: a paused daemon cannot act on SIGTERM.
            // SAFETY: kill(2) on PIDs this test started and has not reaped.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGCONT);
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Parses `<µs> node=N resource=R online|offline` lines and checks that the online intervals of
/// each resource on different nodes never intersect. An interval without an offline line stays
/// open to the end.
pub fn check_no_overlap(text: &str) -> Result<usize, String> {
    let mut open: BTreeMap<(String, u8), u64> = BTreeMap::new();
    let mut intervals: Vec<(String, u8, u64, u64)> = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = (|| {
            let at: u64 = fields.first()?.parse().ok()?;
            let node: u8 = fields.get(1)?.strip_prefix("node=")?.parse().ok()?;
            let resource = fields.get(2)?.strip_prefix("resource=")?.to_string();
            Some((at, node, resource, *fields.get(3)?))
        })();
        let Some((at, node, resource, transition)) = parsed else {
            return Err(format!("unparseable event line: {line}"));
        };
        match transition {
            "online" => {
                open.insert((resource, node), at);
            }
            "offline" => {
                if let Some(since) = open.remove(&(resource.clone(), node)) {
                    intervals.push((resource, node, since, at));
                }
            }
            _ => return Err(format!("unknown transition in: {line}")),
        }
    }
    for ((resource, node), since) in open {
        intervals.push((resource, node, since, u64::MAX));
    }
    for (index, a) in intervals.iter().enumerate() {
        for b in &intervals[index + 1..] {
            if a.0 == b.0 && a.1 != b.1 && a.2 < b.3 && b.2 < a.3 {
                return Err(format!(
                    "{} online on node {} [{}, {}) and node {} [{}, {}) µs",
                    a.0, a.1, a.2, a.3, b.1, b.2, b.3
                ));
            }
        }
    }
    Ok(intervals.len())
}
