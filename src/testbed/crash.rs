//! `crash`: a whole node dies at once, as a machine that loses power: its daemon, its monitor
//! and its resources are SIGKILLed together, and the addresses its resources had added are
//! gone (a dead machine's kernel holds none). The next `start` of the node is its reboot.
//!
//! Why not the `kill` verb: SIGKILL of the daemon alone leaves its monitor alive, which then
//! stops every resource cleanly (an `ip` resource deletes its address) and writes a fence
//! acknowledgement, so the survivors need not wait for the lease. A crash gives neither: the
//! survivors wait for the lease to expire, and nothing removes a virtual IP but the crash
//! itself.
//!
//! Why the addresses are removed by the bed: a namespace outlives its processes, so a VIP an
//! `ip` resource added would stay configured, answer ARP and reset connections as if the dead
//! node still held it, which a real crash does not do. The node keeps its own addresses (a
//! reboot configures them again).
//!
//! The monitors' event log has no `offline` line for what a crashed node held: its monitor
//! died with it. `event_log_with_crashes` closes those intervals at the crash instant the bed
//! recorded, which is after every process of the node was gone and its added addresses
//! deleted, so the overlap check stays exact.
use super::bed::{stop_child, Bed};
use super::cgroup::NodeCgroup;
use super::names::RunNames;
use super::overlap::{self, parse_line};
use super::{host, host_address, micros};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long freezing or emptying a node's cgroup may take before the crash counts as failed.
const SETTLE_DEADLINE: Duration = Duration::from_secs(5);

impl Bed {
    /// Crashes node `node` (see the module doc); returns the CLOCK_MONOTONIC µs by which
    /// nothing of it ran and no address it added remained, also kept in `crashes`.
    pub fn crash(&mut self, node: u8) -> Result<u64, String> {
        self.crash_all(&[node])
    }

    /// Crashes every node of `nodes` at once, as a power loss of the whole room: all their
    /// cgroups frozen first, then every process in them SIGKILLed, thawed, waited until empty,
    /// and their added addresses deleted. Returns the µs by which that was done for all, kept
    /// in `crashes` for each node.
    pub fn crash_all(&mut self, nodes: &[u8]) -> Result<u64, String> {
        let mut cgroups = Vec::new();
        for node in nodes {
            cgroups.push((
                self.cgroups
                    .get(node)
                    .ok_or("no cgroup freezer on this host: cannot crash a whole node at once")?
                    .clone(),
                *node,
            ));
        }
        // A machine without power has no watchdog running either (and one that fires now
        // would race with this crash); its restart arms a new one.
        for &node in nodes {
            self.stop_watchdog(node);
        }
        kill_cgroups(&cgroups)?;
        for &node in nodes {
            if let Some(daemon) = self.daemons.remove(&node) {
                // Already dead: this only reaps it.
                stop_child(daemon, 0, Duration::from_secs(1));
            }
            self.paused.remove(&node);
            self.frozen.remove(&node);
            self.leaving.remove(&node);
            remove_added_addresses(&self.names, node, self.networks())?;
        }
        let at = micros();
        for &node in nodes {
            self.crashes.push((node, at));
        }
        self.note(&format!(
            "crash nodes {nodes:?} (every process of their cgroups SIGKILLed, added addresses removed)"
        ));
        Ok(at)
    }

    /// The overlap check of the monitors' event log, with each crashed node's open intervals
    /// closed at its crash.
    pub fn overlap_report(&self) -> overlap::OverlapReport {
        let text = std::fs::read_to_string(self.event_log()).unwrap_or_default();
        overlap::check(&event_log_with_crashes(&text, &self.all_crashes()))
    }

    /// Every crash so far: the `crash` verb's and the watchdog's (`watchdog.rs`).
    pub fn all_crashes(&self) -> Vec<(u8, u64)> {
        let mut all = self.crashes.clone();
        all.extend(
            self.watchdog_crashes()
                .iter()
                // A crash that failed (`crashed_us` 0) closes nothing.
                .filter(|fired| fired.crashed_us > 0)
                .map(|fired| (fired.node, fired.crashed_us)),
        );
        all.sort_by_key(|&(_, at)| at);
        all
    }
}

