//! Bad input is dropped and counted, never trusted, never a panic.

use wolfpack::core::disk_records::{Geometry, Timing};
use wolfpack::core::message::{Body, Message};
use wolfpack::core::{Config, Input, Mutation, Node};
use wolfpack::prng::Prng;

fn node(node_id: u8) -> Node {
    let config = Config {
        node_id,
        cluster_id: 7,
        incarnation: 1,
        networks: vec![2, 2, 1],
        timing: Timing::default(),
        geometry: Geometry::for_disk(64 << 20, 0).expect("large enough"),
        mutation: Mutation::None,
        digest_every_update: true,
        builtin_groups: 0,
    };
    let mut node = Node::new(config, 1);
    node.step(Input::Tick { now_ms: 10 });
    while node.poll_output().is_some() {}
    node
}

fn deliver(node: &mut Node, network: u8, message: &Message) {
    node.step(Input::Message {
        network,
        payload: &message.encode(),
    });
    while node.poll_output().is_some() {}
}

#[test]
fn random_and_mangled_datagrams_are_counted_and_change_nothing() {
    let mut node = node(1);
    let before = node.status();
    let mut prng = Prng::new(9);
    let valid = Message {
        from: 2,
        incarnation: 1,
        body: Body::Halt { round: 3 },
    }
    .encode();
    for round in 0..5000u64 {
        let payload: Vec<u8> = if round % 2 == 0 {
            (0..prng.below(80)).map(|_| prng.next_u64() as u8).collect()
        } else {
            let mut mangled = valid.clone();
            let index = prng.below(mangled.len() as u64) as usize;
            mangled[index] ^= 1 + prng.below(255) as u8;
            mangled
        };
        node.step(Input::Message {
            network: prng.below(3) as u8,
            payload: &payload,
        });
        while node.poll_output().is_some() {}
    }
    let after = node.status();
    assert!(after.dropped.undecodable > 0);
    assert_eq!(after.members, before.members);
    assert!(!after.stabilized);
}

#[test]
fn unknown_nodes_wrong_networks_and_stale_incarnations_are_dropped() {
    let mut node = node(1);
    let heartbeat = |from, incarnation| Message {
        from,
        incarnation,
        body: Body::Heartbeat {
            epoch: 1,
            members: 0b11,
            stabilized: true,
            quorum_owner: false,
            holding: 0,
            refusing: 0,
        },
    };
    deliver(&mut node, 0, &heartbeat(9, 1)); // not configured
    deliver(&mut node, 0, &heartbeat(1, 1)); // ourselves
    deliver(&mut node, 1, &heartbeat(3, 1)); // node 3 has one network only
    assert_eq!(node.status().dropped.unknown_node, 3);
    deliver(&mut node, 0, &heartbeat(2, 5));
    deliver(&mut node, 0, &heartbeat(2, 4)); // an older incarnation than already heard
    assert_eq!(node.status().dropped.stale, 1);
}

#[test]
fn protocol_messages_out_of_sequence_are_dropped() {
    let mut node = node(1);
    // A Stabilize and an InstallAck with no install or round: impossible sequences.
    deliver(
        &mut node,
        0,
        &Message {
            from: 2,
            incarnation: 1,
            body: Body::Stabilize { round: 4, epoch: 9 },
        },
    );
    deliver(
        &mut node,
        0,
        &Message {
            from: 2,
            incarnation: 1,
            body: Body::InstallAck { round: 4, epoch: 9 },
        },
    );
    let status = node.status();
    assert_eq!(status.dropped.stale, 2);
    assert!(!status.stabilized);
}

