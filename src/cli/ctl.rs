//! `wolfpack ctl`: asks a running node something through its admin socket and prints the answer.
//!
//! The node renders answers (text or JSON) itself, so ctl stays a thin client; it parses the
//! command with the daemon's own grammar (`crate::admin::AdminRequest`), so a wrong command is
//! named without contacting the node (exit 2), and sends the words escaped
//! (`crate::admin::words`).
use super::{CommandError, UsageError, EXIT_OK};
use crate::admin::words::encode_word;
use crate::admin::{client, AdminRequest, CatalogCommand, RequestError};
use crate::admin::{DEFAULT_SOCKET_PATH, SOCKET_ENVIRONMENT_VARIABLE};
use crate::core::catalog::{self, ResourceChange};
use crate::monitor::constants::{META_DATA_BYTES_MAX, OCF_ROOT_DEFAULT, PROGRAM_PATH};
use crate::monitor::resource::{find_program, ocf};
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
  group cleanup NAME         forget the group's failures and every node's refusal of it, and
                             its resources' failures: it is placed again at once
  resource add NAME --group G --type TYPE [--param KEY=VALUE]... [--depends R]...
                 [--restart-threshold N] [--restart-period S] [--looksalive S] [--isalive S]
                 [--timeout S] [--no-affect-group] [--force]
                      TYPE: process, script, ip, filesystem or ocf:PROVIDER:AGENT (the agent
                      is checked here, under $OCF_ROOT, default /usr/lib/ocf: every parameter
                      its meta-data requires must be given, and only those it declares, spelled
                      as it spells them, e.g. InstanceName; --force turns these refusals into
                      warnings); values are stored verbatim, no shell sees them on the way
  resource update NAME [--param KEY=VALUE]... [--remove-param KEY]... [--timeout S]
                 [--looksalive S] [--isalive S] [--restart-threshold N] [--restart-period S]
                 [--affect-group | --no-affect-group] [--force]
                      change a resource in place (an OCF agent's parameters are checked as
                      for add); a change of its parameters restarts it, and what depends on
                      it, wherever it runs; other settings take effect without a restart
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

