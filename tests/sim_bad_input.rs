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
