//! The administrator's edits against a real database: what each writes, every refusal, and
//! that two concurrent contradicting edits cannot both land.
use super::*;
use crate::core::db::{Database, Op, Outcome, Path, Update, Value};

/// Nodes 1, 2 and 3 are configured.
const CONFIGURED: u64 = 0b111;

fn apply(database: &mut Database, update: &Update) -> Outcome {
    let sequence = database.sequence() + 1;
    database.apply(sequence, update).expect("a valid update")
}

/// Decides an edit on `database` and applies it there.
fn commit(database: &mut Database, edit: impl FnOnce(&Database) -> Result<Update, EditError>) {
    let update = edit(database).expect("the edit is accepted");
    assert_eq!(apply(database, &update), Outcome::Applied, "{update:?}");
}

fn group(name: &str) -> NewGroup {
    NewGroup {
        name: name.to_string(),
        ..NewGroup::default()
    }
}

fn process(name: &str, group: &str) -> NewResource {
    let mut resource = NewResource::new(name, group, "process");
    resource.params = vec![("command".to_string(), "sleep 1000".to_string())];
    resource
}

fn value(database: &Database, key: &str) -> Option<Value> {
    let path = Path::parse(key).expect("a valid path");
    database.get(&path).map(|(value, _)| value.clone())
}

/// A database with groups `web` (slot 1) and `data` (slot 2), and `ip`, `app` (needs ip) in
/// web.
fn sample() -> Database {
    let mut database = Database::default();
    commit(&mut database, |database| {
        add_group(database, &group("web"), CONFIGURED)
    });
    commit(&mut database, |database| {
        add_group(database, &group("data"), CONFIGURED)
    });
    commit(&mut database, |database| {
        add_resource(database, &process("ip", "web"))
    });
    let mut app = process("app", "web");
    app.depends = vec!["ip".to_string()];
    commit(&mut database, |database| add_resource(database, &app));
    database
}

fn refused(result: Result<Update, EditError>) -> String {
    result.expect_err("refused").to_string()
}

#[test]
fn group_add_writes_the_schema_in_the_lowest_free_slot() {
    let mut database = Database::default();
    let web = NewGroup {
        name: "web".into(),
        preferred: vec![2, 1],
        possible: Some(vec![2, 1]),
        failback: Some(Failback::Window {
            from_hour: 22,
            to_hour: 6,
        }),
        failover_threshold: Some(4),
        failover_period_s: Some(3600),
    };
    commit(&mut database, |database| {
        add_group(database, &web, CONFIGURED)
    });
    commit(&mut database, |database| {
        add_group(database, &group("data"), CONFIGURED)
    });
    let catalog = read(&database);
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    let spec = catalog.group("web").expect("web");
    assert_eq!(spec.slot, 1);
    assert_eq!(spec.preferred, vec![2, 1]);
    assert_eq!(spec.possible, 0b11);
    assert_eq!(spec.failback.render(), "window=22-6");
    assert_eq!((spec.failover_threshold, spec.failover_period_s), (4, 3600));
    assert_eq!(spec.target, 0);
    // What was not given is not written: the reader's defaults apply.
    let data = catalog.group("data").expect("data");
    assert_eq!(data.slot, 2);
    assert_eq!(data.possible, 0);
    assert_eq!(data.failover_threshold, FAILOVER_THRESHOLD_DEFAULT);
    assert_eq!(value(&database, "groups/data/preferred"), None);
    assert_eq!(
        value(&database, "cluster/group-slots/1"),
        Some(Value::Text("web".into()))
    );
    // A removed group's slot is free again.
    commit(&mut database, |database| remove_group(database, "web"));
    assert_eq!(value(&database, "cluster/group-slots/1"), None);
    commit(&mut database, |database| {
        add_group(database, &group("mail"), CONFIGURED)
    });
    assert_eq!(read(&database).group("mail").map(|g| g.slot), Some(1));
}

