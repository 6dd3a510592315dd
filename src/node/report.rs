//! What `wolfpack ctl` shows of a running node: status, nodes, metrics (Prometheus text) and the
//! descriptions and categories of the core's events (the ring itself is `event_ring`).
//! Rendering only; the daemon owns the state.
use super::event_record::EventKind;
pub use super::event_ring::EventRing;
use super::startup::DiskConfig;
use super::transport::Transport;
use crate::core::{self, Status};
use crate::runner::StopFailure;
use crate::wire::Opener;
use disklayout::NodeEntry;
use std::fmt::Write;

/// Counters the daemon keeps beside the core's.
#[derive(Default)]
pub struct Metrics {
    pub regroups: u64,
    pub disk_operations: u64,
    pub disk_errors: u64,
    pub disk_latency_us_sum: u64,
    pub disk_latency_us_max: u64,
    pub oversized_messages: u64,
    pub unknown_frame_kinds: u64,
    /// Time frames refused: wrong size, a clock out of range, or meant for another
    /// incarnation of this node (a replay from before a restart).
    pub time_frames_refused: u64,
    /// Gaps between consecutive frames from one peer on one network, in whole ms → count.
    /// Why: heartbeat jitter as the failure detector sees it (benches/false_evictions.rs).
    /// Sparse; distinct gap values stay few.
    pub frame_gaps_ms: std::collections::BTreeMap<u64, u64>,
    /// Cluster database updates applied here (GUM).
    pub updates_applied: u64,
    /// Updates proposed through this node's admin socket and acknowledged, and the time from
    /// proposal to acknowledgement (µs).
    pub updates_acknowledged: u64,
    pub update_latency_us_sum: u64,
    pub update_latency_us_max: u64,
    /// Event-exchange payloads (`ctl events`) that did not decode, dropped.
    pub event_frames_malformed: u64,
    /// Peers' requests for this node's events answered.
    pub event_requests_answered: u64,
}

/// When each peer was last heard on each network (an authenticated frame), for link state.
pub struct LinkTable {
    /// (node id, last heard per network in ms; `None` = never).
    peers: Vec<(u8, Vec<Option<u64>>)>,
    started_ms: u64,
}

impl LinkTable {
    pub fn new(nodes: &[NodeEntry], own: u8, now_ms: u64) -> LinkTable {
        let peers = nodes
            .iter()
            .filter(|node| node.node_id != own)
            .map(|node| (node.node_id, vec![None; node.addresses.len()]))
            .collect();
        LinkTable {
            peers,
            started_ms: now_ms,
        }
    }

    /// Notes a frame from `node_id` on `network`; returns the gap since its previous one.
    pub fn heard(&mut self, node_id: u8, network: u8, now_ms: u64) -> Option<u64> {
        let (_, networks) = self.peers.iter_mut().find(|(id, _)| *id == node_id)?;
        let slot = networks.get_mut(network as usize)?;
        let previous = slot.replace(now_ms)?;
        Some(now_ms.saturating_sub(previous))
    }

    /// "up" when heard within `window_ms`, else how long silent.
    fn state(&self, node_id: u8, network: usize, now_ms: u64, window_ms: u64) -> String {
        let heard = self
            .peers
            .iter()
            .find(|(id, _)| *id == node_id)
            .and_then(|(_, n)| n.get(network).copied());
        match heard {
            Some(Some(at)) if now_ms.saturating_sub(at) <= window_ms => String::from("up"),
            Some(Some(at)) => format!("silent {} ms", now_ms.saturating_sub(at)),
            _ => format!(
                "never heard ({} ms)",
                now_ms.saturating_sub(self.started_ms)
            ),
        }
    }
}

/// The category an event of the core belongs to in the event log.
pub fn event_kind(event: &core::Event) -> EventKind {
    match event {
        core::Event::Stabilized { .. }
        | core::Event::Decided { .. }
        | core::Event::PeerSilent { .. }
        | core::Event::FormHeldByConflict { .. }
        | core::Event::PeerPartitioned { .. }
        | core::Event::PeerStopped { .. }
        | core::Event::Left { .. }
        | core::Event::QuorumOwner { .. } => EventKind::Membership,
        core::Event::GumApplied { .. }
        | core::Event::GumAcknowledged { .. }
        | core::Event::GumSnapshotInstalled { .. }
        | core::Event::GumReset
        | core::Event::GumLocker { .. }
        | core::Event::GumRecovery { .. }
        | core::Event::GumCheckpoint { .. }
        | core::Event::GumTrouble { .. } => EventKind::Gum,
        core::Event::CatalogChanged
        | core::Event::PlacementChanged { .. }
        | core::Event::GroupRefused { .. } => EventKind::Group,
        core::Event::ResourceLeaseUnavailable { .. } => EventKind::Resource,
    }
}

