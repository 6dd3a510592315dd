//! `wolfpack testbed ...`: the netns testbed from the command line.
use super::bed::{install_interrupt_flag, Bed, BedOptions, GroupSource};
use super::chaos::{self, ChaosOptions};
use super::probe::{self, ProbeOptions};
use super::scenarios::{self, Scenario};
use super::{samples, serve};
use disklayout::Timing;
use std::path::PathBuf;
use std::time::Duration;

const HELP: &str = "\
Usage: wolfpack testbed COMMAND (root; see testbed/README.md)

Commands:
  up [--nodes N] [--second-network] [--catalog] [--hold-s S]
        build a bed, start the nodes, print where everything is, hold until Ctrl-C (or S s),
        tear down; --catalog: no test groups, the catalog group 'web' (a virtual IP
        198.18.0.100 and a service behind it) created through 'wolfpack ctl'
  vip-failover [--fault crash|kill] [--victim holder|not-quorum-owner] [--nodes N] [--runs R]
               [--second-network] [--keep-files] [--watchdog [--watchdog-timeout-ms W]]
               [--heartbeat-interval-ms MS] [--lease-renew-interval-ms MS]
               [--lease-expiry-ms MS] [--fence-timeout-ms MS]
        catalog mode: take web's owner down R times (crash: daemon, monitor and resources
        SIGKILLed at once, its added addresses gone; kill: SIGKILL of the daemon alone, its
        monitor fences), heal in between; not-quorum-owner first moves web off the node
        holding the quorum lease; prints each client-observed outage, then
        'runs=R median_ms=M max_ms=X overlaps=O double_answers=D'; exit 1 on split brain;
        the timing flags are 'disk format's (its defaults when left out): a watchdog of W ms
        needs a timing that covers it (a refused W names the smallest one that does)
  scenario NAME [--nodes N] [--second-network] [--group G] [--watchdog [--watchdog-timeout-ms W]]
        one fault against group G's holder (kill, pause-daemon, freeze-node, partition,
        partition-one-way, disk-stall), heal, check; prints the client-observed outage
  chaos [--seed S] [--duration-s D] [--nodes 2,5] [--second-network] [--verbose]
        [--watchdog [--watchdog-timeout-ms W]]
        a seeded random fault schedule per cluster size, then heal and check; the last line is
        'cycles=N overlaps=O lost_updates=L stuck_groups=S', exit 1 unless all are 0; with
        --watchdog half the whole-node freezes outlast the lease
  --watchdog: every node gets a hardware watchdog the testbed runs outside the node's cgroup
        (a FIFO given as 'wolfpack node --watchdog'); W ms without a keepalive byte crashes
        the whole node (as 'crash'); W defaults to, and may not exceed, the disk timing's
        bound (fence timeout less clock drift: 499 ms at the default timing; up and
        vip-failover take the timing flags, the scenarios and chaos the default timing only)
  cleanup
        remove what runs whose testbed process is gone left behind (wp-* namespaces, cgroups)
";

/// Runs `wolfpack testbed WORDS...`; returns the exit code.
pub fn main(words: &[&str]) -> i32 {
    let outcome = match words.first().copied() {
        None | Some("-h") | Some("--help") => {
            print!("{HELP}");
            return 0;
        }
        Some("serve") => run_serve(&words[1..]),
        Some("probe") => run_probe(&words[1..]),
        Some(command) => {
            if let Err(error) = install_interrupt_flag() {
                eprintln!("wolfpack testbed: {error}");
                return 1;
            }
            match command {
                "up" => up(&words[1..]),
                "scenario" => scenario(&words[1..]),
                "vip-failover" => vip_failover(&words[1..]),
                "chaos" => return run_chaos(&words[1..]),
                "cleanup" => super::cleanup::stale_runs(),
                other => Err(format!("unknown testbed command '{other}' (see --help)")),
            }
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("wolfpack testbed: {error}");
            1
        }
    }
}

fn flags(words: &[&str]) -> Result<getopts::Matches, String> {
    let mut options = getopts::Options::new();
    for name in [
        "nodes",
        "hold-s",
        "group",
        "seed",
        "duration-s",
        "out",
        "groups",
        "device",
        "interval-ms",
        "timeout-ms",
        "address",
        "runs",
        "fault",
        "victim",
        "watchdog-timeout-ms",
    ]
    .into_iter()
    .chain(TIMING_FLAGS)
    {
        options.optopt("", name, "", "VALUE");
    }
    options.optmulti("", "service", "", "G=ADDRESS");
    options.optflag("", "second-network", "");
    options.optflag("", "catalog", "");
    options.optflag("", "keep-files", "");
    options.optflag("", "verbose", "");
    options.optflag("", "watchdog", "");
    let matches = options.parse(words).map_err(|error| error.to_string())?;
    if let Some(extra) = matches.free.first() {
        return Err(format!("unexpected argument '{extra}'"));
    }
    Ok(matches)
}