#[test]
fn group_add_refuses_with_the_reason() {
    let database = sample();
    let cases: Vec<(NewGroup, &str)> = vec![
        (group("Web"), "bad group name \"Web\": 'W' is not allowed"),
        (group(""), "bad group name \"\": it is empty"),
        (group(".x"), "starts with '.'"),
        (group("web"), "group \"web\" already exists"),
        (
            NewGroup {
                preferred: vec![1, 4],
                ..group("mail")
            },
            "--preferred: node 4 is not in the node table (configured: 1,2,3)",
        ),
        (
            NewGroup {
                possible: Some(vec![9]),
                ..group("mail")
            },
            "--possible: node 9 is not in the node table",
        ),
        (
            NewGroup {
                possible: Some(vec![]),
                ..group("mail")
            },
            "--possible: name at least one node",
        ),
        (
            NewGroup {
                preferred: vec![2, 2],
                ..group("mail")
            },
            "--preferred: node 2 is listed twice",
        ),
        (
            NewGroup {
                preferred: vec![3],
                possible: Some(vec![1, 2]),
                ..group("mail")
            },
            "--preferred: node 3 is not one of --possible (1,2)",
        ),
        (
            NewGroup {
                failover_threshold: Some(1001),
                ..group("mail")
            },
            "--failover-threshold: 1001 is out of range (0 to 1000)",
        ),
        (
            NewGroup {
                failover_period_s: Some(0),
                ..group("mail")
            },
            "--failover-period: 0 is out of range",
        ),
    ];
    for (new, why) in cases {
        let error = refused(add_group(&database, &new, CONFIGURED));
        assert!(error.contains(why), "{new:?}: {error}");
    }
}

#[test]
fn group_add_refuses_a_65th_group_and_left_over_keys() {
    let mut database = Database::default();
    for index in 0..64 {
        commit(&mut database, |database| {
            add_group(database, &group(&format!("g{index}")), CONFIGURED)
        });
    }
    let error = refused(add_group(&database, &group("one-more"), CONFIGURED));
    assert!(error.contains("no free group slot"), "{error}");

    let mut database = Database::default();
    let stray = Update::put(
        Path::parse("groups/web/preferred").expect("path"),
        Value::Text("1".into()),
    );
    assert_eq!(apply(&mut database, &stray), Outcome::Applied);
    let error = refused(add_group(&database, &group("web"), CONFIGURED));
    assert!(
        error.contains("groups/web already holds keys the catalog leaves out"),
        "{error}"
    );
}

#[test]
fn two_concurrent_group_adds_cannot_take_one_slot() {
    let mut database = Database::default();
    // Both decided on the same replica: both picked slot 1.
    let first = add_group(&database, &group("web"), CONFIGURED).expect("valid");
    let second = add_group(&database, &group("mail"), CONFIGURED).expect("valid");
    let same_name = add_group(&database, &group("web"), CONFIGURED).expect("valid");
    assert_eq!(apply(&mut database, &first), Outcome::Applied);
    assert!(matches!(
        apply(&mut database, &second),
        Outcome::PreconditionFailed { .. }
    ));
    assert!(matches!(
        apply(&mut database, &same_name),
        Outcome::PreconditionFailed { .. }
    ));
    // Retried, it is decided again and takes the next slot.
    commit(&mut database, |database| {
        add_group(database, &group("mail"), CONFIGURED)
    });
    assert_eq!(read(&database).group("mail").map(|g| g.slot), Some(2));
}

