//! The fault verbs of a bed, and healing. Every verb notes what it did in `actions.log`.
use super::bed::{stop_child, Bed};
use super::host;
use super::network;
use crate::admin::client;
use std::time::Duration;

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
        self.partitioned = true;
        let networks = self.networks();
        for &a in side_a {
            for &b in side_b {
                network::drop_from(&self.names, b, a, networks)?;
                if direction == Direction::Symmetric {
                    network::drop_from(&self.names, a, b, networks)?;
                }
            }
        }
        Ok(())
    }

    pub fn heal_partitions(&mut self) -> Result<(), String> {
        if self.partitioned {
            for node in 1..=self.options.nodes {
                network::heal_partitions(&self.names, node)?;
            }
            self.partitioned = false;
            self.note("healed partitions");
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

    /// Undoes every fault: thaw, resume, links up, disks answering, partitions healed, and
    /// every daemon that exited (killed, fenced, or stopped itself after losing quorum)
    /// started again.
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
    /// one node, restarting daemons that exit meanwhile.
    pub fn converge(&mut self, deadline: Duration) -> Result<(), String> {
        self.heal()?;
        let all: Vec<u8> = (1..=self.options.nodes).collect();
        self.wait_for("the cluster to converge", deadline, |bed| {
            let _ = bed.restart_exited();
            all.iter().all(|&node| {
                bed.status(node)
                    .is_some_and(|status| status.stabilized && status.members == all)
            }) && bed.holders().values().all(|nodes| nodes.len() == 1)
        })
    }
}