/// Kills every process of the given nodes' cgroups at once: all frozen first, so no process
/// acts on another's death (the monitor would fence and delete the address, the daemon would
/// notice its monitor, a survivor would take over) before all are killed; then SIGKILLed,
/// thawed, and waited for until every cgroup is empty. Also the watchdog's crash
/// (`watchdog.rs`), from its own thread.
pub(super) fn kill_cgroups(cgroups: &[(NodeCgroup, u8)]) -> Result<(), String> {
    for (cgroup, _) in cgroups {
        cgroup.set_frozen(true)?;
    }
    let until = Instant::now() + SETTLE_DEADLINE;
    for (cgroup, node) in cgroups {
        while !cgroup.is_frozen() {
            if Instant::now() > until {
                for (cgroup, _) in cgroups {
                    let _ = cgroup.set_frozen(false);
                }
                return Err(format!("node {node}'s cgroup did not freeze"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for (cgroup, _) in cgroups {
        for pid in cgroup.pids() {
            host::signal(pid, libc::SIGKILL);
        }
    }
    // Killed while frozen; they die as they thaw, before running any more of their code.
    for (cgroup, _) in cgroups {
        cgroup.set_frozen(false)?;
    }
    for (cgroup, node) in cgroups {
        while !cgroup.pids().is_empty() {
            if Instant::now() > until {
                return Err(format!("node {node}'s processes did not die"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(())
}

/// Deletes every IPv4 address of the node's interfaces but the node's own.
pub(super) fn remove_added_addresses(
    names: &RunNames,
    node: u8,
    networks: u8,
) -> Result<(), String> {
    let namespace = names.node_namespace(node);
    for network in 0..networks {
        let interface = names.node_interface(node, network);
        let own = format!("{}/24", host_address(network, node));
        let listing = host::ip_in(&namespace, &["-4", "-o", "addr", "show", "dev", &interface])?;
        for added in configured_addresses(&listing) {
            if added != own {
                host::ip_in(&namespace, &["addr", "del", &added, "dev", &interface])?;
            }
        }
    }
    Ok(())
}

/// The `ADDRESS/PREFIX` words after `inet` in `ip -o addr show` output.
fn configured_addresses(listing: &str) -> Vec<String> {
    let words: Vec<&str> = listing.split_whitespace().collect();
    words
        .windows(2)
        .filter(|pair| pair[0] == "inet")
        .map(|pair| pair[1].to_string())
        .collect()
}

/// The event log as if each crashed node's monitor had written `offline` at the crash for
/// every resource it then held: the line goes before the first line stamped later, so a node
/// restarted after its crash opens a new interval instead of extending the old one.
pub fn event_log_with_crashes(text: &str, crashes: &[(u8, u64)]) -> String {
    let mut pending: Vec<(u8, u64)> = crashes.to_vec();
    pending.sort_by_key(|&(_, at)| at);
    let mut pending = pending.into_iter().peekable();
    let mut online: BTreeSet<(u8, String)> = BTreeSet::new();
    let mut out = String::with_capacity(text.len());
    let close = |node: u8, at: u64, online: &mut BTreeSet<(u8, String)>, out: &mut String| {
        let held: Vec<String> = online
            .iter()
            .filter(|(holder, _)| *holder == node)
            .map(|(_, resource)| resource.clone())
            .collect();
        for resource in held {
            out.push_str(&format!("{at} node={node} resource={resource} offline\n"));
            online.remove(&(node, resource));
        }
    };
    for line in text.lines() {
        let parsed = parse_line(line);
        if let Some(parsed) = &parsed {
            while let Some(&(node, at)) = pending.peek() {
                if parsed.at <= at {
                    break;
                }
                close(node, at, &mut online, &mut out);
                pending.next();
            }
            let key = (parsed.node, parsed.resource.clone());
            match parsed.online {
                true => online.insert(key),
                false => online.remove(&key),
            };
        }
        out.push_str(line);
        out.push('\n');
    }
    for (node, at) in pending {
        close(node, at, &mut online, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_closes_what_the_node_held_then() {
        let log = "\
10 node=1 resource=vip online
20 node=1 resource=svc online
500 node=2 resource=vip online
600 node=2 resource=svc online
900 node=1 resource=vip online
";
        // Without the crash, node 1's intervals never end: an overlap.
        assert_eq!(overlap::check(log).overlaps.len(), 2);
        let closed = event_log_with_crashes(log, &[(1, 100)]);
        let report = overlap::check(&closed);
        assert_eq!(report.intervals.len(), 5);
        // Node 1 back after its restart at 900 holds vip alongside node 2: an overlap again.
        assert_eq!(report.overlaps.len(), 1);
        assert!(closed.contains(
            "100 node=1 resource=svc offline\n100 node=1 resource=vip offline\n500 node=2"
        ));
    }

    #[test]
    fn a_crash_after_the_last_line_still_closes() {
        let closed = event_log_with_crashes("10 node=1 resource=vip online\n", &[(1, 50)]);
        assert_eq!(
            closed,
            "10 node=1 resource=vip online\n50 node=1 resource=vip offline\n"
        );
        let nothing_held = event_log_with_crashes("10 node=2 resource=vip online\n", &[(1, 50)]);
        assert_eq!(nothing_held, "10 node=2 resource=vip online\n");
    }

    #[test]
    fn added_addresses_are_read_from_ip_output() {
        let listing = "2: wp-1a2b-n1e0    inet 198.18.0.1/24 brd 198.18.0.255 scope global wp-1a2b-n1e0\\       valid_lft forever preferred_lft forever\n2: wp-1a2b-n1e0    inet 198.18.0.100/32 scope global wp-1a2b-n1e0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            configured_addresses(listing),
            vec!["198.18.0.1/24".to_string(), "198.18.0.100/32".to_string()]
        );
    }
}