/// One message of every kind, with small, plausible numbers.
fn every_kind_of_message() -> Vec<Message> {
    use wolfpack::core::gum::wire::{GumMessage, SyncReply};
    use wolfpack::core::gum::{Committed, Entry};
    use wolfpack::core::message::{GroupAssignment, Install, RegroupStatus};
    let status = RegroupStatus {
        round: 1,
        epoch: 2,
        members: 0b11,
        acked_epoch: 2,
        acked_members: 0b11,
        heard: 0b11,
        joiners: 0,
        online_groups: 1,
        refusing: 0,
        quorum_owner: true,
    };
    let install = Install {
        round: 1,
        epoch: 3,
        members: 0b11,
        previous_members: 0b11,
        quorum_holder: 2,
        judged_epoch: 2,
        judged_views: vec![0b11],
        groups: vec![GroupAssignment {
            owner: 2,
            unconfirmed: 0,
        }],
    };
    let committed = Committed {
        sequence: 1,
        position: 1,
        entry: Entry {
            origin: 2,
            incarnation: 1,
            request_id: 1,
            body: vec![1, 2, 3],
        },
    };
    let bodies = vec![
        Body::Heartbeat {
            epoch: 2,
            members: 0b11,
            stabilized: true,
            quorum_owner: true,
            holding: 1,
            refusing: 0,
        },
        Body::JoinRequest,
        Body::RegroupStatus(status),
        Body::Install(install),
        Body::InstallAck { round: 1, epoch: 3 },
        Body::Stabilize { round: 1, epoch: 3 },
        Body::Halt { round: 1 },
        Body::Leaving { epoch: 2 },
        Body::Gum(GumMessage::Propose {
            epoch: 2,
            request_id: 1,
            body: vec![1],
        }),
        Body::Gum(GumMessage::Commit {
            epoch: 2,
            committed,
        }),
        Body::Gum(GumMessage::Applied {
            epoch: 2,
            applied: 1,
            valid: true,
        }),
        Body::Gum(GumMessage::Ack {
            epoch: 2,
            incarnation: 1,
            request_id: 1,
            sequence: 1,
            rejected: false,
        }),
        Body::Gum(GumMessage::Sync { epoch: 2 }),
        Body::Gum(GumMessage::SyncReply {
            epoch: 2,
            reply: SyncReply {
                applied: 1,
                valid: true,
                unresolved: 0,
                last_locker: 2,
            },
        }),
        Body::Gum(GumMessage::SnapshotChunk {
            epoch: 2,
            sequence: 1,
            position: 1,
            total: 8,
            offset: 0,
            bytes: vec![7; 8],
        }),
    ];
    bodies
        .into_iter()
        .map(|body| Message {
            from: 2,
            incarnation: 1,
            body,
        })
        .collect()
}

/// Issue 16, findings 1 and 4: a `RegroupStatus` with epoch 2^64-2 made the next proposal's
/// `epoch + 1` overflow (an abort in release, on every node that heard it). Every message
/// kind, with every 8-byte field window and every byte set to the edges of its range, is either
/// refused at decode or handled, and the node goes on ticking: never a panic.
#[test]
fn every_field_at_its_edges_is_refused_or_survived() {
    let edges_u64 = [
        0u64,
        1,
        u64::MAX - 1,
        u64::MAX,
        wolfpack::core::disk_records::COUNTER_MAX,
    ];
    let edges_u8 = [0u8, 1, 64, 65, 254, 255];
    for message in every_kind_of_message() {
        let valid = message.encode();
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for offset in 0..valid.len() {
            for value in edges_u8 {
                let mut bytes = valid.clone();
                bytes[offset] = value;
                variants.push(bytes);
            }
            if offset + 8 <= valid.len() {
                for value in edges_u64 {
                    let mut bytes = valid.clone();
                    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
                    variants.push(bytes);
                }
            }
        }
        for bytes in variants {
            let mut node = node(1);
            // Hear node 2 first so the hostile message lands in a live exchange.
            deliver(&mut node, 0, &every_kind_of_message()[0]);
            node.step(Input::Message {
                network: 0,
                payload: &bytes,
            });
            for tick in 1..=40u64 {
                while node.poll_output().is_some() {}
                node.step(Input::Tick {
                    now_ms: 10 + tick * 50,
                });
            }
            while node.poll_output().is_some() {}
        }
    }
}

/// A converged simulated cluster of three, quiet: no loss, no faults of its own.
fn quiet_cluster() -> wolfpack::sim::cluster::Cluster {
    use wolfpack::sim::{cluster::Cluster, Params};
    let mut params = Params::from_seed(16, Some(3), Mutation::None);
    params.networks = vec![1; 3];
    params.network.loss_per_mille = 0;
    params.network.duplicate_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    let mut cluster = Cluster::new(params, &mut Prng::new(16));
    for id in 1..=3 {
        if cluster.nodes[usize::from(id - 1)].host.is_none() {
            cluster.boot(id);
        }
    }
    for _ in 0..3000 {
        cluster.run_tick();
        if cluster.converged() {
            return cluster;
        }
    }
    panic!("no convergence: {:?}", cluster.checker.violations);
}

use wolfpack::core::message::MESSAGE_HEADER_BYTES;

