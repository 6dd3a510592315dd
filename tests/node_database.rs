//! The cluster database on real `wolfpack node` processes (loopback, one shared disk file): an
//! update made through one node is read on every other, survives the death of the locker, and
//! survives a restart of the whole cluster (re-formed from the log on the shared disk).
mod common;

use common::{run, Cluster};

fn ctl(cluster: &Cluster, id: u8, words: &[&str]) -> (bool, String) {
    let socket = cluster.socket(id);
    let mut args = vec!["ctl", "--socket", socket.to_str().expect("utf-8 path")];
    args.extend_from_slice(words);
    let output = run(&args);
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The value of `path` as node `id` reads it, if present.
fn read(cluster: &Cluster, id: u8, path: &str) -> Option<String> {
    let (ok, text) = ctl(cluster, id, &["get", path, "--json"]);
    if !ok {
        return None;
    }
    let body: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    body["entries"]
        .as_array()?
        .iter()
        .find(|entry| entry["path"] == path)
        .and_then(|entry| entry["value"].as_str().map(str::to_string))
}

/// Retries until the update is acknowledged (a regroup may be under way).
fn update(cluster: &Cluster, id: u8, path: &str, value: &str) {
    cluster.wait_for(&format!("update {path}={value} through node {id}"), || {
        let (ok, text) = ctl(cluster, id, &["update", path, value]);
        ok && text.contains("committed at sequence")
    });
}

#[test]
fn updates_replicate_survive_the_locker_and_a_whole_cluster_restart() {
    let mut cluster = Cluster::new("gum", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    // The time service: every peer's clock skew is reported (one host here: about zero).
    cluster.wait_for("clock skew of both peers in node 1's status", || {
        cluster.status(1).is_some_and(|status| {
            status["clock_skew"].as_array().is_some_and(|skews| {
                skews.len() == 2
                    && skews
                        .iter()
                        .all(|skew| skew["skew_ms"].as_i64().is_some_and(|ms| ms.abs() < 100))
            })
        })
    });
    update(&cluster, 3, "properties/site/owner", "ops");
    cluster.wait_for("the update read on every node", || {
        (1..=3).all(|id| read(&cluster, id, "properties/site/owner").as_deref() == Some("ops"))
    });

    // Bad input is refused with a clear error and changes nothing.
    let (ok, text) = ctl(&cluster, 2, &["update", "nowhere/x", "1"]);
    assert!(!ok && text.contains("bad path"), "{text}");
    let (ok, text) = ctl(
        &cluster,
        2,
        &["update", "properties/n", "x", "--type", "u64"],
    );
    assert!(!ok && text.contains("--type u64"), "{text}");
    let (ok, text) = ctl(
        &cluster,
        2,
        &["update", "properties/n", "7", "--type", "u64"],
    );
    assert!(ok && text.contains("committed"), "{text}");
    let (ok, text) = ctl(&cluster, 1, &["delete", "properties/n"]);
    assert!(ok && text.contains("committed"), "{text}");

    // The locker is the lowest member: kill it; the survivors take over and go on.
    cluster.kill(1);
    cluster.wait_membership(&[2, 3]);
    update(&cluster, 2, "properties/site/owner", "night-shift");
    cluster.wait_for("the second update on both survivors", || {
        (2..=3)
            .all(|id| read(&cluster, id, "properties/site/owner").as_deref() == Some("night-shift"))
    });

    // A partition in time: every node stops, the cluster re-forms from the disk log.
    for id in 2..=3 {
        cluster.signal(id, libc::SIGTERM);
    }
    for id in 2..=3 {
        assert_eq!(cluster.wait_exit(id), Some(0), "{}", cluster.logs());
    }
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_for("the acknowledged update after the restart", || {
        (1..=3)
            .all(|id| read(&cluster, id, "properties/site/owner").as_deref() == Some("night-shift"))
    });
    cluster.assert_no_overlap();
}

#[test]
fn concurrent_updates_from_every_node_with_kills_lose_nothing_acknowledged() {
    let mut cluster = Cluster::new("gumload", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    let sockets: Vec<_> = (1..=3).map(|id| cluster.socket(id)).collect();
    let writers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, socket)| {
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for serial in 0..40 {
                    let path = format!("properties/load/n{}/k{serial}", index + 1);
                    let value = format!("v{serial}");
                    let output = run(&[
                        "ctl",
                        "--socket",
                        socket.to_str().expect("utf-8 path"),
                        "update",
                        &path,
                        &value,
                    ]);
                    if output.status.success()
                        && String::from_utf8_lossy(&output.stdout).contains("committed")
                    {
                        acknowledged.push((path, value));
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Kill the locker (node 1) while the writers run, then bring it back.
    std::thread::sleep(std::time::Duration::from_millis(300));
    cluster.kill(1);
    cluster.wait_membership(&[2, 3]);
    cluster.start(1);
    let acknowledged: Vec<(String, String)> = writers
        .into_iter()
        .flat_map(|writer| writer.join().expect("a writer thread"))
        .collect();
    assert!(
        acknowledged.len() >= 40,
        "the survivors kept committing: {} acknowledged",
        acknowledged.len()
    );
    cluster.wait_membership(&[1, 2, 3]);
    cluster.wait_for("every acknowledged update on every node", || {
        (1..=3).all(|id| {
            acknowledged
                .iter()
                .all(|(path, value)| read(&cluster, id, path).as_deref() == Some(value.as_str()))
        })
    });
    cluster.assert_no_overlap();
}
