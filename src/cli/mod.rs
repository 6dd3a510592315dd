//! The command line: parses flags with getopts, runs a command, and turns every outcome into
//! one exit code. Flag validation happens here; nothing below sees an unchecked flag.
//!
//! Exit codes: 0 success; 1 the command ran and failed (an unreadable or bad disk, a refused
//! format); 2 a usage error (a wrong or missing flag), reported in one line that names it.
mod ctl;
mod demo;
mod disk;
mod dump;
mod keygen;
mod node;
mod parse;

use std::fmt;

/// The command succeeded.
pub const EXIT_OK: i32 = 0;
/// The command ran and failed, or found a problem it reports.
pub const EXIT_FAILURE: i32 = 1;
/// The command line was wrong.
pub const EXIT_USAGE: i32 = 2;

const TOP_HELP: &str = "\
wolfpack: a high-availability cluster service

Usage: wolfpack COMMAND [ARGS]

Commands:
  demo [--nodes N]       a local cluster that fails over, printed as a timeline (no root)
  disk format PATH ...   write a fresh shared disk (see 'wolfpack disk --help')
  disk dump PATH         print every region and record of a shared disk
  disk check PATH        check every record; exit 1 when any is bad
  node --disk PATH --node-id N --key FILE
                         run this machine's cluster node (see 'wolfpack node --help')
  ctl COMMAND            ask a running node (see 'wolfpack ctl --help')
  keygen FILE [--force]  write a fresh cluster key, mode 0600 (see 'wolfpack keygen --help')
  testbed COMMAND        network-namespace testbed, faults, chaos (root; 'wolfpack testbed --help')
  simulate --seed N | --seeds A..B [--nodes N] [--mutate NAME]
                         the deterministic simulator: seeded faults, invariant checks
  simulate --seeds A..B --failover-timeline
                         per seed, a two-node failover after the quorum owner crashes, in ticks

Flags:
  -h, --help             print this help
  -V, --version          print the version
";

/// A wrong or missing flag or argument. Its text is one line that names what is wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a command failed after its flags were accepted.
#[derive(Debug)]
pub enum CommandError {
    /// The command line was wrong.
    Usage(UsageError),
    /// The command ran and failed; the text says what and where.
    Failed(String),
}

impl From<UsageError> for CommandError {
    fn from(error: UsageError) -> CommandError {
        CommandError::Usage(error)
    }
}

/// Runs the command line `args` (program name first) and returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let words: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let outcome = match words.first().copied() {
        None => {
            eprint!("{TOP_HELP}");
            return EXIT_USAGE;
        }
        Some("-h") | Some("--help") | Some("help") => {
            print!("{TOP_HELP}");
            return EXIT_OK;
        }
        Some("-V") | Some("--version") => {
            println!("wolfpack {}", env!("CARGO_PKG_VERSION"));
            return EXIT_OK;
        }
        Some("disk") => disk::run(&words[1..]),
        Some("simulate") => return crate::sim::cli::run_simulate(&args[2..]),
        Some("ctl") => ctl::run(&words[1..]),
        Some("demo") => demo::run(&words[1..]),
        Some("node") => node::run(&words[1..]),
        Some("keygen") => keygen::run(&words[1..]),
        Some("testbed") => return crate::testbed::cli::main(&words[1..]),
        // Internal: the resource monitor, started by `wolfpack node`; not in --help.
        Some("monitor") => return crate::monitor::main(&words[1..]),
        Some(other) => Err(CommandError::Usage(UsageError(format!(
            "unknown command '{other}'"
        )))),
    };
    match outcome {
        Ok(code) => code,
        Err(CommandError::Usage(error)) => {
            eprintln!("wolfpack: {error} (see 'wolfpack --help')");
            EXIT_USAGE
        }
        Err(CommandError::Failed(message)) => {
            eprintln!("wolfpack: {message}");
            EXIT_FAILURE
        }
    }
}

/// Whether the command line `args` (program name first) runs a command that only prints and
/// exits, which a closed stdout may end. The node and the monitor serve clients, and demo and
/// testbed look after child processes: a peer hanging up must never end any of them, so they
/// keep SIGPIPE ignored and see EPIPE instead.
pub fn only_prints(args: &[String]) -> bool {
    matches!(
        args.get(1).map(String::as_str),
        None | Some("-h" | "--help" | "help" | "-V" | "--version")
            | Some("disk" | "simulate" | "ctl" | "keygen")
    )
}

/// Parses `words` with `options`, turning getopts' errors into one line that names the flag.
fn parse_flags(
    options: &getopts::Options,
    words: &[&str],
    command: &str,
) -> Result<getopts::Matches, UsageError> {
    options.parse(words).map_err(|error| {
        let text = match error {
            getopts::Fail::UnrecognizedOption(flag) => format!("unknown flag '{}'", dashed(&flag)),
            getopts::Fail::ArgumentMissing(flag) => {
                format!("flag '{}' needs a value", dashed(&flag))
            }
            getopts::Fail::OptionMissing(flag) => {
                format!("missing required flag '{}'", dashed(&flag))
            }
            getopts::Fail::OptionDuplicated(flag) => {
                format!("flag '{}' is given twice", dashed(&flag))
            }
            getopts::Fail::UnexpectedArgument(flag) => {
                format!("flag '{}' takes no value", dashed(&flag))
            }
        };
        UsageError(format!("{command}: {text}"))
    })
}

fn dashed(flag: &str) -> String {
    match flag.starts_with('-') {
        true => flag.to_string(),
        false if flag.len() == 1 => format!("-{flag}"),
        false => format!("--{flag}"),
    }
}