#[test]
fn resource_add_stores_parameters_verbatim_and_settings_as_given() {
    let mut database = sample();
    let mut worker = NewResource::new("worker", "web", "process");
    let command = "sh -c 'echo $HOME; rm -rf \"/tmp/x\" | cat' && `id` > /dev/null\t\\n";
    worker.params = vec![
        ("command".to_string(), command.to_string()),
        ("check".to_string(), "test -e /run/app.pid".to_string()),
    ];
    worker.depends = vec!["app".to_string(), "ip".to_string()];
    worker.restart_threshold = Some(0);
    worker.restart_period_s = Some(60);
    worker.looks_alive_s = Some(2);
    worker.is_alive_s = Some(30);
    worker.timeout_s = Some(45);
    worker.affects_group = false;
    commit(&mut database, |database| add_resource(database, &worker));
    let catalog = read(&database);
    let spec = catalog.resource("worker").expect("worker");
    assert_eq!(spec.group, "web");
    assert_eq!(spec.kind, "process");
    assert_eq!(
        spec.params,
        vec![
            ("check".to_string(), "test -e /run/app.pid".to_string()),
            ("command".to_string(), command.to_string()),
        ]
    );
    assert_eq!(spec.depends, vec!["app".to_string(), "ip".to_string()]);
    assert_eq!((spec.restart_threshold, spec.restart_period_s), (0, 60));
    assert_eq!((spec.looks_alive_s, spec.is_alive_s), (2, 30));
    assert_eq!(spec.timeout_s, Some(45));
    assert!(!spec.affects_group);
    assert!(spec.role_online);
    let order: Vec<&str> = catalog
        .start_order("web")
        .iter()
        .map(|resource| resource.name.as_str())
        .collect();
    assert_eq!(order, ["ip", "app", "worker"]);
    // Defaults are left to the reader.
    let ip = catalog.resource("ip").expect("ip");
    assert_eq!(ip.timeout_s, None);
    assert_eq!(ip.restart_threshold, RESTART_THRESHOLD_DEFAULT);
    assert_eq!(value(&database, "resources/ip/affects-group"), None);
}

#[test]
fn resource_add_refuses_with_the_reason() {
    let database = sample();
    let with = |change: &dyn Fn(&mut NewResource)| {
        let mut resource = process("worker", "web");
        change(&mut resource);
        resource
    };
    let cases: Vec<(NewResource, &str)> = vec![
        (process("Worker", "web"), "bad resource name \"Worker\""),
        (process("worker", "nowhere"), "unknown group \"nowhere\" (groups: \"data\", \"web\")"),
        (process("worker", "We b"), "bad group name \"We b\""),
        (process("app", "data"), "resource \"app\" already exists (in group \"web\")"),
        (
            with(&|r| r.kind = "nfs".into()),
            "resource \"worker\": unknown type \"nfs\" (types: process, script, ip, filesystem or ocf:PROVIDER:AGENT)",
        ),
        (
            with(&|r| r.params.clear()),
            "resource \"worker\": process: the parameter 'command' is required",
        ),
        (
            with(&|r| r.params.push(("Bad-Key".into(), "x".into()))),
            "bad parameter key \"Bad-Key\"",
        ),
        (
            with(&|r| r.depends = vec!["nope".into()]),
            "resource \"worker\" depends on unknown resource \"nope\"",
        ),
        (
            with(&|r| {
                r.group = "data".into();
                r.depends = vec!["ip".into()];
            }),
            "resource \"worker\" of group \"data\" cannot depend on \"ip\" of group \"web\": \
             dependencies stay within a group",
        ),
        (
            with(&|r| r.depends = vec!["worker".into()]),
            "cannot depend on itself",
        ),
        (
            with(&|r| r.depends = vec!["x/y".into()]),
            "bad resource name \"x/y\"",
        ),
        (
            with(&|r| r.timeout_s = Some(0)),
            "--timeout: 0 is out of range (1 to 86400)",
        ),
        (
            with(&|r| r.restart_threshold = Some(100_000)),
            "--restart-threshold: 100000 is out of range",
        ),
        (
            with(&|r| r.restart_period_s = Some(0)),
            "--restart-period: 0 is out of range",
        ),
        (
            with(&|r| r.looks_alive_s = Some(100_000)),
            "--looksalive: 100000 is out of range",
        ),
        (
            with(&|r| r.is_alive_s = Some(2)),
            "--isalive 2 is more often than --looksalive 5",
        ),
        (
            with(&|r| {
                r.kind = "ip".into();
                r.params = vec![("interface".into(), "eth0".into())];
            }),
            "ip: the parameter 'address' is required",
        ),
    ];
    for (new, why) in cases {
        let error = refused(add_resource(&database, &new));
        assert!(error.contains(why), "{new:?}: {error}");
    }
    let empty = Database::default();
    let error = refused(add_resource(&empty, &process("worker", "web")));
    assert_eq!(error, "unknown group \"web\" (there are no groups yet)");
}

