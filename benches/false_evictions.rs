//! False evictions (issue 7 item 4): a 3-node loopback cluster (default timing) left alone while
//! the machine is loaded, counting the regroups nothing asked for, and the heartbeat jitter the
//! failure detector saw. Three phases, one after the other, on the same cluster:
//! - **idle**: no load (`BASELINE_SECONDS`, default 10), the reference;
//! - **cpu hogs**: `sh -c 'while :; do :; done'` busy loops, `HOGS_PER_CORE` (1) per core, so
//!   every core is saturated; started and stopped by the PID recorded at their spawn;
//! - **disk hog**: a writer thread in this benchmark rewriting a 256 MiB file next to the
//!   shared disk image in 1 MiB writes with an fsync every 16 MiB (what a `dd conv=fsync` loop
//!   does), so the daemons' flushes of the shared disk queue behind it.
//!
//! Each loaded phase lasts `FALSE_EVICTION_SECONDS` (60; the 10 minutes is 600).
//! Regroups: new epochs stabilized during the phase (max epoch after minus before; with no
//! fault every one is a false eviction), cross-checked by "silent", "stabilized" and "left"
//! events and `wolfpack_regroups_total`. Jitter: the gaps between consecutive frames from one
//! peer, as each daemon received them (`wolfpack_peer_frame_gaps_total`, 1 ms buckets, a
//! counter diffed over the phase); the heartbeat interval is 50 ms and a peer is declared
//! silent after 300 ms without a frame.
//!
//! `cargo bench --bench false_evictions`. Writes benches/results/false_evictions.{json,svg}.
#[path = "membership/cluster.rs"]
mod cluster;
#[path = "membership/report.rs"]
mod report;

use cluster::{micros, Cluster};
use report::Series;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: u8 = 3;
const DISK_HOG_FILE_BYTES: u64 = 256 << 20;
const DISK_HOG_WRITE_BYTES: usize = 1 << 20;
const DISK_HOG_FSYNC_EVERY_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Load {
    Idle,
    CpuHogs,
    DiskHog,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::CpuHogs => "cpu hogs",
            Load::DiskHog => "disk hog",
        }
    }
}

/// What the nodes said at one moment.
struct Snapshot {
    at_us: u64,
    epoch: u64,
    regroups_total: u64,
    /// gap ms → count, summed over the nodes.
    gaps: BTreeMap<u64, u64>,
    disk_latency_max_us: u64,
}

struct Phase {
    load: Load,
    seconds: f64,
    new_epochs: u64,
    regroups_total: u64,
    silent_events: usize,
    stabilized_events: usize,
    left_events: usize,
    /// Event lines of the nodes during the phase (regroups only), for the report.
    event_lines: Vec<String>,
    gaps: BTreeMap<u64, u64>,
    disk_latency_max_ms: Option<f64>,
    hog_note: String,
}

fn main() {
    if let Err(error) = run() {
        eprintln!("false evictions benchmark: {error}");
        std::process::exit(1);
    }
}

fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("wolfpack_{name}{{")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn snapshot(cluster: &Cluster) -> Snapshot {
    let mut shot = Snapshot {
        at_us: micros(),
        epoch: 0,
        regroups_total: 0,
        gaps: BTreeMap::new(),
        disk_latency_max_us: 0,
    };
    for id in 1..=NODES {
        shot.epoch = shot
            .epoch
            .max(cluster.status(id).map_or(0, |status| status.epoch));
        let text = cluster.metrics(id);
        shot.regroups_total += metric_value(&text, "regroups_total");
        shot.disk_latency_max_us = shot
            .disk_latency_max_us
            .max(metric_value(&text, "disk_latency_microseconds_max"));
        for line in text
            .lines()
            .filter(|line| line.starts_with("wolfpack_peer_frame_gaps_total{"))
        {
            let gap = line
                .split("gap_ms=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next()?.parse::<u64>().ok());
            let count = line.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok());
            if let (Some(gap), Some(count)) = (gap, count) {
                *shot.gaps.entry(gap).or_insert(0) += count;
            }
        }
    }
    shot
}