fn number<T: std::str::FromStr>(
    matches: &getopts::Matches,
    name: &str,
    default: T,
) -> Result<T, String> {
    match matches.opt_str(name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("--{name} '{text}' is not a valid number")),
    }
}

fn binary() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|error| format!("cannot find the wolfpack binary: {error}"))
}

/// `disk format`'s timing flags, by the same names (the clock drift bound keeps its default).
const TIMING_FLAGS: [&str; 4] = [
    "heartbeat-interval-ms",
    "lease-renew-interval-ms",
    "lease-expiry-ms",
    "fence-timeout-ms",
];

/// The disk's timing: the default with the timing flags given, refused as `disk format`
/// would refuse it (before anything is built).
fn timing(matches: &getopts::Matches) -> Result<Timing, String> {
    let defaults = Timing::default();
    let timing = Timing {
        heartbeat_interval_ms: number(
            matches,
            "heartbeat-interval-ms",
            defaults.heartbeat_interval_ms,
        )?,
        lease_renew_interval_ms: number(
            matches,
            "lease-renew-interval-ms",
            defaults.lease_renew_interval_ms,
        )?,
        lease_expiry_ms: number(matches, "lease-expiry-ms", defaults.lease_expiry_ms)?,
        fence_timeout_ms: number(matches, "fence-timeout-ms", defaults.fence_timeout_ms)?,
        ..defaults
    };
    timing.validate().map_err(|error| match error {
        disklayout::EncodeError::InvalidField { field, problem } => {
            format!("--{} {problem}", field.replace('_', "-"))
        }
    })?;
    Ok(timing)
}

/// The commands whose faults are timed for the default timing refuse the timing flags rather
/// than ignore them.
fn default_timing_only(matches: &getopts::Matches, command: &str) -> Result<(), String> {
    match TIMING_FLAGS.iter().find(|flag| matches.opt_present(flag)) {
        Some(flag) => Err(format!(
            "--{flag}: {command} runs at the default timing only (its faults are timed for it); \
             up and vip-failover take the timing flags"
        )),
        None => Ok(()),
    }
}

/// `--watchdog [--watchdog-timeout-ms W]`: the watchdog's timeout, if any; by default the
/// longest `timing` covers (checked against it by `Bed::create`).
fn watchdog_ms(matches: &getopts::Matches, timing: &Timing) -> Result<Option<u64>, String> {
    match (
        matches.opt_present("watchdog"),
        matches.opt_present("watchdog-timeout-ms"),
    ) {
        (false, false) => Ok(None),
        (false, true) => Err("--watchdog-timeout-ms needs --watchdog".into()),
        (true, _) => number(
            matches,
            "watchdog-timeout-ms",
            timing.watchdog_timeout_max_ms(),
        )
        .map(Some),
    }
}

fn bed_options(matches: &getopts::Matches, nodes: u8) -> Result<BedOptions, String> {
    let timing = timing(matches)?;
    let watchdog_ms = watchdog_ms(matches, &timing)?;
    Ok(BedOptions {
        nodes,
        groups: GroupSource::TestGroups,
        second_network: matches.opt_present("second-network"),
        binary: binary()?,
        verbose: true,
        watchdog_ms,
        timing,
    })
}

fn up(words: &[&str]) -> Result<(), String> {
    let matches = flags(words)?;
    let nodes = number(&matches, "nodes", 3u8)?;
    let hold_s = number(&matches, "hold-s", u64::MAX / 4000)?;
    let bed = match matches.opt_present("catalog") {
        true => super::vip::started_bed(bed_options(&matches, nodes)?)?.0,
        false => {
            let mut bed = Bed::create(bed_options(&matches, nodes)?)?;
            bed.start_all()?;
            bed.converge(Duration::from_secs(60))?;
            bed
        }
    };
    println!("run {} in {}", bed.names.prefix, bed.dir.display());
    println!("holders {:?}", bed.holders());
    let service = match matches.opt_present("catalog") {
        true => super::vip::VIP_ADDRESS.to_string(),
        false => super::service_address(1),
    };
    println!(
        "try: ip netns exec {} nc {service} 8000; wolfpack ctl --socket {} groups",
        bed.names.client_namespace(),
        bed.socket(1).display()
    );
    let _ = super::bed::sleep_ms(hold_s.saturating_mul(1000));
    Ok(())
}

