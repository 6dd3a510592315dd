//! Renders an inspection of the disk as text for people and as JSON for programs.
use crate::disk::storage::DiskIo;
use crate::json::Json;
use disklayout::inspect::{AnyRecord, BlockReport, Inspection, Outcome};
use disklayout::{Acknowledged, LogEnd, RegionKind, Sealed, Superblock};
use std::fmt::Write;

/// `BAD region[index] @offset: message`, the line `check` prints for every bad block.
pub fn problem_line(report: &BlockReport) -> String {
    let message = match &report.outcome {
        Outcome::Bad(message) => message.clone(),
        Outcome::Unreadable(message) => format!("unreadable: {message}"),
        Outcome::Empty | Outcome::Valid(_) => String::from("fine"),
    };
    format!(
        "BAD {}[{}] @{}: {message}",
        report.region, report.index, report.offset_bytes
    )
}

pub fn text(path: &str, io: DiskIo, inspection: &Inspection) -> String {
    let mut out = String::new();
    let Sealed {
        cluster_id,
        sequence,
        record: superblock,
    } = &inspection.superblock;
    let timing = &superblock.timing;
    let _ = writeln!(out, "disk {path} ({} backend)", io.name());
    let _ = writeln!(
        out,
        "superblock @0 seq {sequence}: cluster \"{}\" id {cluster_id:#018x}, layout v{}, formatted for {} bytes",
        superblock.cluster_name,
        disklayout::LAYOUT_VERSION,
        superblock.disk_size_bytes
    );
    let _ = writeln!(
        out,
        "  timing: heartbeat {} ms, lease renewal {} ms, lease expiry {} ms, fence timeout {} ms, clock drift {} ppm",
        timing.heartbeat_interval_ms,
        timing.lease_renew_interval_ms,
        timing.lease_expiry_ms,
        timing.fence_timeout_ms,
        timing.clock_drift_ppm_max
    );
    let _ = writeln!(out, "  watchdog: {}", superblock.watchdog.name());
    for (number, kind) in RegionKind::ALL.iter().enumerate() {
        let region = superblock.geometry.region(*kind);
        let _ = writeln!(
            out,
            "  region {:<16} @{:<10} {:>6} blocks, {} empty",
            kind.name(),
            region.offset_bytes,
            region.blocks,
            inspection.empty_blocks[number]
        );
    }
    for report in &inspection.blocks {
        match &report.outcome {
            Outcome::Valid(record) => {
                let _ = writeln!(
                    out,
                    "{}[{}] @{}: {}",
                    report.region,
                    report.index,
                    report.offset_bytes,
                    describe(record)
                );
            }
            _ => {
                let _ = writeln!(out, "{}", problem_line(report));
            }
        }
    }
    let log = &inspection.log;
    let _ = writeln!(
        out,
        "log replay: {} updates{}, next position {}, ended by {}{}",
        log.updates.len(),
        match (log.updates.first(), log.updates.last()) {
            (Some(first), Some(last)) =>
                format!(" (sequences {}..={})", first.sequence, last.sequence),
            _ => String::new(),
        },
        log.next_position,
        log_end(&log.end),
        match log.discarded {
            0 => String::new(),
            count => format!("; {count} superseded by a reused sequence number"),
        }
    );
    let problems = inspection.problems().count();
    let _ = writeln!(out, "{} records, {problems} bad", inspection.blocks.len());
    out
}

fn describe(record: &AnyRecord) -> String {
    match record {
        AnyRecord::NodeEntry(entry) => {
            let addresses: Vec<String> = entry.record.addresses.iter().map(|address| address.to_string()).collect();
            format!("seq {}: node {} \"{}\" {}", entry.sequence, entry.record.node_id, entry.record.name, addresses.join(" "))
        }
        AnyRecord::QuorumLease(lease) => format!("seq {}: {}", lease.sequence, describe_lease(&lease.record.0)),
        AnyRecord::ResourceLease(lease) => {
            format!("seq {}: \"{}\" {}", lease.sequence, lease.record.0.name, describe_lease(&lease.record.0))
        }
        AnyRecord::NodeSlot(slot) => {
            let record = &slot.record;
            format!(
                "heartbeat {}: node {} {} incarnation {} epoch {} members {} lease {} ms realtime {} ms",
                slot.sequence,
                record.node_id,
                record.state.name(),
                record.incarnation,
                record.epoch,
                members(record.members),
                record.lease_valid_ms,
                record.realtime_ms
            )
        }
        AnyRecord::FenceRequest(request) => format!(
            "request {}: node {} (incarnation {}) asks node {} (incarnation {}) to stop, in epoch {}",
            request.sequence,
            request.record.requester,
            request.record.requester_incarnation,
            request.record.target,
            request.record.target_incarnation,
            request.record.requester_epoch
        ),
        AnyRecord::FenceAck(ack) => format!(
            "ack {}: node {} (incarnation {}) answers {}: resources {}",
            ack.sequence,
            ack.record.node_id,
            ack.record.incarnation,
            match ack.record.acknowledged {
                Acknowledged::Every => "every request (its monitor fenced it)".to_string(),
                Acknowledged::Request {
                    requester,
                    requester_incarnation,
                    sequence,
                } => format!(
                    "request {sequence} of node {requester} (incarnation {requester_incarnation})"
                ),
            },
            if ack.record.resources_stopped { "stopped" } else { "not stopped" }
        ),
        AnyRecord::Checkpoint(header) => format!(
            "generation {}: database sequence {}, replay from log position {}, payload {} bytes crc {:#010x}",
            header.sequence,
            header.record.database_sequence,
            header.record.log_position,
            header.record.payload_bytes,
            header.record.payload_crc32
        ),
        AnyRecord::LogBlock(block) => {
            let updates: Vec<String> = block
                .record
                .updates
                .iter()
                .map(|update| format!("seq {} from node {} ({} bytes)", update.sequence, update.origin, update.payload.len()))
                .collect();
            format!("position {} epoch {}: {}", block.sequence, block.record.epoch, updates.join(", "))
        }
    }
}