#[test]
fn a_resource_too_large_for_one_update_is_refused() {
    let database = sample();
    let mut big = NewResource::new("big", "web", "ocf:heartbeat:Dummy");
    big.params = (0..8)
        .map(|index| (format!("p{index}"), "x".repeat(1000)))
        .collect();
    let error = refused(add_resource(&database, &big));
    assert!(
        error.starts_with("resource \"big\": the change does not fit one database update"),
        "{error}"
    );
}

#[test]
fn group_remove_is_refused_while_the_group_has_resources() {
    let mut database = sample();
    let error = refused(remove_group(&database, "web"));
    assert_eq!(
        error,
        "group \"web\" still has resources: \"app\", \"ip\" (remove them first)"
    );
    assert_eq!(
        refused(remove_group(&database, "mail")),
        "unknown group \"mail\" (groups: \"data\", \"web\")"
    );
    commit(&mut database, |database| remove_resource(database, "app"));
    commit(&mut database, |database| remove_resource(database, "ip"));
    commit(&mut database, |database| remove_group(database, "web"));
    let catalog = read(&database);
    assert!(catalog.group("web").is_none());
    assert!(catalog.resources.is_empty());
    assert_eq!(value(&database, "groups/web/slot"), None);
}

#[test]
fn group_remove_and_a_concurrent_resource_add_cannot_both_land() {
    for remove_first in [true, false] {
        let mut database = Database::default();
        commit(&mut database, |database| {
            add_group(database, &group("web"), CONFIGURED)
        });
        let remove = remove_group(&database, "web").expect("empty group");
        let add = add_resource(&database, &process("ip", "web")).expect("valid");
        let (first, second) = match remove_first {
            true => (remove, add),
            false => (add, remove),
        };
        assert_eq!(apply(&mut database, &first), Outcome::Applied);
        assert!(
            matches!(
                apply(&mut database, &second),
                Outcome::PreconditionFailed { .. }
            ),
            "remove first: {remove_first}"
        );
        // Never a resource without its group.
        assert!(read(&database).problems.is_empty());
    }
}

#[test]
fn resource_remove_and_a_concurrent_dependent_add_cannot_both_land() {
    for remove_first in [true, false] {
        let mut database = sample();
        let remove = remove_resource(&database, "app").expect("nothing needs app");
        let mut proxy = process("proxy", "web");
        proxy.depends = vec!["app".into()];
        let add = add_resource(&database, &proxy).expect("valid");
        let (first, second) = match remove_first {
            true => (remove, add),
            false => (add, remove),
        };
        assert_eq!(apply(&mut database, &first), Outcome::Applied);
        assert!(matches!(
            apply(&mut database, &second),
            Outcome::PreconditionFailed { .. }
        ));
        let catalog = read(&database);
        for resource in &catalog.resources {
            for needed in &resource.depends {
                assert!(catalog.resource(needed).is_some(), "{needed} is gone");
            }
        }
    }
}

#[test]
fn resource_remove_is_refused_while_needed_and_names_the_dependent() {
    let mut database = sample();
    assert_eq!(
        refused(remove_resource(&database, "ip")),
        "resource \"ip\" is needed by \"app\" (remove or change them first)"
    );
    assert_eq!(
        refused(remove_resource(&database, "nope")),
        "unknown resource \"nope\""
    );
    commit(&mut database, |database| remove_resource(database, "app"));
    commit(&mut database, |database| remove_resource(database, "ip"));
    assert!(read(&database).resources.is_empty());
}

