//! The update workload: random database updates submitted at random nodes, so GUM runs under
//! every fault the seed draws (crashes of the sender, the locker and the log writer included).

use super::cluster::Cluster;
use crate::core::db::{Op, Path, Update, Value};

/// Keys the workload writes: few, so updates overwrite and preconditions fail sometimes.
const KEYS: u64 = 24;

/// Maybe submits one update this tick.
pub fn submit(cluster: &mut Cluster) {
    if cluster.params.update_per_mille == 0
        || !cluster.prng.chance(cluster.params.update_per_mille, 1000)
    {
        return;
    }
    let count = u64::from(cluster.params.node_count);
    let id = cluster.prng.range_inclusive(1, count) as u8;
    let sim_node = &cluster.nodes[usize::from(id - 1)];
    if sim_node.host.is_none() || sim_node.paused {
        return;
    }
    let body = random_update(cluster);
    cluster.submit(id, body);
}

fn random_update(cluster: &mut Cluster) -> Vec<u8> {
    let prng = &mut cluster.prng;
    let key = prng.below(KEYS);
    let path = match Path::parse(&format!("properties/sim/k{key}")) {
        Ok(path) => path,
        Err(error) => unreachable!("a fixed path pattern parses: {error}"),
    };
    let mut ops = Vec::new();
    if prng.chance(1, 10) {
        // A precondition that holds or not: the outcome must still be the same everywhere.
        ops.push(Op::Require {
            path: path.clone(),
            version: prng.below(4),
        });
    }
    if prng.chance(1, 8) {
        ops.push(Op::Delete { path });
    } else {
        let size = prng.range_inclusive(0, 64) as usize;
        let text: String = (0..size)
            .map(|_| char::from(b'a' + prng.below(26) as u8))
            .collect();
        ops.push(Op::Put {
            path,
            value: Value::Text(text),
        });
    }
    match (Update { ops }).encode() {
        Ok(bytes) => bytes,
        Err(error) => unreachable!("the workload builds small valid updates: {error}"),
    }
}
