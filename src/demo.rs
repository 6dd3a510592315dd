//! `wolfpack demo`: a local cluster on loopback that fails over, printed as a timeline.
//!
//! A temp dir, a formatted disk file, a key, N nodes on 127.0.0.1 ports; waits for the cluster
//! to form; adds a group `web` to the replicated catalog (`ctl group add`, `ctl resource add`:
//! a `db` process and an `app` process that depends on it); waits for it to come online;
//! SIGKILLs its owner; waits for the group on another node; prints what happened when
//! (CLOCK_MONOTONIC, shared by every process of the host) and `failover_ms=N` as its last
//! line. Needs no root.
use crate::loopback::{micros, Addresses, Loopback, LoopbackSpec};
use std::time::Duration;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(10);
/// The group the demo adds and watches; its slot (the first group of a fresh catalog).
const DEMO_GROUP: &str = "web";
const DEMO_SLOT: u64 = 1;
/// Its top resource: online means the whole group is.
const DEMO_TOP: &str = "app";

pub struct DemoOptions {
    pub nodes: u8,
    pub json: bool,
}

/// Runs the demo; `Err` is the reason it failed. The cluster's daemons are stopped and its
/// folder removed either way (`Loopback`'s drop).
pub fn run(options: &DemoOptions) -> Result<(), String> {
    let count = options.nodes;
    if !(2..=16).contains(&count) {
        return Err(format!("--nodes {count}: the demo runs 2 to 16 nodes"));
    }
    let binary = std::env::current_exe()
        .map_err(|error| format!("cannot find the wolfpack binary: {error}"))?;
    let dir =
        std::env::temp_dir().join(format!("wolfpack-demo-{}-{}", std::process::id(), micros()));
    let mut cluster = DemoCluster {
        cluster: Loopback::create(LoopbackSpec {
            cluster_name: "demo".into(),
            nodes: count,
            dir,
            binary,
            addresses: Addresses::FreePorts,
            node_prefix: "node".into(),
            test_group_command: None,
        })?,
    };
    match cluster.run_scenario(options) {
        Err(error) if error == STDOUT_CLOSED => Ok(()),
        outcome => outcome,
    }
}

struct DemoCluster {
    cluster: Loopback,
}

/// The error that ends the demo when its reader went away (`wolfpack demo | head`): the demo
/// stops its cluster and exits quietly, as a Unix tool ends when its pipe closes. The demo keeps
/// SIGPIPE ignored because it looks after daemons, so it sees the closed pipe as this error.
const STDOUT_CLOSED: &str = "standard output closed";

/// Prints one line of the narrative (not in JSON mode).
fn say(json: bool, line: &str) -> Result<(), String> {
    if json {
        return Ok(());
    }
    print_line(line)
}

fn print_line(line: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|_| STDOUT_CLOSED.to_string())
}

impl DemoCluster {
    fn path(&self, name: &str) -> String {
        self.cluster.path(name).display().to_string()
    }

    fn ask(&self, id: u8, words: &[&str]) -> Option<String> {
        self.cluster.ask(id, words)
    }

    fn start(&mut self, id: u8) -> Result<(), String> {
        self.cluster.start(id)
    }

    fn kill(&mut self, id: u8) {
        self.cluster.kill(id);
    }

    /// (stabilized, members, groups online here) from `ctl status --json` of our own making.
    fn status(&self, id: u8) -> Option<(bool, Vec<u64>, Vec<u64>)> {
        let json = self.ask(id, &["status", "--json"])?;
        let stabilized = json.contains("\"state\":\"stabilized\"");
        Some((
            stabilized,
            crate::json::number_array::<u64>(&json, "members"),
            crate::json::number_array::<u64>(&json, "groups_online_here"),
        ))
    }