#[test]
fn role_and_cleanup() {
    let mut database = sample();
    commit(&mut database, |database| {
        set_resource_role(database, "app", false)
    });
    assert!(!read(&database).resource("app").expect("app").role_online);
    commit(&mut database, |database| {
        set_resource_role(database, "app", true)
    });
    assert!(read(&database).resource("app").expect("app").role_online);
    commit(&mut database, |database| cleanup_resource(database, "app"));
    commit(&mut database, |database| cleanup_resource(database, "app"));
    assert_eq!(read(&database).resource("app").map(|r| r.cleanup), Some(2));
    assert_eq!(
        refused(set_resource_role(&database, "nope", true)),
        "unknown resource \"nope\""
    );
    assert_eq!(
        refused(cleanup_resource(&database, "nope")),
        "unknown resource \"nope\""
    );
    // Two cleanups decided on one replica: the second would not bump the number again.
    let first = cleanup_resource(&database, "app").expect("valid");
    let second = cleanup_resource(&database, "app").expect("valid");
    assert_eq!(apply(&mut database, &first), Outcome::Applied);
    assert!(matches!(
        apply(&mut database, &second),
        Outcome::PreconditionFailed { .. }
    ));
    // A role change on a resource removed meanwhile changes nothing.
    let offline = set_resource_role(&database, "app", false).expect("valid");
    commit(&mut database, |database| remove_resource(database, "app"));
    assert!(matches!(
        apply(&mut database, &offline),
        Outcome::PreconditionFailed { .. }
    ));
    assert_eq!(value(&database, "resources/app/role"), None);
}

#[test]
fn group_move_pins_a_node_and_picks_one_when_not_told() {
    let mut database = Database::default();
    let web = NewGroup {
        name: "web".into(),
        preferred: vec![2, 3],
        possible: Some(vec![1, 2, 3]),
        ..NewGroup::default()
    };
    commit(&mut database, |database| {
        add_group(database, &web, CONFIGURED)
    });
    let target = |database: &Database| read(database).group("web").map(|g| g.target);

    commit(&mut database, |database| {
        move_group(database, "web", Some(1), CONFIGURED, 2)
    });
    assert_eq!(target(&database), Some(1));
    // Not told: the first preferred node that is not the owner.
    commit(&mut database, |database| {
        move_group(database, "web", None, CONFIGURED, 2)
    });
    assert_eq!(target(&database), Some(3));
    commit(&mut database, |database| {
        move_group(database, "web", None, CONFIGURED, 1)
    });
    assert_eq!(target(&database), Some(2));
    commit(&mut database, |database| {
        move_group(database, "web", None, CONFIGURED, 0)
    });
    assert_eq!(target(&database), Some(2));
    commit(&mut database, |database| {
        clear_group_target(database, "web")
    });
    assert_eq!(target(&database), Some(0));
    assert_eq!(value(&database, "groups/web/target"), None);

    // No preference: the lowest configured node that may host it.
    commit(&mut database, |database| {
        add_group(database, &group("data"), CONFIGURED)
    });
    commit(&mut database, |database| {
        move_group(database, "data", None, CONFIGURED, 1)
    });
    assert_eq!(read(&database).group("data").map(|g| g.target), Some(2));

    let error = refused(move_group(&database, "web", Some(7), CONFIGURED, 0));
    assert!(
        error.contains("--to: node 7 is not in the node table"),
        "{error}"
    );
    assert_eq!(
        refused(move_group(&database, "mail", Some(1), CONFIGURED, 0)),
        "unknown group \"mail\" (groups: \"data\", \"web\")"
    );
    assert_eq!(
        refused(clear_group_target(&database, "mail")),
        "unknown group \"mail\" (groups: \"data\", \"web\")"
    );
}

#[test]
fn group_move_stays_within_the_possible_owners() {
    let mut database = Database::default();
    let pinned = NewGroup {
        name: "pinned".into(),
        possible: Some(vec![2]),
        ..NewGroup::default()
    };
    commit(&mut database, |database| {
        add_group(database, &pinned, CONFIGURED)
    });
    assert_eq!(
        refused(move_group(&database, "pinned", Some(1), CONFIGURED, 2)),
        "--to: node 1 is not a possible owner of group \"pinned\" (possible: 2)"
    );
    assert_eq!(
        refused(move_group(&database, "pinned", None, CONFIGURED, 2)),
        "group \"pinned\" has no other node to move to (possible: 2)"
    );
    commit(&mut database, |database| {
        move_group(database, "pinned", None, CONFIGURED, 0)
    });
    assert_eq!(read(&database).group("pinned").map(|g| g.target), Some(2));
}

