//! `ctl events` across real `wolfpack node` processes on loopback: the node asked gathers every
//! configured node's events through the event exchange and merges them in wall-clock order; a
//! node that is down is named, and the answer still comes.
mod common;

use common::{run, Cluster};

/// The answer of `ctl events` (with `extra` flags) on node `id`, if it answered.
fn events(cluster: &Cluster, id: u8, extra: &[&str]) -> Option<String> {
    let socket = cluster.socket(id);
    let mut args = vec!["ctl", "--socket", socket.to_str()?, "events"];
    args.extend_from_slice(extra);
    let output = run(&args);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// (wall time, node) of each event line; the header is left out.
fn wall_and_node(answer: &str) -> Vec<(String, u8)> {
    answer
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let wall = fields.next()?.to_string();
            let node = fields.next()?.strip_prefix("node=")?.parse().ok()?;
            Some((wall, node))
        })
        .collect()
}

fn stabilized_on(answer: &str, node: u8) -> bool {
    let prefix = format!("node={node} ");
    answer
        .lines()
        .any(|line| line.contains(&prefix) && line.contains(" membership - stabilized epoch"))
}

#[test]
fn events_of_every_node_are_merged_in_time_order_and_a_dead_node_is_named() {
    let mut cluster = Cluster::new("events", 3);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);

    // A busy machine may keep a peer from answering within the node's second: ask again.
    let mut merged = String::new();
    cluster.wait_for("ctl events on node 1 to show all three nodes", || {
        merged = events(&cluster, 1, &[]).unwrap_or_default();
        merged
            .lines()
            .next()
            .is_some_and(|header| header.contains("every configured node answered"))
            && (1..=3).all(|id| stabilized_on(&merged, id))
    });
    let header = merged.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("# events merged by wall clock on node 1"),
        "{merged}"
    );
    let lines = wall_and_node(&merged);
    assert_eq!(
        lines.len(),
        merged.lines().count() - 1,
        "every line parses: {merged}"
    );
    let walls: Vec<&String> = lines.iter().map(|(wall, _)| wall).collect();
    assert!(
        walls.windows(2).all(|pair| pair[0] <= pair[1]),
        "merged in wall-clock order:\n{merged}"
    );

    // The same as JSON: a header object, then one object per event.
    let json = events(&cluster, 1, &["--json"]).expect("node 1 answers");
    let mut objects = json.lines().map(|line| {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    });
    let header = objects.next().expect("a header object");
    assert_eq!(header["merged_on"], 1, "{json}");
    let events_json: Vec<serde_json::Value> = objects.collect();
    for id in 1..=3u64 {
        assert!(
            events_json.iter().any(|event| event["node"] == id
                && event["category"] == "membership"
                && event["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("stabilized"))),
            "node {id} in {json}"
        );
    }

    // --local: node 1's events only, no header.
    let local = events(&cluster, 1, &["--local"]).expect("node 1 answers");
    assert!(!local.starts_with('#'), "{local}");
    assert!(
        wall_and_node(&local).iter().all(|(_, node)| *node == 1),
        "{local}"
    );
    assert!(stabilized_on(&local, 1), "{local}");

    cluster.kill(3);
    let mut without = String::new();
    cluster.wait_for(
        "ctl events on node 1 to name node 3 as not answering",
        || {
            without = events(&cluster, 1, &[]).unwrap_or_default();
            without
                .lines()
                .next()
                .is_some_and(|header| header.contains("did not answer: node 3"))
        },
    );
    let nodes: Vec<u8> = wall_and_node(&without).iter().map(|(_, n)| *n).collect();
    assert!(nodes.contains(&1) && nodes.contains(&2), "{without}");
    assert!(!nodes.contains(&3), "{without}");
}

#[test]
fn local_is_a_flag_of_events_only() {
    let output = run(&["ctl", "--socket", "/nonexistent.sock", "status", "--local"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("'--local' is for events only"), "{stderr}");
}