pub fn run(words: &[&str]) -> Result<i32, CommandError> {
    if matches!(words.first(), Some(&"-h") | Some(&"--help") | Some(&"help")) {
        print!("{CTL_HELP}");
        return Ok(EXIT_OK);
    }
    let (socket, words) = split_socket(words)?;
    let request = AdminRequest::parse(&words).map_err(|error| {
        CommandError::Usage(UsageError(match error {
            RequestError::Request(why) => format!("ctl: {why}"),
            RequestError::Command(why) => format!("ctl {why}"),
        }))
    })?;
    // The admin request drops empty words, which would shift the ones after it.
    if words.iter().any(|word| word.is_empty()) {
        return Err(UsageError("ctl: an argument is empty".to_string()).into());
    }
    let socket = PathBuf::from(socket_path(socket));
    match &request {
        AdminRequest::Catalog(CatalogCommand::AddResource { resource, force })
            if resource.kind.starts_with("ocf:") =>
        {
            let given = resource.params.iter().map(|(key, _)| key.as_str());
            let checked = check_ocf_agent(&resource.kind, &resource.params, given);
            refuse_or_warn(checked, *force)?;
        }
        AdminRequest::Catalog(CatalogCommand::UpdateResource { change, force }) => {
            // The node's catalog says what the resource is; an unknown one is the node's to
            // refuse.
            let current = current_resource(&socket, &change.name).map_err(CommandError::Failed)?;
            if let Some((kind, params)) = current.filter(|(kind, _)| kind.starts_with("ocf:")) {
                let params = changed_params(params, change);
                let given = change.set_params.iter().map(|(key, _)| key.as_str());
                refuse_or_warn(check_ocf_agent(&kind, &params, given), *force)?;
            }
        }
        _ => {}
    }
    let timeout = match request {
        AdminRequest::Events { follow: true, .. } => None,
        _ => Some(client::ANSWER_TIMEOUT),
    };
    let encoded: Vec<String> = words.iter().map(|word| encode_word(word)).collect();
    let encoded: Vec<&str> = encoded.iter().map(String::as_str).collect();
    client::request(&socket, &encoded, timeout, |line| {
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

/// The `--socket` flag, if given (`--socket PATH` or `--socket=PATH`, anywhere), and the
/// request's words without it, the command word first: flags may come before it, as in
/// `ctl --json status` (`--type`'s value is not the command).
fn split_socket<'a>(words: &[&'a str]) -> Result<(Option<String>, Vec<&'a str>), UsageError> {
    let mut socket = None;
    let mut rest = Vec::new();
    let mut index = 0;
    while index < words.len() {
        let word = words[index];
        if word == "--socket" {
            let path = words
                .get(index + 1)
                .ok_or_else(|| UsageError("ctl: flag '--socket' needs a value".to_string()))?;
            socket = Some(path.to_string());
            index += 2;
            continue;
        }
        match word.strip_prefix("--socket=") {
            Some(path) => socket = Some(path.to_string()),
            None => rest.push(word),
        }
        index += 1;
    }
    let command = (0..rest.len())
        .find(|&at| !rest[at].starts_with('-') && (at == 0 || rest[at - 1] != "--type"));
    if let Some(position) = command {
        let command = rest.remove(position);
        rest.insert(0, command);
    }
    Ok((socket, rest))
}

/// How long an agent's `meta-data` may take before `resource add` gives up on it.
const META_DATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A refusal of `check_ocf_agent`, or with `--force` a warning on stderr.
fn refuse_or_warn(checked: Result<(), String>, force: bool) -> Result<(), CommandError> {
    match (checked, force) {
        (Ok(()), _) => Ok(()),
        (Err(why), true) => {
            eprintln!("ctl: warning: {why} (--force: going ahead)");
            Ok(())
        }
        (Err(why), false) => Err(CommandError::Failed(format!(
            "{why}; nothing changed (--force goes ahead anyway)"
        ))),
    }
}

/// An `ocf:PROVIDER:AGENT` resource with `params`: the agent is installed here, every
/// parameter its meta-data marks required is in `params`, and every key of `given` (the ones
/// the administrator gives now) is one it declares, spelled as it spells it. Runs in the ctl
/// process, never in the daemon, whose event loop must not wait for an agent: ctl runs on a
/// node of the cluster (the admin socket is local), so the agent read is one the cluster runs.
/// What the monitor must refuse (names, lengths, reserved prefixes, required parameters at
/// start) it refuses itself, whatever the client.
fn check_ocf_agent<'a>(
    kind: &str,
    params: &[(String, String)],
    given: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let checked = ocf::check_params(kind, params)?;
    // The root the monitor will use when the resource names one; else this process's OCF_ROOT
    // (what the administrator's shell says), else the standard one.
    let root = match params.iter().any(|(key, _)| key == "wolfpack_ocf_root") {
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
    let unknown = ocf::undeclared(&declared, given);
    if !unknown.is_empty() {
        let named: Vec<String> = unknown
            .iter()
            .map(|(key, spelled)| match spelled {
                Some(spelled) => format!("{key} (did you mean {spelled}?)"),
                None => key.to_string(),
            })
            .collect();
        let names: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
        let declares = match names.is_empty() {
            true => "it declares none".to_string(),
            false => format!("it declares {}", names.join(", ")),
        };
        let noun = if named.len() == 1 {
            "parameter"
        } else {
            "parameters"
        };
        return Err(format!(
            "{kind} does not declare {noun} {} ({declares})",
            named.join(", ")
        ));
    }
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

/// A resource's type and parameters.
type KindAndParams = (String, Vec<(String, String)>);

/// A resource's type and parameters as the node's catalog holds them (`ctl get
/// resources/NAME`), or `None` if it has no such resource.
fn current_resource(socket: &std::path::Path, name: &str) -> Result<Option<KindAndParams>, String> {
    let prefix = format!("resources/{name}/");
    let mut kind = None;
    let mut params = Vec::new();
    let words = [
        encode_word("get"),
        encode_word(&format!("resources/{name}")),
    ];
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let answer = client::request(socket, &words, Some(client::ANSWER_TIMEOUT), |line| {
        // PATH TYPE VERSION VALUE, the value of a text as `{:?}` prints it.
        let mut fields = line.splitn(4, ' ');
        let (Some(path), Some("text"), Some(_version), Some(value)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return true;
        };
        let (Some(key), Some(value)) = (path.strip_prefix(&prefix), unquote(value)) else {
            return true;
        };
        if key == "type" {
            kind = Some(value);
        } else if let Some(param) = key.strip_prefix("params/").and_then(catalog::param_key) {
            params.push((param, value));
        }
        true
    });
    match answer {
        Ok(()) => Ok(kind.map(|kind| (kind, params))),
        // A name that is no path: the node refuses the update itself, naming it.
        Err(client::ClientError::Refused(_)) => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// `params` after `change` (as the daemon will apply it: removals, then sets).
fn changed_params(
    mut params: Vec<(String, String)>,
    change: &ResourceChange,
) -> Vec<(String, String)> {
    params.retain(|(key, _)| !change.remove_params.contains(key));
    for (key, value) in &change.set_params {
        match params.iter_mut().find(|(existing, _)| existing == key) {
            Some(existing) => existing.1 = value.clone(),
            None => params.push((key.clone(), value.clone())),
        }
    }
    params
}

/// Text as Rust's `{:?}` prints it (how `ctl get` shows a text value), back to the text;
/// `None` if it is not such a rendering.
fn unquote(printed: &str) -> Option<String> {
    let inner = printed.strip_prefix('"')?.strip_suffix('"')?;
    let mut text = String::with_capacity(inner.len());
    let mut characters = inner.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            text.push(character);
            continue;
        }
        text.push(match characters.next()? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'u' => {
                let rest = characters.as_str().strip_prefix('{')?;
                let end = rest.find('}')?;
                let code = u32::from_str_radix(&rest[..end], 16).ok()?;
                characters = rest[end + 1..].chars();
                char::from_u32(code)?
            }
            _ => return None,
        });
    }
    Some(text)
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
        .current_dir("/")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_value_as_get_prints_it_reads_back() {
        for text in [
            "ocf:heartbeat:nginx",
            "",
            "a \"b\" \\ c\td\ne\r\0 é \u{301}x \u{7f}",
        ] {
            let printed = crate::core::db::Value::Text(text.to_string()).to_string();
            assert_eq!(unquote(&printed).as_deref(), Some(text), "{printed}");
        }
        for bad in ["x", "\"x", "\"\\q\"", "\"\\u{110000}\""] {
            assert_eq!(unquote(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_socket_flag_is_taken_out_and_the_command_word_put_first() {
        let cases: [(&[&str], Option<&str>, &[&str]); 5] = [
            (&["status", "--json"], None, &["status", "--json"]),
            (
                &["--socket", "/s", "--json", "status"],
                Some("/s"),
                &["status", "--json"],
            ),
            (
                &["--type", "u64", "update", "--socket=/t", "k", "7"],
                Some("/t"),
                &["update", "--type", "u64", "k", "7"],
            ),
            (&["--json", "groups"], None, &["groups", "--json"]),
            (&["--json"], None, &["--json"]),
        ];
        for (words, socket, request) in cases {
            let (found, rest) = split_socket(words).expect("accepted");
            assert_eq!(found.as_deref(), socket, "{words:?}");
            assert_eq!(rest, request, "{words:?}");
        }
        assert!(split_socket(&["status", "--socket"]).is_err());
    }
}
