//! A running testbed: namespaces, a formatted disk, a key, the node daemons (each through
//! `ip netns exec` in its namespace and its own cgroup), and the client's prober. Everything it
//! creates is recorded as it is created, and `teardown` (also run by `Drop`) removes exactly
//! that: processes by the PIDs recorded (and, for the monitors and resources the daemons
//! started, by the PIDs in the node's cgroup), then cgroups, namespaces and the run directory.
use super::cgroup::NodeCgroup;
use super::host;
use super::names::{RunNames, NODES_MAX};
use super::network;
use super::status::{self, NodeStatus};
use super::watchdog::{Fired, NodeWatchdog, Target};
use super::{host_address, micros, CLUSTER_PORT};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM/SIGHUP when the command line installed `install_interrupt_flag`.
static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Makes SIGINT, SIGTERM and SIGHUP set a flag that every wait of the testbed checks, so the
/// run unwinds through `Drop` and tears down instead of dying with namespaces left behind.
pub fn install_interrupt_flag() -> Result<(), String> {
    let flag = INTERRUPTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(flag))
            .map_err(|error| format!("cannot handle signal {signal}: {error}"))?;
    }
    Ok(())
}

/// Whether the run was asked to stop.
pub fn interrupted() -> bool {
    INTERRUPTED
        .get()
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// Sleeps `ms`, waking early (with `Err`) when interrupted.
pub fn sleep_ms(ms: u64) -> Result<(), String> {
    let until = Instant::now() + Duration::from_millis(ms);
    loop {
        if interrupted() {
            return Err("interrupted".into());
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// Where a bed's groups come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSource {
    /// `--test-group` flags: group G on every node, its service from `serve.rs`.
    TestGroups,
    /// No test groups: the nodes run what the replicated catalog holds, created through
    /// `wolfpack ctl` once they run (`vip.rs` adds the group `web`).
    Catalog,
}

/// How a bed is built.
#[derive(Clone, Debug)]
pub struct BedOptions {
    pub nodes: u8,
    pub groups: GroupSource,
    /// A second bridge, a second heartbeat network.
    pub second_network: bool,
    /// The `wolfpack` binary every node, service and prober runs.
    pub binary: PathBuf,
    /// Print each action to stdout (they always go to `actions.log`).
    pub verbose: bool,
    /// A watchdog of this timeout (ms) for every node, outside its cgroup (`watchdog.rs`);
    /// at most `timing.watchdog_timeout_max_ms()`.
    pub watchdog_ms: Option<u64>,
    /// The timing the disk is formatted with (`disk format`'s flags).
    pub timing: disklayout::Timing,
}

/// The longest watchdog timeout a bed's disk covers at the default timing.
pub fn watchdog_timeout_max_ms() -> u64 {
    disklayout::Timing::default().watchdog_timeout_max_ms()
}

/// Refuses a watchdog the timing does not cover: it could crash a node only after its lease
/// ended (ARBITRATION.md rule 5). The error names the smallest timing that covers it, as the
/// node does for a device.
pub fn check_watchdog_fits(watchdog_ms: u64, timing: &disklayout::Timing) -> Result<(), String> {
    let max_ms = timing.watchdog_timeout_max_ms();
    if watchdog_ms != 0 && watchdog_ms <= max_ms {
        return Ok(());
    }
    let fit = match (watchdog_ms, timing.fitting_watchdog(watchdog_ms)) {
        (1.., Some(fit)) => format!(
            "; --fence-timeout-ms {} --lease-expiry-ms {} (the smallest lease expiry that fits) \
             cover it",
            fit.fence_timeout_ms, fit.lease_expiry_ms
        ),
        _ => String::new(),
    };
    Err(format!(
        "--watchdog-timeout-ms {watchdog_ms}: the disk's timing covers a watchdog of 1 to \
         {max_ms} ms (the fence timeout less the clock drift bound); a longer one could crash a \
         node only after its lease ended{fit}"
    ))
}

/// A running testbed; see the module doc.
pub struct Bed {
    pub names: RunNames,
    pub dir: PathBuf,
    pub options: BedOptions,
    namespaces: Vec<String>,
    pub(super) daemons: BTreeMap<u8, Child>,
    pub(super) cgroups: BTreeMap<u8, NodeCgroup>,
    prober: Option<Child>,
    pub(super) paused: BTreeSet<u8>,
    pub(super) frozen: BTreeSet<u8>,
    pub(super) links_down: BTreeSet<(u8, u8)>,
    /// Nodes whose disk worker was told to stall (`faults.rs`).
    pub(super) disk_stalled: BTreeSet<u8>,
    /// Nodes whose fault tables hold rules (partitions, loss, duplication): `heal` flushes
    /// exactly these.
    pub(super) filtered: BTreeSet<u8>,
    /// Nodes whose daemon was sent SIGTERM (a graceful leave, `faults.rs`) and that `heal`
    /// waits for before starting them again.
    pub(super) leaving: BTreeSet<u8>,
    /// The groups' slots (the core's numbers): 1..=nodes for test groups; in catalog mode
    /// those added so far.
    pub(super) group_slots: Vec<u8>,
    /// (node, µs) of each `crash`: from then on nothing of the node ran or held an address.
    pub crashes: Vec<(u8, u64)>,
    /// Keep `dir` after teardown (set when a run failed, so its logs can be read).
    pub keep_files: bool,
    /// Each running node's watchdog (with `watchdog_ms`), replaced at every start.
    watchdogs: BTreeMap<u8, NodeWatchdog>,
    /// Every watchdog that fired, in order (their threads append).
    watchdog_fired: Arc<Mutex<Vec<Fired>>>,
    torn_down: bool,
}

impl Bed {
    /// Builds the network, the disk and the key; starts nothing.
    pub fn create(options: BedOptions) -> Result<Bed, String> {
        if let Some(watchdog_ms) = options.watchdog_ms {
            check_watchdog_fits(watchdog_ms, &options.timing)?;
        }
        if !host::is_root() {
            return Err("the netns testbed needs root (network namespaces, nftables)".into());
        }
        if !(2..=NODES_MAX).contains(&options.nodes) {
            return Err(format!("--nodes {}: 2 to {NODES_MAX}", options.nodes));
        }
        for tool in ["ip", "nft"] {
            if !host::have(tool) {
                return Err(format!(
                    "'{tool}' is missing: apt-get install iproute2 nftables (tools/test.sh does)"
                ));
            }
        }
        let names = RunNames::fresh(&host::namespaces());
        let dir = names.dir();
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let _ = std::fs::write(dir.join("owner.pid"), std::process::id().to_string());
        let group_slots = match options.groups {
            GroupSource::TestGroups => (1..=options.nodes).collect(),
            GroupSource::Catalog => Vec::new(),
        };
        let mut bed = Bed {
            names,
            dir,
            options,
            group_slots,
            crashes: Vec::new(),
            namespaces: Vec::new(),
            daemons: BTreeMap::new(),
            cgroups: BTreeMap::new(),
            prober: None,
            paused: BTreeSet::new(),
            frozen: BTreeSet::new(),
            links_down: BTreeSet::new(),
            disk_stalled: BTreeSet::new(),
            filtered: BTreeSet::new(),
            leaving: BTreeSet::new(),
            keep_files: false,
            watchdogs: BTreeMap::new(),
            watchdog_fired: Arc::new(Mutex::new(Vec::new())),
            torn_down: false,
        };
        bed.build()?;
        if bed.options.watchdog_ms.is_some() && !bed.can_freeze() {
            return Err(
                "--watchdog crashes a whole node, which needs the cgroup freezer: none here".into(),
            );
        }
        Ok(bed)
    }

    fn build(&mut self) -> Result<(), String> {
        let networks = self.networks();
        let names = self.names.clone();
        self.note(&format!(
            "building {} nodes, {networks} network(s), run {} in {}",
            self.options.nodes,
            names.prefix,
            self.dir.display()
        ));
        network::build_switch(&names, networks, &mut self.namespaces)?;
        for node in 1..=self.options.nodes {
            network::build_node(&names, node, networks, &mut self.namespaces)?;
            if let Some(cgroup) = NodeCgroup::create(&names.node_cgroup(node)) {
                self.cgroups.insert(node, cgroup);
            }
        }
        network::build_client(&names, self.options.nodes, &mut self.namespaces)?;
        if self.options.groups == GroupSource::Catalog {
            super::vip::route_through_each_node(&names, self.options.nodes)?;
        }
        self.tool(&["keygen", &self.path("cluster.key")])?;
        let mut format = vec![
            "disk".to_string(),
            "format".into(),
            self.path("disk.img"),
            "--cluster-name".into(),
            names.prefix.clone(),
            "--size".into(),
            "16M".into(),
        ];
        let timing = self.options.timing;
        for (flag, value) in [
            ("--heartbeat-interval-ms", timing.heartbeat_interval_ms),
            ("--lease-renew-interval-ms", timing.lease_renew_interval_ms),
            ("--lease-expiry-ms", timing.lease_expiry_ms),
            ("--fence-timeout-ms", timing.fence_timeout_ms),
            ("--clock-drift-ppm-max", timing.clock_drift_ppm_max),
        ] {
            format.push(flag.into());
            format.push(value.to_string());
        }
        for node in 1..=self.options.nodes {
            let addresses: Vec<String> = (0..networks)
                .map(|network| format!("{}:{CLUSTER_PORT}", host_address(network, node)))
                .collect();
            format.push("--node".into());
            format.push(format!("{node}=n{node}@{}", addresses.join(",")));
        }
        let words: Vec<&str> = format.iter().map(String::as_str).collect();
        self.tool(&words)?;
        Ok(())
    }

    pub fn networks(&self) -> u8 {
        if self.options.second_network {
            2
        } else {
            1
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn event_log(&self) -> PathBuf {
        self.dir.join("events.log")
    }

    pub fn socket(&self, node: u8) -> PathBuf {
        self.dir.join(format!("n{node}.sock"))
    }

    /// Appends `what` to `actions.log` with the CLOCK_MONOTONIC time (and prints it when
    /// verbose), so a failed run's schedule can be read next to the event log.
    pub fn note(&self, what: &str) {
        let line = format!("{} {what}\n", micros());
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("actions.log"))
        {
            let _ = file.write_all(line.as_bytes());
        }
        if self.options.verbose {
            print!("{line}");
        }
    }

    fn tool(&self, args: &[&str]) -> Result<(), String> {
        let output = Command::new(&self.options.binary)
            .args(args)
            .output()
            .map_err(|error| format!("cannot run {}: {error}", self.options.binary.display()))?;
        match output.status.success() {
            true => Ok(()),
            false => Err(format!(
                "wolfpack {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }

    /// Group G's command: the service of `serve.rs`, on the network-0 interface of whichever
    /// node runs it (the monitor sets WOLFPACK_NODE_ID; every node gets the same flags).
    fn group_command(&self, group: u8) -> String {
        format!(
            "exec '{}' testbed serve --group {group} --device {}-n${{WOLFPACK_NODE_ID}}e0",
            self.options.binary.display(),
            self.names.prefix
        )
    }

    /// Starts node `node`'s daemon in its namespace and cgroup.
    pub fn start(&mut self, node: u8) -> Result<(), String> {
        let _ = std::fs::remove_file(self.socket(node));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("n{node}.log")))
            .map_err(|error| format!("cannot open node {node}'s log: {error}"))?;
        let stderr = log.try_clone().map_err(|error| error.to_string())?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.names.node_namespace(node)])
            .arg(&self.options.binary)
            .args(["node", "--disk", &self.path("disk.img")])
            .args(["--node-id", &node.to_string()])
            .args(["--key", &self.path("cluster.key")])
            .args(["--admin-socket", &self.socket(node).display().to_string()])
            .args(["--event-log", &self.event_log().display().to_string()])
            .args([
                "--resource-log-dir",
                &self.path(&format!("resources-n{node}")),
            ])
            // The disk-stall verb (`faults.rs`) is a fault command to the node itself.
            .arg("--allow-fault-injection");
        // A new watchdog per start (a reboot): the old one, if it is crashing the node, finishes
        // first.
        self.stop_watchdog(node);
        if let Some(watchdog) = self.arm_watchdog(node)? {
            command.arg("--watchdog").arg(&watchdog.fifo);
            self.watchdogs.insert(node, watchdog);
        }
        if self.options.groups == GroupSource::TestGroups {
            for group in 1..=self.options.nodes {
                command
                    .arg("--test-group")
                    .arg(format!("{group}={}", self.group_command(group)));
            }
        }
        // Its own process group: a Ctrl-C at the terminal reaches only the testbed, which
        // then tears down in order.
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0);
        if let Some(cgroup) = self.cgroups.get(&node) {
            // SAFETY: the hook only makes async-signal-safe system calls (see `entry_hook`).
            unsafe {
                command.pre_exec(cgroup.entry_hook());
            }
        }
        let child = command
            .spawn()
            .map_err(|error| format!("cannot start node {node}: {error}"))?;
        self.note(&format!("start node {node} pid {}", child.id()));
        self.daemons.insert(node, child);
        Ok(())
    }

    /// Node `node`'s new watchdog, when the bed has them.
    fn arm_watchdog(&self, node: u8) -> Result<Option<NodeWatchdog>, String> {
        let (Some(timeout_ms), Some(cgroup)) = (self.options.watchdog_ms, self.cgroups.get(&node))
        else {
            return Ok(None);
        };
        let target = Target {
            node,
            cgroup: cgroup.clone(),
            names: self.names.clone(),
            networks: self.networks(),
            actions_log: self.dir.join("actions.log"),
            verbose: self.options.verbose,
            fired: Arc::clone(&self.watchdog_fired),
        };
        let fifo = self.dir.join(format!("wd{node}.fifo"));
        NodeWatchdog::start(&fifo, timeout_ms, target).map(Some)
    }

    /// Stops node `node`'s watchdog (waiting for a crash it is doing).
    pub(super) fn stop_watchdog(&mut self, node: u8) {
        drop(self.watchdogs.remove(&node));
    }

    /// Every watchdog that fired so far, in order.
    pub fn watchdog_crashes(&self) -> Vec<Fired> {
        self.watchdog_fired
            .lock()
            .map(|fired| fired.clone())
            .unwrap_or_default()
    }

    pub fn start_all(&mut self) -> Result<(), String> {
        for node in 1..=self.options.nodes {
            self.start(node)?;
        }
        Ok(())
    }

    /// The daemon's PID while it runs (reaping it if it exited).
    pub fn daemon_pid(&mut self, node: u8) -> Option<i32> {
        let child = self.daemons.get_mut(&node)?;
        match child.try_wait() {
            Ok(None) => Some(child.id() as i32),
            _ => {
                self.daemons.remove(&node);
                None
            }
        }
    }

    pub fn status(&self, node: u8) -> Option<NodeStatus> {
        status::ask(&self.socket(node))
    }

    /// For each group, the nodes that say they hold it.
    pub fn holders(&self) -> BTreeMap<u8, Vec<u8>> {
        let mut holders: BTreeMap<u8, Vec<u8>> = self
            .group_slots
            .iter()
            .map(|&group| (group, Vec::new()))
            .collect();
        for node in 1..=self.options.nodes {
            for group in self.status(node).unwrap_or_default().groups_online_here {
                holders.entry(group).or_default().push(node);
            }
        }
        holders
    }

    /// Waits (up to `deadline`) for `condition`; `Err` says what did not happen.
    pub fn wait_for(
        &mut self,
        what: &str,
        deadline: Duration,
        mut condition: impl FnMut(&mut Bed) -> bool,
    ) -> Result<(), String> {
        let until = Instant::now() + deadline;
        while !condition(self) {
            if Instant::now() > until {
                return Err(format!(
                    "timed out after {} s waiting for {what} (files in {})",
                    deadline.as_secs(),
                    self.dir.display()
                ));
            }
            sleep_ms(50)?;
        }
        Ok(())
    }

    /// Waits until every node of `members` is stabilized with exactly them as members.
    pub fn wait_membership(&mut self, members: &[u8], deadline: Duration) -> Result<(), String> {
        self.wait_for(&format!("membership {members:?}"), deadline, |bed| {
            members.iter().all(|&node| {
                bed.status(node)
                    .is_some_and(|status| status.stabilized && status.members == members)
            })
        })
    }

    /// Waits until every group is online on exactly one node.
    pub fn wait_groups_placed(&mut self, deadline: Duration) -> Result<(), String> {
        self.wait_for("every group online on exactly one node", deadline, |bed| {
            bed.holders().values().all(|nodes| nodes.len() == 1)
        })
    }

    /// Starts the client's prober (see `probe.rs`); samples go to `probe.samples`. In catalog
    /// mode it probes the groups added so far, so start it after adding them.
    pub fn start_prober(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("probe.log"))
            .map_err(|error| format!("cannot open the probe log: {error}"))?;
        let nodes = self.options.nodes.to_string();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.names.client_namespace()])
            .arg(&self.options.binary)
            .args(["testbed", "probe", "--out", &self.path("probe.samples")])
            .args(["--groups", &nodes, "--nodes", &nodes]);
        if self.options.groups == GroupSource::Catalog {
            // The catalog group's virtual IP, under its slot.
            for &slot in &self.group_slots {
                command.arg(format!("--service={slot}={}", super::vip::VIP_ADDRESS));
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot start the prober: {error}"))?;
        self.note(&format!("start prober pid {}", child.id()));
        self.prober = Some(child);
        Ok(())
    }

    /// Stops the prober (SIGTERM: it flushes its samples) and returns the samples file.
    pub fn stop_prober(&mut self) -> PathBuf {
        if let Some(child) = self.prober.take() {
            stop_child(child, libc::SIGTERM, Duration::from_secs(5));
            self.note("stopped prober");
        }
        self.dir.join("probe.samples")
    }

    /// Stops everything this run started and removes everything it created. Idempotent.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        // First, so that stopping the nodes below is not taken for a hang.
        self.watchdogs.clear();
        self.stop_prober();
        for cgroup in self.cgroups.values() {
            let _ = cgroup.set_frozen(false);
        }
        let daemons = std::mem::take(&mut self.daemons);
        for child in daemons.values() {
            // SIGCONT first: a paused daemon cannot act on SIGTERM.
            host::signal(child.id() as i32, libc::SIGCONT);
            host::signal(child.id() as i32, libc::SIGTERM);
        }
        for (_, child) in daemons {
            stop_child(child, 0, Duration::from_secs(15));
        }
        // What the daemons started (monitors, services) and left: by PID, from their cgroups.
        for cgroup in self.cgroups.values() {
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let pids = cgroup.pids();
                if pids.is_empty() || Instant::now() > until {
                    break;
                }
                for pid in pids {
                    host::signal(pid, libc::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Err(error) = cgroup.remove() {
                eprintln!("testbed: {error}");
            }
        }
        for namespace in self.namespaces.drain(..).rev() {
            if let Err(error) = host::run("ip", &["netns", "del", &namespace]) {
                eprintln!("testbed: {error}");
            }
        }
        if self.keep_files {
            eprintln!("testbed: files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep_files = true;
        }
        self.teardown();
    }
}

/// Sends `signal` (0: none) and waits up to `grace` for the child to exit, then SIGKILLs it;
/// always reaps it.
pub(super) fn stop_child(mut child: Child, signal: i32, grace: Duration) {
    if signal != 0 {
        host::signal(child.id() as i32, signal);
    }
    let until = Instant::now() + grace;
    while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
