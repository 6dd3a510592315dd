//! Directed scenarios on the simulator (each one a fault the random sweep also draws, here
//! on its own so a failure names the rule that broke).

use wolfpack::core::db::{Op, Path, Update, Value};
use wolfpack::core::disk_records::{decode, encode, NodeSlot, ResourceLease, Sealed, BLOCK_SIZE};
use wolfpack::core::Mutation;
use wolfpack::prng::Prng;
use wolfpack::sim::cluster::Cluster;
use wolfpack::sim::disk::DiskOp;
use wolfpack::sim::workload::FaultKind;
use wolfpack::sim::{Params, Violation, ViolationKind};

/// A quiet cluster of `nodes` nodes with `networks` networks each, converged.
fn converged_cluster(nodes: u8, networks: u8) -> Cluster {
    converged_cluster_breaking(nodes, networks, Mutation::None)
}

/// The same, with one rule broken on purpose.
fn converged_cluster_breaking(nodes: u8, networks: u8, mutation: Mutation) -> Cluster {
    let mut params = Params::from_seed(7, Some(nodes), mutation);
    params.networks = vec![networks; usize::from(nodes)];
    params.network.loss_per_mille = 0;
    params.network.duplicate_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    let mut prng = Prng::new(7);
    let mut cluster = Cluster::new(params, &mut prng);
    for id in 1..=nodes {
        if cluster.nodes[usize::from(id - 1)].host.is_none() {
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

/// A quiet converged cluster of three whose nodes have watchdogs of `watchdog_ms` (or none):
/// the holder of some group freezes whole (daemon, monitor, resources) for `freeze_ticks`, then
/// thaws. Returns the violations, the holder, and how many watchdog resets happened.
fn freeze_a_holder(
    watchdog_ms: Option<u64>,
    freeze_ticks: u64,
    mutation: Mutation,
) -> (Vec<Violation>, u8, u64) {
    let mut params = Params::from_seed(7, Some(3), mutation);
    params.network.loss_per_mille = 0;
    params.network.duplicate_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    params.watchdog_ms = watchdog_ms;
    let mut prng = Prng::new(7);
    let mut cluster = Cluster::new(params, &mut prng);
    for id in 1..=3 {
        if cluster.nodes[usize::from(id - 1)].host.is_none() {
            cluster.boot(id);
        }
    }
    for _ in 0..2000 {
        cluster.run_tick();
        if cluster.converged() {
            break;
        }
    }
    assert!(cluster.converged(), "{:?}", cluster.checker.violations);
    let holder = (1..=3u8)
        .find(|id| cluster.nodes[usize::from(id - 1)].online != 0)
        .expect("every group is online somewhere");
    cluster.apply_fault(&FaultKind::Freeze { node: holder }, true);
    for _ in 0..freeze_ticks {
        cluster.run_tick();
    }
    cluster.apply_fault(&FaultKind::Freeze { node: holder }, false);
    for _ in 0..600 {
        cluster.run_tick();
    }
    let resets = cluster
        .report
        .resources
        .get("watchdog resets")
        .copied()
        .unwrap_or(0);
    (cluster.checker.violations, holder, resets)
}

/// Something the frozen holder held is held by its successor too.
fn serves_twice(kind: ViolationKind) -> bool {
    matches!(
        kind,
        ViolationKind::GroupOnlineTwice
            | ViolationKind::ResourceLeaseHeldTwice
            | ViolationKind::ResourceRunsOnTwoNodes
    )
}

/// Issue 14: without a watchdog, a node frozen past its lease thaws with its resources running
/// beside the survivor that took them over: the hazard the simulator must show.
#[test]
fn a_node_frozen_past_its_lease_without_a_watchdog_serves_beside_its_successor() {
    let (violations, holder, _) = freeze_a_holder(None, 400, Mutation::None);
    assert!(
        violations
            .iter()
            .any(|violation| serves_twice(violation.kind)),
        "node {holder} frozen for 4 s: {violations:?}"
    );
}

/// With a watchdog within `Timing::watchdog_timeout_max_ms`, the frozen holder is reset before
/// its lease can expire: nothing runs twice, and the cluster converges again.
#[test]
fn a_watchdog_within_the_bound_resets_a_frozen_holder_before_its_group_moves() {
    let bound_ms = wolfpack::core::disk_records::Timing::default().watchdog_timeout_max_ms();
    let (violations, holder, resets) = freeze_a_holder(Some(bound_ms), 400, Mutation::None);
    assert!(violations.is_empty(), "node {holder}: {violations:?}");
    assert!(resets >= 1, "the frozen holder was not reset");
}

/// `--mutate watchdog-timeout-too-long`: a watchdog longer than the bound lets the frozen
/// holder thaw after its group moved.
#[test]
fn a_watchdog_longer_than_the_bound_is_caught() {
    let (violations, holder, _) =
        freeze_a_holder(Some(3000), 400, Mutation::WatchdogTimeoutTooLong);
    assert!(
        violations
            .iter()
            .any(|violation| serves_twice(violation.kind)),
        "node {holder}: {violations:?}"
    );
}

/// The epoch in node `id`'s slot, `None` if the slot is unreadable or empty.
fn slot_epoch(cluster: &Cluster, id: u8) -> Option<u64> {
    let offset = cluster.config(id, 1).geometry.node_slot_offset(id);
    match decode::<NodeSlot>(&cluster.disk.read(offset)[..]) {
        Ok(Some(sealed)) => Some(sealed.record.epoch),
        _ => None,
    }
}

/// Tears the block at `offset` as the crash of `writer` (already crashed) with a write of `new`
/// in flight would (`sim::disk::tear`, drawn from `seed`).
fn crash_tearing(
    cluster: &mut Cluster,
    writer: u8,
    offset: u64,
    new: Box<[u8; BLOCK_SIZE]>,
    seed: u64,
) {
    let op = DiskOp {
        node: writer,
        op: u64::MAX,
        offset_bytes: offset,
        block: Some(new),
        fails: false,
    };
    let mut prng = Prng::new(seed);
    cluster.disk.params.torn_per_mille = 1000;
    cluster.disk.submit(op, cluster.tick, &mut prng);
    cluster.disk.crash(writer, &mut prng);
    cluster.disk.params.torn_per_mille = 0;
}

/// The next write of node `id`'s slot: the same record, one heartbeat later, in `epoch`.
fn next_slot_write(cluster: &Cluster, id: u8, epoch: u64) -> Box<[u8; BLOCK_SIZE]> {
    let offset = cluster.config(id, 1).geometry.node_slot_offset(id);
    let mut sealed = decode::<NodeSlot>(&cluster.disk.read(offset)[..])
        .ok()
        .flatten()
        .expect("the slot holds a record");
    sealed.sequence += 1;
    sealed.record.epoch = epoch;
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(&sealed, &mut block).expect("a valid slot");
    block
}

/// Seed 35899441 (`--nodes 2`): one crash tore the quorum record, another the slot of the node
/// that had formed an epoch alone, and the epoch was formed again with another membership.
/// Every control record is written twice in its block (FORMAT.md §3), so a crash that tears a
/// write leaves the old record or the new one, never an unreadable block.
#[test]
fn crashes_that_tear_every_copy_of_an_epoch_leave_it_readable() {
    for seed in 0..64 {
        let mut cluster = converged_cluster(2, 1);
        // Tears only where this test puts them.
        cluster.disk.params.torn_per_mille = 0;
        let epoch = slot_epoch(&cluster, 1).expect("node 1's slot holds an epoch");
        assert!(epoch > 0);
        assert_eq!(slot_epoch(&cluster, 2), Some(epoch));
        let geometry = cluster.config(1, 1).geometry;
        cluster.crash(1);
        cluster.crash(2);
        let mut garbled_record = cluster.disk.read(geometry.quorum_offset());
        garbled_record[..64].fill(0xa5);
        crash_tearing(
            &mut cluster,
            1,
            geometry.quorum_offset(),
            garbled_record,
            seed,
        );
        let next = next_slot_write(&cluster, 1, epoch);
        crash_tearing(
            &mut cluster,
            1,
            geometry.node_slot_offset(1),
            next,
            seed + 1000,
        );
        let next = next_slot_write(&cluster, 2, epoch + 1);
        crash_tearing(
            &mut cluster,
            2,
            geometry.node_slot_offset(2),
            next,
            seed + 2000,
        );
        assert_eq!(slot_epoch(&cluster, 1), Some(epoch), "seed {seed}");
        assert!(slot_epoch(&cluster, 2) >= Some(epoch), "seed {seed}");
        cluster.boot(1);
        cluster.boot(2);
        for _ in 0..3000 {
            run(&mut cluster, 1);
            if cluster.converged() {
                break;
            }
        }
        assert!(cluster.converged(), "seed {seed}");
        let status = cluster.nodes[0].core().map(|node| node.status());
        assert!(
            status.as_ref().is_some_and(|status| status.epoch > epoch),
            "seed {seed}: {status:?}"
        );
    }
}

/// A quiet 3-node cluster with catalog group `g1` (slot 1, preferred on node 2) holding the
/// filesystem resource `fs-data`, converged: node 2 runs the group and holds the lease.
fn leased_cluster() -> Cluster {
    let mut params = Params::from_seed(7, Some(3), Mutation::None);
    params.networks = vec![1; 3];
    params.network.loss_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    params.catalog_groups = true;
    let mut prng = Prng::new(7);
    let mut cluster = Cluster::new(params, &mut prng);
    for id in 1..=3 {
        if cluster.nodes[usize::from(id - 1)].host.is_none() {
            cluster.boot(id);
        }
    }
    run_until_converged(&mut cluster);
    let put = |path: &str, value: Value| Op::Put {
        path: Path::parse(path).expect("a valid path"),
        value,
    };
    let text = |value: &str| Value::Text(value.to_string());
    let update = Update {
        ops: vec![
            put("groups/g1/slot", Value::U64(1)),
            put("groups/g1/preferred", text("2")),
            put("resources/fs-data/group", text("g1")),
            put("resources/fs-data/type", text("filesystem")),
            put("resources/fs-data/params/device", text("/dev/sdb1")),
            put("resources/fs-data/params/directory", text("/srv/data")),
            put("resources/fs-data/params/fstype", text("ext4")),
        ],
    };
    cluster.submit(1, update.encode().expect("a small update"));
    run_until_converged(&mut cluster);
    assert_eq!(cluster.nodes[1].online, 0b1, "the group runs on node 2");
    assert!(cluster.nodes[1].leases.contains_key("fs-data"));
    let node = cluster.nodes[1].core();
    assert!(node.is_some_and(|node| node.resource_lease_held("fs-data")));
    cluster
}

fn run_until_converged(cluster: &mut Cluster) {
    for _ in 0..3000 {
        run(cluster, 1);
        // The driver contract as the simulated driver kept it: a filesystem's lease is held
        // only on a node that runs its group.
        for sim_node in &cluster.nodes {
            if sim_node.leases.contains_key("fs-data") {
                assert_ne!(sim_node.online & 0b1, 0, "a lease without its group");
            }
        }
        if cluster.converged() {
            return;
        }
    }
    panic!("no convergence: {:?}", cluster.checker.violations);
}

fn holder_of_group_1(cluster: &Cluster) -> Option<u8> {
    (1..=3u8).find(|id| cluster.nodes[usize::from(id - 1)].online & 0b1 != 0)
}

#[test]
fn a_filesystem_lease_follows_its_group_and_waits_out_a_crashed_holders_lease() {
    let mut cluster = leased_cluster();
    cluster.crash(2);
    run(&mut cluster, 300);
    cluster.boot(2);
    // The checker counts the crashed holder's lease until its validity ends: a new holder
    // that claimed earlier would be a violation.
    run_until_converged(&mut cluster);
    let holder = holder_of_group_1(&cluster);
    assert!(holder.is_some_and(|holder| holder != 2), "failback is off");
    let holder = usize::from(holder.unwrap_or(1) - 1);
    assert!(cluster.nodes[holder].leases.contains_key("fs-data"));
    assert_eq!(cluster.report.leases.get("held at a crash"), Some(&1));
}

/// Node 2's lease block, as the probe bound it.
fn lease_block(cluster: &Cluster) -> (u64, Sealed<ResourceLease>) {
    let geometry = cluster.config(1, 1).geometry;
    (0..geometry.resource_lease_slots())
        .map(|index| geometry.resource_lease_offset(index))
        .find_map(
            |offset| match decode::<ResourceLease>(&cluster.disk.read(offset)[..]) {
                Ok(Some(sealed)) if sealed.record.0.name == "fs-data" => Some((offset, sealed)),
                _ => None,
            },
        )
        .expect("a block carries the lease")
}

#[test]
fn a_holder_that_loses_its_resource_lease_fails_the_group_here_and_the_group_moves() {
    let mut cluster = leased_cluster();
    let (offset, mut sealed) = lease_block(&cluster);
    assert_eq!(sealed.record.0.owner, 2);
    // Someone else's claim lands on the block (what two bindings of one name would do).
    sealed.sequence += 1;
    sealed.record.0.owner = 3;
    sealed.record.0.owner_incarnation = 99;
    let mut block = Box::new([0u8; BLOCK_SIZE]);
    encode(&sealed, &mut block).expect("fits");
    // The claim may land between the holder's renewal read and its write, which then
    // overwrites it (the holder still owned the block when it read): land it again until the
    // holder reads it.
    for _ in 0..20 {
        let op = DiskOp {
            node: 1,
            op: u64::MAX,
            offset_bytes: offset,
            block: Some(block.clone()),
            fails: false,
        };
        cluster.disk.submit(op, cluster.tick, &mut Prng::new(1));
        run(&mut cluster, 15);
        if !cluster.nodes[1].leases.contains_key("fs-data") {
            break;
        }
    }
    assert!(
        !cluster.nodes[1].leases.contains_key("fs-data"),
        "unmounted"
    );
    assert_eq!(cluster.report.gum.get("group refused"), Some(&1));
    run_until_converged(&mut cluster);
    let holder = holder_of_group_1(&cluster);
    assert!(holder.is_some_and(|holder| holder != 2), "{holder:?}");
    let holder = usize::from(holder.unwrap_or(2) - 1);
    assert!(cluster.nodes[holder].leases.contains_key("fs-data"));
    let (_, sealed) = lease_block(&cluster);
    assert_eq!(usize::from(sealed.record.0.owner), holder + 1);
}

/// Issue 7: the two-node survivor of a crashed quorum owner that held a group. It must win the
/// quorum from the dead owner at the cost of about one lease expiry from the owner's last
/// renewal (it watched the record, so the expiry runs while the silence is being detected),
/// not by giving up its regroup and forming anew (which took ~9 s on real nodes). The
/// timeline prints with `--nocapture`; `wolfpack simulate --seeds A..B --failover-timeline`
/// shows more seeds.
#[test]
fn the_survivor_of_two_wins_the_quorum_from_a_dead_owner_in_about_one_lease_expiry() {
    use wolfpack::core::disk_records::Timing;
    use wolfpack::core::timeout::Timeouts;
    use wolfpack::sim::timeline::quorum_owner_crash;
    let timeouts = Timeouts::new(&Timing::default());
    // The window that confirms a claim (ARBITRATION.md §4).
    let confirm_ticks = 24;
    let (mut timelines, mut watched) = (0, 0);
    for seed in 1..=12 {
        let Some(timeline) = quorum_owner_crash(seed) else {
            continue;
        };
        timelines += 1;
        print!("{}", timeline.render());
        let required = [
            timeline.silence_detected,
            timeline.regroup_started,
            timeline.claim_issued,
            timeline.quorum_won,
            timeline.stabilized_alone,
            timeline.victim_confirmed_stopped,
            timeline.group_online,
        ];
        assert!(required.iter().all(Option::is_some), "{timeline:?}");
        let ticks: Vec<u64> = required.iter().flatten().copied().collect();
        assert!(
            ticks.windows(2).all(|pair| pair[0] <= pair[1]),
            "{timeline:?}"
        );
        // Detection: the silence window, give or take a heartbeat and the network delay.
        assert!(ticks[0] <= timeouts.peer_silence_ticks + 10, "{timeline:?}");
        let io = timeline.disk_latency_ticks_max;
        let (claim_issued, quorum_won, stabilized) = (ticks[2], ticks[3], ticks[4]);
        match timeline.challenge_issued {
            None => {
                // Watched: a lease expiry after the read that first showed the owner's last
                // renewal (at most a renew interval and a read after it landed), then the
                // window that confirms the claim, and the epoch with it: stabilizing takes a
                // slot write, no window of its own.
                watched += 1;
                let bound = timeouts.lease_expiry_observed_ticks
                    + timeouts.lease_renew_interval_ticks
                    + confirm_ticks
                    + 4 * io
                    + 2;
                assert!(quorum_won <= bound, "{timeline:?}: won after {quorum_won}");
                assert!(stabilized <= quorum_won + 2 * io + 2, "{timeline:?}");
            }
            Some(challenge_issued) => {
                // The record the survivor watched named no owner it could claim over (the
                // crash tore the owner's last renewal): a challenge, sent at once, claims one
                // lease expiry after it landed; then the epoch's own confirmation window.
                assert!(challenge_issued <= ticks[0] + 2 * io + 2, "{timeline:?}");
                let challenge_ticks = claim_issued - challenge_issued;
                assert!(
                    challenge_ticks <= timeouts.lease_expiry_observed_ticks + 3 * io + 2,
                    "{timeline:?}"
                );
                assert!(
                    stabilized <= quorum_won + confirm_ticks + 4 * io + 2,
                    "{timeline:?}"
                );
            }
        }
    }
    assert!(timelines >= 8, "most seeds give a quiet two-node cluster");
    assert!(
        watched * 2 > timelines,
        "most survivors claim from their watch"
    );
}

/// A membership of one lives by its quorum ownership: when another run's claim lands on the
/// record (the ownership is lost), it leaves at once, stopping its groups; staying on, it kept
/// challenging the new owner, whose form could then never confirm its epoch (simulator seed
/// 123741). The mutation `membership-outlives-quorum` stays on.
#[test]
fn a_membership_of_one_that_loses_the_quorum_leaves() {
    use wolfpack::core::disk_records::{Lease, QuorumLease, QUORUM_LEASE_NAME};
    for mutation in [Mutation::None, Mutation::MembershipOutlivesQuorum] {
        let mut cluster = converged_cluster_breaking(2, 1, mutation);
        cluster.crash(2);
        let alone = |cluster: &Cluster| {
            cluster.nodes[0]
                .core()
                .map(|node| node.status())
                .is_some_and(|status| {
                    status.stabilized && status.members == 0b1 && status.quorum_owner
                })
        };
        for _ in 0..3000 {
            cluster.run_tick();
            if alone(&cluster) {
                break;
            }
        }
        assert!(alone(&cluster), "node 1 stabilized alone with the quorum");
        let epoch = cluster.nodes[0].core().map_or(0, |node| node.epoch());
        // Another run of node 2 claims the record (as a challenger that won would).
        let offset = cluster.config(1, 1).geometry.quorum_offset();
        let sequence = match decode::<QuorumLease>(&cluster.disk.read(offset)[..]) {
            Ok(Some(sealed)) => sealed.sequence,
            _ => 0,
        };
        let claim = Sealed {
            cluster_id: 0x5741_4C46,
            sequence: sequence + 1,
            record: QuorumLease(Lease {
                owner: 2,
                owner_incarnation: 99,
                owner_epoch: epoch,
                challenger: 0,
                challenger_incarnation: 0,
                name: QUORUM_LEASE_NAME.to_string(),
            }),
        };
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        encode(&claim, &mut block).expect("a valid record");
        let mut prng = Prng::new(1);
        // Landing again and again: a renewal based on a read from before one landing
        // overwrites it, but node 1's next read sees the claim.
        for _ in 0..300 {
            let op = DiskOp {
                node: 2,
                op: u64::MAX,
                offset_bytes: offset,
                block: Some(block.clone()),
                fails: false,
            };
            cluster.disk.submit(op, cluster.tick, &mut prng);
            cluster.run_tick();
        }
        let stayed = cluster.nodes[0]
            .core()
            .is_some_and(|node| node.status().stabilized);
        let left_for_it = cluster
            .report
            .leaves_by_reason
            .contains_key("quorum ownership lost");
        match mutation {
            Mutation::None => assert!(
                !stayed && left_for_it,
                "node 1 left: {:?} {:?}",
                cluster.report.leaves_by_reason,
                cluster.nodes[0]
                    .core()
                    .map(|node| node.status().quorum_owner)
            ),
            _ => assert!(stayed && !left_for_it, "the mutation stays on"),
        }
    }
}
