//! The rules an administrator's edit of the catalog must keep, each refusal naming what is
//! wrong. Pure: the daemon applies them to its replica before it proposes an update (see
//! `edit.rs`), so nothing that breaks them reaches the database through `ctl`.
//!
//! The resource types' parameter rules are the monitor's own (`monitor::resource::
//! check_params`, the part of creating a resource that touches nothing), so the catalog never
//! accepts a resource the monitor would reject for its parameters. What depends on a node
//! (a program on its PATH, a directory, an installed OCF agent) is checked where it runs.

use super::Catalog;
use crate::core::db::{Path, SEGMENT_BYTES_MAX, VALUE_BYTES_MAX};
use crate::core::NODES_MAX;
use crate::monitor::constants::{DEPENDS_MAX, KIND_BYTES_MAX, PARAMS_MAX};
use crate::monitor::protocol::{is_param_key, is_resource_name};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// Failovers (or restarts) per period: 0 (none allowed) up to far more than any real policy.
pub const THRESHOLD_RANGE: RangeInclusive<u32> = 0..=1000;
/// A failover or restart period: one second to 30 days.
pub const PERIOD_S_RANGE: RangeInclusive<u32> = 1..=30 * 24 * 3600;
/// LooksAlive and IsAlive intervals: one second to a day.
pub const CHECK_INTERVAL_S_RANGE: RangeInclusive<u32> = 1..=24 * 3600;
/// An operation's timeout: one second to a day (the monitor counts it in u32 milliseconds).
pub const TIMEOUT_S_RANGE: RangeInclusive<u32> = 1..=24 * 3600;

/// The resource types, for messages.
pub const TYPES: &str = "process, script, ip, filesystem or ocf:PROVIDER:AGENT";

/// A group or resource name: a database path segment (`[a-z0-9._-]`, 1 to 64 bytes) that is
/// also a resource name for the monitor (names become log file names: no leading '.').
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let segment_ok = Path::parse(&format!("groups/{name}")).is_ok_and(|path| path.depth() == 2);
    if segment_ok && is_resource_name(name) {
        return Ok(());
    }
    let why = if name.is_empty() {
        "it is empty".to_string()
    } else if name.len() > crate::core::db::SEGMENT_BYTES_MAX {
        format!(
            "it is {} bytes; at most {} allowed",
            name.len(),
            crate::core::db::SEGMENT_BYTES_MAX
        )
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        format!("{bad:?} is not allowed; names use a-z, 0-9, '.', '_' and '-'")
    } else {
        "it starts with '.'".to_string()
    };
    Err(format!("bad {what} name {name:?}: {why}"))
}

/// Node ids given with `flag` must be in the node table (`configured`, a bitmap).
pub fn check_nodes(flag: &str, ids: &[u8], configured: u64) -> Result<(), String> {
    for &id in ids {
        let known = (1..=NODES_MAX as u8).contains(&id) && configured & crate::core::bit(id) != 0;
        if !known {
            return Err(format!(
                "{flag}: node {id} is not in the node table (configured: {})",
                list_nodes(configured)
            ));
        }
    }
    Ok(())
}

/// "1,2,3" for a bitmap.
pub fn list_nodes(bitmap: u64) -> String {
    let ids: Vec<String> = crate::core::ids(bitmap).map(|id| id.to_string()).collect();
    match ids.is_empty() {
        true => "none".to_string(),
        false => ids.join(","),
    }
}

/// A number given with `flag` within its range.
pub fn check_range(flag: &str, value: u32, range: &RangeInclusive<u32>) -> Result<(), String> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "{flag}: {value} is out of range ({} to {})",
        range.start(),
        range.end()
    ))
}

