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

    // A parameter change takes effect at the next start, not by a restart.
    let changed = edit(&grown, "a", |spec| {
        spec.params = vec![("command".into(), "v2".into())]
    });
    bench.set_catalog(changed.clone());
    assert!(bench.pending().is_empty());

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

    // The changed parameter is what a's next start carries.
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
