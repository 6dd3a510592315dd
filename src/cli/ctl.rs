//! `wolfpack ctl`: asks a running node something through its admin socket and prints the answer.
//!
//! The node renders answers (text or JSON) itself, so ctl stays a thin client; it checks only the
//! command's name and arity, so a typo is named without contacting the node.
use super::{parse_flags, CommandError, UsageError, EXIT_OK};
use crate::admin::{client, DEFAULT_SOCKET_PATH, SOCKET_ENVIRONMENT_VARIABLE};
use crate::core::catalog::NewResource;
use crate::monitor::constants::{META_DATA_BYTES_MAX, OCF_ROOT_DEFAULT, PROGRAM_PATH};
use crate::monitor::resource::{find_program, ocf};
use crate::node::catalog_commands;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
  groups              the groups of the catalog, where each runs, its resources
  resources           the resources of the catalog, their state on this node
  group add NAME [--preferred N,M] [--possible N,M] [--failback off|immediate|window=H-H]
                 [--failover-threshold N] [--failover-period S]
  group move NAME [--to N]   pin the group to node N (default: the next preferred node)
  group move NAME --clear    unpin it
  group remove NAME          (refused while it has resources)
  resource add NAME --group G --type TYPE [--param KEY=VALUE]... [--depends R]...
                 [--restart-threshold N] [--restart-period S] [--looksalive S] [--isalive S]
                 [--timeout S] [--no-affect-group]
                      TYPE: process, script, ip, filesystem or ocf:PROVIDER:AGENT (the agent
                      and the parameters its meta-data requires are checked here, under
                      $OCF_ROOT, default /usr/lib/ocf); values are stored verbatim, no
                      shell sees them on the way
  resource online|offline|remove|cleanup NAME
                      edits are committed cluster-wide; a concurrent conflicting edit makes
                      one of them fail with nothing changed (retry it)
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
    if let Some((socket, catalog_words)) = catalog_command(words) {
        return run_catalog(socket, &catalog_words);
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
            "ctl: missing command (status, nodes, events, metrics, get, update, delete, groups, \
             resources, group, resource, fault)"
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
    let socket = socket_path(matches.opt_str("socket"));
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

fn socket_path(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var(SOCKET_ENVIRONMENT_VARIABLE).ok())
        .unwrap_or_else(|| DEFAULT_SOCKET_PATH.to_string())
}

/// A catalog command (`group`, `resource`, `groups`, `resources`): the `--socket` flag, if
/// given, and the command's words, command word first. Its flags are many and its own, so it
/// is parsed by `catalog_commands::parse` (the daemon's parser) rather than the flags above.
fn catalog_command<'a>(words: &[&'a str]) -> Option<(Option<String>, Vec<&'a str>)> {
    let mut socket = None;
    let mut rest = Vec::new();
    let mut index = 0;
    while index < words.len() {
        let word = words[index];
        if word == "--socket" {
            socket = words.get(index + 1).map(|path| path.to_string());
            index += 2;
            continue;
        }
        match word.strip_prefix("--socket=") {
            Some(path) => socket = Some(path.to_string()),
            None => rest.push(word),
        }
        index += 1;
    }
    let position = rest.iter().position(|word| !word.starts_with('-'))?;
    if !catalog_commands::COMMAND_WORDS.contains(&rest[position]) {
        return None;
    }
    let command = rest.remove(position);
    rest.insert(0, command);
    Some((socket, rest))
}

/// Checks what only this host can (an OCF agent and its meta-data), then hands the command to
/// the node, which validates it against the catalog and commits it cluster-wide.
fn run_catalog(socket: Option<String>, words: &[&str]) -> Result<i32, CommandError> {
    let command = catalog_commands::parse(words)
        .map_err(|why| CommandError::Usage(UsageError(format!("ctl {why}"))))?;
    // The admin request drops empty words, which would shift the ones after it.
    if words.iter().any(|word| word.is_empty()) {
        return Err(UsageError("ctl: an argument is empty".to_string()).into());
    }
    if let catalog_commands::Command::AddResource(resource) = &command {
        if resource.kind.starts_with("ocf:") {
            check_ocf_agent(resource).map_err(CommandError::Failed)?;
        }
    }
    let encoded: Vec<String> = words
        .iter()
        .map(|word| catalog_commands::encode_word(word))
        .collect();
    let request: Vec<&str> = encoded.iter().map(String::as_str).collect();
    client::request(
        &PathBuf::from(socket_path(socket)),
        &request,
        Some(client::ANSWER_TIMEOUT),
        |line| {
            println!("{line}");
            true
        },
    )
    .map_err(|error| CommandError::Failed(error.to_string()))?;
    Ok(EXIT_OK)
}