/// A resource type and its parameters: a known type, parameter keys the monitor accepts (they
/// become environment variable names for OCF agents), each key once, values that fit a
/// database value, and the type's own rules.
pub fn check_type_and_params(
    resource: &str,
    kind: &str,
    params: &[(String, String)],
) -> Result<(), String> {
    let known_kind =
        matches!(kind, "process" | "script" | "ip" | "filesystem") || kind.starts_with("ocf:");
    if !known_kind {
        return Err(format!(
            "resource {resource:?}: unknown type {kind:?} (types: {TYPES})"
        ));
    }
    if kind.len() > KIND_BYTES_MAX {
        return Err(format!(
            "resource {resource:?}: the type {kind:?} is {} bytes; at most {KIND_BYTES_MAX} allowed",
            kind.len()
        ));
    }
    if params.len() > PARAMS_MAX {
        return Err(format!(
            "resource {resource:?}: {} parameters; at most {PARAMS_MAX} allowed",
            params.len()
        ));
    }
    for (index, (key, value)) in params.iter().enumerate() {
        if !is_param_key(key) {
            return Err(format!(
                "resource {resource:?}: bad parameter key {key:?}: keys use A-Z, a-z, 0-9 and \
                 '_', 1 to 64 bytes"
            ));
        }
        let stored = super::param_segment(key);
        if stored.len() > SEGMENT_BYTES_MAX {
            return Err(format!(
                "resource {resource:?}: parameter key {key:?} takes {} bytes in the database (an \
                 upper-case letter takes two); at most {SEGMENT_BYTES_MAX} allowed",
                stored.len()
            ));
        }
        // The monitor's own parameters: the runner derives the check intervals from
        // `looksalive` and `isalive`; only the OCF root is the administrator's to give.
        if key.starts_with("wolfpack_") && key != "wolfpack_ocf_root" {
            return Err(format!(
                "resource {resource:?}: parameter {key:?} is reserved (the prefix wolfpack_ is \
                 the monitor's; --looksalive and --isalive set the check intervals)"
            ));
        }
        if params[..index].iter().any(|(earlier, _)| earlier == key) {
            return Err(format!(
                "resource {resource:?}: parameter {key:?} is given twice"
            ));
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(format!(
                "resource {resource:?}: parameter {key:?} is {} bytes; at most {VALUE_BYTES_MAX} allowed",
                value.len()
            ));
        }
    }
    crate::monitor::resource::check_params(kind, params)
        .map_err(|why| format!("resource {resource:?}: {why}"))
}

/// The dependencies of a new resource `name` of `group`: at most DEPENDS_MAX (the monitor's
/// `Start` carries them), each a resource of the catalog, in the same group (a group starts
/// and moves as one), named once, and no cycle.
pub fn check_dependencies(
    catalog: &Catalog,
    name: &str,
    group: &str,
    depends: &[String],
) -> Result<(), String> {
    if depends.len() > DEPENDS_MAX {
        return Err(format!(
            "resource {name:?}: {} dependencies; at most {DEPENDS_MAX} allowed",
            depends.len()
        ));
    }
    for (index, needed) in depends.iter().enumerate() {
        if needed == name {
            return Err(format!("resource {name:?} cannot depend on itself"));
        }
        if depends[..index].contains(needed) {
            return Err(format!(
                "resource {name:?}: dependency {needed:?} is given twice"
            ));
        }
        let Some(spec) = catalog.resource(needed) else {
            return Err(format!(
                "resource {name:?} depends on unknown resource {needed:?}"
            ));
        };
        if spec.group != group {
            return Err(format!(
                "resource {name:?} of group {group:?} cannot depend on {needed:?} of group {:?}: \
                 dependencies stay within a group",
                spec.group
            ));
        }
    }
    let mut edges: BTreeMap<&str, Vec<&str>> = catalog
        .resources
        .iter()
        .filter(|resource| resource.group == group)
        .map(|resource| {
            let needs = resource.depends.iter().map(String::as_str).collect();
            (resource.name.as_str(), needs)
        })
        .collect();
    edges.insert(name, depends.iter().map(String::as_str).collect());
    match find_cycle(&edges) {
        Some(cycle) => Err(format!("dependency cycle: {}", cycle.join(" -> "))),
        None => Ok(()),
    }
}

