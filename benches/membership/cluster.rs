//! A loopback cluster of real `wolfpack node` processes for the membership benchmarks (join,
//! regroup, footprint, false evictions): `wolfpack::loopback` (a temp dir, a formatted disk
//! file, a key, one daemon per node on its own 127.x.y.z address, every daemon stopped by the
//! PID recorded when it was started) with the queries the benchmarks share. Times come from
//! the nodes' own event rings (`ctl events`: CLOCK_MONOTONIC µs, the clock every process of
//! the host shares), so polling only decides when to look, never what is measured.
#![allow(dead_code)]
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;
use wolfpack::loopback::{Addresses, Loopback, LoopbackSpec};

pub use wolfpack::loopback::micros;

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

/// A `Loopback` with the benchmarks' queries (the fields and methods not defined here are its
/// own: `start`, `kill`, `stop`, `pid`, `running`, `socket`, `keep`, `started_us`, ...).
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
    /// Formats a disk for `configured` nodes with the default timing; starts none.
    pub fn new(name: &str, configured: u8) -> Result<Cluster, String> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "wp-bench-{name}-{}-{}",
            std::process::id(),
            micros()
        ));
        // A loopback /16 per benchmark process (and a /24 per cluster) so concurrent runs and
        // the loopback tests never share an address.
        let lane = 100 + (std::process::id() % 100) as u8;
        let cluster_lane = (micros() / 1000 % 250) as u8;
        let loopback = Loopback::create(LoopbackSpec {
            cluster_name: name.to_string(),
            nodes: configured,
            dir,
            binary: binary().into(),
            addresses: Addresses::Lane {
                a: lane,
                b: cluster_lane,
            },
            node_prefix: "n".into(),
            test_group_command: None,
        })?;
        Ok(Cluster { loopback })
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

    /// Polls every `every` until every node of `ids` reports exactly `ids`, stabilized.
    pub fn wait_membership(&self, ids: &[u8], every: Duration) -> Result<(), String> {
        self.loopback
            .wait_for(&format!("membership {ids:?}"), every, |cluster| {
                cluster.has_membership(ids).then_some(())
            })
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
