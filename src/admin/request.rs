//! Every admin command, typed: the words of a request line (`crate::admin`) parsed once into
//! an `AdminRequest`. `ctl` parses the administrator's words with it before it contacts the
//! node (a wrong command names itself, exit 2), and the daemon parses the words it received
//! with it again (it trusts no client) and answers by matching on the enum.
//!
//! ```text
//! status [--json] | nodes [--json] | metrics
//! events [--local] [--follow] [--json]
//! get PATH [--json] | update PATH VALUE [--type text|u64|i64|bool|nodes] | delete PATH
//! fault disk-stall MS | fault disk-stall off
//! group ... | resource ... | groups | resources   (catalog_grammar.rs)
//! ```
//!
//! Flags may stand anywhere after the command word; `--json` is accepted by every command and
//! ignored where there is nothing to render.

use super::catalog_grammar::{self, CatalogCommand, COMMAND_WORDS};
use super::words::decode_word;
use crate::core::db::{Path, Value};
use std::fmt;

/// The longest disk stall `fault disk-stall` accepts: a typo must not wedge a node for days.
pub const DISK_STALL_MS_MAX: u64 = 600_000;

/// The commands other than the catalog's, and how many operands each takes.
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

const MISSING_COMMAND: &str = "missing command (status, nodes, events, metrics, get, update, \
                               delete, groups, resources, group, resource, fault)";

/// One admin command, parsed and checked as far as words can be (paths, values, node ids,
/// numbers); what needs the node's state (the catalog, the node table) is the daemon's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// `status`: membership, epoch, quorum owner, lease, links, GUM sequence, clock skew.
    Status { json: bool },
    /// `nodes`: every configured node and its state.
    Nodes { json: bool },
    /// `metrics`: counters in Prometheus text format.
    Metrics,
    /// `events`: every node's events merged (`local`: this node's only; `follow`: this node's,
    /// streamed as they happen, which wins over `local`).
    Events {
        follow: bool,
        local: bool,
        json: bool,
    },
    /// `get PATH`: the key and every key under it.
    Get { path: Path, json: bool },
    /// `update PATH VALUE [--type T]`: one put, committed cluster-wide.
    Update { path: Path, value: Value },
    /// `delete PATH`: the key and every key under it, committed cluster-wide.
    Delete { path: Path },
    /// `group ...`, `resource ...`, `groups`, `resources`.
    Catalog(CatalogCommand),
    /// `fault ...` (obeyed only by a node started with `--allow-fault-injection`).
    Fault(Fault),
}

/// A fault a test injects into a running node (`node/fault_injection.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `fault disk-stall MS`: every shared-disk operation waits this long (1 to
    /// `DISK_STALL_MS_MAX` ms).
    DiskStall { stall_ms: u64 },
    /// `fault disk-stall off`.
    DiskStallOff,
}

/// What is wrong with a request's words. The text names the command first when there is one
/// (`status: takes no operands, got 1`), so `ctl` prints `ctl status: ...` or `ctl: ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// No command, an unknown one, a flag before any command, or a word badly escaped.
    Request(String),
    /// The named command's words are wrong; the text starts with the command.
    Command(String),
}