fn describe_lease(lease: &disklayout::Lease) -> String {
    let owner = match lease.owner {
        0 => String::from("no owner"),
        node => format!(
            "owner node {node} (incarnation {}, epoch {})",
            lease.owner_incarnation, lease.owner_epoch
        ),
    };
    match lease.challenger {
        0 => owner,
        node => format!(
            "{owner}, challenged by node {node} (incarnation {})",
            lease.challenger_incarnation
        ),
    }
}

fn members(bitmap: u64) -> String {
    let ids: Vec<String> = (0..64)
        .filter(|bit| bitmap & (1 << bit) != 0)
        .map(|bit| (bit + 1).to_string())
        .collect();
    format!("{{{}}}", ids.join(","))
}

fn log_end(end: &LogEnd) -> String {
    match end {
        LogEnd::Empty => String::from("an empty block"),
        LogEnd::Invalid(error) => format!("an invalid block ({error})"),
        LogEnd::OlderPosition { found } => {
            format!("a block of the previous lap (position {found})")
        }
        LogEnd::UnexpectedPosition { found } => {
            format!("a block with an unexpected position {found}")
        }
        LogEnd::OtherCluster => String::from("a block of another cluster id"),
        LogEnd::OlderEpoch { found, previous } => {
            format!("a block of epoch {found} after one of epoch {previous} (an orphan)")
        }
        LogEnd::RingExhausted => String::from("the end of the ring"),
    }
}

pub fn json(path: &str, io: DiskIo, inspection: &Inspection) -> Json {
    let blocks = inspection.blocks.iter().map(block_json).collect();
    let empty = RegionKind::ALL
        .iter()
        .zip(inspection.empty_blocks.iter())
        .map(|(kind, count)| {
            Json::Object(vec![
                ("region", Json::text(kind.name())),
                ("empty_blocks", Json::Number(*count)),
            ])
        })
        .collect();
    let log = &inspection.log;
    let updates = log
        .updates
        .iter()
        .map(|update| {
            Json::Object(vec![
                ("sequence", Json::Number(update.sequence)),
                ("origin", Json::Number(update.origin as u64)),
                ("payload_bytes", Json::Number(update.payload.len() as u64)),
            ])
        })
        .collect();
    Json::Object(vec![
        ("path", Json::text(path)),
        ("io", Json::text(io.name())),
        ("superblock", superblock_json(&inspection.superblock)),
        ("blocks", Json::Array(blocks)),
        ("regions", Json::Array(empty)),
        (
            "log_replay",
            Json::Object(vec![
                ("updates", Json::Array(updates)),
                ("next_position", Json::Number(log.next_position)),
                ("ended_by", Json::text(log_end(&log.end))),
                ("discarded", Json::Number(log.discarded as u64)),
            ]),
        ),
        (
            "bad_records",
            Json::Number(inspection.problems().count() as u64),
        ),
    ])
}

fn superblock_json(sealed: &Sealed<Superblock>) -> Json {
    let superblock = &sealed.record;
    let timing = &superblock.timing;
    let regions = RegionKind::ALL
        .iter()
        .map(|kind| {
            let region = superblock.geometry.region(*kind);
            Json::Object(vec![
                ("region", Json::text(kind.name())),
                ("offset_bytes", Json::Number(region.offset_bytes)),
                ("blocks", Json::Number(region.blocks)),
            ])
        })
        .collect();
    Json::Object(vec![
        ("cluster_name", Json::text(superblock.cluster_name.clone())),
        (
            "cluster_id",
            Json::text(format!("{:#018x}", sealed.cluster_id)),
        ),
        ("sequence", Json::Number(sealed.sequence)),
        (
            "layout_version",
            Json::Number(disklayout::LAYOUT_VERSION as u64),
        ),
        ("disk_size_bytes", Json::Number(superblock.disk_size_bytes)),
        (
            "heartbeat_interval_ms",
            Json::Number(timing.heartbeat_interval_ms as u64),
        ),
        (
            "lease_renew_interval_ms",
            Json::Number(timing.lease_renew_interval_ms as u64),
        ),
        (
            "lease_expiry_ms",
            Json::Number(timing.lease_expiry_ms as u64),
        ),
        (
            "fence_timeout_ms",
            Json::Number(timing.fence_timeout_ms as u64),
        ),
        (
            "clock_drift_ppm_max",
            Json::Number(timing.clock_drift_ppm_max as u64),
        ),
        ("watchdog", Json::text(superblock.watchdog.name())),
        ("regions", Json::Array(regions)),
    ])
}

