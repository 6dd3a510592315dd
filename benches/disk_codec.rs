//! How fast the disk format encodes and decodes: the heartbeat path encodes a node slot on every
//! renewal and decodes every peer's slot, and `disk check` decodes a whole disk.
//!
//! Prints a table and writes `benches/results/disk_codec.json`. Run: `cargo bench --bench disk_codec`.
use disklayout::*;
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: u32 = 200_000;

fn time_per_op(rounds: u32, mut operation: impl FnMut()) -> f64 {
    for _ in 0..rounds / 10 {
        operation();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        operation();
    }
    start.elapsed().as_nanos() as f64 / rounds as f64
}

fn codec_row<R: Record + Clone>(name: &str, record: R) -> (String, f64, f64) {
    let sealed = Sealed {
        cluster_id: 7,
        sequence: 1,
        record,
    };
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    let encode_ns = time_per_op(ROUNDS, || {
        encode(black_box(&sealed), &mut block).expect("valid");
    });
    let decode_ns = time_per_op(ROUNDS, || {
        black_box(decode::<R>(black_box(&block[..])).expect("valid"));
    });
    (name.to_string(), encode_ns, decode_ns)
}

fn main() {
    let slot = NodeSlot {
        node_id: 3,
        state: NodeState::Member,
        incarnation: 9,
        epoch: 12,
        members: 0b111,
        realtime_ms: 1_764_000_000_000,
        lease_valid_ms: 1000,
    };
    let lease = QuorumLease(Lease {
        owner: 1,
        owner_incarnation: 4,
        owner_epoch: 12,
        challenger: 0,
        challenger_incarnation: 0,
        name: QUORUM_LEASE_NAME.to_string(),
    });
    let updates = (0..60)
        .map(|sequence| LogUpdate {
            sequence,
            origin: 1,
            payload: vec![7; 52],
        })
        .collect();
    let log_block = LogBlock { epoch: 12, updates };
    let rows = [
        codec_row("node slot", slot),
        codec_row("quorum lease", lease),
        codec_row("log block (60 updates)", log_block),
    ];

    let size_bytes = 64u64 << 20;
    let geometry = Geometry::for_disk(size_bytes, 256).expect("fits");
    let superblock = Superblock {
        cluster_name: "bench".into(),
        disk_size_bytes: size_bytes,
        geometry,
        timing: Timing::default(),
        watchdog: Default::default(),
    };
    let nodes: Vec<NodeEntry> = (1..=16)
        .map(|node_id| NodeEntry {
            node_id,
            name: format!("n{node_id}"),
            addresses: vec![([198, 18, 0, node_id], 7400).into()],
        })
        .collect();
    let mut image = vec![0u8; size_bytes as usize];
    for (offset, block) in format_blocks(1, &superblock, &nodes).expect("valid") {
        image[offset as usize..offset as usize + BLOCK_SIZE].copy_from_slice(&block[..]);
    }
    let start = Instant::now();
    let inspection = disklayout::inspect::inspect(size_bytes, &mut |offset, block| {
        block.copy_from_slice(&image[offset as usize..offset as usize + BLOCK_SIZE]);
        Ok(())
    })
    .expect("formatted");
    let inspect_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(inspection.problems().count(), 0);

    println!("{:<26} {:>12} {:>12}", "record", "encode ns", "decode ns");
    for (name, encode_ns, decode_ns) in &rows {
        println!("{name:<26} {encode_ns:>12.1} {decode_ns:>12.1}");
    }
    println!(
        "inspect a 64 MiB disk in memory: {inspect_ms:.1} ms ({} blocks walked)",
        geometry.end_bytes() / 4096
    );

    let entries: Vec<String> = rows
        .iter()
        .map(|(name, encode_ns, decode_ns)| {
            format!("{{\"record\":\"{name}\",\"encode_ns\":{encode_ns:.1},\"decode_ns\":{decode_ns:.1}}}")
        })
        .collect();
    let json = format!(
        "{{\"codecs\":[{}],\"inspect_64mib_ms\":{inspect_ms:.1}}}\n",
        entries.join(",")
    );
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    if let Err(error) = std::fs::create_dir_all(&results)
        .and_then(|_| std::fs::write(results.join("disk_codec.json"), json))
    {
        eprintln!("cannot write benches/results/disk_codec.json: {error}");
        std::process::exit(1);
    }
    println!("wrote benches/results/disk_codec.json");
}
