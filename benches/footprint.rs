//! Footprint benchmark (DESIGN.md §7, issue 7 item 3): the stripped release binary's size, and
//! the idle RSS and CPU of each node of a 3-node loopback cluster (no groups; default timing).
//!
//! - binary: the size of the benchmark's `wolfpack` (the release profile strips it), and of a
//!   copy run through `strip` when the tool exists, to show nothing more comes off;
//! - RSS: VmRSS (/proc/PID/status) of each daemon and of its resource monitor (the daemon's
//!   child), 10 s after the cluster formed;
//! - CPU: utime + stime (/proc/PID/stat, all threads, 10 ms ticks) over the next
//!   `FOOTPRINT_SECONDS` (10), as % of one core; also the same from the per-thread schedstat
//!   run times (ns), which resolves the small values the ticks cannot. Nothing talks to the
//!   nodes during the window, so the benchmark's polling is not counted.
//!
//! `cargo bench --bench footprint`. Writes benches/results/footprint.{json,svg}. No root needed.
#[path = "membership/cluster.rs"]
mod cluster;
#[path = "membership/report.rs"]
mod report;

use cluster::{children_of, clock_ticks_per_second, cpu_ticks, rss_kib, Cluster};
use report::verdict;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Issue 7: idle node ≤ 8 MiB RSS and ≤ 0.5 % of a core; stripped binary ≤ 2 MiB.
const RSS_TARGET_MIB: f64 = 8.0;
const CPU_TARGET_PERCENT: f64 = 0.5;
const BINARY_TARGET_MIB: f64 = 2.0;
const NODES: u8 = 3;
const SETTLE: Duration = Duration::from_secs(10);

struct NodeFootprint {
    id: u8,
    daemon_rss_kib: u64,
    monitor_rss_kib: u64,
    daemon_cpu_percent: f64,
    monitor_cpu_percent: f64,
    daemon_cpu_percent_ns: f64,
    monitor_cpu_percent_ns: f64,
}