fn scenario(words: &[&str]) -> Result<(), String> {
    let name = words.first().copied().unwrap_or_default();
    let scenario = Scenario::parse(name).ok_or(format!("unknown scenario '{name}'"))?;
    let matches = flags(&words[1..])?;
    default_timing_only(&matches, "scenario")?;
    let nodes = number(&matches, "nodes", 3u8)?;
    let group = number(&matches, "group", 1u8)?;
    let mut bed = Bed::create(bed_options(&matches, nodes)?)?;
    bed.start_all()?;
    bed.converge(Duration::from_secs(60))?;
    bed.start_prober()?;
    super::bed::sleep_ms(500)?;
    let trial = scenarios::trial(&mut bed, scenario, group)?;
    let samples_path = bed.stop_prober();
    let text = std::fs::read_to_string(samples_path).unwrap_or_default();
    let (samples, _) = samples::parse(&text);
    let outage = samples::outage_us(&samples, group, trial.fault_us, trial.healed_us);
    // The event log with the intervals of a node the watchdog crashed closed at its crash.
    let report = bed.overlap_report();
    let doubles = samples::double_answers(&samples);
    println!("{trial:?}");
    if bed.options.watchdog_ms.is_some() {
        println!("{}", scenarios::watchdog_summary(&bed, &trial));
    }
    println!(
        "outage_ms={} overlaps={} double_answers={}",
        outage.map_or("never-recovered".to_string(), |us| format!(
            "{:.1}",
            us as f64 / 1000.0
        )),
        report.overlaps.len(),
        doubles.len()
    );
    if !report.overlaps.is_empty() || !doubles.is_empty() {
        bed.keep_files = true;
        return Err(format!("split brain: {:?} {:?}", report.overlaps, doubles));
    }
    Ok(())
}

fn vip_failover(words: &[&str]) -> Result<(), String> {
    let matches = flags(words)?;
    let nodes = number(&matches, "nodes", 2u8)?;
    let runs = number(&matches, "runs", 10usize)?;
    let fault_name = matches.opt_str("fault").unwrap_or_else(|| "crash".into());
    let fault = super::vip::OwnerFault::parse(&fault_name)
        .ok_or(format!("--fault '{fault_name}': crash or kill"))?;
    let victim_name = matches.opt_str("victim").unwrap_or_else(|| "holder".into());
    let victim = super::vip::Victim::parse(&victim_name).ok_or(format!(
        "--victim '{victim_name}': holder or not-quorum-owner"
    ))?;
    let (mut bed, slot) = super::vip::started_bed(bed_options(&matches, nodes)?)?;
    bed.keep_files = matches.opt_present("keep-files");
    let measurement = super::vip::measure(&mut bed, slot, fault, victim, runs)?;
    for (run, (failover, outage)) in measurement.runs.iter().enumerate() {
        println!(
            "run {run}: {fault_name} of node {}{}, web online on node {}: outage_ms={}",
            failover.victim,
            match failover.victim_held_quorum {
                true => " (held the quorum lease)",
                false => "",
            },
            failover.survivor,
            outage.map_or("never-recovered".to_string(), |us| format!(
                "{:.1}",
                us as f64 / 1000.0
            ))
        );
    }
    let outages = measurement.sorted_outages_ms();
    let median = match outages.len() {
        0 => f64::NAN,
        count if count % 2 == 1 => outages[count / 2],
        count => (outages[count / 2 - 1] + outages[count / 2]) / 2.0,
    };
    let max = outages.last().copied().unwrap_or(f64::NAN);
    println!(
        "runs={} median_ms={median:.1} max_ms={max:.1} overlaps={} double_answers={}",
        measurement.runs.len(),
        measurement.overlaps,
        measurement.double_answers
    );
    if measurement.overlaps > 0 || measurement.double_answers > 0 {
        bed.keep_files = true;
        return Err("split brain: see the files kept".into());
    }
    Ok(())
}

fn run_chaos(words: &[&str]) -> i32 {
    let result = (|| {
        let matches = flags(words)?;
        default_timing_only(&matches, "chaos")?;
        let sizes = matches.opt_str("nodes").unwrap_or_else(|| "2,5".into());
        let cluster_sizes = sizes
            .split(',')
            .map(|size| size.trim().parse::<u8>())
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("--nodes '{sizes}': expected sizes like 2,5"))?;
        let options = ChaosOptions {
            seed: number(&matches, "seed", 1u64)?,
            duration_s: number(&matches, "duration-s", 60u64)?,
            cluster_sizes,
            second_network: matches.opt_present("second-network"),
            binary: binary()?,
            verbose: matches.opt_present("verbose"),
            watchdog_ms: watchdog_ms(&matches, &Timing::default())?,
        };
        chaos::run(&options)
    })();
    match result {
        Ok(outcome) => {
            println!(
                "client double answers (two names for one group in one 10 ms round, counted in overlaps): {}",
                outcome.double_answers
            );
            println!(
                "database updates acknowledged during the faults: {} (every one checked on every node)",
                outcome.updates_acknowledged
            );
            if outcome.watchdog_crashes > 0 {
                println!("watchdog crashes: {}", outcome.watchdog_crashes);
            }
            println!("{}", outcome.final_line());
            if outcome.clean() {
                0
            } else {
                1
            }
        }
        Err(error) => {
            eprintln!("wolfpack testbed chaos: {error}");
            // The run did not finish, so nothing was checked: the exit code says so.
            println!("cycles=0 overlaps=0 lost_updates=0 stuck_groups=0");
            1
        }
    }
}

