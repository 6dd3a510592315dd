//! The fault verbs of a bed, and healing. Every verb notes what it did in `actions.log`.
use super::bed::{stop_child, Bed};
use super::host;
use super::network;
use super::status::NodeStatus;
use crate::admin::client;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long `heal` waits for a leaving daemon (SIGTERM: it stops its groups, writes a
/// non-member slot, tells the members, exits) before it goes on without restarting it; the
/// next heal or converge starts it once it exited.
const LEAVE_DEADLINE: Duration = Duration::from_secs(10);
/// How often `converge` and `heal` look again.
const POLL: Duration = Duration::from_millis(20);

/// How a partition cuts the nodes apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Neither side hears the other.
    Symmetric,
    /// The second side does not hear the first; the first still hears the second.
    OneWay,
}

impl Bed {
    /// SIGKILL of the daemon (its monitor notices, stops its resources and exits).
    pub fn kill(&mut self, node: u8) -> Result<(), String> {
        let child = self
            .daemons
            .remove(&node)
            .ok_or(format!("node {node} is not running"))?;
        self.note(&format!("kill node {node} (SIGKILL pid {})", child.id()));
        stop_child(child, libc::SIGKILL, Duration::ZERO);
        self.paused.remove(&node);
        self.leaving.remove(&node);
        Ok(())
    }

    /// SIGTERM of the daemon: a graceful leave (an administrator's shutdown). It stops its
    /// groups, writes a non-member slot and tells the members, then exits; `heal` waits for
    /// that and starts it again (a new incarnation that joins).
    pub fn leave(&mut self, node: u8) -> Result<(), String> {
        let pid = self
            .daemon_pid(node)
            .ok_or(format!("node {node} is not running"))?;
        self.note(&format!(
            "leave: node {node} shuts down (SIGTERM pid {pid})"
        ));
        host::signal(pid, libc::SIGTERM);
        self.leaving.insert(node);
        Ok(())
    }

    /// Waits (up to `LEAVE_DEADLINE` in all) for every leaving daemon to exit.
    fn finish_leaving(&mut self) -> Result<(), String> {
        let started = Instant::now();
        for node in self.leaving.clone() {
            while self.daemon_pid(node).is_some() && started.elapsed() < LEAVE_DEADLINE {
                super::bed::sleep_ms(POLL.as_millis() as u64)?;
            }
            self.leaving.remove(&node);
            match self.daemon_pid(node) {
                None => self.note(&format!(
                    "node {node} left and exited ({} ms after the heal began)",
                    started.elapsed().as_millis()
                )),
                Some(pid) => self.note(&format!(
                    "node {node} (pid {pid}) still shutting down after {} ms; restarted once it exits",
                    started.elapsed().as_millis()
                )),
            }
        }
        Ok(())
    }

    /// SIGSTOP of the daemon only: its monitor keeps running and fences it.
    pub fn pause(&mut self, node: u8) -> Result<(), String> {
        let pid = self
            .daemon_pid(node)
            .ok_or(format!("node {node} is not running"))?;
        self.note(&format!("pause daemon of node {node} (SIGSTOP pid {pid})"));
        host::signal(pid, libc::SIGSTOP);
        self.paused.insert(node);
        Ok(())
    }

    /// SIGCONT of a paused daemon.
    pub fn resume(&mut self, node: u8) -> Result<(), String> {
        if self.paused.remove(&node) {
            if let Some(pid) = self.daemon_pid(node) {
                self.note(&format!("resume daemon of node {node} (SIGCONT pid {pid})"));
                host::signal(pid, libc::SIGCONT);
            }
        }
        Ok(())
    }

