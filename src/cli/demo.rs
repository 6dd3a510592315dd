//! `wolfpack demo [--nodes N] [--json]`.
use super::{parse, parse_flags, CommandError, UsageError, EXIT_OK};

const DEMO_HELP: &str = "\
Usage: wolfpack demo [--nodes N] [--json]

Starts N nodes (default 3) on 127.0.0.1 with a shared disk file in a temporary folder, waits for
the cluster to form and its demo group to come online, kills the group's owner with SIGKILL,
waits for the group to come online on another node, prints the timeline and the final status,
then stops everything and removes the folder. The last line is failover_ms=N. Needs no root.
";

pub fn run(words: &[&str]) -> Result<i32, CommandError> {
    if matches!(words.first(), Some(&"-h") | Some(&"--help")) {
        print!("{DEMO_HELP}");
        return Ok(EXIT_OK);
    }
    let mut options = getopts::Options::new();
    options.optopt("", "nodes", "", "N");
    options.optflag("", "json", "");
    let matches = parse_flags(&options, words, "demo")?;
    if let Some(extra) = matches.free.first() {
        return Err(UsageError(format!("demo: unexpected argument '{extra}'")).into());
    }
    let nodes = match matches.opt_str("nodes") {
        Some(text) => parse::number::<u8>("nodes", &text)?,
        None => 3,
    };
    if !(2..=16).contains(&nodes) {
        return Err(UsageError(format!("--nodes {nodes}: the demo runs 2 to 16 nodes")).into());
    }
    let options = crate::demo::DemoOptions {
        nodes,
        json: matches.opt_present("json"),
    };
    crate::demo::run(&options)
        .map_err(|reason| CommandError::Failed(format!("demo failed: {reason}")))?;
    Ok(EXIT_OK)
}