impl RequestError {
    /// The message, as the daemon answers it.
    pub fn text(&self) -> &str {
        match self {
            RequestError::Request(text) | RequestError::Command(text) => text,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for RequestError {}

impl AdminRequest {
    /// The request the words say (decoded, the command word first), or what is wrong.
    pub fn parse(words: &[&str]) -> Result<AdminRequest, RequestError> {
        let Some(&first) = words.first() else {
            return Err(RequestError::Request(MISSING_COMMAND.to_string()));
        };
        if first.starts_with('-') {
            // Flags but no command: a wrong flag is named before the missing command.
            generic_flags(words).map_err(RequestError::Request)?;
            return Err(RequestError::Request(MISSING_COMMAND.to_string()));
        }
        if COMMAND_WORDS.contains(&first) {
            return catalog_grammar::parse(words)
                .map(AdminRequest::Catalog)
                .map_err(RequestError::Command);
        }
        let Some(&(command, arity)) = COMMANDS.iter().find(|(name, _)| *name == first) else {
            return Err(RequestError::Request(format!("unknown command '{first}'")));
        };
        parse_command(command, arity, &words[1..])
            .map_err(|why| RequestError::Command(format!("{command}: {why}")))
    }

    /// The request in a line's words as they arrived (escaped by `ctl`, `words.rs`).
    pub fn parse_received(words: &[String]) -> Result<AdminRequest, RequestError> {
        let decoded = words
            .iter()
            .map(|word| decode_word(word))
            .collect::<Result<Vec<String>, String>>()
            .map_err(RequestError::Request)?;
        let words: Vec<&str> = decoded.iter().map(String::as_str).collect();
        AdminRequest::parse(&words)
    }
}

/// The flags of the commands other than the catalog's (`--type` takes a value).
fn generic_flags(words: &[&str]) -> Result<getopts::Matches, String> {
    let mut options = getopts::Options::new();
    options.optflag("", "json", "");
    options.optflag("", "follow", "");
    options.optflag("", "local", "");
    options.optopt("", "type", "", "TYPE");
    catalog_grammar::flag_errors(&options, words)
}

/// `command`'s operands and flags (`rest`: the words after it); errors leave out the command.
fn parse_command(command: &str, arity: usize, rest: &[&str]) -> Result<AdminRequest, String> {
    let matches = generic_flags(rest)?;
    let operands: Vec<&str> = matches.free.iter().map(String::as_str).collect();
    if operands.len() != arity {
        let expected = match (command, arity) {
            (_, 0) => "no operands",
            (_, 1) => "one operand (KEY)",
            ("fault", _) => "two operands (disk-stall MS|off)",
            _ => "two operands (KEY VALUE)",
        };
        return Err(format!("takes {expected}, got {}", operands.len()));
    }
    let json = matches.opt_present("json");
    let follow = matches.opt_present("follow");
    let local = matches.opt_present("local");
    let value_type = matches.opt_str("type");
    if follow && command != "events" {
        return Err("flag '--follow' is for events only".to_string());
    }
    if local && command != "events" {
        return Err("flag '--local' is for events only".to_string());
    }
    if value_type.is_some() && command != "update" {
        return Err("flag '--type' is for update only".to_string());
    }
    Ok(match (command, operands.as_slice()) {
        ("status", []) => AdminRequest::Status { json },
        ("nodes", []) => AdminRequest::Nodes { json },
        ("metrics", []) => AdminRequest::Metrics,
        ("events", []) => AdminRequest::Events {
            follow,
            local,
            json,
        },
        ("get", [path]) => AdminRequest::Get {
            path: parse_path(path)?,
            json,
        },
        ("update", [path, value]) => AdminRequest::Update {
            path: parse_path(path)?,
            value: parse_value(value, value_type.as_deref().unwrap_or("text"))?,
        },
        ("delete", [path]) => AdminRequest::Delete {
            path: parse_path(path)?,
        },
        ("fault", [kind, setting]) => AdminRequest::Fault(parse_fault(kind, setting)?),
        _ => return Err(format!("takes {arity} operands")),
    })
}

fn parse_path(text: &str) -> Result<Path, String> {
    Path::parse(text).map_err(|error| format!("bad path '{text}': {error}"))
}

/// `update`'s VALUE as `--type` says (text by default).
fn parse_value(text: &str, kind: &str) -> Result<Value, String> {
    let value = match kind {
        "text" => Value::Text(text.to_string()),
        "u64" => Value::U64(
            text.parse()
                .map_err(|_| format!("--type u64: '{text}' is not an unsigned integer"))?,
        ),
        "i64" => Value::I64(
            text.parse()
                .map_err(|_| format!("--type i64: '{text}' is not an integer"))?,
        ),
        "bool" => Value::Bool(
            text.parse()
                .map_err(|_| format!("--type bool: '{text}' is not true or false"))?,
        ),
        "nodes" => {
            let mut ids = Vec::new();
            for part in text.split(',').filter(|part| !part.is_empty()) {
                let id: u8 = part
                    .parse()
                    .map_err(|_| format!("--type nodes: '{part}' is not a node id"))?;
                ids.push(id);
            }
            ids.sort_unstable();
            ids.dedup();
            Value::NodeList(ids)
        }
        other => return Err(format!("--type: unknown type '{other}'")),
    };
    value
        .validate()
        .map_err(|error| format!("bad value: {error}"))?;
    Ok(value)
}

fn parse_fault(kind: &str, setting: &str) -> Result<Fault, String> {
    match (kind, setting) {
        ("disk-stall", "off") => Ok(Fault::DiskStallOff),
        ("disk-stall", milliseconds) => match milliseconds.parse::<u64>() {
            Ok(stall_ms) if (1..=DISK_STALL_MS_MAX).contains(&stall_ms) => {
                Ok(Fault::DiskStall { stall_ms })
            }
            _ => Err(format!(
                "disk-stall '{milliseconds}': expected 1 to {DISK_STALL_MS_MAX} (ms) or 'off'"
            )),
        },
        _ => Err(format!(
            "unknown fault '{kind} {setting}' (expected: disk-stall MS | disk-stall off)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::words::encode_word;

    fn parsed(line: &str) -> Result<AdminRequest, RequestError> {
        let words: Vec<&str> = line.split(' ').filter(|word| !word.is_empty()).collect();
        AdminRequest::parse(&words)
    }

    fn path(text: &str) -> Path {
        Path::parse(text).expect("a valid path")
    }

    #[test]
    fn parses_every_command() {
        let cases = [
            ("status", AdminRequest::Status { json: false }),
            ("status --json", AdminRequest::Status { json: true }),
            ("nodes --json", AdminRequest::Nodes { json: true }),
            ("metrics", AdminRequest::Metrics),
            (
                "events",
                AdminRequest::Events {
                    follow: false,
                    local: false,
                    json: false,
                },
            ),
            (
                "events --json --follow --local",
                AdminRequest::Events {
                    follow: true,
                    local: true,
                    json: true,
                },
            ),
            (
                "get properties/a --json",
                AdminRequest::Get {
                    path: path("properties/a"),
                    json: true,
                },
            ),
            (
                "update properties/a 1",
                AdminRequest::Update {
                    path: path("properties/a"),
                    value: Value::Text("1".into()),
                },
            ),
            (
                "update properties/a 7 --type u64",
                AdminRequest::Update {
                    path: path("properties/a"),
                    value: Value::U64(7),
                },
            ),
            (
                "update --type nodes properties/a 3,1,3",
                AdminRequest::Update {
                    path: path("properties/a"),
                    value: Value::NodeList(vec![1, 3]),
                },
            ),
            (
                "delete properties/a",
                AdminRequest::Delete {
                    path: path("properties/a"),
                },
            ),
            (
                "fault disk-stall 3000",
                AdminRequest::Fault(Fault::DiskStall { stall_ms: 3000 }),
            ),
            (
                "fault disk-stall off",
                AdminRequest::Fault(Fault::DiskStallOff),
            ),
            (
                "groups --json",
                AdminRequest::Catalog(CatalogCommand::ShowGroups { json: true }),
            ),
            (
                "group remove web",
                AdminRequest::Catalog(CatalogCommand::RemoveGroup { name: "web".into() }),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parsed(line), Ok(expected), "{line}");
        }
    }

    #[test]
    fn a_wrong_request_names_itself() {
        let cases = [
            ("", "missing command (status,", false),
            ("--json", "missing command", false),
            ("--colour", "unknown flag '--colour'", false),
            ("dance", "unknown command 'dance'", false),
            ("status now", "status: takes no operands, got 1", true),
            ("get", "get: takes one operand (KEY), got 0", true),
            (
                "update a",
                "update: takes two operands (KEY VALUE), got 1",
                true,
            ),
            (
                "fault x",
                "fault: takes two operands (disk-stall MS|off)",
                true,
            ),
            (
                "status --local",
                "status: flag '--local' is for events only",
                true,
            ),
            (
                "nodes --follow",
                "nodes: flag '--follow' is for events only",
                true,
            ),
            (
                "get a/b --type u64",
                "get: flag '--type' is for update only",
                true,
            ),
            ("status --colour", "status: unknown flag '--colour'", true),
            (
                "update properties/n x --type u64",
                "update: --type u64: 'x'",
                true,
            ),
            (
                "update properties/n 1 --type float",
                "unknown type 'float'",
                true,
            ),
            ("update nowhere/x 1", "update: bad path 'nowhere/x'", true),
            ("get nowhere/x", "get: bad path", true),
            (
                "update properties/n --type",
                "flag '--type' needs a value",
                true,
            ),
            (
                "fault disk-stall 0",
                "disk-stall '0': expected 1 to 600000",
                true,
            ),
            ("fault disk-stall 600001", "expected 1 to 600000", true),
            ("fault disk-stall soon", "disk-stall 'soon'", true),
            ("fault cpu-hog 1", "unknown fault 'cpu-hog 1'", true),
            (
                "group rename web",
                "group: unknown subcommand 'rename'",
                true,
            ),
            (
                "group add web --colour red",
                "group add: unknown flag '--colour'",
                true,
            ),
        ];
        for (line, why, names_command) in cases {
            let error = parsed(line).expect_err(line);
            assert!(error.text().contains(why), "{line}: {error}");
            assert_eq!(
                matches!(error, RequestError::Command(_)),
                names_command,
                "{line}: {error:?}"
            );
        }
    }

    #[test]
    fn received_words_are_decoded_before_parsing() {
        let value = "a\tb\\c\nd";
        let words: Vec<String> = ["update", "properties/a", value]
            .iter()
            .map(|word| encode_word(word))
            .collect();
        assert_eq!(
            AdminRequest::parse_received(&words),
            Ok(AdminRequest::Update {
                path: path("properties/a"),
                value: Value::Text(value.into()),
            })
        );
        let error = AdminRequest::parse_received(&["group".into(), "add".into(), "a\\q".into()])
            .expect_err("bad escape");
        assert!(error.text().contains("bad escape"), "{error}");
    }
}
