//! The host's own rules, on a lone node that holds nothing (what it does with groups runs in
//! every simulated seed).

use super::{Host, HostConfig, HostOutput};
use crate::core::disk_records::{Geometry, Timing};
use crate::core::{self, Input};
use crate::monitor::{self, Command, Operation, Outcome};
use crate::runner::RunnerMutation;

fn host(test_groups: Vec<(u8, String)>) -> Host {
    let mut networks = vec![0u8; core::NODES_MAX];
    networks[0] = 1;
    networks[1] = 1;
    Host::new(HostConfig {
        core: core::Config {
            node_id: 1,
            cluster_id: 7,
            incarnation: 1,
            networks,
            timing: Timing::default(),
            geometry: Geometry::for_disk(64 << 20, 4).expect("a 64 MiB disk fits"),
            mutation: core::Mutation::None,
            digest_every_update: false,
            builtin_groups: 0b11,
        },
        seed: 1,
        test_groups,
        refuse_ms_max: u64::MAX,
        runner_mutation: RunnerMutation::None,
        stop_failure: Default::default(),
    })
}

fn pings(host: &mut Host) -> usize {
    std::iter::from_fn(|| host.poll_output())
        .filter(|output| matches!(output, HostOutput::Monitor(Command::Ping { .. })))
        .count()
}

#[test]
fn a_host_holding_nothing_pings_its_monitor_every_quarter_of_the_fence_timeout() {
    let mut host = host(Vec::new());
    let quarter_ms = u64::from(Timing::default().fence_timeout_ms) / 4;
    host.tick(10_000);
    assert_eq!(pings(&mut host), 1, "the first tick arms the monitor");
    host.tick(10_000 + quarter_ms - 1);
    assert_eq!(pings(&mut host), 0, "not before a quarter passed");
    host.tick(10_000 + quarter_ms);
    assert_eq!(pings(&mut host), 1);
    assert_eq!(host.holding_groups(), 0);
}

#[test]
fn only_the_configured_test_groups_resources_are_the_hosts_own() {
    let host = host(vec![(1, "sleep 100".into())]);
    assert!(host.is_test_group_resource("group-1"));
    assert!(
        host.is_test_group_resource("group-2"),
        "a built-in group without a command"
    );
    assert!(
        !host.is_test_group_resource("group-3"),
        "not a built-in group"
    );
    assert!(!host.is_test_group_resource("group-x"));
    assert!(!host.is_test_group_resource("web"));
}

#[test]
fn a_stop_the_core_did_not_ask_for_tells_it_nothing() {
    let mut host = host(vec![(1, "sleep 100".into())]);
    host.tick(10_000);
    let stopped = monitor::Event::Done {
        resource: "group-1".into(),
        operation: Operation::Stop,
        outcome: Outcome::Success,
        elapsed_ms: 3,
    };
    host.monitor_event(10_001, &stopped);
    assert_eq!(host.core().stopping_groups(), 0);
    assert_eq!(host.holding_groups(), 0);
    let to_core = std::iter::from_fn(|| host.poll_output())
        .filter(|output| matches!(output, HostOutput::Event(_) | HostOutput::Group { .. }))
        .count();
    assert_eq!(to_core, 0, "an unasked stop changed nothing in the core");
}

#[test]
fn the_wall_clock_given_is_kept_and_a_tick_input_ticks_the_host() {
    let mut host = host(Vec::new());
    host.step(
        5_000,
        Input::WallClock {
            unix_s: 1_800_000_000,
            local_hour: 12,
        },
    );
    assert_eq!(host.wall_clock, Some((1_800_000_000, 5_000)));
    host.step(6_000, Input::Tick { now_ms: 6_000 });
    assert_eq!(pings(&mut host), 1, "a Tick through step pings like tick()");
}