    /// Stalls node `node`'s shared disk: every disk operation of its daemon waits `stall_ms`
    /// before it runs (`ctl fault disk-stall`; the bed starts every node with
    /// `--allow-fault-injection`). Its heartbeats go on; its lease cannot be renewed.
    pub fn stall_disk(&mut self, node: u8, stall_ms: u64) -> Result<(), String> {
        self.note(&format!(
            "stall the disk of node {node} ({stall_ms} ms per operation)"
        ));
        self.fault_command(node, &["fault", "disk-stall", &stall_ms.to_string()])?;
        self.disk_stalled.insert(node);
        Ok(())
    }

    /// Ends a disk stall. A daemon that exited meanwhile (fenced by its monitor) restarts with
    /// a disk that answers, so there is nothing to undo for it.
    pub fn unstall_disk(&mut self, node: u8) -> Result<(), String> {
        if self.disk_stalled.remove(&node) && self.daemon_pid(node).is_some() {
            self.note(&format!("disk of node {node} answers again"));
            self.fault_command(node, &["fault", "disk-stall", "off"])?;
        }
        Ok(())
    }

    fn fault_command(&self, node: u8, words: &[&str]) -> Result<(), String> {
        client::request(
            &self.socket(node),
            words,
            Some(Duration::from_secs(2)),
            |_| true,
        )
        .map_err(|error| format!("node {node}: {} failed: {error}", words.join(" ")))
    }

    /// Whether freezing whole nodes works on this host (a cgroup freezer).
    pub fn can_freeze(&self) -> bool {
        !self.cgroups.is_empty()
    }

    /// Freezes the whole node (daemon, monitor, resources) with the cgroup freezer.
    pub fn freeze(&mut self, node: u8) -> Result<(), String> {
        let cgroup = self
            .cgroups
            .get(&node)
            .ok_or("no cgroup freezer on this host: cannot freeze a whole node")?;
        cgroup.set_frozen(true)?;
        self.frozen.insert(node);
        self.note(&format!("freeze node {node} (cgroup freezer)"));
        Ok(())
    }

    pub fn thaw(&mut self, node: u8) -> Result<(), String> {
        if self.frozen.remove(&node) {
            if let Some(cgroup) = self.cgroups.get(&node) {
                cgroup.set_frozen(false)?;
                self.note(&format!("thaw node {node}"));
            }
        }
        Ok(())
    }

    /// Cuts `side_a` from `side_b` on every network (nftables drops on the receiving side).
    /// One-way: `side_b` stops hearing `side_a`.
    pub fn partition(
        &mut self,
        side_a: &[u8],
        side_b: &[u8],
        direction: Direction,
    ) -> Result<(), String> {
        self.note(&format!("partition {side_a:?} | {side_b:?} {direction:?}"));
        let networks = self.networks();
        for &a in side_a {
            for &b in side_b {
                self.filtered.insert(b);
                network::drop_from(&self.names, b, a, networks)?;
                if direction == Direction::Symmetric {
                    self.filtered.insert(a);
                    network::drop_from(&self.names, a, b, networks)?;
                }
            }
        }
        Ok(())
    }

    /// Message loss: each node of `receivers` drops `percent` % of the cluster datagrams it
    /// gets from the other nodes, each drawn on its own (the simulator's `loss_per_mille`).
    pub fn lose_messages(&mut self, receivers: &[u8], percent: u64) -> Result<(), String> {
        self.note(&format!(
            "message loss: {receivers:?} drop {percent} % of the cluster datagrams they get"
        ));
        let (nodes, networks) = (self.options.nodes, self.networks());
        for &node in receivers {
            self.filtered.insert(node);
            network::lose_from_peers(&self.names, node, nodes, networks, percent)?;
        }
        Ok(())
    }

    /// Message duplication: each node of `senders` sends `percent` % of its cluster datagrams
    /// twice (the simulator's `duplicate_per_mille`; the receiver's replay window must drop
    /// the copy).
    pub fn duplicate_messages(&mut self, senders: &[u8], percent: u64) -> Result<(), String> {
        self.note(&format!(
            "message duplication: {senders:?} send {percent} % of their cluster datagrams twice"
        ));
        let (nodes, networks) = (self.options.nodes, self.networks());
        for &node in senders {
            self.filtered.insert(node);
            network::duplicate_to_peers(&self.names, node, nodes, networks, percent)?;
        }
        Ok(())
    }

