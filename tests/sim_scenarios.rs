//! Directed scenarios on the simulator (each one a fault the random sweep also draws, here
//! on its own so a failure names the rule that broke).

use wolfpack::core::Mutation;
use wolfpack::prng::Prng;
use wolfpack::sim::cluster::Cluster;
use wolfpack::sim::workload::FaultKind;
use wolfpack::sim::Params;

/// A quiet cluster of `nodes` nodes with `networks` networks each, converged.
fn converged_cluster(nodes: u8, networks: u8) -> Cluster {
    let mut params = Params::from_seed(7, Some(nodes), Mutation::None);
    params.networks = vec![networks; usize::from(nodes)];
    params.network.loss_per_mille = 0;
    params.network.duplicate_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    let mut prng = Prng::new(7);
    let mut cluster = Cluster::new(params, &mut prng);
    for id in 1..=nodes {
        if cluster.nodes[usize::from(id - 1)].node.is_none() {
            cluster.boot(id);
        }
    }
    for _ in 0..2000 {
        cluster.run_tick();
        if cluster.converged() {
            return cluster;
        }
    }
    panic!("no convergence: {:?}", cluster.checker.violations);
}

fn run(cluster: &mut Cluster, ticks: u64) {
    for _ in 0..ticks {
        cluster.run_tick();
    }
    assert!(
        cluster.checker.violations.is_empty(),
        "{:?}",
        cluster.checker.violations
    );
}

#[test]
fn a_peer_silent_on_one_network_but_heard_on_another_is_not_lost() {
    let mut cluster = converged_cluster(3, 2);
    let stabilizations = cluster.report.stabilizations;
    cluster.apply_fault(
        &FaultKind::NetworkDown {
            node: 2,
            network: 0,
        },
        true,
    );
    run(&mut cluster, 400);
    assert_eq!(
        cluster.report.stabilizations, stabilizations,
        "no regroup happened"
    );
    assert!(cluster.converged());
}

#[test]
fn a_node_cut_off_on_every_network_is_partitioned_not_dead_and_its_group_moves_once() {
    let mut cluster = converged_cluster(3, 2);
    let holder_of_3 = |cluster: &Cluster| {
        cluster
            .nodes
            .iter()
            .position(|node| node.online & 0b100 != 0)
            .map(|index| index + 1)
    };
    let before = holder_of_3(&cluster);
    assert!(before.is_some());
    // Cut the group's holder off; it keeps beating on disk until it stops (minority).
    let holder = before.unwrap_or(0) as u8;
    let side = 1u64 << (holder - 1);
    cluster.apply_fault(&FaultKind::Partition { side }, true);
    run(&mut cluster, 600);
    assert!(
        cluster.report.partitions_detected > 0,
        "the survivors saw it beating on disk"
    );
    let after = holder_of_3(&cluster);
    assert!(
        after.is_some_and(|node| node != usize::from(holder)),
        "{after:?}"
    );
    cluster.apply_fault(&FaultKind::Partition { side }, false);
    run(&mut cluster, 1200);
    assert!(cluster.converged());
}

#[test]
fn a_paused_holder_is_stopped_by_its_deadman_before_its_group_moves() {
    let mut cluster = converged_cluster(3, 1);
    let holder = cluster
        .nodes
        .iter()
        .position(|node| node.online != 0)
        .map(|index| index + 1);
    let holder = holder.unwrap_or(1) as u8;
    cluster.apply_fault(&FaultKind::Pause { node: holder }, true);
    run(&mut cluster, 400);
    assert_eq!(
        cluster.nodes[usize::from(holder - 1)].online,
        0,
        "stopped while paused"
    );
    assert!(cluster.report.deadman_stops > 0);
    cluster.apply_fault(&FaultKind::Pause { node: holder }, false);
    run(&mut cluster, 1200);
    assert!(cluster.converged());
}
