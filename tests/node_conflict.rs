//! Issue 16, finding 10: the appliance mistakes that leave two halves of a cluster deaf to each
//! other on a healthy network (a disk formatted apart, a node with another key). Before, each
//! half formed alone and owned "the" quorum record of its own disk, silently. Now each node
//! logs the conflict, `ctl status` shows it, and the node that is not yet a member stays out.
mod common;

use common::Cluster;
use std::time::{Duration, Instant};

/// How long the late node must stay out: forming alone takes a few lease expiries (1 s each)
/// at the default timing, so it would have formed well within this.
const STAYS_OUT: Duration = Duration::from_secs(6);

/// `wolfpack disk format` of a second disk with the same node table as `cluster`'s: a disk
/// formatted apart, as a wrong `--disk` on one node gives.
fn format_apart(cluster: &Cluster) -> std::path::PathBuf {
    let dump = common::run(&[
        "disk",
        "dump",
        cluster.disk.to_str().expect("utf-8"),
        "--json",
    ]);
    let dump: serde_json::Value = serde_json::from_slice(&dump.stdout).expect("dump JSON");
    let mut args: Vec<String> = vec![
        "disk".into(),
        "format".into(),
        cluster.path("apart.img").to_str().expect("utf-8").into(),
        "--cluster-name".into(),
        "apart".into(),
        "--size".into(),
        "16M".into(),
    ];
    for block in dump["blocks"].as_array().expect("blocks") {
        if block["region"] != "node-table" || block["status"] != "valid" {
            continue;
        }
        let fields = &block["fields"];
        let addresses: Vec<&str> = fields["addresses"]
            .as_array()
            .expect("addresses")
            .iter()
            .filter_map(|address| address.as_str())
            .collect();
        args.push("--node".into());
        args.push(format!(
            "{}={}@{}",
            fields["node_id"],
            fields["name"].as_str().expect("name"),
            addresses.join(",")
        ));
    }
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = common::run(&words);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster.path("apart.img")
}

fn conflicts(cluster: &Cluster, id: u8) -> Vec<String> {
    cluster
        .status(id)
        .and_then(|status| {
            status["conflicts"].as_array().map(|lines| {
                lines
                    .iter()
                    .filter_map(|line| line.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Node 1 runs a cluster of one; node 2 starts on the other disk (or with the other key).
/// Both see the conflict, node 2 never forms, and node 1 keeps its membership.
fn late_node_stays_out(cluster: &mut Cluster, what: &str) {
    cluster.wait_for(&format!("node 2 sees node 1 ({what})"), || {
        conflicts(cluster, 2)
            .iter()
            .any(|line| line.contains("node 1"))
    });
    cluster.wait_for(&format!("node 1 sees node 2 ({what})"), || {
        conflicts(cluster, 1)
            .iter()
            .any(|line| line.contains("node 2"))
    });
    let text = cluster.ctl_ok(2, &["status"]);
    assert!(text.contains("CONFLICT: "), "{text}");
    let until = Instant::now() + STAYS_OUT;
    while Instant::now() < until {
        let state = cluster.status(2).map(|status| status["state"].to_string());
        assert_eq!(
            state.as_deref(),
            Some("\"not a member\""),
            "node 2 formed beside node 1 ({what}); {}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        cluster.members(1),
        Some(vec![1]),
        "node 1 keeps its membership"
    );
    let log = std::fs::read_to_string(cluster.log(2)).unwrap_or_default();
    assert!(log.contains("will not form a cluster alone"), "{log}");
}

#[test]
fn a_node_on_a_disk_formatted_apart_does_not_form_beside_the_cluster() {
    let mut cluster = Cluster::new("apart", 2);
    let apart = format_apart(&cluster);
    cluster.start(1);
    cluster.wait_membership(&[1]);
    let disk = std::mem::replace(&mut cluster.disk, apart);
    cluster.start(2);
    cluster.disk = disk;
    late_node_stays_out(&mut cluster, "another cluster id");
    let text = cluster.ctl_ok(1, &["status"]);
    assert!(text.contains("formatted apart"), "{text}");
}

#[test]
fn a_node_with_another_key_does_not_form_beside_the_cluster() {
    let mut cluster = Cluster::new("otherkey", 2);
    let other_key = cluster.path("other.key");
    let output = common::run(&["keygen", other_key.to_str().expect("utf-8")]);
    assert!(output.status.success());
    cluster.start(1);
    cluster.wait_membership(&[1]);
    let key = std::mem::replace(&mut cluster.key, other_key);
    cluster.start(2);
    cluster.key = key;
    late_node_stays_out(&mut cluster, "another key");
    let text = cluster.ctl_ok(1, &["status"]);
    assert!(text.contains("another key"), "{text}");
}
