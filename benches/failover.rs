//! Failover benchmark (DESIGN.md §7): client-observed outage of a group's service address when
//! its owner is killed (SIGKILL of the daemon), when its daemon is paused (SIGSTOP), and on a
//! partition of a two-node box with a quorum disk (plus, for contrast, a three-node partition
//! in which the owner is on the minority side); and, in catalog mode, the group `web` (a
//! virtual IP of the `ip` type and a `process` service behind it, see `testbed/vip.rs`) when
//! its owner crashes (daemon, monitor and resources at once) and when its daemon alone is
//! killed. A client in its own namespace connects every
//! 10 ms; the outage is from the end of its last answered connection before the fault to the
//! start of the next answered one (resolution: one interval plus one connection, ~11 ms).
//!
//! Run as root: `cargo bench --bench failover` (RUNS=N to change the 10 runs per scenario).
//! Writes benches/results/failover.{json,csv,svg}. Not root: prints SKIPPED and exits 0.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use wolfpack::testbed::scenarios::{self, Scenario, Trial};
use wolfpack::testbed::vip::{self, OwnerFault, Victim};
use wolfpack::testbed::{overlap, samples, Bed, BedOptions, GroupSource};

struct Row {
    label: &'static str,
    nodes: u8,
    /// The scenario's short name (the CSV's first column).
    name: &'static str,
    /// Per run: outage in ms (None: never answered again), and who held the group after.
    outages_ms: Vec<Option<f64>>,
    kept_by_victim: usize,
    overlaps: usize,
}

