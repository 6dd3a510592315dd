//! Roles and catalog changes in a running group.

use super::bench::{edit, group, one_group, resource, Bench};
use crate::core::catalog::Catalog;
use crate::monitor::protocol::Command;
use crate::runner::State;

fn chain() -> Catalog {
    one_group(vec![
        resource("a", "g", &[]),
        resource("b", "g", &["a"]),
        resource("c", "g", &["b"]),
    ])
}

#[test]
fn role_offline_keeps_the_resource_and_its_dependents_offline() {
    let catalog = edit(&chain(), "b", |spec| spec.role_online = false);
    let mut bench = Bench::new(catalog);
    bench.hold(1, true);
    bench.settle();
    assert_eq!(bench.take_commands(), ["start a"]);
    assert_eq!(bench.state("b"), State::Offline);
    assert_eq!(bench.reason("b"), "role offline");
    assert_eq!(bench.state("c"), State::Offline);
    assert_eq!(bench.reason("c"), "waiting for b");
    assert_eq!(bench.group_state(1), State::Online);
}

#[test]
fn role_changes_in_a_running_group_start_and_stop_just_that_part() {
    let mut bench = Bench::new(chain());
    bench.hold(1, true);
    bench.settle();
    bench.take_commands();
    let b_offline = edit(&chain(), "b", |spec| spec.role_online = false);
    bench.set_catalog(b_offline);
    bench.settle();
    assert_eq!(
        bench.take_commands(),
        ["stop c", "stop b"],
        "a keeps running"
    );
    assert_eq!(bench.state("a"), State::Online);
    assert_eq!(bench.group_state(1), State::Online);
    bench.set_catalog(chain());
    bench.settle();
    assert_eq!(bench.take_commands(), ["start b", "start c"]);
    assert_eq!(bench.group_state(1), State::Online);
}

#[test]
fn catalog_changes_while_online() {
    let mut bench = Bench::new(chain());
    bench.hold(1, true);
    bench.settle();
    bench.take_commands();

    // A new resource starts once its dependency is online.
    let mut grown = chain();
    grown.resources.push(resource("d", "g", &["c"]));
    bench.set_catalog(grown.clone());
    bench.settle();
    assert_eq!(bench.take_commands(), ["start d"]);

    // A parameter change restarts the resource, and with it the chain above it.
    let changed = edit(&grown, "a", |spec| {
        spec.params = vec![("command".into(), "v2".into())]
    });
    bench.set_catalog(changed.clone());
    bench.settle();
    assert_eq!(
        bench.take_commands(),
        ["stop d", "stop c", "stop b", "stop a", "start a", "start b", "start c", "start d"]
    );

    // A removed resource is stopped (its dependent first, which now waits for it).
    let mut shrunk = changed.clone();
    shrunk.resources.retain(|spec| spec.name != "c");
    bench.set_catalog(shrunk.clone());
    bench.settle();
    assert_eq!(bench.take_commands(), ["stop d", "stop c"]);
    assert_eq!(bench.reason("d"), "waiting for c (not in the group)");
    assert!(bench
        .runner
        .resource_states()
        .iter()
        .all(|r| r.resource != "c"));
    assert_eq!(bench.group_state(1), State::Online);

    // The changed parameter is what a's start carried, and carries again.
    bench.hold(1, false);
    bench.settle();
    bench.hold(1, true);
    bench.settle();
    let start_a = bench
        .monitor
        .commands
        .iter()
        .rev()
        .find_map(|command| match command {
            Command::Start {
                resource, params, ..
            } if resource == "a" => Some(params.clone()),
            _ => None,
        });
    assert_eq!(
        start_a,
        Some(vec![("command".to_string(), "v2".to_string())])
    );

    // A removed group is stopped and reported.
    bench.take_commands();
    let stopped_before = bench.group_stopped_count(1);
    bench.set_catalog(Catalog::default());
    bench.settle();
    assert_eq!(bench.take_commands(), ["stop b", "stop a"]);
    assert_eq!(bench.group_stopped_count(1), stopped_before + 1);
    assert!(bench.runner.resource_states().is_empty());
}

#[test]
fn resource_moved_to_another_group_stops_here_and_starts_there() {
    let two_groups = |mover_group: &str| Catalog {
        groups: vec![group("g", 1), group("h", 2)],
        resources: vec![resource("a", "g", &[]), resource("mover", mover_group, &[])],
        problems: Vec::new(),
    };
    let mut bench = Bench::new(two_groups("g"));
    bench.hold(1, true);
    bench.hold(2, true);
    bench.settle();
    bench.take_commands();
    bench.set_catalog(two_groups("h"));
    assert_eq!(bench.pending(), ["stop mover"]);
    bench.settle();
    assert_eq!(bench.take_commands(), ["stop mover", "start mover"]);
    let mover = bench
        .runner
        .resource_states()
        .into_iter()
        .find(|r| r.resource == "mover");
    assert_eq!(
        mover.map(|r| (r.group, r.state)),
        Some(("h".to_string(), State::Online))
    );
}

#[test]
fn dependency_cycle_never_starts() {
    let catalog = one_group(vec![
        resource("x", "g", &["y"]),
        resource("y", "g", &["x"]),
        resource("free", "g", &[]),
    ]);
    let mut bench = Bench::new(catalog);
    bench.hold(1, true);
    bench.settle();
    assert_eq!(bench.take_commands(), ["start free"]);
    assert_eq!(bench.reason("x"), "in a dependency cycle");
    assert_eq!(bench.state("y"), State::Offline);
    // Like a resource whose role is offline, it does not hold the group's state back.
    assert_eq!(bench.group_state(1), State::Online);
}

