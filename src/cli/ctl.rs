//! `wolfpack ctl`: asks a running node something through its admin socket and prints the answer.
//!
//! The node renders answers (text or JSON) itself, so ctl stays a thin client; it checks only the
//! command's name and arity, so a typo is named without contacting the node.
use super::{parse_flags, CommandError, UsageError, EXIT_OK};
use crate::admin::{client, DEFAULT_SOCKET_PATH, SOCKET_ENVIRONMENT_VARIABLE};
use std::path::PathBuf;

pub const CTL_HELP: &str = "\
Usage: wolfpack ctl [--socket PATH] COMMAND [ARGS] [--json]

Commands:
  status              membership, epoch, quorum owner, lease, links, GUM sequence, clock skew
  nodes               every configured node and its state
  events              every node's events merged in wall-clock order (each peer's clock
                      corrected by its measured skew); a header line names the nodes that
                      answered within a second, the correction applied, and those that did not
  events --local      this node's events only
  events --follow     this node's events, then each new one as it happens (local only)
  metrics             counters in Prometheus text format
  get KEY             a key of the cluster database and every key under it
  update KEY VALUE    set a key; returns once the update is committed cluster-wide
                      (--type text|u64|i64|bool|nodes; text by default)
  delete KEY          delete a key and every key under it, committed cluster-wide
  fault disk-stall MS every shared-disk operation of the node waits MS ms (tests only: the
                      node must run with --allow-fault-injection, or it refuses)
  fault disk-stall off
                      the node's disk answers again at once

Flags:
  --socket PATH       the node's admin socket (default: $WOLFPACK_SOCKET, else /run/wolfpack/admin.sock)
  --json              answer in JSON
  --local             (events) this node's events only, without asking the peers
  --follow            (events) keep the connection open and print this node's events as they
                      happen (never merged: the peers' events are not streamed)
  --type TYPE         (update) the value's type
";

/// Each command and how many operands it takes.
const COMMANDS: [(&str, usize); 8] = [
    ("status", 0),
    ("nodes", 0),
    ("events", 0),
    ("metrics", 0),
    ("get", 1),
    ("update", 2),
    ("delete", 1),
    ("fault", 2),
];

pub fn run(words: &[&str]) -> Result<i32, CommandError> {
    if matches!(words.first(), Some(&"-h") | Some(&"--help") | Some(&"help")) {
        print!("{CTL_HELP}");
        return Ok(EXIT_OK);
    }
    let mut options = getopts::Options::new();
    options.optopt("", "socket", "", "PATH");
    options.optflag("", "json", "");
    options.optflag("", "follow", "");
    options.optflag("", "local", "");
    options.optopt("", "type", "", "TYPE");
    let matches = parse_flags(&options, words, "ctl")?;
    let Some((command, operands)) = matches.free.split_first() else {
        return Err(UsageError(
            "ctl: missing command (status, nodes, events, metrics, get, update, delete, fault)"
                .into(),
        )
        .into());
    };
    let Some(&(_, arity)) = COMMANDS.iter().find(|(name, _)| name == command) else {
        return Err(UsageError(format!("ctl: unknown command '{command}'")).into());
    };
    if operands.len() != arity {
        let expected = match (command.as_str(), arity) {
            (_, 0) => String::from("no operands"),
            (_, 1) => String::from("one operand (KEY)"),
            ("fault", _) => String::from("two operands (disk-stall MS|off)"),
            _ => String::from("two operands (KEY VALUE)"),
        };
        return Err(UsageError(format!(
            "ctl {command}: takes {expected}, got {}",
            operands.len()
        ))
        .into());
    }
    let follow = matches.opt_present("follow");
    if follow && command != "events" {
        return Err(
            UsageError(format!("ctl {command}: flag '--follow' is for events only")).into(),
        );
    }
    let local = matches.opt_present("local");
    if local && command != "events" {
        return Err(UsageError(format!("ctl {command}: flag '--local' is for events only")).into());
    }
    let value_type = matches.opt_str("type");
    if value_type.is_some() && command != "update" {
        return Err(UsageError(format!("ctl {command}: flag '--type' is for update only")).into());
    }
    let socket = matches
        .opt_str("socket")
        .or_else(|| std::env::var(SOCKET_ENVIRONMENT_VARIABLE).ok())
        .unwrap_or_else(|| DEFAULT_SOCKET_PATH.to_string());
    let mut request: Vec<&str> = vec![command.as_str()];
    request.extend(operands.iter().map(String::as_str));
    if matches.opt_present("json") {
        request.push("--json");
    }
    if follow {
        request.push("--follow");
    }
    if local {
        request.push("--local");
    }
    if let Some(value_type) = value_type.as_deref() {
        request.push("--type");
        request.push(value_type);
    }
    let timeout = if follow {
        None
    } else {
        Some(client::ANSWER_TIMEOUT)
    };
    client::request(&PathBuf::from(&socket), &request, timeout, |line| {
        println!("{line}");
        true
    })
    .map_err(|error| CommandError::Failed(error.to_string()))?;
    Ok(EXIT_OK)
}
