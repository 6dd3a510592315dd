//! The netns bed's hardware watchdog (issue 14, `src/testbed/watchdog.rs`): the owner of a
//! group frozen whole (daemon, monitor, services) beyond its lease is crashed by its watchdog,
//! which runs outside the node's cgroup, before the others take its groups over; so when the
//! bed thaws it nothing of it serves any more: no overlap in the monitors' event log, no round
//! with two answers at the client. Root; without it the test SKIPS loudly, except under
//! CI=true, where it must run. The bed names everything `wp-<run>-` (a fresh run per bed) and
//! tears down on every exit (`Drop`, also on a failed assertion). No wall-clock assertion: the
//! timing is printed, not checked.
mod netns_support;

use netns_support::{binary, may_run};
use std::process::Command;
use std::time::Duration;
use wolfpack::testbed::bed::watchdog_timeout_max_ms;
use wolfpack::testbed::scenarios::{self, Scenario};
use wolfpack::testbed::{samples, Bed, BedOptions, GroupSource};

#[test]
fn a_node_frozen_beyond_its_lease_is_crashed_by_its_watchdog_before_a_takeover() {
    let test = "a_node_frozen_beyond_its_lease_is_crashed_by_its_watchdog_before_a_takeover";
    if !may_run(test) {
        return;
    }
    let mut bed = Bed::create(BedOptions {
        nodes: 3,
        groups: GroupSource::TestGroups,
        second_network: false,
        binary: binary(),
        verbose: false,
        watchdog_ms: Some(watchdog_timeout_max_ms()),
        timing: disklayout::Timing::default(),
    })
    .expect("bed");
    if !bed.can_freeze() {
        // Bed::create refuses a watchdog without the freezer; kept for clarity.
        eprintln!("SKIPPED {test}: no cgroup freezer on this host");
        return;
    }
    bed.start_all().expect("start");
    bed.converge(Duration::from_secs(60))
        .expect("the cluster forms");
    bed.start_prober().expect("prober");
    std::thread::sleep(Duration::from_secs(1));
    let trial = scenarios::trial(&mut bed, Scenario::FreezeNode, 1).expect("the trial completes");
    println!("{trial:?}");
    println!("{}", scenarios::watchdog_summary(&bed, &trial));
    let fired = bed.watchdog_crashes();
    let samples_path = bed.stop_prober();
    let report = bed.overlap_report();
    let text = std::fs::read_to_string(samples_path).unwrap_or_default();
    let (samples, _) = samples::parse(&text);
    let doubles = samples::double_answers(&samples);
    if !report.overlaps.is_empty() || !doubles.is_empty() || fired.is_empty() {
        bed.keep_files = true;
    }
    assert!(
        fired
            .iter()
            .any(|fired| fired.node == trial.victim && fired.crashed_us > 0),
        "the frozen node {}'s watchdog did not crash it: {fired:?} (files in {})",
        trial.victim,
        bed.dir.display()
    );
    assert!(!report.intervals.is_empty(), "no group ever came online");
    assert!(
        samples.iter().any(|sample| sample.answer.is_ok()),
        "the client never got an answer"
    );
    assert!(
        report.overlaps.is_empty() && doubles.is_empty(),
        "split brain (files in {}): overlaps {:?}, two answers in one round {:?}",
        bed.dir.display(),
        report.overlaps,
        doubles
    );
    assert_ne!(
        trial.holder_at_heal, None,
        "group 1 was served after {trial:?}"
    );
}

/// A watchdog longer than the disk's timing covers is refused by name before anything is
/// built (no root needed).
#[test]
fn a_watchdog_longer_than_the_disk_covers_is_refused() {
    let max = watchdog_timeout_max_ms();
    let output = Command::new(binary())
        .args(["testbed", "scenario", "freeze-node", "--watchdog"])
        .arg("--watchdog-timeout-ms")
        .arg((max + 1).to_string())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--watchdog-timeout-ms {}", max + 1))
            && stderr.contains(&format!("1 to {max} ms")),
        "{stderr}"
    );
}

/// `vip-failover` takes `disk format`'s timing flags: a whole-second watchdog the default timing
/// does not cover is refused, before anything is built, naming the smallest timing that does.
#[test]
fn a_whole_second_watchdog_is_refused_with_the_timing_that_covers_it() {
    let fit = disklayout::Timing::default()
        .fitting_watchdog(1000)
        .expect("a timing covers 1 s");
    let output = Command::new(binary())
        .args(["testbed", "vip-failover", "--watchdog"])
        .args(["--watchdog-timeout-ms", "1000"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "--fence-timeout-ms {} --lease-expiry-ms {}",
            fit.fence_timeout_ms, fit.lease_expiry_ms
        )),
        "{stderr}"
    );
}
