//! Join benchmark (DESIGN.md §7, issue 7 item 3): a node joining a stable N-node cluster of real
//! `wolfpack node` processes on loopback, and forming a cluster from cold.
//!
//! - **join**: node N+1 is started; the join ends when every node (the joiner included) has
//!   logged "stabilized ... members {1..N+1}". Measured twice from the same end: from just
//!   before the joiner's spawn (process start, reading the disk, spawning its monitor), and
//!   from the joiner's "first frame sent" event (its first word on the network: the protocol).
//!   Then the joiner leaves gracefully (SIGTERM) and the next run starts from N members again.
//! - **formation**: nodes 1..N spawned back to back; from the first spawn to the last node's
//!   "stabilized ... members {1..N}" event.
//!
//! Every time is a difference of CLOCK_MONOTONIC µs stamps (the bench's own, and the event
//! rings of the nodes, `ctl events`), so the 10 ms status polling adds no error.
//!
//! `cargo bench --bench join`; `NODES=1,2,4,8,16` (cluster sizes before the join; 1..16),
//! `RUNS=5` joins per size, `SHOW_EVENTS=1` prints every node's events of each join. Writes benches/results/join.{json,csv,svg}. No root needed.
#[path = "membership/cluster.rs"]
mod cluster;
#[path = "membership/report.rs"]
mod report;

use cluster::{first_after, is_stabilized_with, Cluster};
use report::{json_list, summary, verdict, Series};
use std::fmt::Write as _;
use std::time::Duration;

/// Issue 7: join ≤ 50 ms at 16 nodes.
const JOIN_TARGET_MS: f64 = 50.0;
const POLL: Duration = Duration::from_millis(10);

struct Size {
    nodes: u8,
    formation_ms: f64,
    /// Per run: from the joiner's spawn, and from its first frame, to the last "stabilized".
    from_start_ms: Vec<f64>,
    from_first_frame_ms: Vec<f64>,
}

fn main() {
    let sizes = report::env_list("NODES", &[1, 2, 4, 8, 16]);
    let runs = report::env_number("RUNS", 5) as usize;
    let mut results = Vec::new();
    for &nodes in &sizes {
        if !(1..=16).contains(&nodes) {
            eprintln!("join benchmark: NODES holds {nodes}; sizes are 1 to 16");
            std::process::exit(2);
        }
        match measure(nodes, runs) {
            Ok(size) => results.push(size),
            Err(error) => {
                eprintln!("join benchmark: {nodes} nodes: {error}");
                std::process::exit(1);
            }
        }
    }
    print_and_write(&results, runs);
}

fn measure(nodes: u8, runs: usize) -> Result<Size, String> {
    let joiner = nodes + 1;
    let mut cluster = Cluster::new(&format!("join{nodes}"), joiner)?;
    let members: Vec<u8> = (1..=nodes).collect();
    let everyone: Vec<u8> = (1..=joiner).collect();
    for &id in &members {
        cluster.start(id)?;
    }
    let first_spawn = cluster.started_us[&1];
    if let Err(error) = cluster.wait_membership(&members, POLL) {
        cluster.keep();
        return Err(error);
    }
    let formed = members
        .iter()
        .filter_map(|&id| {
            first_after(&cluster.events(id), first_spawn, |text| {
                is_stabilized_with(text, &members)
            })
            .map(|event| event.0)
        })
        .max()
        .ok_or("no 'stabilized' event after formation")?;
    let formation_ms = (formed - first_spawn) as f64 / 1000.0;
    eprintln!("join: {nodes} nodes formed in {formation_ms:.1} ms");
    let mut size = Size {
        nodes,
        formation_ms,
        from_start_ms: Vec::new(),
        from_first_frame_ms: Vec::new(),
    };
    for run in 0..runs {
        cluster.start(joiner)?;
        let spawned = cluster.started_us[&joiner];
        if let Err(error) = cluster.wait_membership(&everyone, POLL) {
            cluster.keep();
            return Err(error);
        }
        let joiner_events = cluster.events(joiner);
        let first_frame = first_after(&joiner_events, spawned, |text| text == "first frame sent")
            .map(|event| event.0)
            .ok_or("the joiner logged no 'first frame sent'")?;
        let mut last_stabilized = 0;
        let mut lines: Vec<(u64, String)> = Vec::new();
        for &id in &everyone {
            let events = cluster.events(id);
            lines.extend(
                events
                    .iter()
                    .filter(|(at, _)| *at >= spawned)
                    .map(|(at, text)| (*at, format!("node {id}: {text}"))),
            );
            let at = first_after(&events, spawned, |text| is_stabilized_with(text, &everyone))
                .map(|event| event.0)
                .ok_or(format!(
                    "node {id} logged no stabilized event with the joiner"
                ))?;
            last_stabilized = last_stabilized.max(at);
        }
        let from_start = (last_stabilized - spawned) as f64 / 1000.0;
        let from_frame = (last_stabilized.saturating_sub(first_frame)) as f64 / 1000.0;
        eprintln!(
            "join: {nodes} nodes, run {run}: {from_start:.1} ms from spawn, {from_frame:.1} ms from first frame"
        );
        if std::env::var("SHOW_EVENTS").is_ok_and(|v| v == "1") {
            lines.sort();
            for (at, text) in lines.iter().filter(|(at, _)| *at <= last_stabilized) {
                eprintln!(
                    "    +{:.1} ms {text}",
                    at.saturating_sub(spawned) as f64 / 1000.0
                );
            }
        }
        size.from_start_ms.push(from_start);
        size.from_first_frame_ms.push(from_frame);
        cluster.stop(joiner);
        if let Err(error) = cluster.wait_membership(&members, POLL) {
            cluster.keep();
            return Err(error);
        }
    }
    Ok(size)
}