fn block_json(report: &BlockReport) -> Json {
    let mut fields = vec![
        ("region", Json::text(report.region)),
        ("index", Json::Number(report.index)),
        ("offset_bytes", Json::Number(report.offset_bytes)),
    ];
    match &report.outcome {
        Outcome::Valid(record) => {
            fields.push(("status", Json::text("valid")));
            fields.push(("record", Json::text(describe(record))));
            fields.push(("fields", record_json(record)));
        }
        Outcome::Bad(message) => {
            fields.push(("status", Json::text("bad")));
            fields.push(("error", Json::text(message.clone())));
        }
        Outcome::Unreadable(message) => {
            fields.push(("status", Json::text("unreadable")));
            fields.push(("error", Json::text(message.clone())));
        }
        Outcome::Empty => fields.push(("status", Json::text("empty"))),
    }
    Json::Object(fields)
}

fn record_json(record: &AnyRecord) -> Json {
    let number = |value: u64| Json::Number(value);
    let lease_json = |sequence: u64, lease: &disklayout::Lease| {
        Json::Object(vec![
            ("sequence", number(sequence)),
            ("name", Json::text(lease.name.clone())),
            ("owner", number(lease.owner as u64)),
            ("owner_incarnation", number(lease.owner_incarnation)),
            ("owner_epoch", number(lease.owner_epoch)),
            ("challenger", number(lease.challenger as u64)),
            (
                "challenger_incarnation",
                number(lease.challenger_incarnation),
            ),
        ])
    };
    match record {
        AnyRecord::NodeEntry(entry) => Json::Object(vec![
            ("sequence", number(entry.sequence)),
            ("node_id", number(entry.record.node_id as u64)),
            ("name", Json::text(entry.record.name.clone())),
            (
                "addresses",
                Json::Array(
                    entry
                        .record
                        .addresses
                        .iter()
                        .map(|a| Json::text(a.to_string()))
                        .collect(),
                ),
            ),
        ]),
        AnyRecord::QuorumLease(lease) => lease_json(lease.sequence, &lease.record.0),
        AnyRecord::ResourceLease(lease) => lease_json(lease.sequence, &lease.record.0),
        AnyRecord::NodeSlot(slot) => Json::Object(vec![
            ("heartbeat", number(slot.sequence)),
            ("node_id", number(slot.record.node_id as u64)),
            ("state", Json::text(slot.record.state.name())),
            ("incarnation", number(slot.record.incarnation)),
            ("epoch", number(slot.record.epoch)),
            ("members", number(slot.record.members)),
            ("realtime_ms", number(slot.record.realtime_ms)),
            ("lease_valid_ms", number(slot.record.lease_valid_ms as u64)),
        ]),
        AnyRecord::FenceRequest(request) => Json::Object(vec![
            ("request", number(request.sequence)),
            ("target", number(request.record.target as u64)),
            (
                "target_incarnation",
                number(request.record.target_incarnation),
            ),
            ("requester", number(request.record.requester as u64)),
            ("requester_epoch", number(request.record.requester_epoch)),
            (
                "requester_incarnation",
                number(request.record.requester_incarnation),
            ),
        ]),
        AnyRecord::FenceAck(ack) => Json::Object(vec![
            ("ack", number(ack.sequence)),
            ("node_id", number(ack.record.node_id as u64)),
            ("incarnation", number(ack.record.incarnation)),
            (
                "acknowledged",
                match ack.record.acknowledged {
                    Acknowledged::Every => Json::Text("every".to_string()),
                    Acknowledged::Request {
                        requester,
                        requester_incarnation,
                        sequence,
                    } => Json::Object(vec![
                        ("requester", number(requester as u64)),
                        ("requester_incarnation", number(requester_incarnation)),
                        ("request", number(sequence)),
                    ]),
                },
            ),
            (
                "resources_stopped",
                Json::Bool(ack.record.resources_stopped),
            ),
        ]),
        AnyRecord::Checkpoint(header) => Json::Object(vec![
            ("generation", number(header.sequence)),
            ("database_sequence", number(header.record.database_sequence)),
            ("log_position", number(header.record.log_position)),
            ("payload_bytes", number(header.record.payload_bytes)),
            ("payload_crc32", number(header.record.payload_crc32 as u64)),
        ]),
        AnyRecord::LogBlock(block) => Json::Object(vec![
            ("position", number(block.sequence)),
            ("epoch", number(block.record.epoch)),
            ("updates", number(block.record.updates.len() as u64)),
        ]),
    }
}
