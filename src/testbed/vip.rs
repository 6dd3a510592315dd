//! Catalog mode's group: `web`, a virtual IP and a service behind it, created through
//! `wolfpack ctl` the way an administrator would, and run by the daemons' group runner with
//! the real resource types.
//!
//! - `vip`, type `ip`: `address=198.18.0.100` (a /32) and no `interface`: each node puts it on
//!   the interface whose subnet holds it, its network-0 interface `wp-<run>-nIe0`, whose name
//!   differs per node (one catalog parameter cannot name them all). Gratuitous ARP on start.
//! - `svc`, type `process`, depends on `vip`: `wolfpack testbed serve --address 198.18.0.100`,
//!   a TCP responder on port 8000 that answers with the node's name and adds no address.
//!
//! The client reaches the VIP on its segment (ARP decides which node answers); each per-node
//! source address of the client has a /32 route to the VIP through that node
//! (`route_through_each_node`), so the prober's per-node paths work as for test groups.
use super::bed::{sleep_ms, Bed};
use super::host::ip_in;
use super::host_address;
use super::names::RunNames;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The group's virtual IP: in network 0's subnet, so the `ip` type finds the interface.
pub const VIP_ADDRESS: &str = "198.18.0.100";
/// The catalog group.
pub const GROUP: &str = "web";
/// Its resources, bottom-up.
pub const VIP_RESOURCE: &str = "vip";
pub const SERVICE_RESOURCE: &str = "svc";

/// In the client's namespace: the VIP through node N for traffic from 198.18.0.(200+N)
/// (the tables `network::build_client` made for the per-node paths).
pub(super) fn route_through_each_node(names: &RunNames, nodes: u8) -> Result<(), String> {
    for node in 1..=nodes {
        let table = (100 + u32::from(node)).to_string();
        ip_in(
            &names.client_namespace(),
            &[
                "route",
                "add",
                &format!("{VIP_ADDRESS}/32"),
                "via",
                &host_address(0, node),
                "dev",
                &names.client_interface(),
                "table",
                &table,
            ],
        )?;
    }
    Ok(())
}

/// What `ctl groups --json` says about `web` on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupView {
    pub slot: u8,
    pub owner: Option<u8>,
    /// `online`, `online-pending`, `on node 2`, ... (see `node::daemon::groups`).
    pub state: Option<String>,
}

impl GroupView {
    /// Online on `node` as that node itself reports it (`online`, or `online: REASON`).
    pub fn online_on(&self, node: u8) -> bool {
        let state = self.state.as_deref().unwrap_or_default();
        self.owner == Some(node) && (state == "online" || state.starts_with("online:"))
    }
}