fn print_and_write(sizes: &[Size], runs: usize) {
    println!(
        "{:>5} {:>12} | {:>28} | {:>28}",
        "", "formation", "join from spawn (ms)", "join from first frame (ms)"
    );
    println!(
        "{:>5} {:>12} | {:>8} {:>9} {:>9} | {:>8} {:>9} {:>9}",
        "nodes", "cold (ms)", "median", "p99", "max", "median", "p99", "max"
    );
    let mut json = format!(
        "{{\"benchmark\":\"join\",\"runs_per_size\":{runs},\"timing\":\"default (heartbeat 50 ms, renewal 100 ms, expiry 1000 ms, fence 500 ms)\",\"sizes\":["
    );
    let mut csv =
        String::from("nodes_before_join,run,join_from_spawn_ms,join_from_first_frame_ms\n");
    for (index, size) in sizes.iter().enumerate() {
        let (start_median, start_p99, start_max) = summary(&size.from_start_ms);
        let (frame_median, frame_p99, frame_max) = summary(&size.from_first_frame_ms);
        println!(
            "{:>5} {:>12.1} | {start_median:>8.1} {start_p99:>9.1} {start_max:>9.1} | {frame_median:>8.1} {frame_p99:>9.1} {frame_max:>9.1}",
            size.nodes, size.formation_ms
        );
        for run in 0..size.from_start_ms.len() {
            let _ = writeln!(
                csv,
                "{},{run},{:.2},{:.2}",
                size.nodes, size.from_start_ms[run], size.from_first_frame_ms[run]
            );
        }
        let _ = write!(
            json,
            "{}{{\"nodes_before_join\":{},\"formation_ms\":{:.2},\"join_from_spawn_ms\":{},\"join_from_first_frame_ms\":{},\"median_from_spawn_ms\":{start_median:.2},\"p99_from_spawn_ms\":{start_p99:.2},\"median_from_first_frame_ms\":{frame_median:.2},\"p99_from_first_frame_ms\":{frame_p99:.2}}}",
            if index > 0 { "," } else { "" },
            size.nodes,
            size.formation_ms,
            json_list(&size.from_start_ms),
            json_list(&size.from_first_frame_ms),
        );
    }
    json.push_str("]}\n");
    println!(
        "{runs} joins per size; join ends when every node logged the new membership stabilized."
    );
    if let Some(largest) = sizes.iter().max_by_key(|size| size.nodes) {
        let (_, p99_frame, _) = summary(&largest.from_first_frame_ms);
        let (_, p99_start, _) = summary(&largest.from_start_ms);
        println!(
            "target join ≤ {JOIN_TARGET_MS} ms at 16 nodes (measured at {} nodes + joiner): from first frame, p99 {}; from spawn, p99 {}",
            largest.nodes,
            verdict(p99_frame, JOIN_TARGET_MS, "ms"),
            verdict(p99_start, JOIN_TARGET_MS, "ms")
        );
    }
    let results = report::results_dir();
    let series = [
        Series {
            label: "join from spawn".into(),
            colour: "#36c",
            points: points(sizes, |size| &size.from_start_ms),
        },
        Series {
            label: "join from first frame".into(),
            colour: "#c33",
            points: points(sizes, |size| &size.from_first_frame_ms),
        },
        Series {
            label: "formation (cold)".into(),
            colour: "#393",
            points: sizes
                .iter()
                .map(|size| (f64::from(size.nodes), size.formation_ms))
                .collect(),
        },
    ];
    let _ = std::fs::write(results.join("join.json"), json);
    let _ = std::fs::write(results.join("join.csv"), csv);
    let _ = std::fs::write(
        results.join("join.svg"),
        report::svg_plot(
            "Join of one node, and cold formation, on loopback (ms)",
            "nodes in the cluster before the join (formation: nodes formed)",
            "ms",
            &series,
        ),
    );
    println!("wrote {}/join.{{json,csv,svg}}", results.display());
}

fn points(sizes: &[Size], values: impl Fn(&Size) -> &Vec<f64>) -> Vec<(f64, f64)> {
    sizes
        .iter()
        .flat_map(|size| {
            values(size)
                .iter()
                .map(move |value| (f64::from(size.nodes), *value))
        })
        .collect()
}