/// Group "g": a, b needing a, c needing b, and x on its own.
fn chain_and_loner() -> Catalog {
    let mut catalog = chain();
    catalog.resources.push(resource("x", "g", &[]));
    catalog
}

#[test]
fn a_parameter_change_restarts_that_resource_and_its_dependents_only() {
    let mut bench = Bench::new(chain_and_loner());
    bench.hold(1, true);
    bench.settle();
    bench.take_commands();

    let changed = edit(&chain_and_loner(), "b", |spec| {
        spec.params = vec![("command".into(), "serve b --port 8080".into())]
    });
    bench.set_catalog(changed.clone());
    // Top-down: c first, while b still runs under its old parameters.
    assert_eq!(bench.pending(), ["stop c"]);
    assert_eq!(bench.reason("c"), "b is restarting");
    assert_eq!(bench.state("b"), State::Online);
    assert_eq!(bench.group_state(1), State::OnlinePending);
    bench.answer("c", crate::monitor::Outcome::Success);
    assert_eq!(bench.pending(), ["stop b"]);
    assert_eq!(
        bench.reason("b"),
        "restarting: its type or parameters changed"
    );
    bench.settle();
    let start_b = bench
        .monitor
        .commands
        .iter()
        .find_map(|command| match command {
            Command::Start {
                resource, params, ..
            } if resource == "b" => Some(params.clone()),
            _ => None,
        });
    assert_eq!(
        start_b,
        Some(vec![("command".into(), "serve b --port 8080".into())])
    );
    assert_eq!(
        bench.take_commands(),
        ["stop c", "stop b", "start b", "start c"],
        "a and x keep running"
    );
    for name in ["a", "b", "c", "x"] {
        assert_eq!(bench.state(name), State::Online, "{name}");
    }
    assert_eq!(bench.group_state(1), State::Online);

    // The same catalog again restarts nothing.
    bench.set_catalog(changed.clone());
    assert!(bench.pending().is_empty(), "{:?}", bench.pending());

    // A leaf restarts alone; its failures are not counted.
    let leaf = edit(&changed, "x", |spec| spec.params[0].1 = "serve x v2".into());
    bench.set_catalog(leaf.clone());
    bench.settle();
    assert_eq!(bench.take_commands(), ["stop x", "start x"]);
    assert!(bench
        .runner
        .resource_states()
        .iter()
        .all(|status| status.recent_failures == 0 && status.last_failure.is_none()));

    // Timeouts, check intervals and restart policies restart nothing.
    let tuned = edit(&leaf, "a", |spec| {
        spec.timeout_s = Some(7);
        spec.looks_alive_s = 2;
        spec.is_alive_s = 20;
        spec.restart_threshold = 1;
        spec.affects_group = false;
    });
    bench.set_catalog(tuned);
    assert!(bench.pending().is_empty(), "{:?}", bench.pending());
}

#[test]
fn a_parameter_change_during_a_start_restarts_with_the_new_parameters() {
    let mut bench = Bench::new(one_group(vec![resource("a", "g", &[])]));
    bench.hold(1, true);
    assert_eq!(bench.pending(), ["start a"]);
    let changed = edit(&one_group(vec![resource("a", "g", &[])]), "a", |spec| {
        spec.params[0].1 = "serve a v2".into()
    });
    bench.set_catalog(changed);
    bench.settle();
    let last_start = bench
        .monitor
        .commands
        .iter()
        .rev()
        .find_map(|command| match command {
            Command::Start { params, .. } => Some(params.clone()),
            _ => None,
        });
    assert_eq!(
        last_start,
        Some(vec![("command".into(), "serve a v2".into())])
    );
    assert_eq!(bench.take_commands(), ["start a", "stop a", "start a"]);
    assert_eq!(bench.state("a"), State::Online);
    assert_eq!(bench.runner.resource_states()[0].recent_failures, 0);
}

#[test]
fn an_ocf_agent_is_told_its_check_intervals() {
    let mut agent = resource("db", "g", &[]);
    agent.kind = "ocf:heartbeat:Dummy".into();
    agent.params = vec![("state".into(), "/run/db".into())];
    agent.looks_alive_s = 7;
    agent.is_alive_s = 70;
    let mut bench = Bench::new(one_group(vec![agent, resource("app", "g", &["db"])]));
    bench.hold(1, true);
    bench.settle();
    let starts: Vec<(String, Vec<(String, String)>)> = bench
        .monitor
        .commands
        .iter()
        .filter_map(|command| match command {
            Command::Start {
                resource, params, ..
            } => Some((resource.clone(), params.clone())),
            _ => None,
        })
        .collect();
    let pair = |key: &str, value: &str| (key.to_string(), value.to_string());
    assert_eq!(
        starts,
        [
            (
                "db".to_string(),
                vec![
                    pair("state", "/run/db"),
                    pair("wolfpack_looks_alive_interval_ms", "7000"),
                    pair("wolfpack_is_alive_interval_ms", "70000"),
                ]
            ),
            ("app".to_string(), vec![pair("command", "serve app")]),
        ],
        "only an OCF agent gets them; a process resource would refuse them"
    );
}