    fn wait_for<T>(
        &self,
        what: &str,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, String> {
        self.cluster.wait_for(what, POLL, |_| probe(self))
    }

    fn run_scenario(&mut self, options: &DemoOptions) -> Result<(), String> {
        let count = options.nodes;
        say(
            options.json,
            &format!(
                "wolfpack demo: {count} nodes on 127.0.0.1 sharing {}",
                self.path("disk.img")
            ),
        )?;
        let started = micros();
        for id in 1..=count {
            self.start(id)?;
        }
        let all: Vec<u64> = (1..=u64::from(count)).collect();
        self.wait_for("the cluster to form", |cluster| {
            (1..=count)
                .all(|id| {
                    cluster
                        .status(id)
                        .is_some_and(|(stable, members, _)| stable && members == all)
                })
                .then_some(())
        })?;
        let formed_ms = (micros() - started) / 1000;
        say(
            options.json,
            &format!("formed: nodes {all:?} in {formed_ms} ms"),
        )?;
        let preferred: Vec<String> = (1..=count).map(|id| id.to_string()).collect();
        let preferred = preferred.join(",");
        let catalog: [&[&str]; 3] = [
            &["group", "add", DEMO_GROUP, "--preferred", &preferred],
            &[
                "resource",
                "add",
                "db",
                "--group",
                DEMO_GROUP,
                "--type",
                "process",
                "--param",
                "command=exec sleep 3600",
            ],
            &[
                "resource",
                "add",
                DEMO_TOP,
                "--group",
                DEMO_GROUP,
                "--type",
                "process",
                "--param",
                "command=exec sleep 3600",
                "--depends",
                "db",
            ],
        ];
        for words in catalog {
            let answer = self.ask(1, words);
            say(
                options.json,
                &format!(
                    "ctl {}: {}",
                    words.join(" "),
                    answer.as_deref().map_or("no answer", str::trim)
                ),
            )?;
        }
        let owner = self.wait_for("the demo group to come online", |cluster| {
            let log = std::fs::read_to_string(cluster.path("events.log")).ok()?;
            (1..=count).find(|&id| {
                cluster
                    .status(id)
                    .is_some_and(|(_, _, groups)| groups.contains(&DEMO_SLOT))
                    && log.contains(&format!("node={id} resource={DEMO_TOP} online"))
            })
        })?;
        say(
            options.json,
            &format!(
                "group {DEMO_GROUP} (db, then {DEMO_TOP} which needs it) is online on node {owner}"
            ),
        )?;
        // The cluster database: an update through another node, committed on every member.
        let writer = (1..=count).find(|&id| id != owner).unwrap_or(owner);
        let committed = self.ask(
            writer,
            &[
                "update",
                "properties/demo/note",
                "written-before-the-failover",
            ],
        );
        say(
            options.json,
            &format!(
                "database update through node {writer}: {}",
                committed
                    .as_deref()
                    .map_or("no answer".to_string(), |text| text.trim().to_string())
            ),
        )?;
        let events_before = std::fs::read_to_string(self.path("events.log"))
            .unwrap_or_default()
            .len();
        let killed_at = micros();
        self.kill(owner);
        say(options.json, &format!("killed node {owner} with SIGKILL"))?;
        let (new_owner, online_at) =
            self.wait_for("the group to come online elsewhere", |cluster| {
                let log = std::fs::read_to_string(cluster.path("events.log")).ok()?;
                log.get(events_before..)?.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let at: u64 = fields.first()?.parse().ok()?;
                    let node: u8 = fields.get(1)?.strip_prefix("node=")?.parse().ok()?;
                    let online = fields.get(2) == Some(&format!("resource={DEMO_TOP}").as_str())
                        && fields.get(3) == Some(&"online");
                    (online && node != owner).then_some((node, at))
                })
            })?;
        let timeline = self.timeline(owner, killed_at, new_owner, online_at);
        let failover_ms = (online_at.saturating_sub(killed_at)) / 1000;
        if options.json {
            let steps: Vec<String> = timeline
                .iter()
                .map(|(ms, what)| format!("{{\"ms\":{ms},\"what\":{what:?}}}"))
                .collect();
            print_line(&format!(
                "{{\"nodes\":{count},\"killed\":{owner},\"new_owner\":{new_owner},\"failover_ms\":{failover_ms},\"timeline\":[{}]}}",
                steps.join(",")
            ))?;
        } else {
            print_line("timeline (ms after the kill):")?;
            for (ms, what) in &timeline {
                print_line(&format!("  {ms:>6}  {what}"))?;
            }
            if let Some(read) = self.ask(new_owner, &["get", "properties/demo"]) {
                print_line(&format!(
                    "database read on node {new_owner} after the failover:"
                ))?;
                for line in read.lines() {
                    print_line(&format!("  {line}"))?;
                }
            }
            if let Some(status) = self.ask(new_owner, &["status"]) {
                print_line(&format!("final status of node {new_owner}:"))?;
                for line in status.lines() {
                    print_line(&format!("  {line}"))?;
                }
            }
        }
        print_line(&format!("failover_ms={failover_ms}"))?;
        Ok(())
    }

    /// The survivors' events after the kill, in time order, from their event rings.
    fn timeline(
        &self,
        killed: u8,
        killed_at: u64,
        new_owner: u8,
        online_at: u64,
    ) -> Vec<(u64, String)> {
        let mut steps = vec![(0, format!("node {killed} killed"))];
        let mut seen = Vec::new();
        for id in self
            .cluster
            .running()
            .into_iter()
            .filter(|id| *id != killed)
        {
            let Some(events) = self.ask(id, &["events", "--local"]) else {
                continue;
            };
            for line in events.lines() {
                let Some((at, text)) = crate::node::event_record::monotonic_and_text(line) else {
                    continue;
                };
                // The subject column (`group/resource`, or `-`) names what a transition is of.
                let subject = line.split(' ').nth(5).unwrap_or("-");
                let text = if subject == "-" {
                    text.to_string()
                } else {
                    format!("{subject} {text}")
                };
                let text = text.as_str();
                let interesting = text.contains("silent")
                    || text.contains("stabilized")
                    || text.contains("confirmed stopped")
                    || text.contains("-> online");
                if at >= killed_at
                    && at <= online_at
                    && interesting
                    && !seen.contains(&text.to_string())
                {
                    seen.push(text.to_string());
                    steps.push(((at - killed_at) / 1000, format!("node {id}: {text}")));
                }
            }
        }
        steps.push((
            (online_at - killed_at) / 1000,
            format!("{DEMO_TOP} (the group's top resource) running on node {new_owner}"),
        ));
        steps.sort();
        steps
    }
}
