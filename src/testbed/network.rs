//! Building a run's namespaces, bridges and veths (the layout is in `mod.rs`), and the
//! nftables tables each node namespace gets for network faults (partitions, loss, duplication).
use super::host::{ip_in, nft_in, run};
use super::names::RunNames;
use super::{host_address, CLIENT_HOST, CLUSTER_PORT};

/// The nftables table of every node namespace: partitions and message loss add `drop` rules to
/// its input chain (dropping on the receiver, so the sender's `sendto` still succeeds as it
/// would on a real network), healing flushes the chain.
pub const FAULT_TABLE: &str = "inet wp_fault";
/// The table for duplicated datagrams: `dup to` exists only in the `ip` family. Rules in its
/// output chain send a copy of a node's cluster datagram to the same peer (the kernel marks
/// the copy, so it is not copied again).
pub const DUP_TABLE: &str = "ip wp_dup";

/// Creates a namespace with loopback up; records it in `created` before configuring it, so a
/// failure half-way is still torn down.
pub fn add_namespace(name: &str, created: &mut Vec<String>) -> Result<(), String> {
    run("ip", &["netns", "add", name])?;
    created.push(name.to_string());
    ip_in(name, &["link", "set", "lo", "up"])?;
    Ok(())
}

/// The switch namespace with one bridge per network.
pub fn build_switch(
    names: &RunNames,
    networks: u8,
    created: &mut Vec<String>,
) -> Result<(), String> {
    let switch = names.switch_namespace();
    add_namespace(&switch, created)?;
    for network in 0..networks {
        let bridge = names.bridge(network);
        ip_in(&switch, &["link", "add", &bridge, "type", "bridge"])?;
        ip_in(&switch, &["link", "set", &bridge, "up"])?;
    }
    Ok(())
}

/// A veth between `namespace` (end `inside`, with `address`/24) and the switch's bridge of
/// `network` (end `port`).
fn plug(
    names: &RunNames,
    namespace: &str,
    inside: &str,
    port: &str,
    network: u8,
    address: &str,
) -> Result<(), String> {
    let switch = names.switch_namespace();
    run(
        "ip",
        &[
            "link", "add", inside, "netns", namespace, "type", "veth", "peer", "name", port,
            "netns", &switch,
        ],
    )?;
    ip_in(
        namespace,
        &["addr", "add", &format!("{address}/24"), "dev", inside],
    )?;
    ip_in(namespace, &["link", "set", inside, "up"])?;
    ip_in(
        &switch,
        &["link", "set", port, "master", &names.bridge(network)],
    )?;
    ip_in(&switch, &["link", "set", port, "up"])?;
    Ok(())
}

/// Node `node`'s namespace, one interface per network, and its fault table.
pub fn build_node(
    names: &RunNames,
    node: u8,
    networks: u8,
    created: &mut Vec<String>,
) -> Result<(), String> {
    let namespace = names.node_namespace(node);
    add_namespace(&namespace, created)?;
    for network in 0..networks {
        plug(
            names,
            &namespace,
            &names.node_interface(node, network),
            &names.switch_port(node, network),
            network,
            &host_address(network, node),
        )?;
    }
    nft_in(
        &namespace,
        &format!(
            "table {FAULT_TABLE} {{\n  chain input {{ type filter hook input priority 0; policy accept; }}\n}}\n\
             table {DUP_TABLE} {{\n  chain output {{ type filter hook output priority 0; policy accept; }}\n}}\n"
        ),
    )
}

/// The client: 198.18.0.200 reaches service addresses the way a user would (ARP on the
/// segment); 198.18.0.(200+N) is routed through node N only (policy routing), so a probe from
/// it is answered only if node N itself holds the address. That is how the client asks every
/// node at once whether it serves a group (see `probe.rs`).
pub fn build_client(names: &RunNames, nodes: u8, created: &mut Vec<String>) -> Result<(), String> {
    let namespace = names.client_namespace();
    add_namespace(&namespace, created)?;
    let interface = names.client_interface();
    plug(
        names,
        &namespace,
        &interface,
        &names.client_switch_port(),
        0,
        &host_address(0, CLIENT_HOST),
    )?;
    ip_in(
        &namespace,
        &["route", "add", "198.18.10.0/24", "dev", &interface],
    )?;
    for node in 1..=nodes {
        let source = host_address(0, CLIENT_HOST + node);
        let table = (100 + u32::from(node)).to_string();
        ip_in(
            &namespace,
            &["addr", "add", &format!("{source}/24"), "dev", &interface],
        )?;
        ip_in(
            &namespace,
            &["rule", "add", "from", &source, "table", &table],
        )?;
        ip_in(
            &namespace,
            &[
                "route",
                "add",
                "198.18.10.0/24",
                "via",
                &host_address(0, node),
                "dev",
                &interface,
                "table",
                &table,
            ],
        )?;
    }
    Ok(())
}

/// Drops, inside `receiver`'s namespace, every packet from `sender`'s node addresses.
pub fn drop_from(names: &RunNames, receiver: u8, sender: u8, networks: u8) -> Result<(), String> {
    let addresses: Vec<String> = (0..networks)
        .map(|network| host_address(network, sender))
        .collect();
    nft_in(
        &names.node_namespace(receiver),
        &format!(
            "add rule {FAULT_TABLE} input ip saddr {{ {} }} drop\n",
            addresses.join(", ")
        ),
    )
}

/// Every address of every node but `node` (its peers), on every network.
fn peer_addresses(node: u8, nodes: u8, networks: u8) -> Vec<String> {
    (1..=nodes)
        .filter(|&peer| peer != node)
        .flat_map(|peer| (0..networks).map(move |network| host_address(network, peer)))
        .collect()
}

/// Drops, inside `receiver`'s namespace, `percent` % of the cluster datagrams (UDP to the
/// cluster port) from the other nodes, each datagram drawn on its own (`numgen random`).
/// Client traffic is never dropped.
pub fn lose_from_peers(
    names: &RunNames,
    receiver: u8,
    nodes: u8,
    networks: u8,
    percent: u64,
) -> Result<(), String> {
    nft_in(
        &names.node_namespace(receiver),
        &format!(
            "add rule {FAULT_TABLE} input ip saddr {{ {} }} udp dport {CLUSTER_PORT} numgen random mod 100 < {percent} drop\n",
            peer_addresses(receiver, nodes, networks).join(", ")
        ),
    )
}

/// Sends, from `sender`'s namespace, `percent` % of its cluster datagrams to each peer twice.
pub fn duplicate_to_peers(
    names: &RunNames,
    sender: u8,
    nodes: u8,
    networks: u8,
    percent: u64,
) -> Result<(), String> {
    let rules: String = peer_addresses(sender, nodes, networks)
        .iter()
        .map(|peer| {
            format!(
                "add rule {DUP_TABLE} output ip daddr {peer} udp dport {CLUSTER_PORT} numgen random mod 100 < {percent} dup to {peer}\n"
            )
        })
        .collect();
    nft_in(&names.node_namespace(sender), &rules)
}

/// Removes every network fault rule of `node` (partitions, loss, duplication).
pub fn heal_filters(names: &RunNames, node: u8) -> Result<(), String> {
    nft_in(
        &names.node_namespace(node),
        &format!("flush chain {FAULT_TABLE} input\nflush chain {DUP_TABLE} output\n"),
    )
}