#[test]
fn an_entry_the_reader_leaves_out_is_named_with_the_way_to_remove_it() {
    let mut database = Database::default();
    let stray = Update::put(
        Path::parse("resources/old/type").expect("path"),
        Value::Text("process".into()),
    );
    assert_eq!(apply(&mut database, &stray), Outcome::Applied);
    let error = refused(remove_resource(&database, "old"));
    assert!(
        error.contains("'ctl delete resources/old' removes its keys"),
        "{error}"
    );
    commit(&mut database, |database| {
        add_group(database, &group("web"), CONFIGURED)
    });
    let error = refused(add_resource(&database, &process("old", "web")));
    assert!(
        error.contains("resources/old already holds keys the catalog leaves out"),
        "{error}"
    );
}

#[test]
fn refusals_are_typed() {
    let database = sample();
    assert_eq!(
        remove_group(&database, "web"),
        Err(EditError::GroupHasResources {
            group: "web".into(),
            resources: vec!["app".into(), "ip".into()],
        })
    );
    assert_eq!(
        remove_resource(&database, "ip"),
        Err(EditError::ResourceNeeded {
            resource: "ip".into(),
            dependents: vec!["app".into()],
        })
    );
    assert_eq!(
        set_resource_role(&database, "nope", true),
        Err(EditError::UnknownResource {
            resource: "nope".into()
        })
    );
    assert_eq!(
        add_group(&database, &group("web"), CONFIGURED),
        Err(EditError::GroupExists {
            group: "web".into()
        })
    );
    let twice = NewGroup {
        preferred: vec![1, 1],
        ..group("mail")
    };
    assert_eq!(
        add_group(&database, &twice, CONFIGURED),
        Err(EditError::ListedTwice {
            flag: "--preferred",
            node: 1
        })
    );
}

/// Records node `node`'s refusal of `group` and a failure, the way a node's host does when the
/// group fails there.
fn record_refusal(database: &mut Database, group: &str, node: u8, until_s: u64) {
    let refusal = Refusal {
        node,
        until_s,
        reason: "resource app cannot start: exit 1".to_string(),
    };
    let path = |key: &str| Path::parse(&format!("groups/{group}/{key}")).expect("a valid path");
    let update = Update::new(vec![
        Op::Put {
            path: path("failures"),
            value: Value::Text(until_s.to_string()),
        },
        Op::Put {
            path: path(&format!("refused/{node}")),
            value: Value::Text(refusal.render()),
        },
    ]);
    assert_eq!(apply(database, &update), Outcome::Applied);
}

#[test]
fn refusals_are_read_by_node_and_a_bad_one_leaves_its_group_in() {
    let mut database = sample();
    record_refusal(&mut database, "web", 2, 5_000);
    record_refusal(&mut database, "web", 3, 4_000);
    let bad = Update::put(
        Path::parse("groups/web/refused/9x").expect("a valid path"),
        Value::Text("soon".to_string()),
    );
    assert_eq!(apply(&mut database, &bad), Outcome::Applied);
    let catalog = read(&database);
    let web = catalog.group("web").expect("web is still read");
    assert_eq!(web.refusals.len(), 2);
    assert_eq!(web.refusals[0].node, 2);
    assert_eq!(web.refusals[0].reason, "resource app cannot start: exit 1");
    assert_eq!(web.refused_at(3_999), 0b110);
    assert_eq!(web.refused_at(4_000), 0b010);
    assert_eq!(web.refused_at(5_000), 0);
}

