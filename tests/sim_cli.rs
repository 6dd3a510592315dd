//! `wolfpack simulate` argument handling (the logic behind the subcommand).

use wolfpack::sim::cli::run_simulate;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|text| text.to_string()).collect()
}

#[test]
fn wrong_or_missing_flags_exit_2() {
    assert_eq!(run_simulate(&args(&["--bogus"])), 2);
    assert_eq!(run_simulate(&args(&[])), 2);
    assert_eq!(run_simulate(&args(&["--seed", "x"])), 2);
    assert_eq!(run_simulate(&args(&["--seeds", "5..1"])), 2);
    assert_eq!(
        run_simulate(&args(&["--seed", "1", "--mutate", "nonsense"])),
        2
    );
    assert_eq!(run_simulate(&args(&["--seed", "1", "--nodes", "0"])), 2);
}

#[test]
fn a_clean_seed_exits_0_and_a_caught_mutation_exits_1() {
    assert_eq!(run_simulate(&args(&["--seed", "3", "--nodes", "3"])), 0);
    assert_eq!(
        run_simulate(&args(&["--seeds", "1..60", "--mutate", "no-majority-rule"])),
        1
    );
}

#[test]
fn the_failover_timeline_runs_two_nodes_unmutated_and_exits_0_when_the_group_came_back() {
    assert_eq!(
        run_simulate(&args(&["--seeds", "1..2", "--failover-timeline"])),
        0
    );
    assert_eq!(
        run_simulate(&args(&[
            "--seed",
            "1",
            "--failover-timeline",
            "--nodes",
            "3"
        ])),
        2
    );
}