fn run_serve(words: &[&str]) -> Result<(), String> {
    let matches = flags(words)?;
    if let Some(address) = matches.opt_str("address") {
        return serve::run_on_address(&address);
    }
    let group = number(&matches, "group", 0u8)?;
    let device = matches
        .opt_str("device")
        .ok_or("serve: --device is required")?;
    serve::run(group, &device)
}

fn run_probe(words: &[&str]) -> Result<(), String> {
    let matches = flags(words)?;
    let services = matches
        .opt_strs("service")
        .iter()
        .map(|text| {
            let parsed = text
                .split_once('=')
                .and_then(|(group, address)| Some((group.parse().ok()?, address.parse().ok()?)));
            parsed.ok_or(format!("probe: --service '{text}': expected G=ADDRESS"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    probe::run(&ProbeOptions {
        out: PathBuf::from(matches.opt_str("out").ok_or("probe: --out is required")?),
        groups: number(&matches, "groups", 1u8)?,
        services,
        nodes: number(&matches, "nodes", 2u8)?,
        interval_ms: number(&matches, "interval-ms", 10u64)?,
        timeout_ms: number(&matches, "timeout-ms", 50u64)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(words: &[&str]) -> getopts::Matches {
        flags(words).expect("the flags parse")
    }

    #[test]
    fn the_timing_flags_override_the_default_timing() {
        assert_eq!(timing(&parsed(&[])), Ok(Timing::default()));
        let fitted = parsed(&["--fence-timeout-ms", "1010", "--lease-expiry-ms", "1260"]);
        let timing = timing(&fitted).expect("a valid timing");
        assert_eq!(
            (timing.fence_timeout_ms, timing.lease_expiry_ms),
            (1010, 1260)
        );
        assert_eq!(
            timing.heartbeat_interval_ms,
            Timing::default().heartbeat_interval_ms
        );
        assert_eq!(
            watchdog_ms(&parsed(&["--watchdog"]), &timing),
            Ok(Some(timing.watchdog_timeout_max_ms())),
            "the watchdog defaults to the longest the timing covers"
        );
    }

    #[test]
    fn a_timing_disk_format_would_refuse_is_refused_by_its_flag() {
        let error = timing(&parsed(&["--lease-expiry-ms", "300"])).expect_err("too short");
        assert!(error.starts_with("--lease-expiry-ms "), "{error}");
        let error = timing(&parsed(&["--fence-timeout-ms", "ten"])).expect_err("not a number");
        assert!(error.contains("--fence-timeout-ms 'ten'"), "{error}");
    }

    #[test]
    fn commands_timed_for_the_default_timing_refuse_the_timing_flags() {
        assert_eq!(default_timing_only(&parsed(&[]), "chaos"), Ok(()));
        let error = default_timing_only(&parsed(&["--lease-expiry-ms", "2000"]), "chaos")
            .expect_err("refused");
        assert!(error.starts_with("--lease-expiry-ms: chaos"), "{error}");
    }

    #[test]
    fn a_watchdog_the_timing_does_not_cover_is_refused_with_the_timing_that_does() {
        let default = Timing::default();
        assert_eq!(
            super::super::bed::check_watchdog_fits(default.watchdog_timeout_max_ms(), &default),
            Ok(())
        );
        let fit = default.fitting_watchdog(1000).expect("a fitting timing");
        let error =
            super::super::bed::check_watchdog_fits(1000, &default).expect_err("499 ms at most");
        assert!(
            error.contains(&format!(
                "--fence-timeout-ms {} --lease-expiry-ms {}",
                fit.fence_timeout_ms, fit.lease_expiry_ms
            )),
            "{error}"
        );
        assert_eq!(super::super::bed::check_watchdog_fits(1000, &fit), Ok(()));
        assert!(super::super::bed::check_watchdog_fits(0, &fit).is_err());
    }
}
