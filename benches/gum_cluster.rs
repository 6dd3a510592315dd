//! The global update manager on real `wolfpack node` processes (issue 7, gum): loopback, one
//! shared 16 MiB disk file (mmap backend, so the log writes are page-cache writes plus msync).
//! Clients call `update KEY VALUE` over the nodes' admin sockets (each answer arrives once the
//! update is durable in the log and applied by every member); each client thread keeps one
//! update outstanding. Two loads per cluster size: every client on the highest node (one
//! sender), and the clients spread over every node (all senders). Reports committed durable
//! updates per second and the latency percentiles a client sees.
//!
//! `cargo bench --bench gum_cluster`; `NODES=2,3,8` (up to 32), `SECONDS=5` per load,
//! `CLIENTS=24` client threads per load (at most 24 per node: the admin socket takes 32).
//! Writes benches/results/gum_cluster.json. No root needed.
#[path = "membership/cluster.rs"]
mod cluster;
#[path = "membership/report.rs"]
mod report;

use cluster::Cluster;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wolfpack::admin::client;

/// Issue 7: ≥ 100,000 durable updates/s at 3 nodes, ≥ 20,000/s at 32.
const TARGET_3: f64 = 100_000.0;
const TARGET_32: f64 = 20_000.0;

struct Load {
    nodes: u8,
    senders: u8,
    clients: usize,
    committed: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() {
    let sizes = report::env_list("NODES", &[2, 3, 8]);
    let seconds = report::env_number("SECONDS", 5);
    let clients = report::env_number("CLIENTS", 24) as usize;
    let mut loads = Vec::new();
    for &nodes in &sizes {
        match measure(nodes, seconds, clients) {
            Ok(mut measured) => loads.append(&mut measured),
            Err(error) => {
                eprintln!("gum_cluster benchmark: {nodes} nodes: {error}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "GUM on real nodes (loopback, mmap disk), {seconds} s per load, {clients} client threads"
    );
    println!(
        "{:>5} {:>7} {:>8} {:>10} {:>12} {:>9} {:>9}",
        "nodes", "senders", "clients", "committed", "updates/s", "p50 ms", "p99 ms"
    );
    for load in &loads {
        println!(
            "{:>5} {:>7} {:>8} {:>10} {:>12.0} {:>9.2} {:>9.2}",
            load.nodes,
            load.senders,
            load.clients,
            load.committed,
            load.committed as f64 / load.seconds,
            load.p50_ms,
            load.p99_ms
        );
    }
    for load in loads
        .iter()
        .filter(|load| load.nodes == 3 || load.nodes == 32)
    {
        let target = if load.nodes == 3 { TARGET_3 } else { TARGET_32 };
        let rate = load.committed as f64 / load.seconds;
        if rate < target {
            println!(
                "target missed at {} nodes, {} sender(s): {rate:.0}/s against {target:.0}/s ({:.1}x short)",
                load.nodes,
                load.senders,
                target / rate.max(1.0)
            );
        }
    }
    let rows: Vec<String> = loads
        .iter()
        .map(|load| {
            format!(
                "{{\"nodes\":{},\"senders\":{},\"clients\":{},\"committed\":{},\"seconds\":{:.3},\"updates_per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
                load.nodes,
                load.senders,
                load.clients,
                load.committed,
                load.seconds,
                load.committed as f64 / load.seconds,
                load.p50_ms,
                load.p99_ms
            )
        })
        .collect();
    let path = report::results_dir().join("gum_cluster.json");
    let json = format!(
        "{{\"bench\":\"gum_cluster\",\"loads\":[{}]}}\n",
        rows.join(",")
    );
    if let Err(error) = std::fs::write(&path, json) {
        eprintln!("gum_cluster benchmark: {}: {error}", path.display());
        std::process::exit(1);
    }
    println!("wrote {}", path.display());
}

fn measure(nodes: u8, seconds: u64, clients: usize) -> Result<Vec<Load>, String> {
    let mut cluster = Cluster::new("gum", nodes)?;
    for id in 1..=nodes {
        cluster.start(id)?;
    }
    let all: Vec<u8> = (1..=nodes).collect();
    cluster.wait_membership(&all, Duration::from_millis(20))?;
    let mut loads = Vec::new();
    for senders in [vec![nodes], all.clone()] {
        let sockets: Vec<PathBuf> = senders.iter().map(|&id| cluster.socket(id)).collect();
        let per_node = clients.div_ceil(sockets.len()).min(24);
        let (latencies, elapsed) = run_load(&sockets, per_node, Duration::from_secs(seconds));
        let mut sorted = latencies.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        loads.push(Load {
            nodes,
            senders: senders.len() as u8,
            clients: per_node * sockets.len(),
            committed: latencies.len(),
            seconds: elapsed,
            p50_ms: report::quantile(&sorted, 0.50),
            p99_ms: report::quantile(&sorted, 0.99),
        });
    }
    Ok(loads)
}

/// `per_node` client threads on each socket, each with one update outstanding, for `span`.
/// Returns the latency (ms) of every committed update and the seconds the load ran.
fn run_load(sockets: &[PathBuf], per_node: usize, span: Duration) -> (Vec<f64>, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut threads = Vec::new();
    for (node, socket) in sockets.iter().enumerate() {
        for client_index in 0..per_node {
            let socket = socket.clone();
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut serial = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    serial += 1;
                    let path = format!("properties/bench/n{node}c{client_index}/k{}", serial % 16);
                    let value = serial.to_string();
                    let sent = Instant::now();
                    let mut committed = false;
                    let answered = client::request(
                        &socket,
                        &["update", &path, &value],
                        Some(Duration::from_secs(10)),
                        |line| {
                            committed |= line.starts_with("committed");
                            true
                        },
                    );
                    if answered.is_ok() && committed {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                latencies
            }));
        }
    }
    std::thread::sleep(span);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for thread in threads {
        latencies.extend(thread.join().unwrap_or_default());
    }
    (latencies, started.elapsed().as_secs_f64())
}
