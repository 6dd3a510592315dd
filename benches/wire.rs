//! How long sealing and opening a frame takes: every heartbeat is sealed once per peer and
//! network and opened once by its receiver, so this is the wire layer's whole cost per datagram.
//! Opening includes the MAC check, the cluster, receiver, sender and incarnation checks and a
//! replay-window update (each frame opened has a new sequence number).
//!
//! Prints a table and writes `benches/results/wire.json`. Run: `cargo bench --bench wire`.
use std::hint::black_box;
use std::time::Instant;
use wolfpack::wire::{ClusterKey, Opener, Sealer, PAYLOAD_BYTES_MAX};

const ROUNDS: usize = 200_000;
const CLUSTER: u64 = 7;

fn ns_per_op(rounds: usize, mut operation: impl FnMut(usize)) -> f64 {
    for round in 0..rounds / 10 {
        operation(round);
    }
    let start = Instant::now();
    for round in 0..rounds {
        operation(round);
    }
    start.elapsed().as_nanos() as f64 / rounds as f64
}

fn row(payload_bytes: usize) -> (usize, f64, f64) {
    let key = ClusterKey::from_bytes([0x42; 32]);
    let payload = vec![0x5a; payload_bytes];
    let mut sealer = Sealer::new(&key, CLUSTER, 1, 1);
    let mut out = Vec::with_capacity(1400);
    let seal_ns = ns_per_op(ROUNDS, |_| {
        sealer.seal(3, 2, 0, black_box(&payload), &mut out);
        black_box(&out);
    });

    // Seal fresh frames for opening: warm-up and measured rounds each need a new sequence.
    let mut sender = Sealer::new(&key, CLUSTER, 1, 2);
    let datagrams: Vec<Vec<u8>> = (0..ROUNDS + ROUNDS / 10)
        .map(|_| {
            let mut datagram = Vec::new();
            sender.seal(3, 2, 0, &payload, &mut datagram);
            datagram
        })
        .collect();
    let mut opener = Opener::new(&key, CLUSTER, 2);
    let mut next = 0;
    let open_ns = ns_per_op(ROUNDS, |_| {
        let frame = opener.open(black_box(&datagrams[next])).expect("authentic");
        black_box(frame.payload);
        next += 1;
    });
    assert_eq!(opener.drop_counters().total(), 0);
    (payload_bytes, seal_ns, open_ns)
}

fn main() {
    let rows = [row(64), row(PAYLOAD_BYTES_MAX)];
    println!(
        "{:>14} {:>10} {:>10}",
        "payload bytes", "seal ns", "open ns"
    );
    for (payload_bytes, seal_ns, open_ns) in &rows {
        println!("{payload_bytes:>14} {seal_ns:>10.1} {open_ns:>10.1}");
    }
    let entries: Vec<String> = rows
        .iter()
        .map(|(payload_bytes, seal_ns, open_ns)| {
            format!(
                "{{\"payload_bytes\":{payload_bytes},\"seal_ns\":{seal_ns:.1},\"open_ns\":{open_ns:.1}}}"
            )
        })
        .collect();
    let json = format!("{{\"frames\":[{}]}}\n", entries.join(","));
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    if let Err(error) = std::fs::create_dir_all(&results)
        .and_then(|_| std::fs::write(results.join("wire.json"), json))
    {
        eprintln!("cannot write benches/results/wire.json: {error}");
        std::process::exit(1);
    }
    println!("wrote benches/results/wire.json");
}
