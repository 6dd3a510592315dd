//! What a node says about itself (`ctl status --json`, asked over its admin socket, which is a
//! file and so reachable from any network namespace).
use crate::admin::client;
use std::path::Path;
use std::time::Duration;

/// The fields of `status --json` the testbed uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub stabilized: bool,
    pub members: Vec<u8>,
    pub groups_online_here: Vec<u8>,
    pub quorum_owner: bool,
}

/// Asks the node behind `socket`; `None` when it does not answer within a second.
pub fn ask(socket: &Path) -> Option<NodeStatus> {
    let mut json = String::new();
    client::request(
        socket,
        &["status", "--json"],
        Some(Duration::from_secs(1)),
        |line| {
            json.push_str(line);
            true
        },
    )
    .ok()?;
    Some(parse(&json))
}

/// Parses the JSON the daemon writes (no serde in the dependency set; the shape is ours).
pub fn parse(json: &str) -> NodeStatus {
    NodeStatus {
        stabilized: json.contains("\"state\":\"stabilized\""),
        members: crate::json::number_array::<u8>(json, "members"),
        groups_online_here: crate::json::number_array::<u8>(json, "groups_online_here"),
        quorum_owner: json.contains("\"quorum_owner\":true"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_daemons_status() {
        let json = r#"{"node_id":1,"state":"stabilized","members":[1,2],"quorum_owner":true,"groups_online_here":[1],"links":[]}"#;
        assert_eq!(
            parse(json),
            NodeStatus {
                stabilized: true,
                members: vec![1, 2],
                groups_online_here: vec![1],
                quorum_owner: true
            }
        );
        assert_eq!(parse("{}"), NodeStatus::default());
    }
}