/// Issue 16, finding 1: two forged `RegroupStatus` datagrams with epoch 2^64-2 aborted every
/// node at its next proposal (`next_epoch() + 1`). Here every message kind from node 2, with
/// each 8-byte window set to 2^64-2 and 2^64-1 and each byte to 65 and 255, reaches nodes 1 and 3 of a live cluster; then
/// node 2 crashes, so the survivors regroup and propose: nobody may panic.
#[test]
fn numbers_at_the_top_of_their_range_stop_no_node_of_a_live_cluster() {
    use wolfpack::sim::workload::FaultKind;
    for mut message in every_kind_of_message() {
        let mut cluster = quiet_cluster();
        message.incarnation = cluster.nodes[1].incarnation;
        let valid = message.encode();
        // The header's sender and incarnation are the wire's and the first test's business; a
        // forged incarnation would make node 2's real frames stale and hide the rest.
        for offset in MESSAGE_HEADER_BYTES..valid.len().saturating_sub(7) {
            let mut variants = Vec::new();
            for value in [u64::MAX - 1, u64::MAX] {
                let mut bytes = valid.clone();
                bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
                variants.push(bytes);
            }
            // A byte past the node ids (65) or at the top (255): node ids, bit indexes, counts.
            for value in [65u8, 255] {
                let mut bytes = valid.clone();
                bytes[offset] = value;
                variants.push(bytes);
            }
            for bytes in variants {
                for to in [1, 3] {
                    cluster.step(
                        to,
                        Input::Message {
                            network: 0,
                            payload: &bytes,
                        },
                    );
                }
            }
            cluster.run_tick();
        }
        cluster.apply_fault(&FaultKind::Crash { node: 2 }, true);
        for _ in 0..600 {
            cluster.run_tick();
        }
        assert!(cluster.nodes[0].host.is_some() && cluster.nodes[2].host.is_some());
    }
}

/// Issue 16, finding 10: two nodes whose disks were formatted apart each formed alone and each
/// owned "the" quorum record of its own disk. A node told that a configured node is alive in
/// another cluster (`Input::PeerConflict`, from the daemon's conflict watch) does not form
/// while that lasts, and forms once a form wait passed without it.
#[test]
fn a_node_alive_in_another_cluster_holds_forming_back_while_it_lasts() {
    use wolfpack::core::timeout::TICK_MS;
    use wolfpack::sim::{cluster::Cluster, workload::FaultKind, Params};
    let mut params = Params::from_seed(10, Some(2), Mutation::None);
    params.networks = vec![1; 2];
    params.network.loss_per_mille = 0;
    params.disk.error_per_mille = 0;
    params.garbage_per_mille = 0;
    params.ticks_faulty = 0;
    let mut cluster = Cluster::new(params, &mut Prng::new(10));
    if cluster.nodes[0].host.is_none() {
        cluster.boot(1);
    }
    if cluster.nodes[1].host.is_some() {
        cluster.apply_fault(&FaultKind::Crash { node: 2 }, true);
    }
    let stabilized = |cluster: &Cluster| {
        cluster.nodes[0]
            .core()
            .is_some_and(|core| core.status().stabilized)
    };
    // Ten seconds of a conflicting node 2: forming alone takes about two, and never happens.
    for _ in 0..10_000 / TICK_MS {
        cluster.step(1, Input::PeerConflict { node: 2 });
        cluster.run_tick();
        assert!(
            !stabilized(&cluster),
            "formed alone beside a node of another cluster"
        );
    }
    // Node 2 is fixed or stopped: node 1 forms on its own.
    let mut formed = false;
    for _ in 0..10_000 / TICK_MS {
        cluster.run_tick();
        if stabilized(&cluster) {
            formed = true;
            break;
        }
    }
    assert!(formed, "never formed once the conflict ended");
    assert!(
        cluster.checker.violations.is_empty(),
        "{:?}",
        cluster.checker.violations
    );
}

/// Issue 16, finding 4: a `SyncReply` naming a last locker above 64 reached `bit()`'s assert in
/// the takeover (an abort). Node ids are range-checked where they are decoded: 0 (none) and
/// 1..=64 decode, 65 and above are refused, so no takeover ever sees one.
#[test]
fn a_sync_reply_naming_a_node_past_the_table_is_refused_at_decode() {
    use wolfpack::core::gum::wire::{GumMessage, SyncReply};
    use wolfpack::core::message::MessageError;
    let reply = |last_locker| Message {
        from: 2,
        incarnation: 1,
        body: Body::Gum(GumMessage::SyncReply {
            epoch: 2,
            reply: SyncReply {
                applied: 1,
                valid: true,
                unresolved: 0,
                last_locker,
            },
        }),
    };
    for last_locker in [0, 1, 64] {
        assert!(
            Message::decode(&reply(last_locker).encode()).is_ok(),
            "{last_locker}"
        );
    }
    for last_locker in [65, 128, 255] {
        assert_eq!(
            Message::decode(&reply(last_locker).encode()),
            Err(MessageError::OutOfRange),
            "{last_locker}"
        );
    }
}