pub fn describe_event(event: &core::Event) -> String {
    match event {
        core::Event::Stabilized { epoch, members } => format!(
            "stabilized epoch {epoch} members {}",
            members_text(*members)
        ),
        core::Event::Decided {
            round,
            epoch,
            members,
            ..
        } => {
            format!(
                "decided round {round} epoch {epoch} members {}",
                members_text(*members)
            )
        }
        core::Event::PeerSilent { peer } => format!("node {peer} silent on every network"),
        core::Event::FormHeldByConflict { nodes } => format!(
            "not forming a cluster alone: node(s) {} alive in another cluster (another disk or key); forming waits until they are not heard so for a form wait",
            members_text(*nodes)
        ),
        core::Event::PeerPartitioned { peer } => {
            format!("node {peer} partitioned (still beating on disk)")
        }
        core::Event::PeerStopped {
            peer,
            incarnation,
            how,
        } => format!("node {peer} confirmed stopped ({how}; run {incarnation})"),
        core::Event::Left { reason } => format!("left the membership: {reason}"),
        core::Event::QuorumOwner { owned } => {
            format!("quorum lease {}", if *owned { "won" } else { "lost" })
        }
        core::Event::GumApplied { sequence, .. } => format!("database update {sequence} applied"),
        core::Event::GumAcknowledged {
            request_id,
            sequence,
            rejected,
        } => format!(
            "database request {request_id} {} at sequence {sequence}",
            if *rejected { "rejected" } else { "committed" }
        ),
        core::Event::GumSnapshotInstalled { sequence, .. } => {
            format!("database replica installed at sequence {sequence}")
        }
        core::Event::GumReset => "database replica dropped until the next snapshot".to_string(),
        core::Event::CatalogChanged => "groups or resources changed".to_string(),
        core::Event::PlacementChanged { group, owner } => {
            format!("placement: group slot {group} now belongs on node {owner}; regrouping")
        }
        core::Event::GroupRefused { group } => {
            format!("group slot {group} failed here: refused for a while, moving it")
        }
        core::Event::ResourceLeaseUnavailable { resource, reason } => {
            format!("resource {resource} never starts here: no lease ({reason})")
        }
        core::Event::GumLocker { epoch, ready } => format!(
            "global update locker for epoch {epoch}: {}",
            if *ready { "ready" } else { "taking over" }
        ),
        core::Event::GumRecovery {
            what,
            detail,
            value,
        } => format!("database log recovery: {what} ({detail}: {value})"),
        core::Event::GumCheckpoint {
            sequence,
            log_position,
        } => format!("database checkpoint at sequence {sequence}, log position {log_position}"),
        core::Event::GumTrouble { what } => format!("database trouble: {what}"),
    }
}

fn members_text(bitmap: u64) -> String {
    let ids: Vec<String> = core::ids(bitmap).map(|id| id.to_string()).collect();
    format!("{{{}}}", ids.join(","))
}

fn json_string(text: &str) -> String {
    crate::json::quoted(text)
}

fn link_window_ms(config: &DiskConfig) -> u64 {
    3 * u64::from(config.superblock.timing.heartbeat_interval_ms)
}

fn remaining_ms(until_ms: u64, now_ms: u64) -> u64 {
    until_ms.saturating_sub(now_ms)
}

/// What `ctl status` shows beside the core's status.
pub struct StatusExtras {
    /// The groups the host holds (online, or stopping and not confirmed).
    pub holding: u64,
    /// Nodes of our table heard alive in another cluster (`conflict_watch.rs`).
    pub conflicts: Vec<String>,
    pub watchdog: WatchdogView,
    /// What a failed stop does here (`wolfpack node --stop-failure`).
    pub stop_failure: StopFailure,
    /// Groups blocked here by a failed stop: (group, why).
    pub blocked: Vec<(String, String)>,
}

/// The node's watchdog as `ctl status` shows it.
pub struct WatchdogView {
    /// `--watchdog`, if given.
    pub device: Option<String>,
    /// The device's timeout as set and read back (`None`: no device, or a stand-in).
    pub timeout_ms: Option<u64>,
    /// Since the monitor last answered a ping, feeding the watchdog.
    pub last_fed_ms_ago: Option<u64>,
    pub policy: disklayout::WatchdogPolicy,
}