impl Bed {
    /// `wolfpack ctl --socket <node N's> WORDS...` (no shell: the words are argv); its
    /// output, or `Err` naming the command with its error.
    pub fn ctl(&self, node: u8, words: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.options.binary)
            .arg("ctl")
            .arg("--socket")
            .arg(self.socket(node))
            .args(words)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run wolfpack ctl: {error}"))?;
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(format!(
                "wolfpack ctl {} (node {node}) failed: {}",
                words.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }

    /// Creates `web` through node `through`, preferred on the nodes in id order, and adds its
    /// slot to the groups the bed follows. The nodes must be members already.
    pub fn add_web_group(&mut self, through: u8) -> Result<u8, String> {
        let preferred: Vec<String> = (1..=self.options.nodes).map(|n| n.to_string()).collect();
        self.ctl(
            through,
            &["group", "add", GROUP, "--preferred", &preferred.join(",")],
        )?;
        self.ctl(
            through,
            &[
                "resource",
                "add",
                VIP_RESOURCE,
                "--group",
                GROUP,
                "--type",
                "ip",
                "--param",
                &format!("address={VIP_ADDRESS}"),
            ],
        )?;
        let serve = self.serve_command();
        self.ctl(
            through,
            &[
                "resource",
                "add",
                SERVICE_RESOURCE,
                "--group",
                GROUP,
                "--type",
                "process",
                "--param",
                &format!("command={serve}"),
                "--depends",
                VIP_RESOURCE,
            ],
        )?;
        let view = self
            .web(through)
            .ok_or(format!("node {through} does not list the group {GROUP}"))?;
        if !self.group_slots.contains(&view.slot) {
            self.group_slots.push(view.slot);
        }
        self.note(&format!(
            "added group {GROUP} (slot {}) through node {through}",
            view.slot
        ));
        Ok(view.slot)
    }

    /// The `process` command of `svc`. The `process` type runs it with `sh -c`; the only word
    /// from outside is the binary's path, single-quoted, so the shell just splits and execs.
    fn serve_command(&self) -> String {
        format!(
            "exec {} testbed serve --address {VIP_ADDRESS}",
            shell_quoted(&self.options.binary.display().to_string())
        )
    }

    /// `web` as node `node` lists it, or `None` when it does not answer or list it.
    pub fn web(&self, node: u8) -> Option<GroupView> {
        let json = self.ctl(node, &["groups", "--json"]).ok()?;
        group_view(&json, GROUP)
    }

    /// Waits until node `node` reports `web` online on itself.
    pub fn wait_web_online_on(&mut self, node: u8, deadline: Duration) -> Result<(), String> {
        self.wait_for(
            &format!("group {GROUP} online on node {node}"),
            deadline,
            |bed| bed.web(node).is_some_and(|view| view.online_on(node)),
        )
    }

    /// The node holding `web` and reporting it online, waiting up to `deadline`.
    pub fn web_owner(&mut self, deadline: Duration) -> Result<u8, String> {
        let until = Instant::now() + deadline;
        loop {
            for node in 1..=self.options.nodes {
                if self.web(node).is_some_and(|view| view.online_on(node)) {
                    return Ok(node);
                }
            }
            if Instant::now() > until {
                return Err(format!(
                    "timed out after {} s waiting for {GROUP} to be online somewhere (files in {})",
                    deadline.as_secs(),
                    self.dir.display()
                ));
            }
            sleep_ms(100)?;
        }
    }
}

/// `'text'` with every `'` written as `'\''`: one shell word whatever `text` holds.
pub fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The group named `name` in `ctl groups --json` output (no serde in the dependency set; the
/// shape is ours: an array of flat objects whose first field is `name`).
pub fn group_view(json: &str, name: &str) -> Option<GroupView> {
    let marker = format!("{{\"name\":{}", crate::json::quoted(name));
    let start = json.find(&marker)?;
    let rest = &json[start + marker.len()..];
    let object = match rest.find("{\"name\":") {
        Some(end) => &rest[..end],
        None => rest,
    };
    Some(GroupView {
        slot: number_after(object, "slot")?,
        owner: number_after(object, "owner"),
        state: text_after(object, "state"),
    })
}

fn number_after<T: std::str::FromStr>(object: &str, key: &str) -> Option<T> {
    let marker = format!("\"{key}\":");
    let start = object.find(&marker)? + marker.len();
    let digits: String = object[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A string field's value up to its first quote (escapes are not undone: enough for states).
fn text_after(object: &str, key: &str) -> Option<String> {
    let marker = format!("\"{key}\":\"");
    let start = object.find(&marker)? + marker.len();
    let end = object[start..].find('"')?;
    Some(object[start..start + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_is_read_from_ctl_groups_json() {
        let json = r#"{"groups":[{"name":"db","slot":2,"preferred":[2],"failback":"off","resources":[],"owner":2,"state":"online"},{"name":"web","slot":1,"preferred":[1,2],"failback":"off","failover_threshold":10,"failover_period_s":21600,"resources":["svc","vip"],"owner":1,"state":"online-pending"}],"problems":[]}"#;
        let online = r#"{"groups":[{"name":"web","slot":1,"owner":2,"state":"online: every resource it may run is online"}]}"#;
        assert!(group_view(online, "web").unwrap().online_on(2));
        assert_eq!(
            group_view(json, "web"),
            Some(GroupView {
                slot: 1,
                owner: Some(1),
                state: Some("online-pending".into())
            })
        );
        let unowned = r#"{"groups":[{"name":"web","slot":3,"resources":[],"state":"unknown: this node is not a member"}],"problems":[]}"#;
        let view = group_view(unowned, "web").unwrap();
        assert_eq!((view.slot, view.owner), (3, None));
        assert!(!view.online_on(1));
        assert_eq!(group_view(json, "mail"), None);
    }

    #[test]
    fn a_quoted_word_survives_any_path() {
        assert_eq!(shell_quoted("/usr/bin/wolfpack"), "'/usr/bin/wolfpack'");
        assert_eq!(shell_quoted("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}

/// How `web`'s owner is taken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerFault {
    /// `Bed::crash`: daemon, monitor and resources SIGKILLed at once, added addresses gone;
    /// the survivor waits for the lease to expire.
    Crash,
    /// `Bed::kill`: SIGKILL of the daemon alone; its monitor stops the resources (deleting
    /// the VIP) and acknowledges the fence, so the survivor need not wait for the lease.
    KillDaemon,
}

impl OwnerFault {
    pub fn parse(name: &str) -> Option<OwnerFault> {
        match name {
            "crash" => Some(OwnerFault::Crash),
            "kill" => Some(OwnerFault::KillDaemon),
            _ => None,
        }
    }
}

/// One failover of `web` as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipFailover {
    pub victim: u8,
    /// The node that reported `web` online after the fault.
    pub survivor: u8,
    /// The fault, µs: for a crash, when nothing of the victim ran any more; for a kill,
    /// just before the SIGKILL.
    pub fault_us: u64,
    /// The start of the client's first probe the survivor answered, µs.
    pub answered_us: u64,
    /// Whether the victim held the quorum lease: the survivor of a 2-node cluster must then
    /// win it first (arbitration on the disk), which takes longer.
    pub victim_held_quorum: bool,
}

/// Takes `web`'s owner down with `fault`, then waits until another node reports `web` online
/// and the client, as a user, got an answer from it. Heals nothing. The prober must run.
pub fn fail_owner(
    bed: &mut Bed,
    slot: u8,
    fault: OwnerFault,
    deadline: Duration,
) -> Result<VipFailover, String> {
    let victim = bed.web_owner(deadline)?;
    let victim_held_quorum = bed.status(victim).is_some_and(|status| status.quorum_owner);
    let fault_us = match fault {
        OwnerFault::Crash => bed.crash(victim)?,
        OwnerFault::KillDaemon => {
            let before = super::micros();
            bed.kill(victim)?;
            before
        }
    };
    let until = Instant::now() + deadline;
    let survivor = loop {
        let online_elsewhere = (1..=bed.options.nodes)
            .filter(|&node| node != victim)
            .find(|&node| bed.web(node).is_some_and(|view| view.online_on(node)));
        if let Some(node) = online_elsewhere {
            break node;
        }
        if Instant::now() > until {
            return Err(format!(
                "timed out after {} s waiting for {GROUP} to fail over from node {victim} \
                 (files in {})",
                deadline.as_secs(),
                bed.dir.display()
            ));
        }
        sleep_ms(50)?;
    };
    let answered_us = bed.wait_client_answered_by(slot, survivor, fault_us, deadline)?;
    bed.note(&format!(
        "{GROUP} failed over from node {victim} to node {survivor}; the client got its answer"
    ));
    Ok(VipFailover {
        victim,
        survivor,
        fault_us,
        answered_us,
        victim_held_quorum,
    })
}

/// Generous waits (a loaded 2-core machine must not fail a correct run).
const DEADLINE: Duration = Duration::from_secs(60);

/// A catalog bed with `web` online and the client answered by its owner: what the tests, the
/// `vip-failover` command and the benchmark start from. Returns the bed and `web`'s slot.
pub fn started_bed(mut options: super::BedOptions) -> Result<(Bed, u8), String> {
    options.groups = super::GroupSource::Catalog;
    let mut bed = Bed::create(options)?;
    let started = (|| {
        bed.start_all()?;
        let all: Vec<u8> = (1..=bed.options.nodes).collect();
        bed.wait_membership(&all, DEADLINE)?;
        let slot = bed.add_web_group(1)?;
        let owner = bed.web_owner(DEADLINE)?;
        bed.start_prober()?;
        bed.wait_client_answered_by(slot, owner, 0, DEADLINE)?;
        Ok(slot)
    })();
    match started {
        Ok(slot) => Ok((bed, slot)),
        Err(error) => {
            // The error names the run's files: keep them.
            bed.keep_files = true;
            Err(error)
        }
    }
}

/// `runs` failovers of `web`, each healed (the victim restarted and a member again) before
/// the next.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// Each failover, and the client's outage in µs (`None`: no answer again before the heal).
    pub runs: Vec<(VipFailover, Option<u64>)>,
    /// Overlapping online intervals in the event log (crashed nodes' closed at their crash).
    pub overlaps: usize,
    /// Rounds in which two nodes answered the client.
    pub double_answers: usize,
}

impl Measurement {
    /// The outages in ms, sorted; runs that never recovered are left out.
    pub fn sorted_outages_ms(&self) -> Vec<f64> {
        let mut outages: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|(_, outage)| outage.map(|us| us as f64 / 1000.0))
            .collect();
        outages.sort_by(f64::total_cmp);
        outages
    }
}

/// Which node a measured run takes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    /// Whoever holds `web`. In a 2-node cluster that is, from the second run on, also the
    /// quorum lease's owner: the survivor of a failover holds both.
    Holder,
    /// `web` is first moved (`ctl group move`) to a node that does not hold the quorum lease,
    /// which is then taken down: the survivor needs no arbitration.
    NotQuorumOwner,
}

impl Victim {
    pub fn parse(name: &str) -> Option<Victim> {
        match name {
            "holder" => Some(Victim::Holder),
            "not-quorum-owner" => Some(Victim::NotQuorumOwner),
            _ => None,
        }
    }
}

/// Moves `web` to a node without the quorum lease (pinning it there, as `group move` does),
/// and waits until the client is answered from there.
fn move_off_the_quorum_owner(bed: &mut Bed, slot: u8) -> Result<(), String> {
    let target = (1..=bed.options.nodes)
        .find(|&node| bed.status(node).is_some_and(|status| !status.quorum_owner))
        .ok_or("every node says it holds the quorum lease")?;
    let moved_us = super::micros();
    let target_text = target.to_string();
    bed.ctl(target, &["group", "move", GROUP, "--to", &target_text])?;
    bed.wait_web_online_on(target, DEADLINE)?;
    bed.wait_client_answered_by(slot, target, moved_us, DEADLINE)?;
    sleep_ms(500)
}

/// Takes a node down with `fault` `runs` times on `bed` (from `started_bed`), the one
/// `victim` says, healing in between; stops the prober and checks the event log and the
/// client's samples.
pub fn measure(
    bed: &mut Bed,
    slot: u8,
    fault: OwnerFault,
    victim: Victim,
    runs: usize,
) -> Result<Measurement, String> {
    let mut failovers = Vec::new();
    for run in 0..runs {
        if victim == Victim::NotQuorumOwner {
            move_off_the_quorum_owner(bed, slot)?;
        }
        let failover = fail_owner(bed, slot, fault, DEADLINE)?;
        bed.note(&format!("run {run}: {failover:?}"));
        failovers.push(failover);
        bed.converge(DEADLINE)?;
        sleep_ms(500)?;
    }
    let samples_path = bed.stop_prober();
    let text = std::fs::read_to_string(samples_path).unwrap_or_default();
    let (samples, _) = super::samples::parse(&text);
    let runs = failovers
        .into_iter()
        .map(|failover| {
            let outage = super::samples::outage_us(
                &samples,
                slot,
                failover.fault_us,
                failover.answered_us + 1,
            );
            (failover, outage)
        })
        .collect();
    Ok(Measurement {
        runs,
        overlaps: bed.overlap_report().overlaps.len(),
        double_answers: super::samples::double_answers(&samples).len(),
    })
}
