//! A cluster of real `wolfpack node` processes on loopback for integration tests
//! (`wolfpack::loopback`: a temp dir, a formatted disk file, a key, one process per node on its
//! own 127.x.y.z address, every process stopped by the PID recorded at start, also when a test
//! fails), with the queries the tests share; a wait that times out panics with the logs.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use wolfpack::loopback::{Addresses, Loopback, LoopbackSpec};

/// Conditions are waited for this long: shared, noisy machines must not fail a correct run.
pub const DEADLINE: Duration = wolfpack::loopback::DEADLINE;

pub fn wolfpack() -> &'static str {
    env!("CARGO_BIN_EXE_wolfpack")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(wolfpack())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A `Loopback` whose failures panic (the field and methods not redefined here are its own).
pub struct Cluster {
    loopback: Loopback,
}

impl Deref for Cluster {
    type Target = Loopback;
    fn deref(&self) -> &Loopback {
        &self.loopback
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Loopback {
        &mut self.loopback
    }
}

impl Cluster {
    /// Formats a disk for `configured` nodes (all on 127.`lane`.x.y) without starting any. In
    /// test mode: every node has a built-in group running `sleep 1000` (`catalog_mode` undoes it).
    pub fn new(name: &str, configured: u8) -> Cluster {
        // A loopback address unique to this process and test, so parallel tests never collide.
        let lane = 20 + (std::process::id() % 200) as u8;
        let test_lane = name
            .bytes()
            .fold(0u8, |acc, byte| acc.wrapping_mul(31).wrapping_add(byte));
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wp-{name}-{}", std::process::id()));
        let loopback = Loopback::create(LoopbackSpec {
            cluster_name: name.to_string(),
            nodes: configured,
            dir,
            binary: wolfpack().into(),
            addresses: Addresses::Lane {
                a: lane,
                b: test_lane,
            },
            node_prefix: "n".into(),
            test_group_command: Some("sleep 1000".into()),
        })
        .expect("a loopback cluster");
        Cluster { loopback }
    }

    pub fn start(&mut self, id: u8) {
        self.loopback.start(id).expect("node starts");
    }

    pub fn pid(&self, id: u8) -> u32 {
        self.loopback.pid(id).expect("started")
    }

    pub fn signal(&self, id: u8, signal: i32) {
        if let Err(error) = self.loopback.signal(id, signal) {
            panic!("{error}");
        }
    }

    /// SIGKILL the daemon (its monitor notices and stops its resources) and reap it.
    pub fn kill(&mut self, id: u8) {
        self.loopback.kill(id);
    }

    /// Waits for a node to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, id: u8) -> Option<i32> {
        match self.loopback.wait_exit(id) {
            Ok(code) => code,
            Err(error) => panic!("{error}; {}", self.logs()),
        }
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

    /// Asserts that no resource was online on two nodes at the same CLOCK_MONOTONIC instant.
    pub fn assert_no_overlap(&self) {
        let text = std::fs::read_to_string(&self.event_log).unwrap_or_default();
        if let Err(problem) = check_no_overlap(&text) {
            panic!("split brain: {problem}\n{}", self.logs());
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