/// A cycle of `edges` (resource → the resources it needs) as the names along it, the first
/// repeated at the end; `None` when there is none.
pub fn find_cycle(edges: &BTreeMap<&str, Vec<&str>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for &start in edges.keys() {
        if marks.contains_key(start) {
            continue;
        }
        // Depth first without recursion (a hand-edited database may hold long chains): each
        // frame is a node and how many of its edges were followed.
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::OnPath);
        while let Some(frame) = path.last_mut() {
            let node = frame.0;
            let needs = edges.get(node).map(Vec::as_slice).unwrap_or_default();
            let Some(&needed) = needs.get(frame.1) else {
                marks.insert(node, Mark::Done);
                path.pop();
                continue;
            };
            frame.1 += 1;
            match marks.get(needed) {
                Some(Mark::OnPath) => {
                    let from = path.iter().position(|(on, _)| *on == needed).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|(on, _)| on.to_string()).collect();
                    cycle.push(needed.to_string());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(needed, Mark::OnPath);
                    path.push((needed, 0));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::ResourceSpec;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn refusal(result: Result<(), String>) -> String {
        result.expect_err("refused")
    }

    #[test]
    fn names_follow_the_path_segment_and_resource_name_rules() {
        for good in ["web", "a", "db-1", "x.y_z", &"a".repeat(64)] {
            assert_eq!(check_name("group", good), Ok(()), "{good}");
        }
        let cases = [
            ("", "it is empty"),
            ("Web", "'W' is not allowed"),
            ("a b", "' ' is not allowed"),
            ("a/b", "'/' is not allowed"),
            ("é", "'é' is not allowed"),
            (".hidden", "starts with '.'"),
            ("..", "starts with '.'"),
        ];
        for (name, why) in cases {
            let error = refusal(check_name("resource", name));
            assert!(error.starts_with("bad resource name"), "{error}");
            assert!(error.contains(why), "{name:?}: {error}");
        }
        let error = refusal(check_name("group", &"a".repeat(65)));
        assert!(error.contains("65 bytes; at most 64"), "{error}");
    }

    #[test]
    fn nodes_must_be_in_the_node_table() {
        let configured = 0b111;
        assert_eq!(check_nodes("--preferred", &[3, 1], configured), Ok(()));
        let error = refusal(check_nodes("--possible", &[1, 5], configured));
        assert_eq!(
            error,
            "--possible: node 5 is not in the node table (configured: 1,2,3)"
        );
        let error = refusal(check_nodes("--to", &[0], configured));
        assert!(error.contains("node 0 is not in the node table"), "{error}");
        let error = refusal(check_nodes("--to", &[200], configured));
        assert!(error.contains("node 200"), "{error}");
    }

    #[test]
    fn numbers_outside_their_range_name_the_flag() {
        assert_eq!(check_range("--timeout", 30, &TIMEOUT_S_RANGE), Ok(()));
        assert_eq!(
            refusal(check_range("--timeout", 0, &TIMEOUT_S_RANGE)),
            "--timeout: 0 is out of range (1 to 86400)"
        );
        let error = refusal(check_range("--restart-threshold", 5000, &THRESHOLD_RANGE));
        assert!(error.starts_with("--restart-threshold: 5000"), "{error}");
    }

    #[test]
    fn types_and_their_required_parameters() {
        let ok =
            |kind: &str, pairs: &[(&str, &str)]| check_type_and_params("r", kind, &params(pairs));
        assert_eq!(
            ok("process", &[("command", "sleep 1000; echo $HOME | tr a b")]),
            Ok(())
        );
        assert_eq!(
            ok(
                "script",
                &[("start", "/bin/true"), ("stop", "x"), ("status", "y")]
            ),
            Ok(())
        );
        assert_eq!(
            ok("ip", &[("address", "198.18.0.5/24"), ("interface", "eth0")]),
            Ok(())
        );
        // Without an interface, each node picks the one whose subnet holds the address.
        assert_eq!(ok("ip", &[("address", "198.18.0.5")]), Ok(()));
        assert_eq!(
            ok(
                "filesystem",
                &[
                    ("device", "/dev/sdb1"),
                    ("directory", "/srv/data"),
                    ("fstype", "ext4")
                ]
            ),
            Ok(())
        );
        assert_eq!(ok("ocf:heartbeat:IPaddr2", &[("ip", "198.18.0.5")]), Ok(()));

        // (type, parameters, what the refusal says)
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            &'static str,
        );
        let cases: [Case; 14] = [
            ("nfs", vec![], "unknown type \"nfs\""),
            ("Process", vec![], "unknown type"),
            ("process", vec![], "'command' is required"),
            ("process", vec![("command", "  ")], "'command' is required"),
            (
                "process",
                vec![("command", "x"), ("colour", "red")],
                "unknown parameter 'colour'",
            ),
            (
                "script",
                vec![("start", "a"), ("stop", "b")],
                "'status' is required",
            ),
            ("ip", vec![("interface", "eth0")], "'address' is required"),
            (
                "ip",
                vec![("address", "300.1.1.1"), ("interface", "eth0")],
                "not an IPv4 or IPv6",
            ),
            (
                "ip",
                vec![("address", "198.18.0.5"), ("interface", "eth 0")],
                "not an interface name",
            ),
            (
                "filesystem",
                vec![("device", "/dev/sdb1"), ("fstype", "ext4")],
                "'directory' is required",
            ),
            (
                "filesystem",
                vec![
                    ("device", "/dev/sdb1"),
                    ("directory", "srv"),
                    ("fstype", "ext4"),
                ],
                "not an absolute path",
            ),
            ("ocf:heartbeat", vec![], "is not ocf:PROVIDER:AGENT"),
            ("ocf:heart/beat:x", vec![], "is not ocf:PROVIDER:AGENT"),
            (
                "ocf:heartbeat:Dummy",
                vec![("wolfpack_colour", "red")],
                "parameter \"wolfpack_colour\" is reserved",
            ),
        ];
        for (kind, pairs, why) in cases {
            let error = refusal(ok(kind, &pairs));
            assert!(error.starts_with("resource \"r\""), "{error}");
            assert!(error.contains(why), "{kind} {pairs:?}: {error}");
        }
    }

    #[test]
    fn parameter_keys_and_values_are_checked_before_the_type() {
        let check = |pairs: &[(&str, &str)]| check_type_and_params("r", "process", &params(pairs));
        // Upper case is a key's own spelling (SAPInstance's InstanceName); `process` has no
        // such parameter.
        let error = refusal(check(&[("Command", "x")]));
        assert!(error.contains("unknown parameter 'Command'"), "{error}");
        assert_eq!(
            check_type_and_params(
                "r",
                "ocf:heartbeat:SAPInstance",
                &params(&[("InstanceName", "HA1_ASCS00_sap"), ("START_PROFILE", "/p")])
            ),
            Ok(())
        );
        let error = refusal(check_type_and_params(
            "r",
            "ocf:x:y",
            &params(&[(&"AB".repeat(20), "v")]),
        ));
        assert!(
            error.contains("takes 80 bytes in the database (an upper-case letter takes two)"),
            "{error}"
        );
        let error = refusal(check_type_and_params(
            "r",
            "ocf:x:y",
            &params(&[("CRM_meta_interval", "1")]),
        ));
        assert!(
            error.contains("OCF_RESKEY_CRM_meta_* are the cluster's"),
            "{error}"
        );
        let error = refusal(check(&[("a-b", "x")]));
        assert!(error.contains("bad parameter key"), "{error}");
        let error = refusal(check_type_and_params(
            "r",
            "ocf:heartbeat:Dummy",
            &params(&[("wolfpack_looks_alive_interval_ms", "100")]),
        ));
        assert!(error.contains("is reserved"), "{error}");
        assert_eq!(
            check_type_and_params(
                "r",
                "ocf:heartbeat:Dummy",
                &params(&[("wolfpack_ocf_root", "/opt/ocf")])
            ),
            Ok(())
        );
        let error = refusal(check(&[("command", "a"), ("command", "b")]));
        assert!(error.contains("\"command\" is given twice"), "{error}");
        let long = "x".repeat(VALUE_BYTES_MAX + 1);
        let error = refusal(check(&[("command", &long)]));
        assert!(error.contains("1025 bytes; at most 1024"), "{error}");
        let many: Vec<(String, String)> = (0..=PARAMS_MAX)
            .map(|index| (format!("k{index}"), "v".to_string()))
            .collect();
        let error = refusal(check_type_and_params("r", "ocf:x:y", &many));
        assert!(error.contains("at most 64 allowed"), "{error}");
        let kind = format!("ocf:{}:b", "a".repeat(64));
        let error = refusal(check_type_and_params("r", &kind, &[]));
        assert!(error.contains("at most 64 allowed"), "{error}");
    }

    fn resource(name: &str, group: &str, depends: &[&str]) -> ResourceSpec {
        ResourceSpec {
            name: name.into(),
            group: group.into(),
            kind: "process".into(),
            params: Vec::new(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            restart_threshold: 3,
            restart_period_s: 900,
            looks_alive_s: 5,
            is_alive_s: 60,
            timeout_s: None,
            affects_group: true,
            role_online: true,
            cleanup: 0,
        }
    }

    #[test]
    fn dependencies_exist_stay_in_their_group_and_make_no_cycle() {
        let catalog = Catalog {
            groups: Vec::new(),
            resources: vec![
                resource("ip", "web", &[]),
                resource("app", "web", &["ip"]),
                resource("disk", "data", &[]),
            ],
            problems: Vec::new(),
        };
        let depends = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_dependencies(&catalog, "proxy", "web", &depends(&["app", "ip"])),
            Ok(())
        );
        let many: Vec<String> = (0..=DEPENDS_MAX).map(|index| format!("r{index}")).collect();
        let error = refusal(check_dependencies(&catalog, "proxy", "web", &many));
        assert!(error.contains("at most 64 allowed"), "{error}");
        let error = refusal(check_dependencies(
            &catalog,
            "proxy",
            "web",
            &depends(&["nope"]),
        ));
        assert_eq!(
            error,
            "resource \"proxy\" depends on unknown resource \"nope\""
        );
        let error = refusal(check_dependencies(
            &catalog,
            "proxy",
            "web",
            &depends(&["disk"]),
        ));
        assert!(
            error.contains("of group \"data\": dependencies stay within a group"),
            "{error}"
        );
        let error = refusal(check_dependencies(
            &catalog,
            "proxy",
            "web",
            &depends(&["proxy"]),
        ));
        assert!(error.contains("cannot depend on itself"), "{error}");
        let error = refusal(check_dependencies(
            &catalog,
            "proxy",
            "web",
            &depends(&["ip", "ip"]),
        ));
        assert!(error.contains("\"ip\" is given twice"), "{error}");
    }

    #[test]
    fn a_cycle_is_named_along_its_path() {
        // Only a hand-edited database can hold one (`resource add` needs its dependencies to
        // exist already), but a new resource must still not close it or extend it.
        let catalog = Catalog {
            groups: Vec::new(),
            resources: vec![resource("a", "g", &["b"]), resource("b", "g", &["a"])],
            problems: Vec::new(),
        };
        let error = refusal(check_dependencies(&catalog, "c", "g", &["a".to_string()]));
        assert!(error.starts_with("dependency cycle: "), "{error}");
        assert!(error.contains("a -> b -> a"), "{error}");

        let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        edges.insert("x", vec!["y"]);
        edges.insert("y", vec!["z"]);
        edges.insert("z", vec!["w", "x"]);
        assert_eq!(
            find_cycle(&edges),
            Some(vec!["x".into(), "y".into(), "z".into(), "x".into()])
        );
        edges.insert("z", vec!["w"]);
        assert_eq!(find_cycle(&edges), None);
        // A diamond is not a cycle.
        let mut diamond: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        diamond.insert("top", vec!["left", "right"]);
        diamond.insert("left", vec!["bottom"]);
        diamond.insert("right", vec!["bottom"]);
        assert_eq!(find_cycle(&diamond), None);
    }
}