/// How long an agent's `meta-data` may take before `resource add` gives up on it.
const META_DATA_TIMEOUT: Duration = Duration::from_secs(10);

/// An `ocf:PROVIDER:AGENT` resource: the agent is installed here and every parameter its
/// meta-data marks required is given. Runs in the ctl process, never in the daemon, whose
/// event loop must not wait for an agent.
fn check_ocf_agent(resource: &NewResource) -> Result<(), String> {
    let kind = resource.kind.as_str();
    let checked = ocf::check_params(kind, &resource.params)?;
    // The root the monitor will use when the resource names one; else this process's OCF_ROOT
    // (what the administrator's shell says), else the standard one.
    let root = match resource
        .params
        .iter()
        .any(|(key, _)| key == "wolfpack_ocf_root")
    {
        true => checked.root.clone(),
        false => std::env::var_os("OCF_ROOT")
            .filter(|root| !root.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(OCF_ROOT_DEFAULT)),
    };
    let path = ocf::agent_path(&root, checked.provider, checked.agent);
    if !path.is_file() {
        return Err(format!("agent {kind} not found at {}", path.display()));
    }
    if find_program(&path.to_string_lossy()).is_none() {
        return Err(format!(
            "agent {kind} at {} is not executable",
            path.display()
        ));
    }
    let xml = run_meta_data(kind, &path, &root, &checked)?;
    let declared = ocf::parse_meta_data(&xml)
        .map_err(|why| format!("agent {kind}: its meta-data is not OCF meta-data: {why}"))?;
    let missing: Vec<&str> = declared
        .iter()
        .filter(|parameter| parameter.required)
        .filter(|parameter| {
            !checked
                .agent_params
                .iter()
                .any(|(key, _)| *key == parameter.name)
        })
        .map(|parameter| parameter.name.as_str())
        .collect();
    match missing[..] {
        [] => Ok(()),
        [one] => Err(format!(
            "{kind} needs parameter {one} (required by its meta-data)"
        )),
        _ => Err(format!(
            "{kind} needs parameters {} (required by its meta-data)",
            missing.join(", ")
        )),
    }
}

/// The agent's `meta-data` output, with the environment the monitor gives agents, its own
/// process group and a deadline (a hung agent is killed with everything it started).
fn run_meta_data(
    kind: &str,
    path: &std::path::Path,
    root: &std::path::Path,
    checked: &ocf::OcfParams,
) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(path)
        .arg("meta-data")
        .env_clear()
        .env("PATH", PROGRAM_PATH)
        .env("LC_ALL", "C")
        .env("OCF_ROOT", root)
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "0")
        .env("OCF_RESOURCE_TYPE", checked.agent)
        .env("OCF_RESOURCE_PROVIDER", checked.provider)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|error| format!("agent {kind}: cannot run {}: {error}", path.display()))?;
    let started = Instant::now();
    let output = child.stdout.take();
    let (sender, receiver) = std::sync::mpsc::channel();
    // A thread drains the pipe, so an agent that writes more than a pipe holds cannot block
    // on it while this one waits for its exit.
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(output) = output {
            let limit = META_DATA_BYTES_MAX as u64;
            let _ = output.take(limit).read_to_end(&mut bytes);
        }
        let _ = sender.send(bytes);
    });
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < META_DATA_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                // Not reaped yet, so the group id is still this agent's.
                if pid > 1 {
                    crate::monitor::children::signal_group(pid, libc::SIGKILL);
                }
                let _ = child.wait();
                return Err(format!(
                    "agent {kind}: meta-data did not finish within {} s",
                    META_DATA_TIMEOUT.as_secs()
                ));
            }
        }
    };
    if !status.success() {
        return Err(format!("agent {kind}: meta-data failed ({status})"));
    }
    let remaining = META_DATA_TIMEOUT.saturating_sub(started.elapsed());
    let bytes = receiver.recv_timeout(remaining).map_err(|_| {
        format!("agent {kind}: meta-data exited but a process it started holds its output open")
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