impl WatchdogView {
    fn text(&self) -> String {
        let policy = self.policy.name();
        let Some(device) = &self.device else {
            return format!(
                "none (cluster policy: {policy}): {}",
                super::daemon::WITHOUT_WATCHDOG
            );
        };
        let timeout = match self.timeout_ms {
            Some(ms) => format!("timeout {ms} ms"),
            None => "not a device: its timeout is not checked against the lease".into(),
        };
        let fed = match self.last_fed_ms_ago {
            Some(ms) => format!("last fed {ms} ms ago"),
            None => "not fed yet".into(),
        };
        format!("{device}, {timeout}, {fed} (cluster policy: {policy})")
    }

    fn json(&self) -> String {
        let number = |value: Option<u64>| value.map_or("null".to_string(), |v| v.to_string());
        format!(
            "{{\"device\":{},\"timeout_ms\":{},\"last_fed_ms_ago\":{},\"policy\":\"{}\"}}",
            self.device
                .as_deref()
                .map_or("null".to_string(), json_string),
            number(self.timeout_ms),
            number(self.last_fed_ms_ago),
            self.policy.name()
        )
    }
}

pub fn status(
    status: &Status,
    config: &DiskConfig,
    links: &LinkTable,
    time: &super::time_service::TimeService,
    extras: &StatusExtras,
    now_ms: u64,
    json: bool,
) -> String {
    let holding = extras.holding;
    let state = match (status.stabilized, status.regrouping) {
        (_, true) => "regrouping",
        (true, false) => "stabilized",
        (false, false) => "not a member",
    };
    let lease_ms = remaining_ms(status.lease_valid_until_ms, now_ms);
    let quorum_ms = remaining_ms(status.quorum_valid_until_ms, now_ms);
    let window_ms = link_window_ms(config);
    let mut link_lines = Vec::new();
    for node in config
        .nodes
        .iter()
        .filter(|node| node.node_id != status.node_id)
    {
        for network in 0..node.addresses.len() {
            link_lines.push((
                node.node_id,
                network,
                links.state(node.node_id, network, now_ms, window_ms),
            ));
        }
    }
    // Clock skew per peer (the time service): their wall clock minus ours, if heard lately.
    let skews: Vec<(u8, i64)> = config
        .nodes
        .iter()
        .filter(|node| node.node_id != status.node_id)
        .filter_map(|node| {
            let skew = time.skew(node.node_id)?;
            (now_ms.saturating_sub(skew.measured_at_ms) <= 3 * super::time_service::INTERVAL_MS)
                .then_some((node.node_id, skew.skew_ms))
        })
        .collect();
    if json {
        let skews_json: Vec<String> = skews
            .iter()
            .map(|(node, skew)| format!("{{\"node\":{node},\"skew_ms\":{skew}}}"))
            .collect();
        let links_json: Vec<String> = link_lines
            .iter()
            .map(|(node, network, state)| {
                format!(
                    "{{\"node\":{node},\"network\":{network},\"state\":{}}}",
                    json_string(state)
                )
            })
            .collect();
        let conflicts_json: Vec<String> = extras
            .conflicts
            .iter()
            .map(|line| json_string(line))
            .collect();
        let blocked_json: Vec<String> = extras
            .blocked
            .iter()
            .map(|(group, why)| {
                format!(
                    "{{\"group\":{},\"reason\":{}}}",
                    json_string(group),
                    json_string(why)
                )
            })
            .collect();
        return format!(
            "{{\"node_id\":{},\"name\":{},\"incarnation\":{},\"state\":\"{state}\",\"epoch\":{},\"members\":[{}],\"quorum_owner\":{},\"quorum_valid_ms\":{quorum_ms},\"lease_valid_ms\":{lease_ms},\"groups_online_here\":[{}],\"database_version\":{},\"links\":[{}],\"clock_skew\":[{}],\"conflicts\":[{}],\"watchdog\":{},\"stop_failure\":\"{}\",\"blocked\":[{}]}}\n",
            status.node_id,
            json_string(&config.own.name),
            config.incarnation,
            status.epoch,
            core::ids(status.members).map(|id| id.to_string()).collect::<Vec<_>>().join(","),
            status.quorum_owner,
            core::ids(holding).map(|id| id.to_string()).collect::<Vec<_>>().join(","),
            status.database_version,
            links_json.join(","),
            skews_json.join(","),
            conflicts_json.join(","),
            extras.watchdog.json(),
            extras.stop_failure.name(),
            blocked_json.join(","),
        );
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} \"{}\" incarnation {}",
        status.node_id, config.own.name, config.incarnation
    );
    let _ = writeln!(
        out,
        "membership: {state}, epoch {}, members {}",
        status.epoch,
        members_text(status.members)
    );
    let _ = writeln!(
        out,
        "quorum lease: {}",
        if status.quorum_owner {
            format!("owned by this node, valid {quorum_ms} ms more")
        } else {
            "not owned by this node".into()
        }
    );
    let _ = writeln!(
        out,
        "membership lease: {}",
        if lease_ms > 0 {
            format!("valid {lease_ms} ms more")
        } else {
            "not held".into()
        }
    );
    for line in &extras.conflicts {
        let _ = writeln!(out, "CONFLICT: {line}");
    }
    let _ = writeln!(out, "watchdog: {}", extras.watchdog.text());
    let _ = writeln!(out, "groups online here: {}", members_text(holding));
    let _ = writeln!(
        out,
        "on a failed stop: {}",
        match extras.stop_failure {
            StopFailure::Block => "block (the group stays here until its stop is confirmed)",
            StopFailure::Leave => "leave the cluster (the watchdog resets this node)",
        }
    );
    for (group, why) in &extras.blocked {
        let _ = writeln!(out, "BLOCKED: group {group}: {why}");
    }
    let _ = writeln!(
        out,
        "database: sequence {}, locker node {}{}",
        status.database_version,
        status.gum.locker,
        if status.gum.valid {
            ""
        } else {
            " (waiting for a snapshot)"
        }
    );
    for (node, skew) in &skews {
        let _ = writeln!(out, "clock of node {node}: {skew:+} ms from ours");
    }
    for (node, network, state) in link_lines {
        let _ = writeln!(out, "link to node {node} on network {network}: {state}");
    }
    out
}