fn main() {
    if let Err(error) = run() {
        eprintln!("footprint benchmark: {error}");
        std::process::exit(1);
    }
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// Run time of every thread of `pid` in ns, from /proc/PID/task/*/schedstat.
fn run_time_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn stripped_size(binary: &str, scratch: &std::path::Path) -> Option<u64> {
    let copy = scratch.join("wolfpack.stripped");
    std::fs::copy(binary, &copy).ok()?;
    let status = std::process::Command::new("strip")
        .arg(&copy)
        .status()
        .ok()?;
    let size = status
        .success()
        .then(|| std::fs::metadata(&copy).ok().map(|m| m.len()))
        .flatten();
    let _ = std::fs::remove_file(&copy);
    size
}

fn run() -> Result<(), String> {
    let binary = cluster::binary();
    let binary_bytes = std::fs::metadata(binary)
        .map_err(|e| format!("{binary}: {e}"))?
        .len();
    let mut cluster = Cluster::new("footprint", NODES)?;
    let restripped_bytes = stripped_size(binary, &cluster.dir);
    let everyone: Vec<u8> = (1..=NODES).collect();
    for &id in &everyone {
        cluster.start(id)?;
    }
    if let Err(error) = cluster.wait_membership(&everyone, Duration::from_millis(50)) {
        cluster.keep();
        return Err(error);
    }
    eprintln!(
        "footprint: {NODES} nodes formed; idle for {} s",
        SETTLE.as_secs()
    );
    std::thread::sleep(SETTLE);
    let window = Duration::from_secs(report::env_number("FOOTPRINT_SECONDS", 10));
    let mut processes = Vec::new();
    for &id in &everyone {
        let daemon = cluster.pid(id).ok_or("daemon not running")?;
        let monitor = *children_of(daemon)
            .first()
            .ok_or(format!("node {id}: no monitor process under PID {daemon}"))?;
        processes.push((id, daemon, monitor));
    }
    let before: Vec<(u64, u64, u64, u64)> = processes
        .iter()
        .map(|&(_, daemon, monitor)| {
            (
                cpu_ticks(daemon).unwrap_or(0),
                cpu_ticks(monitor).unwrap_or(0),
                run_time_ns(daemon),
                run_time_ns(monitor),
            )
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(window);
    let elapsed = started.elapsed().as_secs_f64();
    let ticks_per_second = clock_ticks_per_second() as f64;
    let mut nodes = Vec::new();
    for (&(id, daemon, monitor), &(d_ticks, m_ticks, d_ns, m_ns)) in processes.iter().zip(&before) {
        let percent_ticks = |now: Option<u64>, then: u64| -> f64 {
            now.unwrap_or(then).saturating_sub(then) as f64 / ticks_per_second / elapsed * 100.0
        };
        let percent_ns = |now: u64, then: u64| -> f64 {
            now.saturating_sub(then) as f64 / 1e9 / elapsed * 100.0
        };
        nodes.push(NodeFootprint {
            id,
            daemon_cpu_percent: percent_ticks(cpu_ticks(daemon), d_ticks),
            monitor_cpu_percent: percent_ticks(cpu_ticks(monitor), m_ticks),
            daemon_cpu_percent_ns: percent_ns(run_time_ns(daemon), d_ns),
            monitor_cpu_percent_ns: percent_ns(run_time_ns(monitor), m_ns),
            daemon_rss_kib: rss_kib(daemon).ok_or("daemon gone")?,
            monitor_rss_kib: rss_kib(monitor).ok_or("monitor gone")?,
        });
    }
    let still_formed = cluster.has_membership(&everyone);
    print_and_write(
        binary_bytes,
        restripped_bytes,
        &nodes,
        window.as_secs(),
        still_formed,
    );
    Ok(())
}

fn print_and_write(
    binary_bytes: u64,
    restripped_bytes: Option<u64>,
    nodes: &[NodeFootprint],
    window_seconds: u64,
    still_formed: bool,
) {
    println!(
        "binary: {binary_bytes} bytes ({:.2} MiB){}",
        mib(binary_bytes as f64),
        match restripped_bytes {
            Some(bytes) => format!("; after `strip` again: {bytes} bytes"),
            None => String::new(),
        }
    );
    println!(
        "{:>4} | {:>11} {:>12} {:>10} | {:>12} {:>13} | {:>12} {:>13}",
        "node",
        "daemon RSS",
        "monitor RSS",
        "sum",
        "daemon CPU %",
        "(schedstat) %",
        "monitor CPU %",
        "(schedstat) %"
    );
    let mut rows = Vec::new();
    for node in nodes {
        let sum = node.daemon_rss_kib + node.monitor_rss_kib;
        println!(
            "{:>4} | {:>7} KiB {:>8} KiB {:>6} KiB | {:>12.2} {:>13.3} | {:>13.2} {:>13.3}",
            node.id,
            node.daemon_rss_kib,
            node.monitor_rss_kib,
            sum,
            node.daemon_cpu_percent,
            node.daemon_cpu_percent_ns,
            node.monitor_cpu_percent,
            node.monitor_cpu_percent_ns
        );
        rows.push(format!(
            "{{\"node\":{},\"daemon_rss_kib\":{},\"monitor_rss_kib\":{},\"daemon_cpu_percent\":{:.3},\"daemon_cpu_percent_schedstat\":{:.4},\"monitor_cpu_percent\":{:.3},\"monitor_cpu_percent_schedstat\":{:.4}}}",
            node.id,
            node.daemon_rss_kib,
            node.monitor_rss_kib,
            node.daemon_cpu_percent,
            node.daemon_cpu_percent_ns,
            node.monitor_cpu_percent,
            node.monitor_cpu_percent_ns
        ));
    }
    println!(
        "idle: 10 s after forming (3 nodes, no groups, default timing); CPU over {window_seconds} s{}",
        if still_formed { "" } else { "; WARNING: the cluster was no longer formed after the window" }
    );
    let max = |value: fn(&NodeFootprint) -> f64| nodes.iter().map(value).fold(0.0, f64::max);
    let node_rss_mib = max(|n| mib((n.daemon_rss_kib + n.monitor_rss_kib) as f64 * 1024.0));
    let daemon_rss_mib = max(|n| mib(n.daemon_rss_kib as f64 * 1024.0));
    let daemon_cpu = max(|n| n.daemon_cpu_percent_ns);
    let node_cpu = max(|n| n.daemon_cpu_percent_ns + n.monitor_cpu_percent_ns);
    println!(
        "target stripped binary ≤ {BINARY_TARGET_MIB} MiB: {}",
        verdict(mib(binary_bytes as f64), BINARY_TARGET_MIB, "MiB")
    );
    println!(
        "target idle node ≤ {RSS_TARGET_MIB} MiB RSS: daemon alone {}; daemon + monitor {}",
        verdict(daemon_rss_mib, RSS_TARGET_MIB, "MiB"),
        verdict(node_rss_mib, RSS_TARGET_MIB, "MiB")
    );
    println!(
        "target idle node ≤ {CPU_TARGET_PERCENT} % of a core: daemon alone {}; daemon + monitor {}",
        verdict(daemon_cpu, CPU_TARGET_PERCENT, "%"),
        verdict(node_cpu, CPU_TARGET_PERCENT, "%")
    );
    let results = report::results_dir();
    let json = format!(
        "{{\"benchmark\":\"footprint\",\"binary_bytes\":{binary_bytes},\"binary_bytes_after_strip\":{},\"cpu_window_s\":{window_seconds},\"nodes\":[{}]}}\n",
        restripped_bytes.map_or("null".into(), |b| b.to_string()),
        rows.join(",")
    );
    let _ = std::fs::write(results.join("footprint.json"), json);
    let bars = [
        ("binary (MiB)", mib(binary_bytes as f64), BINARY_TARGET_MIB),
        ("daemon RSS (MiB)", daemon_rss_mib, RSS_TARGET_MIB),
        ("daemon + monitor RSS (MiB)", node_rss_mib, RSS_TARGET_MIB),
        ("daemon CPU (% of a core)", daemon_cpu, CPU_TARGET_PERCENT),
        ("daemon + monitor CPU (%)", node_cpu, CPU_TARGET_PERCENT),
    ];
    let _ = std::fs::write(results.join("footprint.svg"), svg(&bars));
    println!("wrote {}/footprint.{{json,svg}}", results.display());
}

/// One bar per measure, as a fraction of its target (the line at 100 %).
fn svg(bars: &[(&str, f64, f64)]) -> String {
    let (left, width, row) = (230.0, 420.0, 34.0);
    let scale = bars
        .iter()
        .map(|(_, value, target)| value / target)
        .fold(1.2f64, f64::max);
    let height = 70.0 + row * bars.len() as f64;
    let x = |fraction: f64| left + fraction / scale * width;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\" font-size=\"14\">Idle footprint (3-node loopback cluster), as a fraction of each target</text>\n",
        left + width + 160.0
    );
    let _ = writeln!(
        out,
        "<line x1=\"{0:.1}\" y1=\"30\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#c33\" stroke-dasharray=\"4\"/><text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\" fill=\"#c33\">target</text>",
        x(1.0),
        height - 25.0,
        height - 10.0
    );
    for (index, (label, value, target)) in bars.iter().enumerate() {
        let y = 40.0 + row * index as f64;
        let colour = if value <= target { "#393" } else { "#c33" };
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{:.1}\">{label}</text><rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{value:.2} (target {target})</text>",
            y + 12.0,
            (x(value / target) - left).max(1.0),
            x(value / target).max(left) + 6.0,
            y + 12.0
        );
    }
    out.push_str("</svg>\n");
    out
}