fn main() {
    if !wolfpack::testbed::host::is_root() {
        println!("SKIPPED failover benchmark: needs root (network namespaces)");
        return;
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10);
    let plan: [(&'static str, u8, Scenario); 4] = [
        ("kill owner (2 nodes + disk)", 2, Scenario::Kill),
        (
            "pause owner's daemon (2 nodes + disk)",
            2,
            Scenario::PauseDaemon,
        ),
        (
            "partition (2 nodes + disk)",
            2,
            Scenario::PartitionSymmetric,
        ),
        (
            "partition, owner in minority (3 nodes)",
            3,
            Scenario::PartitionSymmetric,
        ),
    ];
    let mut rows = Vec::new();
    for (label, nodes, scenario) in plan {
        match measure(label, nodes, scenario, runs) {
            Ok(row) => rows.push(row),
            Err(error) => {
                eprintln!("failover benchmark: {label}: {error}");
                std::process::exit(1);
            }
        }
    }
    let catalog_plan: [(&'static str, &'static str, OwnerFault); 2] = [
        (
            "vip: crash web's owner (2 nodes + disk)",
            "vip-crash",
            OwnerFault::Crash,
        ),
        (
            "vip: kill web owner's daemon (2 nodes + disk)",
            "vip-kill",
            OwnerFault::KillDaemon,
        ),
    ];
    for (label, name, fault) in catalog_plan {
        match measure_vip(label, name, fault, runs) {
            Ok(row) => rows.push(row),
            Err(error) => {
                eprintln!("failover benchmark: {label}: {error}");
                std::process::exit(1);
            }
        }
    }
    report(&rows, runs);
}

fn measure(label: &'static str, nodes: u8, scenario: Scenario, runs: usize) -> Result<Row, String> {
    let mut bed = Bed::create(BedOptions {
        nodes,
        groups: GroupSource::TestGroups,
        second_network: false,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_wolfpack")),
        verbose: false,
        watchdog_ms: None,
        timing: disklayout::Timing::default(),
    })?;
    bed.start_all()?;
    bed.converge(Duration::from_secs(60))?;
    bed.start_prober()?;
    std::thread::sleep(Duration::from_millis(500));
    let mut trials: Vec<Trial> = Vec::new();
    for run in 0..runs {
        let trial = scenarios::trial(&mut bed, scenario, 1)?;
        eprintln!("{label}: run {run}: {trial:?}");
        trials.push(trial);
    }
    let samples_path = bed.stop_prober();
    let text = std::fs::read_to_string(samples_path).unwrap_or_default();
    let (samples, _) = samples::parse(&text);
    let events = std::fs::read_to_string(bed.event_log()).unwrap_or_default();
    let overlaps = overlap::check(&events).overlaps.len() + samples::double_answers(&samples).len();
    if overlaps > 0 {
        bed.keep_files = true;
    }
    let outages_ms = trials
        .iter()
        .map(|trial| {
            samples::outage_us(&samples, trial.group, trial.fault_us, trial.healed_us)
                .map(|us| us as f64 / 1000.0)
        })
        .collect();
    let kept_by_victim = trials
        .iter()
        .filter(|trial| trial.holder_at_heal == Some(trial.victim))
        .count();
    Ok(Row {
        label,
        nodes,
        name: scenario.name(),
        outages_ms,
        kept_by_victim,
        overlaps,
    })
}

/// `runs` failovers of the catalog group `web` on a 2-node catalog bed (`vip::measure`).
fn measure_vip(
    label: &'static str,
    name: &'static str,
    fault: OwnerFault,
    runs: usize,
) -> Result<Row, String> {
    let (mut bed, slot) = vip::started_bed(BedOptions {
        nodes: 2,
        groups: GroupSource::Catalog,
        second_network: false,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_wolfpack")),
        verbose: false,
        watchdog_ms: None,
        timing: disklayout::Timing::default(),
    })?;
    let measurement = vip::measure(&mut bed, slot, fault, Victim::Holder, runs)?;
    let overlaps = measurement.overlaps + measurement.double_answers;
    if overlaps > 0 {
        bed.keep_files = true;
    }
    Ok(Row {
        label,
        nodes: 2,
        name,
        outages_ms: measurement
            .runs
            .iter()
            .map(|(_, outage)| outage.map(|us| us as f64 / 1000.0))
            .collect(),
        kept_by_victim: 0,
        overlaps,
    })
}

/// The value at quantile `q` (nearest rank) of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(rows: &[Row], runs: usize) {
    let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    let _ = std::fs::create_dir_all(&results);
    println!(
        "{:<42} {:>4} {:>9} {:>9} {:>9} {:>7} {:>8}",
        "scenario", "runs", "median ms", "p99 ms", "max ms", "kept*", "overlaps"
    );
    let mut json = String::from("{\"benchmark\":\"failover\",\"interval_ms\":10,\"rows\":[");
    let mut csv = String::from("scenario,nodes,run,outage_ms\n");
    for (index, row) in rows.iter().enumerate() {
        let mut values: Vec<f64> = row.outages_ms.iter().flatten().copied().collect();
        values.sort_by(|a, b| a.total_cmp(b));
        let never = row.outages_ms.iter().filter(|o| o.is_none()).count();
        let (median, p99, max) = (
            quantile(&values, 0.5),
            quantile(&values, 0.99),
            values.last().copied().unwrap_or(f64::NAN),
        );
        println!(
            "{:<42} {:>4} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>8}{}",
            row.label,
            row.outages_ms.len(),
            median,
            p99,
            max,
            row.kept_by_victim,
            row.overlaps,
            if never > 0 {
                format!("  ({never} never recovered)")
            } else {
                String::new()
            }
        );
        for (run, outage) in row.outages_ms.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{run},{}",
                row.name,
                row.nodes,
                outage.map_or("".to_string(), |ms| format!("{ms:.1}"))
            );
        }
        let list: Vec<String> = row
            .outages_ms
            .iter()
            .map(|o| o.map_or("null".to_string(), |ms| format!("{ms:.1}")))
            .collect();
        let _ = write!(
            json,
            "{}{{\"scenario\":\"{}\",\"label\":\"{}\",\"nodes\":{},\"runs\":{},\"median_ms\":{median:.1},\"p99_ms\":{p99:.1},\"max_ms\":{max:.1},\"kept_by_victim\":{},\"overlaps\":{},\"outages_ms\":[{}]}}",
            if index > 0 { "," } else { "" },
            row.name,
            row.label,
            row.nodes,
            row.outages_ms.len(),
            row.kept_by_victim,
            row.overlaps,
            list.join(",")
        );
    }
    json.push_str("]}\n");
    println!(
        "* kept: runs in which the faulted owner still held the group (it won the partition)."
    );
    println!("{runs} runs per scenario; outage resolution ~11 ms (10 ms probe interval).");
    let _ = std::fs::write(results.join("failover.json"), json);
    let _ = std::fs::write(results.join("failover.csv"), csv);
    let _ = std::fs::write(results.join("failover.svg"), svg(rows));
    println!("wrote {}/failover.{{json,csv,svg}}", results.display());
}

/// One row per scenario: every run's outage as a dot, the median as a bar, on a shared ms axis.
fn svg(rows: &[Row]) -> String {
    let max = rows
        .iter()
        .flat_map(|row| row.outages_ms.iter().flatten())
        .fold(100.0f64, |a, &b| a.max(b));
    let scale_max = (max / 250.0).ceil() * 250.0;
    let (left, width, row_height) = (300.0, 520.0, 40.0);
    let height = 60.0 + row_height * rows.len() as f64;
    let x = |ms: f64| left + ms / scale_max * width;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"18\" font-size=\"14\">Client-observed failover outage (ms); dots: runs, bar: median</text>\n"
    );
    let mut tick = 0.0;
    while tick <= scale_max {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"30\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{tick:.0}</text>",
            x(tick),
            height - 25.0,
            height - 10.0
        );
        tick += scale_max / 5.0;
    }
    for (index, row) in rows.iter().enumerate() {
        let y = 45.0 + row_height * index as f64;
        let mut values: Vec<f64> = row.outages_ms.iter().flatten().copied().collect();
        values.sort_by(|a, b| a.total_cmp(b));
        let median = quantile(&values, 0.5);
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{:.1}\">{}</text>",
            y + 4.0,
            row.label
        );
        if median.is_finite() {
            let _ = writeln!(
                out,
                "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"#9cf\"/>",
                y - 5.0,
                x(median) - left
            );
        }
        for value in values {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#c33\" fill-opacity=\"0.6\"/>",
                x(value)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}