pub fn nodes(
    status: &Status,
    config: &DiskConfig,
    links: &LinkTable,
    now_ms: u64,
    json: bool,
) -> String {
    let window_ms = link_window_ms(config);
    let rows: Vec<(u8, &str, &'static str, String)> = config
        .nodes
        .iter()
        .map(|node| {
            let state = match (
                node.node_id == status.node_id,
                status.members & core::bit(node.node_id) != 0,
            ) {
                (true, _) if status.stabilized => "up (this node)",
                (true, _) => "joining (this node)",
                (false, true) => "up",
                (false, false) => "down",
            };
            let addresses: Vec<String> = node.addresses.iter().map(|a| a.to_string()).collect();
            let heard = if node.node_id == status.node_id {
                String::from("-")
            } else {
                (0..node.addresses.len())
                    .map(|n| links.state(node.node_id, n, now_ms, window_ms))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (
                node.node_id,
                node.name.as_str(),
                state,
                format!("{} [{}]", addresses.join(" "), heard),
            )
        })
        .collect();
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|(id, name, state, detail)| {
                format!(
                    "{{\"node_id\":{id},\"name\":{},\"state\":\"{state}\",\"detail\":{}}}",
                    json_string(name),
                    json_string(detail)
                )
            })
            .collect();
        return format!("[{}]\n", items.join(","));
    }
    rows.iter()
        .map(|(id, name, state, detail)| format!("{id:>3} {name:<16} {state:<20} {detail}\n"))
        .collect()
}