fn run() -> Result<(), String> {
    let seconds = report::env_number("FALSE_EVICTION_SECONDS", 60);
    let baseline = report::env_number("BASELINE_SECONDS", 10);
    let hogs_per_core = report::env_number("HOGS_PER_CORE", 1);
    let mut cluster = Cluster::new("evictions", NODES)?;
    let everyone: Vec<u8> = (1..=NODES).collect();
    for &id in &everyone {
        cluster.start(id)?;
    }
    if let Err(error) = cluster.wait_membership(&everyone, Duration::from_millis(50)) {
        cluster.keep();
        return Err(error);
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut phases = Vec::new();
    for (load, length) in [
        (Load::Idle, baseline),
        (Load::CpuHogs, seconds),
        (Load::DiskHog, seconds),
    ] {
        eprintln!("false evictions: {} for {length} s", load.name());
        let phase = measure(&cluster, load, length, hogs_per_core)?;
        eprintln!(
            "false evictions: {}: {} new epochs",
            load.name(),
            phase.new_epochs
        );
        phases.push(phase);
        // Let a regroup the load started finish before the next phase's snapshot.
        if cluster
            .wait_membership(&everyone, Duration::from_millis(50))
            .is_err()
        {
            cluster.keep();
            return Err(format!(
                "the cluster did not re-form after the {} phase",
                load.name()
            ));
        }
    }
    print_and_write(&phases, seconds, hogs_per_core);
    Ok(())
}

fn measure(
    cluster: &Cluster,
    load: Load,
    seconds: u64,
    hogs_per_core: u64,
) -> Result<Phase, String> {
    let before = snapshot(cluster);
    let started = Instant::now();
    let mut hog_note = String::new();
    match load {
        Load::Idle => std::thread::sleep(Duration::from_secs(seconds)),
        Load::CpuHogs => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
            let mut hogs: Vec<Child> = Vec::new();
            for _ in 0..cores * hogs_per_core {
                let hog = Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("cannot start a CPU hog: {e}"))?;
                hogs.push(hog);
            }
            hog_note = format!("{} busy loops on {cores} cores", hogs.len());
            std::thread::sleep(Duration::from_secs(seconds));
            for mut hog in hogs {
                // Our own child, by the PID recorded at spawn.
                let _ = hog.kill();
                let _ = hog.wait();
            }
        }
        Load::DiskHog => {
            let path = cluster.dir.join("disk-hog.bin");
            let stop = Arc::new(AtomicBool::new(false));
            let written = Arc::new(AtomicU64::new(0));
            let fsync_max_us = Arc::new(AtomicU64::new(0));
            let writer = {
                let (stop, written, fsync_max_us, path) = (
                    Arc::clone(&stop),
                    Arc::clone(&written),
                    Arc::clone(&fsync_max_us),
                    path.clone(),
                );
                std::thread::spawn(move || disk_hog(&path, &stop, &written, &fsync_max_us))
            };
            std::thread::sleep(Duration::from_secs(seconds));
            stop.store(true, Ordering::Relaxed);
            let outcome = writer.join().map_err(|_| "the disk hog panicked")?;
            let _ = std::fs::remove_file(&path);
            outcome?;
            let mib_written = written.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
            hog_note = format!(
                "{:.0} MiB/s written with fsync every 16 MiB, slowest fsync {:.0} ms",
                mib_written / started.elapsed().as_secs_f64(),
                fsync_max_us.load(Ordering::Relaxed) as f64 / 1000.0
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A regroup the load triggered may end just after it stops.
    std::thread::sleep(Duration::from_secs(1));
    let after = snapshot(cluster);
    let mut gaps = after.gaps.clone();
    for (gap, count) in &before.gaps {
        if let Some(now) = gaps.get_mut(gap) {
            *now -= (*count).min(*now);
        }
    }
    gaps.retain(|_, count| *count > 0);
    let mut event_lines = Vec::new();
    let (mut silent_events, mut stabilized_events, mut left_events) = (0, 0, 0);
    for id in 1..=NODES {
        for (at, text) in cluster.events(id) {
            if at < before.at_us || at > after.at_us {
                continue;
            }
            let counted = if text.contains("silent on every network") {
                silent_events += 1;
                true
            } else if text.starts_with("stabilized") {
                stabilized_events += 1;
                true
            } else if text.starts_with("left the membership") {
                left_events += 1;
                true
            } else {
                text.starts_with("decided") || text.contains("partitioned")
            };
            if counted {
                event_lines.push(format!(
                    "+{:.1} s node {id}: {text}",
                    (at - before.at_us) as f64 / 1e6
                ));
            }
        }
    }
    event_lines.sort();
    Ok(Phase {
        load,
        seconds: elapsed,
        new_epochs: after.epoch.saturating_sub(before.epoch),
        regroups_total: after.regroups_total.saturating_sub(before.regroups_total),
        silent_events,
        stabilized_events,
        left_events,
        event_lines,
        gaps,
        disk_latency_max_ms: (after.disk_latency_max_us > before.disk_latency_max_us)
            .then_some(after.disk_latency_max_us as f64 / 1000.0),
        hog_note,
    })
}

/// Rewrites `path` until `stop`: 1 MiB writes, fsync every 16 MiB, from the start again at
/// 256 MiB.
fn disk_hog(
    path: &std::path::Path,
    stop: &AtomicBool,
    written: &AtomicU64,
    fsync_max_us: &AtomicU64,
) -> Result<(), String> {
    let block = vec![0x5au8; DISK_HOG_WRITE_BYTES];
    while !stop.load(Ordering::Relaxed) {
        let mut file = std::fs::File::create(path).map_err(|e| format!("disk hog: {e}"))?;
        let mut in_file = 0u64;
        while in_file < DISK_HOG_FILE_BYTES && !stop.load(Ordering::Relaxed) {
            file.write_all(&block)
                .map_err(|e| format!("disk hog: {e}"))?;
            in_file += block.len() as u64;
            written.fetch_add(block.len() as u64, Ordering::Relaxed);
            if in_file.is_multiple_of(DISK_HOG_FSYNC_EVERY_BYTES) {
                let began = Instant::now();
                file.sync_all().map_err(|e| format!("disk hog: {e}"))?;
                fsync_max_us.fetch_max(began.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// The gap (ms) at quantile `q` of a gap → count histogram.
fn gap_quantile(gaps: &BTreeMap<u64, u64>, q: f64) -> f64 {
    let total: u64 = gaps.values().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (gap, count) in gaps {
        seen += count;
        if seen >= rank {
            return *gap as f64;
        }
    }
    f64::NAN
}

fn print_and_write(phases: &[Phase], seconds: u64, hogs_per_core: u64) {
    println!(
        "{:<9} {:>6} | {:>10} {:>9} {:>7} {:>6} {:>5} | {:>7} {:>5} {:>5} {:>6} {:>5} {:>5} | {:>9}",
        "load",
        "s",
        "new epochs",
        "regroups*",
        "silent",
        "stab.",
        "left",
        "frames",
        "p50",
        "p99",
        "p99.9",
        "max",
        ">300",
        "disk max"
    );
    let mut json_phases = Vec::new();
    for phase in phases {
        let frames: u64 = phase.gaps.values().sum();
        let over_silence: u64 = phase.gaps.range(300..).map(|(_, c)| c).sum();
        let quantiles = [0.5, 0.99, 0.999, 1.0].map(|q| gap_quantile(&phase.gaps, q));
        println!(
            "{:<9} {:>6.0} | {:>10} {:>9} {:>7} {:>6} {:>5} | {:>7} {:>5.0} {:>5.0} {:>6.0} {:>5.0} {:>5} | {:>9}",
            phase.load.name(),
            phase.seconds,
            phase.new_epochs,
            phase.regroups_total,
            phase.silent_events,
            phase.stabilized_events,
            phase.left_events,
            frames,
            quantiles[0],
            quantiles[1],
            quantiles[2],
            quantiles[3],
            over_silence,
            phase
                .disk_latency_max_ms
                .map_or("-".into(), |ms| format!("{ms:.0} ms"))
        );
        if !phase.hog_note.is_empty() {
            println!("          {}", phase.hog_note);
        }
        for line in &phase.event_lines {
            println!("          {line}");
        }
        let histogram: Vec<String> = phase
            .gaps
            .iter()
            .map(|(gap, count)| format!("\"{gap}\":{count}"))
            .collect();
        let events: Vec<String> = phase
            .event_lines
            .iter()
            .map(|line| wolfpack::json::quoted(line))
            .collect();
        json_phases.push(format!(
            "{{\"load\":\"{}\",\"seconds\":{:.1},\"hog\":{},\"new_epochs\":{},\"regroups_total\":{},\"silent_events\":{},\"stabilized_events\":{},\"left_events\":{},\"frames\":{frames},\"gap_ms_p50\":{},\"gap_ms_p99\":{},\"gap_ms_p999\":{},\"gap_ms_max\":{},\"gaps_over_300ms\":{over_silence},\"gap_ms_histogram\":{{{}}},\"events\":[{}]}}",
            phase.load.name(),
            phase.seconds,
            wolfpack::json::quoted(&phase.hog_note),
            phase.new_epochs,
            phase.regroups_total,
            phase.silent_events,
            phase.stabilized_events,
            phase.left_events,
            quantiles[0],
            quantiles[1],
            quantiles[2],
            quantiles[3],
            histogram.join(","),
            events.join(",")
        ));
    }
    println!("* regroups: sum over the nodes of wolfpack_regroups_total (each node counts each stabilization).");
    println!("frame gaps: ms between consecutive frames from one peer as received (heartbeat 50 ms; silent after 300 ms); >300: gaps that long. disk max: the daemons' slowest shared-disk batch, when it grew in the phase.");
    if let Some(cpu) = phases.iter().find(|p| p.load == Load::CpuHogs) {
        println!(
            "target zero false evictions under CPU hogs ({}, {seconds} s): {}",
            cpu.hog_note,
            if cpu.new_epochs == 0 {
                "met (0)".to_string()
            } else {
                format!("MISSED by {} (regroups with no fault)", cpu.new_epochs)
            }
        );
    }
    let results = report::results_dir();
    let json = format!(
        "{{\"benchmark\":\"false_evictions\",\"nodes\":{NODES},\"loaded_seconds\":{seconds},\"hogs_per_core\":{hogs_per_core},\"phases\":[{}]}}\n",
        json_phases.join(",")
    );
    let _ = std::fs::write(results.join("false_evictions.json"), json);
    let quantile_series = |label: &str, colour: &'static str, q: f64| Series {
        label: label.into(),
        colour,
        points: phases
            .iter()
            .enumerate()
            .map(|(index, phase)| ((index + 1) as f64, gap_quantile(&phase.gaps, q)))
            .filter(|(_, value)| value.is_finite())
            .collect(),
    };
    let series = [
        quantile_series("p50", "#393", 0.5),
        quantile_series("p99", "#36c", 0.99),
        quantile_series("p99.9", "#c93", 0.999),
        quantile_series("max", "#c33", 1.0),
    ];
    let _ = std::fs::write(
        results.join("false_evictions.svg"),
        report::svg_plot(
            "Heartbeat frame gaps as received (ms), 3-node loopback cluster",
            "phase: 1 idle, 2 cpu hogs, 3 disk hog",
            "gap ms",
            &series,
        ),
    );
    println!("wrote {}/false_evictions.{{json,svg}}", results.display());
}