#[test]
fn group_cleanup_and_resource_cleanup_clear_refusals_and_failures_everywhere() {
    let mut database = sample();
    record_refusal(&mut database, "web", 2, 5_000);
    record_refusal(&mut database, "data", 1, 5_000);
    commit(&mut database, |database| cleanup_group(database, "web"));
    let catalog = read(&database);
    let web = catalog.group("web").expect("web");
    assert!(
        web.refusals.is_empty() && web.failures.is_empty(),
        "{web:?}"
    );
    assert_eq!(web.cleanup, 1);
    // Every resource of the group forgets its failures too; the other group is untouched.
    assert_eq!(catalog.resource("ip").map(|r| r.cleanup), Some(1));
    assert_eq!(catalog.resource("app").map(|r| r.cleanup), Some(1));
    assert_eq!(catalog.group("data").map(|g| g.refusals.len()), Some(1));
    // A resource's cleanup clears its group's refusals as well.
    record_refusal(&mut database, "web", 3, 6_000);
    commit(&mut database, |database| cleanup_resource(database, "app"));
    let catalog = read(&database);
    let web = catalog.group("web").expect("web");
    assert!(
        web.refusals.is_empty() && web.failures.is_empty(),
        "{web:?}"
    );
    assert_eq!(web.cleanup, 2);
    assert_eq!(catalog.resource("app").map(|r| r.cleanup), Some(2));
    assert_eq!(catalog.resource("ip").map(|r| r.cleanup), Some(1));
    assert!(refused(cleanup_group(&database, "nope")).contains("nope"));
}

#[test]
fn a_removed_group_takes_its_refusals_along_so_a_group_reusing_the_slot_starts_clean() {
    let mut database = Database::default();
    commit(&mut database, |database| {
        add_group(database, &group("old"), CONFIGURED)
    });
    record_refusal(&mut database, "old", 1, 5_000);
    commit(&mut database, |database| remove_group(database, "old"));
    commit(&mut database, |database| {
        add_group(database, &group("new"), CONFIGURED)
    });
    let catalog = read(&database);
    let new = catalog.group("new").expect("new");
    assert_eq!(new.slot, 1, "the freed slot is reused");
    assert!(new.refusals.is_empty() && new.failures.is_empty());
}

#[test]
fn parameter_keys_keep_their_case_through_the_database() {
    assert_eq!(param_segment("InstanceName"), "-instance-name");
    assert_eq!(param_segment("START_PROFILE"), "-s-t-a-r-t_-p-r-o-f-i-l-e");
    assert_eq!(param_segment("status10url"), "status10url");
    for key in ["InstanceName", "START_PROFILE", "status10url", "a", "Z9_x"] {
        assert_eq!(param_key(&param_segment(key)).as_deref(), Some(key));
    }
    for segment in ["-", "a-", "-1", "a--b", "a.b", "a-B"] {
        assert_eq!(param_key(segment), None, "{segment}");
    }

    let mut database = sample();
    let mut sap = NewResource::new("sap", "web", "ocf:heartbeat:SAPInstance");
    sap.params = vec![
        ("InstanceName".into(), "HA1_ASCS00_sap".into()),
        ("monitor_services".into(), "x".into()),
    ];
    commit(&mut database, |database| add_resource(database, &sap));
    assert_eq!(
        value(&database, "resources/sap/params/-instance-name"),
        Some(Value::Text("HA1_ASCS00_sap".into()))
    );
    let catalog = read(&database);
    let spec = catalog.resource("sap").expect("read back");
    assert_eq!(
        spec.params,
        [
            ("InstanceName".to_string(), "HA1_ASCS00_sap".to_string()),
            ("monitor_services".to_string(), "x".to_string()),
        ]
    );

    // A segment no key is stored under (a hand edit) leaves the resource out, named.
    let path = Path::parse("resources/sap/params/a--b").expect("path");
    apply(&mut database, &Update::put(path, Value::Text("x".into())));
    let catalog = read(&database);
    assert!(catalog.resource("sap").is_none());
    assert!(
        catalog
            .problems
            .iter()
            .any(|problem| problem.contains("params/a--b does not name a parameter key")),
        "{:?}",
        catalog.problems
    );
}

fn change(name: &str) -> ResourceChange {
    ResourceChange {
        name: name.to_string(),
        ..ResourceChange::default()
    }
}

