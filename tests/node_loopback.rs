//! Real `wolfpack node` processes on loopback sharing one disk file: form, join, kill -9,
//! SIGSTOP, graceful leave, restart of the whole cluster. Every test checks from the monitors'
//! event log that no group was online on two nodes at the same CLOCK_MONOTONIC instant.
mod common;

use common::{check_no_overlap, run, Cluster};

#[test]
fn the_overlap_checker_has_teeth() {
    let clean =
        "10 node=1 resource=g online\n20 node=1 resource=g offline\n25 node=2 resource=g online\n";
    assert_eq!(check_no_overlap(clean), Ok(2));
    let overlap =
        "10 node=1 resource=g online\n20 node=2 resource=g online\n30 node=1 resource=g offline\n";
    assert!(check_no_overlap(overlap).is_err());
    let never_stopped = "10 node=1 resource=g online\n99 node=2 resource=g online\n";
    assert!(check_no_overlap(never_stopped).is_err());
    assert!(check_no_overlap("garbage\n").is_err());
}

#[test]
fn three_nodes_form_and_a_killed_owner_fails_over() {
    let mut cluster = Cluster::new("kill", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_groups_placed(&[1, 2, 3]);
    let owner = (1..=3)
        .find(|&id| !cluster.groups_online(id).is_empty())
        .expect("someone holds groups");
    cluster.kill(owner);
    let survivors: Vec<u8> = (1..=3).filter(|&id| id != owner).collect();
    cluster.wait_membership(&survivors);
    cluster.wait_groups_placed(&survivors);
    cluster.assert_no_overlap();
}

#[test]
fn a_fourth_node_joins_and_the_quorum_owner_can_die() {
    let mut cluster = Cluster::new("join", 4);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.start(4);
    cluster.wait_membership(&[1, 2, 3, 4]);
    cluster.wait_groups_placed(&[1, 2, 3, 4]);
    let quorum_owner = (1..=4)
        .find(|&id| {
            cluster
                .status(id)
                .is_some_and(|status| status["quorum_owner"] == true)
        })
        .expect("a quorum owner");
    cluster.kill(quorum_owner);
    let survivors: Vec<u8> = (1..=4).filter(|&id| id != quorum_owner).collect();
    cluster.wait_membership(&survivors);
    cluster.wait_groups_placed(&survivors);
    cluster.assert_no_overlap();
}

/// A paused daemon stops renewing; its monitor's dead-man switch must stop its resources before
/// the survivors, who wait for its lease to expire on disk, start them.
#[test]
fn a_paused_owner_is_fenced_by_its_monitor_before_failover() {
    let mut cluster = Cluster::new("pause", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_groups_placed(&[1, 2, 3]);
    let owner = (1..=3)
        .find(|&id| !cluster.groups_online(id).is_empty())
        .expect("someone holds groups");
    cluster.signal(owner, libc::SIGSTOP);
    let survivors: Vec<u8> = (1..=3).filter(|&id| id != owner).collect();
    cluster.wait_membership(&survivors);
    cluster.wait_groups_placed(&survivors);
    cluster.assert_no_overlap();
    cluster.signal(owner, libc::SIGCONT);
    cluster.wait_for("the paused node to rejoin or stop", || {
        cluster
            .members(owner)
            .is_some_and(|members| members.len() == 3)
            || cluster.status(owner).is_none()
    });
    cluster.assert_no_overlap();
}

#[test]
fn a_node_that_leaves_on_sigterm_hands_its_groups_over_without_a_lease_wait() {
    let mut cluster = Cluster::new("goodbye", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_groups_placed(&[1, 2, 3]);
    let owner = (1..=3)
        .find(|&id| !cluster.groups_online(id).is_empty())
        .expect("someone holds groups");
    cluster.signal(owner, libc::SIGTERM);
    assert_eq!(
        cluster.wait_exit(owner),
        Some(0),
        "node {owner} leaves cleanly; {}",
        cluster.logs()
    );
    let survivors: Vec<u8> = (1..=3).filter(|&id| id != owner).collect();
    cluster.wait_membership(&survivors);
    cluster.wait_groups_placed(&survivors);
    // The survivors confirmed it stopped from its slot (it said goodbye), not by a lease expiry.
    let logs = cluster.logs();
    assert!(
        logs.contains(&format!("node {owner} confirmed stopped (not a member;")),
        "{logs}"
    );
    cluster.assert_no_overlap();
}

#[test]
fn sigterm_stops_resources_and_exits_cleanly_then_the_cluster_restarts() {
    let mut cluster = Cluster::new("leave", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_groups_placed(&[1, 2, 3]);
    for id in 1..=3 {
        cluster.signal(id, libc::SIGTERM);
    }
    for id in 1..=3 {
        assert_eq!(
            cluster.wait_exit(id),
            Some(0),
            "node {id} leaves cleanly; {}",
            cluster.logs()
        );
    }
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_groups_placed(&[1, 2, 3]);
    cluster.assert_no_overlap();
}

/// Bad input at start-up: one clear line, non-zero exit, nothing written to the disk.
#[test]
fn a_node_refuses_bad_start_up_input_without_writing_the_disk() {
    let cluster = Cluster::new("refuse", 2);
    let disk_before = std::fs::read(&cluster.disk).expect("disk");
    let base = cluster.node_args(1);
    let with = |flag: &str, value: &str| {
        let mut args = base.clone();
        let at = args
            .iter()
            .position(|arg| arg == flag)
            .expect("flag present");
        args[at + 1] = value.to_string();
        args
    };
    let open_key = cluster.dir.join("open.key");
    std::fs::copy(&cluster.key, &open_key).expect("copy key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let not_a_socket = cluster.dir.join("taken.sock");
    std::fs::write(&not_a_socket, b"").expect("file");
    let foreign = cluster.dir.join("foreign.img");
    std::fs::write(&foreign, vec![7u8; 1 << 20]).expect("foreign");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            with("--key", open_key.to_str().expect("utf-8")),
            "chmod 600",
        ),
        (
            with("--node-id", "9"),
            "node id 9 is not in the disk's node table",
        ),
        (
            with("--admin-socket", not_a_socket.to_str().expect("utf-8")),
            "not a socket",
        ),
        (
            with("--disk", foreign.to_str().expect("utf-8")),
            "not a wolfpack disk",
        ),
        (
            with("--disk", "/nonexistent/disk.img"),
            "/nonexistent/disk.img",
        ),
    ];
    for (args, expected) in cases {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&words);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{expected}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains(expected), "expected {expected:?} in {stderr}");
    }
    // A port in use: hold node 1's UDP address.
    let holder = std::net::UdpSocket::bind(node_address(&cluster, 1)).expect("hold the port");
    let words: Vec<&str> = base.iter().map(String::as_str).collect();
    let output = run(&words);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the port is in use"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(holder);
    assert_eq!(
        std::fs::read(&cluster.disk).expect("disk"),
        disk_before,
        "nothing was written to the disk"
    );
}

fn node_address(cluster: &Cluster, id: u8) -> String {
    let dump = run(&[
        "disk",
        "dump",
        "--json",
        cluster.disk.to_str().expect("utf-8"),
    ]);
    let value: serde_json::Value = serde_json::from_slice(&dump.stdout).expect("json");
    let block = value["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .find(|block| block["region"] == "node-table" && block["fields"]["node_id"] == id)
        .expect("node entry");
    block["fields"]["addresses"][0]
        .as_str()
        .expect("address")
        .to_string()
}