pub fn metrics(
    status: &Status,
    metrics: &Metrics,
    transport: &Transport,
    opener: &Opener,
    node: u8,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(
            out,
            "# HELP wolfpack_{name} {help}\n# TYPE wolfpack_{name} {kind}"
        );
        for (labels, value) in samples {
            let _ = writeln!(out, "wolfpack_{name}{{node=\"{node}\"{labels}}} {value}");
        }
    };
    let one = |value: u64| vec![(String::new(), value)];
    metric("epoch", "gauge", "Membership epoch.", one(status.epoch));
    metric(
        "members",
        "gauge",
        "Nodes in the membership.",
        one(status.members.count_ones() as u64),
    );
    metric(
        "stabilized",
        "gauge",
        "1 when the membership is stable.",
        one(status.stabilized as u64),
    );
    metric(
        "quorum_owner",
        "gauge",
        "1 when this node owns the quorum lease.",
        one(status.quorum_owner as u64),
    );
    metric(
        "regroups_total",
        "counter",
        "Memberships stabilized.",
        one(metrics.regroups),
    );
    metric(
        "frames_sent_total",
        "counter",
        "Datagrams sent.",
        one(transport.counters.sent),
    );
    metric(
        "frames_received_total",
        "counter",
        "Datagrams received.",
        one(transport.counters.received),
    );
    metric(
        "frames_accepted_total",
        "counter",
        "Datagrams authenticated and accepted.",
        one(opener.accepted()),
    );
    metric(
        "send_failures_total",
        "counter",
        "Datagrams the kernel refused.",
        one(transport.counters.send_failures),
    );
    let drops = opener
        .drop_counters()
        .iter()
        .map(|(reason, count)| (format!(",reason=\"{}\"", reason.label()), count))
        .collect();
    metric(
        "frames_dropped_total",
        "counter",
        "Datagrams dropped before the protocol, by reason.",
        drops,
    );
    let dropped = &status.dropped;
    let core_drops = vec![
        (",reason=\"undecodable\"".to_string(), dropped.undecodable),
        (",reason=\"unknown_node\"".to_string(), dropped.unknown_node),
        (",reason=\"stale\"".to_string(), dropped.stale),
        (",reason=\"unexpected\"".to_string(), dropped.unexpected),
        (
            ",reason=\"disk_record_invalid\"".to_string(),
            dropped.disk_records_invalid,
        ),
    ];
    metric(
        "protocol_dropped_total",
        "counter",
        "Authenticated messages the protocol refused, by reason.",
        core_drops,
    );
    metric(
        "database_sequence",
        "gauge",
        "Sequence of the last cluster-database update applied here.",
        one(status.database_version),
    );
    metric(
        "gum_updates_applied_total",
        "counter",
        "Cluster-database updates applied here.",
        one(metrics.updates_applied),
    );
    metric(
        "gum_updates_acknowledged_total",
        "counter",
        "Updates proposed through this node and acknowledged (durable, applied everywhere).",
        one(metrics.updates_acknowledged),
    );
    metric(
        "gum_update_latency_microseconds_sum",
        "counter",
        "Proposal to acknowledgement, summed over acknowledged updates.",
        one(metrics.update_latency_us_sum),
    );
    metric(
        "gum_update_latency_microseconds_max",
        "gauge",
        "The slowest proposal to acknowledgement so far.",
        one(metrics.update_latency_us_max),
    );
    metric(
        "frames_of_unknown_kind_total",
        "counter",
        "Authenticated frames of a kind this version does not know, dropped.",
        one(metrics.unknown_frame_kinds),
    );
    metric(
        "time_frames_refused_total",
        "counter",
        "Time frames refused: wrong size, clock out of range, or for a previous incarnation.",
        one(metrics.time_frames_refused),
    );
    metric(
        "event_frames_malformed_total",
        "counter",
        "Event-exchange payloads (ctl events) from peers that did not decode, dropped.",
        one(metrics.event_frames_malformed),
    );
    metric(
        "event_requests_answered_total",
        "counter",
        "Peers' requests for this node's events answered.",
        one(metrics.event_requests_answered),
    );
    metric(
        "disk_operations_total",
        "counter",
        "Shared-disk operations.",
        one(metrics.disk_operations),
    );
    metric(
        "disk_errors_total",
        "counter",
        "Shared-disk operations that failed.",
        one(metrics.disk_errors),
    );
    metric(
        "disk_latency_microseconds_sum",
        "counter",
        "Sum of shared-disk batch latencies.",
        one(metrics.disk_latency_us_sum),
    );
    metric(
        "disk_latency_microseconds_max",
        "gauge",
        "Largest shared-disk batch latency.",
        one(metrics.disk_latency_us_max),
    );
    let gaps = metrics
        .frame_gaps_ms
        .iter()
        .map(|(gap, count)| (format!(",gap_ms=\"{gap}\""), *count))
        .collect();
    metric(
        "peer_frame_gaps_total",
        "counter",
        "Gaps between consecutive frames from one peer on one network, by length in ms.",
        gaps,
    );
    out
}

#[cfg(test)]
mod watchdog_view_tests {
    use super::WatchdogView;
    use disklayout::WatchdogPolicy;

    #[test]
    fn status_says_plainly_what_running_without_a_watchdog_risks() {
        let none = WatchdogView {
            device: None,
            timeout_ms: None,
            last_fed_ms_ago: None,
            policy: WatchdogPolicy::Optional,
        };
        let text = none.text();
        assert!(
            text.starts_with("none (cluster policy: optional)"),
            "{text}"
        );
        assert!(text.contains("frozen past its lease"), "{text}");
        let device = WatchdogView {
            device: Some("/dev/watchdog0".into()),
            timeout_ms: Some(3000),
            last_fed_ms_ago: Some(40),
            policy: WatchdogPolicy::Required,
        };
        assert_eq!(
            device.text(),
            "/dev/watchdog0, timeout 3000 ms, last fed 40 ms ago (cluster policy: required)"
        );
        let json: serde_json::Value = serde_json::from_str(&device.json()).expect("JSON");
        assert_eq!(json["timeout_ms"], 3000);
        assert_eq!(json["policy"], "required");
    }
}