#[test]
fn resource_update_edits_parameters_and_settings_in_place() {
    let mut database = sample();
    let mut extra = process("extra", "web");
    extra.params.push(("check".into(), "true".into()));
    commit(&mut database, |database| add_resource(database, &extra));
    let slot_version = database.version(&Path::parse("groups/web/slot").expect("path"));

    let mut edit = change("extra");
    edit.set_params = vec![
        ("command".into(), "sleep 2000".into()),
        ("ready".into(), "true".into()),
    ];
    edit.remove_params = vec!["check".into()];
    edit.timeout_s = Some(45);
    edit.looks_alive_s = Some(2);
    edit.affects_group = Some(false);
    commit(&mut database, |database| update_resource(database, &edit));
    let spec = read(&database).resource("extra").cloned().expect("extra");
    assert_eq!(
        spec.params,
        [
            ("command".to_string(), "sleep 2000".to_string()),
            ("ready".to_string(), "true".to_string()),
        ]
    );
    assert_eq!(spec.timeout_s, Some(45));
    assert_eq!(spec.looks_alive_s, 2);
    assert_eq!(spec.is_alive_s, IS_ALIVE_S_DEFAULT);
    assert!(!spec.affects_group);
    assert_eq!(spec.group, "web");
    assert_eq!(
        database.version(&Path::parse("groups/web/slot").expect("path")),
        slot_version,
        "the group's structure did not change"
    );
    let mut back = change("extra");
    back.affects_group = Some(true);
    commit(&mut database, |database| update_resource(database, &back));
    assert!(
        read(&database)
            .resource("extra")
            .expect("extra")
            .affects_group
    );
}

#[test]
fn resource_update_refuses_with_the_reason() {
    let database = sample();
    let cases: Vec<(ResourceChange, &str)> = vec![
        (
            ResourceChange {
                timeout_s: Some(1),
                ..change("nope")
            },
            "unknown resource \"nope\"",
        ),
        (
            ResourceChange {
                remove_params: vec!["colour".into()],
                ..change("app")
            },
            "resource \"app\" has no parameter \"colour\" (its parameters: \"command\")",
        ),
        (
            ResourceChange {
                remove_params: vec!["command".into()],
                ..change("app")
            },
            "'command' is required",
        ),
        (
            ResourceChange {
                set_params: vec![("colour".into(), "red".into())],
                ..change("app")
            },
            "unknown parameter 'colour'",
        ),
        (
            ResourceChange {
                set_params: vec![("command".into(), "a".into())],
                remove_params: vec!["command".into()],
                ..change("app")
            },
            "parameter \"command\" is given twice",
        ),
        (
            ResourceChange {
                set_params: vec![
                    ("command".into(), "a".into()),
                    ("command".into(), "b".into()),
                ],
                ..change("app")
            },
            "parameter \"command\" is given twice",
        ),
        (
            ResourceChange {
                timeout_s: Some(0),
                ..change("app")
            },
            "--timeout: 0 is out of range",
        ),
        (
            ResourceChange {
                is_alive_s: Some(2),
                ..change("app")
            },
            "--isalive 2 is more often than --looksalive 5",
        ),
    ];
    for (edit, why) in cases {
        let error = refused(update_resource(&database, &edit));
        assert!(error.contains(why), "{edit:?}: {error}");
    }
}

#[test]
fn two_concurrent_parameter_updates_cannot_both_land() {
    let mut database = sample();
    let mut first = change("app");
    first.set_params = vec![("command".into(), "one".into())];
    let mut second = change("app");
    second.set_params = vec![("ready".into(), "true".into())];
    let first = update_resource(&database, &first).expect("accepted");
    let second = update_resource(&database, &second).expect("accepted");
    assert_eq!(apply(&mut database, &first), Outcome::Applied);
    assert!(matches!(
        apply(&mut database, &second),
        Outcome::PreconditionFailed { .. }
    ));
    // Decided again on the new catalog, it lands.
    let mut again = change("app");
    again.set_params = vec![("ready".into(), "true".into())];
    commit(&mut database, |database| update_resource(database, &again));
    let spec = read(&database).resource("app").cloned().expect("app");
    assert_eq!(spec.params.len(), 2, "{:?}", spec.params);
}