    /// Removes every partition, loss and duplication rule.
    pub fn heal_partitions(&mut self) -> Result<(), String> {
        if !self.filtered.is_empty() {
            for node in std::mem::take(&mut self.filtered) {
                network::heal_filters(&self.names, node)?;
            }
            self.note("healed partitions, loss and duplication");
        }
        Ok(())
    }

    /// Sets the bridge side of node `node`'s veth on `network` down or up (a pulled cable).
    pub fn link(&mut self, node: u8, network: u8, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        host::ip_in(
            &self.names.switch_namespace(),
            &["link", "set", &self.names.switch_port(node, network), state],
        )?;
        if up {
            self.links_down.remove(&(node, network));
        } else {
            self.links_down.insert((node, network));
        }
        self.note(&format!("link of node {node} network {network} {state}"));
        Ok(())
    }

    /// Undoes every fault: thaw, resume, links up, disks answering, partitions (and loss and
    /// duplication) healed, leaving daemons waited for, and every daemon that exited (killed,
    /// left, fenced, or stopped itself after losing quorum) started again.
    pub fn heal(&mut self) -> Result<(), String> {
        for node in self.frozen.clone() {
            self.thaw(node)?;
        }
        for node in self.paused.clone() {
            self.resume(node)?;
        }
        for (node, network) in self.links_down.clone() {
            self.link(node, network, true)?;
        }
        for node in self.disk_stalled.clone() {
            // Its daemon may have exited between the check and the command: not an error.
            if let Err(error) = self.unstall_disk(node) {
                self.note(&format!("disk stall of node {node} not cleared: {error}"));
            }
        }
        self.heal_partitions()?;
        self.finish_leaving()?;
        self.restart_exited()
    }

    /// Starts every node whose daemon is not running.
    pub fn restart_exited(&mut self) -> Result<(), String> {
        for node in 1..=self.options.nodes {
            if self.daemon_pid(node).is_none() {
                self.start(node)?;
            }
        }
        Ok(())
    }

    /// Heals, then waits until every node is a member and every group is online on exactly
    /// one node, restarting daemons that exit meanwhile. Polls every 20 ms, one status per
    /// node each time; notes how long it took.
    pub fn converge(&mut self, deadline: Duration) -> Result<(), String> {
        self.heal()?;
        let started = Instant::now();
        loop {
            let _ = self.restart_exited();
            if self.converged() {
                self.note(&format!(
                    "converged in {} ms",
                    started.elapsed().as_millis()
                ));
                return Ok(());
            }
            if started.elapsed() > deadline {
                return Err(format!(
                    "timed out after {} s waiting for the cluster to converge (files in {})",
                    deadline.as_secs(),
                    self.dir.display()
                ));
            }
            super::bed::sleep_ms(POLL.as_millis() as u64)?;
        }
    }

    /// Every node stabilized with every node as a member, and every group online on exactly
    /// one node (the same condition as `wait_membership` of all plus `wait_groups_placed`, from
    /// one status per node).
    fn converged(&self) -> bool {
        let all: Vec<u8> = (1..=self.options.nodes).collect();
        let mut holders: BTreeMap<u8, usize> =
            self.group_slots.iter().map(|&group| (group, 0)).collect();
        for &node in &all {
            let Some(NodeStatus {
                stabilized: true,
                members,
                groups_online_here,
                ..
            }) = self.status(node)
            else {
                return false;
            };
            if members != all {
                return false;
            }
            for group in groups_online_here {
                *holders.entry(group).or_default() += 1;
            }
        }
        holders.values().all(|&count| count == 1)
    }
}
