//! `wolfpack ctl group|resource|groups|resources`: the administrator's words turned into a
//! catalog edit (`core::catalog`, one GUM update with preconditions) or a listing of the
//! catalog with what this node knows at run time.
//!
//! Commands (NAME, G, R: `[a-z0-9._-]`, 1 to 64 bytes; N: a node id; S: seconds):
//!
//! ```text
//! group add NAME [--preferred N,M] [--possible N,M] [--failback off|immediate|window=H-H]
//!                [--failover-threshold N] [--failover-period S]
//! group move NAME [--to N] | group move NAME --clear
//! group remove NAME
//! resource add NAME --group G --type TYPE [--param KEY=VALUE]... [--depends R[,R]]...
//!                [--restart-threshold N] [--restart-period S] [--looksalive S] [--isalive S]
//!                [--timeout S] [--no-affect-group]
//! resource online|offline|remove|cleanup NAME
//! groups [--json]
//! resources [--json]
//! ```
//!
//! `parse` is shared with `ctl`, which refuses a malformed command line before it contacts the
//! node; the daemon parses again (it trusts no client) and validates against its replica.
//! Words travel tab-separated on one line (`crate::admin`), so `ctl` escapes backslash, tab,
//! newline and carriage return in each word (`encode_word`) and the daemon undoes it: a
//! parameter value may hold any character, and is stored verbatim.

use crate::core::catalog::ResourceSpec;
use crate::core::catalog::{self, Catalog, Failback, GroupSpec, NewGroup, NewResource};
use crate::core::db::{Database, Update};
use crate::json::Json;

/// The answer when GUM applied the edit's update but a precondition no longer held: another
/// edit landed between reading the catalog and applying, so this one changed nothing.
pub const CONFLICT: &str = "conflicting change, nothing changed; retry";

/// The first words of every catalog command.
pub const COMMAND_WORDS: [&str; 4] = ["group", "resource", "groups", "resources"];

/// One administrator's command, parsed (not yet validated against a catalog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    AddGroup(NewGroup),
    MoveGroup { name: String, to: Option<u8> },
    ClearGroupTarget { name: String },
    RemoveGroup { name: String },
    AddResource(NewResource),
    SetResourceRole { name: String, online: bool },
    RemoveResource { name: String },
    CleanupResource { name: String },
    ShowGroups { json: bool },
    ShowResources { json: bool },
}

/// Where a group runs, as the daemon knows it (`None`: not known here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRuntime {
    /// The node holding it.
    pub owner: Option<u8>,
    /// Its state, e.g. `online`, `pending`, `failed`.
    pub state: Option<String>,
}

/// A resource's state on this node, as the daemon knows it (`None`: not known here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRuntime {
    pub state: Option<String>,
}

/// What the daemon knows that the database does not.
pub struct Runtime<'a> {
    /// The node table as a bitmap (`core::bit`): the node ids a command may name.
    pub configured_nodes: u64,
    /// Where each group runs now (also: whom `group move` without `--to` moves it away from).
    pub group: Box<dyn Fn(&GroupSpec) -> GroupRuntime + 'a>,
    /// Each resource's state on this node.
    pub resource: Box<dyn Fn(&ResourceSpec) -> ResourceRuntime + 'a>,
}

impl Runtime<'static> {
    /// What a node knows by itself, before a group runner reports more: the groups it holds
    /// (`online_slots`, bit slot-1) are online here; nothing about other nodes or resources.
    pub fn held_here(configured_nodes: u64, node_id: u8, online_slots: u64) -> Runtime<'static> {
        Runtime {
            configured_nodes,
            group: Box::new(move |group| {
                let held = online_slots & crate::core::bit(group.slot) != 0;
                GroupRuntime {
                    owner: held.then_some(node_id),
                    state: held.then(|| "online".to_string()),
                }
            }),
            resource: Box::new(|_| ResourceRuntime::default()),
        }
    }
}

/// What the daemon does with a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Submit this encoded update to GUM; answer once it is acknowledged (`CONFLICT` if the
    /// database rejected it).
    Propose(Vec<u8>),
    /// Answer with this text at once.
    Show(String),
}

/// The daemon's side: the request's words (as `ctl` sent them, escaped) to an update to
/// propose or a listing of the catalog in `database`.
pub fn answer(database: &Database, words: &[&str], runtime: &Runtime) -> Result<Answer, String> {
    let decoded = words
        .iter()
        .map(|word| decode_word(word))
        .collect::<Result<Vec<String>, String>>()?;
    let words: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let command = parse(&words)?;
    match command {
        Command::ShowGroups { json } => Ok(Answer::Show(render_groups(
            &catalog::read(database),
            &runtime.group,
            json,
        ))),
        Command::ShowResources { json } => Ok(Answer::Show(render_resources(
            &catalog::read(database),
            &runtime.resource,
            json,
        ))),
        edit => {
            let update = update_for(database, &edit, runtime)?;
            let encoded = update
                .encode()
                .map_err(|why| format!("the change cannot be encoded: {why}"))?;
            Ok(Answer::Propose(encoded))
        }
    }
}

/// The update an edit makes to `database` (validated against its catalog), or why not.
pub fn update_for(
    database: &Database,
    command: &Command,
    runtime: &Runtime,
) -> Result<Update, String> {
    let configured = runtime.configured_nodes;
    match command {
        Command::AddGroup(group) => catalog::add_group(database, group, configured),
        Command::MoveGroup { name, to } => {
            let current_owner = catalog::read(database)
                .group(name)
                .and_then(|group| (runtime.group)(group).owner)
                .unwrap_or(0);
            catalog::move_group(database, name, *to, configured, current_owner)
        }
        Command::ClearGroupTarget { name } => catalog::clear_group_target(database, name),
        Command::RemoveGroup { name } => catalog::remove_group(database, name),
        Command::AddResource(resource) => catalog::add_resource(database, resource),
        Command::SetResourceRole { name, online } => {
            catalog::set_resource_role(database, name, *online)
        }
        Command::RemoveResource { name } => catalog::remove_resource(database, name),
        Command::CleanupResource { name } => catalog::cleanup_resource(database, name),
        Command::ShowGroups { .. } | Command::ShowResources { .. } => {
            Err("a listing changes nothing".to_string())
        }
    }
}

/// The command the words say (decoded words, the command word first), or what is wrong with
/// them, naming the command and the flag.
pub fn parse(words: &[&str]) -> Result<Command, String> {
    match words {
        ["groups", rest @ ..] => Ok(Command::ShowGroups {
            json: listing_flags("groups", rest)?,
        }),
        ["resources", rest @ ..] => Ok(Command::ShowResources {
            json: listing_flags("resources", rest)?,
        }),
        ["group", "add", rest @ ..] => parse_group_add(rest),
        ["group", "move", rest @ ..] => parse_group_move(rest),
        ["group", "remove", rest @ ..] => Ok(Command::RemoveGroup {
            name: only_name("group remove", rest)?,
        }),
        ["resource", "add", rest @ ..] => parse_resource_add(rest),
        ["resource", verb @ ("online" | "offline"), rest @ ..] => Ok(Command::SetResourceRole {
            name: only_name(&format!("resource {verb}"), rest)?,
            online: *verb == "online",
        }),
        ["resource", "remove", rest @ ..] => Ok(Command::RemoveResource {
            name: only_name("resource remove", rest)?,
        }),
        ["resource", "cleanup", rest @ ..] => Ok(Command::CleanupResource {
            name: only_name("resource cleanup", rest)?,
        }),
        ["group", other, ..] => Err(format!(
            "group: unknown subcommand '{other}' (add, move, remove)"
        )),
        ["resource", other, ..] => Err(format!(
            "resource: unknown subcommand '{other}' (add, online, offline, remove, cleanup)"
        )),
        ["group"] => Err("group: missing subcommand (add, move, remove)".to_string()),
        ["resource"] => {
            Err("resource: missing subcommand (add, online, offline, remove, cleanup)".to_string())
        }
        _ => Err(format!(
            "not a catalog command: {}",
            words.first().copied().unwrap_or("(empty)")
        )),
    }
}

fn listing_flags(command: &str, rest: &[&str]) -> Result<bool, String> {
    let mut options = getopts::Options::new();
    options.optflag("", "json", "");
    let matches = flags(&options, command, rest)?;
    if !matches.free.is_empty() {
        return Err(operand_count(command, "no operands", &matches.free));
    }
    Ok(matches.opt_present("json"))
}

fn only_name(command: &str, rest: &[&str]) -> Result<String, String> {
    let matches = flags(&getopts::Options::new(), command, rest)?;
    name_operand(command, &matches)
}

fn parse_group_add(rest: &[&str]) -> Result<Command, String> {
    const COMMAND: &str = "group add";
    let mut options = getopts::Options::new();
    for flag in [
        "preferred",
        "possible",
        "failback",
        "failover-threshold",
        "failover-period",
    ] {
        options.optopt("", flag, "", "");
    }
    let matches = flags(&options, COMMAND, rest)?;
    let name = name_operand(COMMAND, &matches)?;
    let node_list = |flag: &str| -> Result<Option<Vec<u8>>, String> {
        matches
            .opt_str(flag)
            .map(|text| {
                catalog::node_ids(&text).map_err(|why| format!("{COMMAND}: --{flag}: {why}"))
            })
            .transpose()
    };
    let failback = matches
        .opt_str("failback")
        .map(|text| Failback::parse(&text).map_err(|why| format!("{COMMAND}: --failback: {why}")))
        .transpose()?;
    Ok(Command::AddGroup(NewGroup {
        name,
        preferred: node_list("preferred")?.unwrap_or_default(),
        possible: node_list("possible")?,
        failback,
        failover_threshold: number(COMMAND, &matches, "failover-threshold")?,
        failover_period_s: number(COMMAND, &matches, "failover-period")?,
    }))
}

fn parse_group_move(rest: &[&str]) -> Result<Command, String> {
    const COMMAND: &str = "group move";
    let mut options = getopts::Options::new();
    options.optopt("", "to", "", "");
    options.optflag("", "clear", "");
    let matches = flags(&options, COMMAND, rest)?;
    let name = name_operand(COMMAND, &matches)?;
    let to = matches
        .opt_str("to")
        .map(|text| {
            text.parse::<u8>()
                .map_err(|_| format!("{COMMAND}: --to: '{text}' is not a node id"))
        })
        .transpose()?;
    match (to, matches.opt_present("clear")) {
        (Some(_), true) => Err(format!(
            "{COMMAND}: --to and --clear conflict (--clear removes the node a move pinned)"
        )),
        (None, true) => Ok(Command::ClearGroupTarget { name }),
        (to, false) => Ok(Command::MoveGroup { name, to }),
    }
}

fn parse_resource_add(rest: &[&str]) -> Result<Command, String> {
    const COMMAND: &str = "resource add";
    let mut options = getopts::Options::new();
    for flag in [
        "group",
        "type",
        "restart-threshold",
        "restart-period",
        "looksalive",
        "isalive",
        "timeout",
    ] {
        options.optopt("", flag, "", "");
    }
    options.optmulti("", "param", "", "KEY=VALUE");
    options.optmulti("", "depends", "", "R[,R]");
    options.optflag("", "no-affect-group", "");
    let matches = flags(&options, COMMAND, rest)?;
    let name = name_operand(COMMAND, &matches)?;
    let required = |flag: &str| {
        matches
            .opt_str(flag)
            .ok_or(format!("{COMMAND}: missing --{flag}"))
    };
    let group = required("group")?;
    let kind = required("type")?;
    let mut resource = NewResource::new(&name, &group, &kind);
    for pair in matches.opt_strs("param") {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("{COMMAND}: --param: '{pair}' is not KEY=VALUE"));
        };
        resource.params.push((key.to_string(), value.to_string()));
    }
    resource.depends = matches
        .opt_strs("depends")
        .iter()
        .flat_map(|list| list.split(','))
        .filter(|needed| !needed.is_empty())
        .map(str::to_string)
        .collect();
    resource.restart_threshold = number(COMMAND, &matches, "restart-threshold")?;
    resource.restart_period_s = number(COMMAND, &matches, "restart-period")?;
    resource.looks_alive_s = number(COMMAND, &matches, "looksalive")?;
    resource.is_alive_s = number(COMMAND, &matches, "isalive")?;
    resource.timeout_s = number(COMMAND, &matches, "timeout")?;
    resource.affects_group = !matches.opt_present("no-affect-group");
    Ok(Command::AddResource(resource))
}

/// getopts' errors as one line naming the command and the flag.
fn flags(
    options: &getopts::Options,
    command: &str,
    words: &[&str],
) -> Result<getopts::Matches, String> {
    options.parse(words).map_err(|error| {
        let text = match error {
            getopts::Fail::UnrecognizedOption(flag) => match flag.len() {
                1 => format!("unknown flag '-{flag}'"),
                _ => format!("unknown flag '--{flag}'"),
            },
            getopts::Fail::ArgumentMissing(flag) => format!("flag '--{flag}' needs a value"),
            getopts::Fail::OptionMissing(flag) => format!("missing flag '--{flag}'"),
            getopts::Fail::OptionDuplicated(flag) => format!("flag '--{flag}' is given twice"),
            getopts::Fail::UnexpectedArgument(flag) => format!("flag '--{flag}' takes no value"),
        };
        format!("{command}: {text}")
    })
}

/// The one operand, NAME.
fn name_operand(command: &str, matches: &getopts::Matches) -> Result<String, String> {
    match matches.free.as_slice() {
        [name] => Ok(name.clone()),
        other => Err(operand_count(command, "one operand (NAME)", other)),
    }
}

fn operand_count(command: &str, expected: &str, given: &[String]) -> String {
    match given {
        [] => format!("{command}: takes {expected}, got 0"),
        _ => format!(
            "{command}: takes {expected}, got {} ({})",
            given.len(),
            given.join(" ")
        ),
    }
}

/// A whole number given with `--flag`; its range is the catalog's to check.
fn number(command: &str, matches: &getopts::Matches, flag: &str) -> Result<Option<u32>, String> {
    matches
        .opt_str(flag)
        .map(|text| {
            text.parse::<u32>()
                .map_err(|_| format!("{command}: --{flag}: '{text}' is not a whole number"))
        })
        .transpose()
}

/// A word as `ctl` sends it: backslash, tab, newline and carriage return escaped, so any
/// value fits the admin request's one line of tab-separated words.
pub fn encode_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for character in word.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

/// Undoes `encode_word`; refuses what it never writes.
pub fn decode_word(word: &str) -> Result<String, String> {
    let mut out = String::with_capacity(word.len());
    let mut characters = word.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        match characters.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            _ => return Err(format!("bad escape in the request word {word:?}")),
        }
    }
    Ok(out)
}

/// `ctl groups`: the catalog's groups with where each runs.
pub fn render_groups(
    catalog: &Catalog,
    runtime: &dyn Fn(&GroupSpec) -> GroupRuntime,
    json: bool,
) -> String {
    let members = |group: &GroupSpec| -> Vec<String> {
        let mut names: Vec<String> = catalog
            .resources
            .iter()
            .filter(|resource| resource.group == group.name)
            .map(|resource| resource.name.clone())
            .collect();
        names.sort();
        names
    };
    if json {
        let groups = catalog
            .groups
            .iter()
            .map(|group| {
                let facts = runtime(group);
                let mut fields = vec![
                    ("name", Json::text(&group.name)),
                    ("slot", Json::Number(u64::from(group.slot))),
                    ("preferred", node_array(group.preferred.iter().copied())),
                ];
                // Absent = every node, as in the database.
                if group.possible != 0 {
                    fields.push(("possible", node_array(crate::core::ids(group.possible))));
                }
                fields.extend([
                    ("failback", Json::text(group.failback.render())),
                    (
                        "failover_threshold",
                        Json::Number(u64::from(group.failover_threshold)),
                    ),
                    (
                        "failover_period_s",
                        Json::Number(u64::from(group.failover_period_s)),
                    ),
                ]);
                if group.target != 0 {
                    fields.push(("target", Json::Number(u64::from(group.target))));
                }
                fields.push((
                    "resources",
                    Json::Array(members(group).into_iter().map(Json::Text).collect()),
                ));
                if let Some(owner) = facts.owner {
                    fields.push(("owner", Json::Number(u64::from(owner))));
                }
                if let Some(state) = facts.state {
                    fields.push(("state", Json::Text(state)));
                }
                Json::Object(fields)
            })
            .collect();
        return listing_json("groups", groups, catalog);
    }
    let header = [
        "NAME",
        "SLOT",
        "OWNER",
        "STATE",
        "PREFERRED",
        "POSSIBLE",
        "FAILBACK",
        "FAILOVERS",
        "TARGET",
        "RESOURCES",
    ];
    let rows = catalog
        .groups
        .iter()
        .map(|group| {
            let facts = runtime(group);
            let preferred: Vec<String> = group.preferred.iter().map(u8::to_string).collect();
            vec![
                group.name.clone(),
                group.slot.to_string(),
                facts.owner.map_or("-".to_string(), |id| id.to_string()),
                facts.state.unwrap_or_else(|| "-".to_string()),
                dash_if_empty(preferred.join(",")),
                match group.possible {
                    0 => "all".to_string(),
                    possible => catalog::validate::list_nodes(possible),
                },
                group.failback.render(),
                format!(
                    "{}/{}",
                    group.failover_threshold,
                    duration(group.failover_period_s)
                ),
                match group.target {
                    0 => "-".to_string(),
                    target => target.to_string(),
                },
                dash_if_empty(members(group).join(",")),
            ]
        })
        .collect();
    listing_text(&header, rows, "groups", catalog)
}

/// `ctl resources`: the catalog's resources with their state on this node.
pub fn render_resources(
    catalog: &Catalog,
    runtime: &dyn Fn(&ResourceSpec) -> ResourceRuntime,
    json: bool,
) -> String {
    let mut resources: Vec<&ResourceSpec> = catalog.resources.iter().collect();
    resources.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
    if json {
        let items = resources
            .iter()
            .map(|resource| {
                let params = resource
                    .params
                    .iter()
                    .map(|(key, value)| {
                        Json::Object(vec![("key", Json::text(key)), ("value", Json::text(value))])
                    })
                    .collect();
                let mut fields = vec![
                    ("name", Json::text(&resource.name)),
                    ("group", Json::text(&resource.group)),
                    ("type", Json::text(&resource.kind)),
                    ("params", Json::Array(params)),
                    (
                        "depends",
                        Json::Array(resource.depends.iter().map(Json::text).collect()),
                    ),
                    (
                        "restart_threshold",
                        Json::Number(u64::from(resource.restart_threshold)),
                    ),
                    (
                        "restart_period_s",
                        Json::Number(u64::from(resource.restart_period_s)),
                    ),
                    (
                        "looks_alive_s",
                        Json::Number(u64::from(resource.looks_alive_s)),
                    ),
                    ("is_alive_s", Json::Number(u64::from(resource.is_alive_s))),
                ];
                // Absent = the type's default.
                if let Some(timeout_s) = resource.timeout_s {
                    fields.push(("timeout_s", Json::Number(u64::from(timeout_s))));
                }
                fields.extend([
                    ("affects_group", Json::Bool(resource.affects_group)),
                    ("role", Json::text(role(resource))),
                    ("cleanup", Json::Number(resource.cleanup)),
                ]);
                if let Some(state) = runtime(resource).state {
                    fields.push(("state", Json::Text(state)));
                }
                Json::Object(fields)
            })
            .collect();
        return listing_json("resources", items, catalog);
    }
    let header = [
        "NAME", "GROUP", "TYPE", "STATE", "ROLE", "DEPENDS", "RESTARTS", "CHECKS", "TIMEOUT",
        "AFFECTS", "PARAMS",
    ];
    let rows = resources
        .iter()
        .map(|resource| {
            let params: Vec<String> = resource
                .params
                .iter()
                .map(|(key, value)| format!("{key}={}", shown(value)))
                .collect();
            vec![
                resource.name.clone(),
                resource.group.clone(),
                resource.kind.clone(),
                runtime(resource).state.unwrap_or_else(|| "-".to_string()),
                role(resource).to_string(),
                dash_if_empty(resource.depends.join(",")),
                format!(
                    "{}/{}",
                    resource.restart_threshold,
                    duration(resource.restart_period_s)
                ),
                format!("{}s/{}s", resource.looks_alive_s, resource.is_alive_s),
                resource
                    .timeout_s
                    .map_or("default".to_string(), |seconds| format!("{seconds}s")),
                match resource.affects_group {
                    true => "group".to_string(),
                    false => "-".to_string(),
                },
                dash_if_empty(params.join(" ")),
            ]
        })
        .collect();
    listing_text(&header, rows, "resources", catalog)
}

fn role(resource: &ResourceSpec) -> &'static str {
    match resource.role_online {
        true => "online",
        false => "offline",
    }
}

fn node_array(ids: impl Iterator<Item = u8>) -> Json {
    Json::Array(ids.map(|id| Json::Number(u64::from(id))).collect())
}

fn listing_json(what: &'static str, items: Vec<Json>, catalog: &Catalog) -> String {
    let problems = catalog.problems.iter().map(Json::text).collect();
    let mut text = Json::Object(vec![
        (what, Json::Array(items)),
        ("problems", Json::Array(problems)),
    ])
    .render();
    text.push('\n');
    text
}

/// Columns padded to their widest cell, then the catalog's problems, one a line.
fn listing_text(header: &[&str], rows: Vec<Vec<String>>, what: &str, catalog: &Catalog) -> String {
    let mut text = String::new();
    if rows.is_empty() {
        text.push_str(&format!("no {what}\n"));
    } else {
        let mut widths: Vec<usize> = header.iter().map(|title| title.chars().count()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = header.iter().map(|title| title.to_string()).collect();
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
    }
    for problem in &catalog.problems {
        text.push_str(&format!("problem: {problem}\n"));
    }
    text
}

fn dash_if_empty(text: String) -> String {
    match text.is_empty() {
        true => "-".to_string(),
        false => text,
    }
}

/// Seconds as a person reads a period: `900s`, `6h`, `2d`.
fn duration(seconds: u32) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    }
}

/// A parameter value in the table: as it is when that reads unambiguously, else quoted with
/// escapes (spaces, quotes, control characters).
fn shown(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'));
    match plain {
        true => value.to_string(),
        false => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::db::{Op, Value};

    fn parsed(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split(' ').collect();
        parse(&words)
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(
            parsed("group add web --preferred 2,1 --possible 1,2 --failback window=22-6 --failover-threshold 3 --failover-period 600"),
            Ok(Command::AddGroup(NewGroup {
                name: "web".into(),
                preferred: vec![2, 1],
                possible: Some(vec![1, 2]),
                failback: Some(Failback::Window { from_hour: 22, to_hour: 6 }),
                failover_threshold: Some(3),
                failover_period_s: Some(600),
            }))
        );
        assert_eq!(
            parsed("group move web --to 3"),
            Ok(Command::MoveGroup {
                name: "web".into(),
                to: Some(3)
            })
        );
        assert_eq!(
            parsed("group move web"),
            Ok(Command::MoveGroup {
                name: "web".into(),
                to: None
            })
        );
        assert_eq!(
            parsed("group move web --clear"),
            Ok(Command::ClearGroupTarget { name: "web".into() })
        );
        assert_eq!(
            parsed("group remove web"),
            Ok(Command::RemoveGroup { name: "web".into() })
        );
        let mut expected = NewResource::new("app", "web", "process");
        expected.params = vec![
            ("command".into(), "a=b".into()),
            ("check".into(), String::new()),
        ];
        expected.depends = vec!["ip".into(), "disk".into(), "fs".into()];
        expected.restart_threshold = Some(2);
        expected.restart_period_s = Some(60);
        expected.looks_alive_s = Some(3);
        expected.is_alive_s = Some(30);
        expected.timeout_s = Some(20);
        expected.affects_group = false;
        assert_eq!(
            parsed("resource add app --group web --type process --param command=a=b --param check= --depends ip,disk --depends fs --restart-threshold 2 --restart-period 60 --looksalive 3 --isalive 30 --timeout 20 --no-affect-group"),
            Ok(Command::AddResource(expected))
        );
        for (verb, online) in [("online", true), ("offline", false)] {
            assert_eq!(
                parsed(&format!("resource {verb} app")),
                Ok(Command::SetResourceRole {
                    name: "app".into(),
                    online
                })
            );
        }
        assert_eq!(
            parsed("resource remove app"),
            Ok(Command::RemoveResource { name: "app".into() })
        );
        assert_eq!(
            parsed("resource cleanup app"),
            Ok(Command::CleanupResource { name: "app".into() })
        );
        assert_eq!(parsed("groups"), Ok(Command::ShowGroups { json: false }));
        assert_eq!(
            parsed("resources --json"),
            Ok(Command::ShowResources { json: true })
        );
    }

    #[test]
    fn a_malformed_command_line_is_named() {
        let cases = [
            ("group add", "group add: takes one operand (NAME), got 0"),
            (
                "group add a b",
                "group add: takes one operand (NAME), got 2 (a b)",
            ),
            ("group add web --to 1", "group add: unknown flag '--to'"),
            (
                "group add web --preferred",
                "group add: flag '--preferred' needs a value",
            ),
            (
                "group add web --preferred 1,x",
                "group add: --preferred: 'x' is not a node id",
            ),
            (
                "group add web --preferred 1,1",
                "group add: --preferred: node 1 is listed twice",
            ),
            (
                "group add web --failback sometimes",
                "group add: --failback: 'sometimes' is not off",
            ),
            (
                "group add web --failover-threshold -1",
                "--failover-threshold: '-1' is not a whole number",
            ),
            (
                "group add web --failover-period 1 --failover-period 2",
                "flag '--failover-period' is given twice",
            ),
            (
                "group move web --to 2 --clear",
                "group move: --to and --clear conflict",
            ),
            (
                "group move web --to x",
                "group move: --to: 'x' is not a node id",
            ),
            ("group rename web", "group: unknown subcommand 'rename'"),
            ("group", "group: missing subcommand"),
            (
                "resource add app --type process",
                "resource add: missing --group",
            ),
            (
                "resource add app --group web",
                "resource add: missing --type",
            ),
            (
                "resource add app --group web --type process --param command",
                "--param: 'command' is not KEY=VALUE",
            ),
            (
                "resource add app --group web --type process --timeout 1.5",
                "--timeout: '1.5' is not a whole number",
            ),
            (
                "resource add app --group web --type process --no-affect-group=yes",
                "takes no value",
            ),
            (
                "resource online",
                "resource online: takes one operand (NAME), got 0",
            ),
            (
                "resource remove app --json",
                "resource remove: unknown flag '--json'",
            ),
            ("resource stop app", "resource: unknown subcommand 'stop'"),
            ("groups web", "groups: takes no operands, got 1 (web)"),
            ("status", "not a catalog command: status"),
        ];
        for (line, why) in cases {
            let error = parsed(line).expect_err(line);
            assert!(error.contains(why), "{line}: {error}");
        }
    }

    #[test]
    fn words_travel_escaped_and_come_back_verbatim() {
        let words = [
            "plain",
            "a\tb",
            "line\nbreak\r\n",
            r"a literal \t and \\ stay",
            "\\",
            "é ; $(x) | `y` 'q' \"d\" * ~",
        ];
        for word in words {
            let encoded = encode_word(word);
            assert!(!encoded.contains(['\t', '\n', '\r']), "{encoded:?}");
            assert_eq!(decode_word(&encoded).as_deref(), Ok(word));
        }
        let every: String = (0u8..128).map(char::from).collect();
        assert_eq!(decode_word(&encode_word(&every)), Ok(every));
        for never_written in [r"a\qb", r"trailing\", r"\x41"] {
            let error = decode_word(never_written).expect_err(never_written);
            assert!(error.contains("bad escape"), "{error}");
        }
    }

    /// Placeholder runtime facts for the tests: web runs on node 2, nothing else is known.
    fn group_facts(group: &GroupSpec) -> GroupRuntime {
        match group.name.as_str() {
            "web" => GroupRuntime {
                owner: Some(2),
                state: Some("online".into()),
            },
            _ => GroupRuntime::default(),
        }
    }

    fn resource_facts(resource: &ResourceSpec) -> ResourceRuntime {
        ResourceRuntime {
            state: (resource.name == "app").then(|| "online".to_string()),
        }
    }

    fn runtime() -> Runtime<'static> {
        Runtime {
            configured_nodes: 0b111,
            group: Box::new(group_facts),
            resource: Box::new(resource_facts),
        }
    }

    /// Runs `line` (words as ctl sends them) through `answer` and applies what it proposes.
    fn run(database: &mut Database, words: &[&str]) -> Result<String, String> {
        let encoded: Vec<String> = words.iter().map(|word| encode_word(word)).collect();
        let encoded: Vec<&str> = encoded.iter().map(String::as_str).collect();
        match answer(database, &encoded, &runtime())? {
            Answer::Show(text) => Ok(text),
            Answer::Propose(bytes) => {
                let update = Update::decode(&bytes).map_err(|why| why.to_string())?;
                let sequence = database.sequence() + 1;
                match database.apply(sequence, &update) {
                    Ok(crate::core::db::Outcome::Applied) => Ok(String::new()),
                    other => Err(format!("{other:?}")),
                }
            }
        }
    }

    fn sample() -> Database {
        let mut database = Database::default();
        let lines: [&[&str]; 4] = [
            &[
                "group",
                "add",
                "web",
                "--preferred",
                "2,1",
                "--failback",
                "immediate",
            ],
            &["group", "add", "data", "--possible", "1,3"],
            &[
                "resource",
                "add",
                "ip",
                "--group",
                "web",
                "--type",
                "ip",
                "--param",
                "address=198.18.0.5/24",
                "--param",
                "interface=eth0",
            ],
            &[
                "resource",
                "add",
                "app",
                "--group",
                "web",
                "--type",
                "process",
                "--param",
                "command=app --name \"my app\"\t; echo $HOME",
                "--depends",
                "ip",
                "--timeout",
                "30",
            ],
        ];
        for words in lines {
            assert_eq!(run(&mut database, words), Ok(String::new()), "{words:?}");
        }
        database
    }

    #[test]
    fn an_edit_is_proposed_with_its_preconditions() {
        let database = sample();
        let words = ["group", "move", "web"];
        let Ok(Answer::Propose(bytes)) = answer(&database, &words, &runtime()) else {
            panic!("a move is proposed");
        };
        let update = Update::decode(&bytes).expect("decodes");
        let slot = crate::core::db::Path::parse("groups/web/slot").expect("path");
        assert!(update.ops.contains(&Op::Require {
            version: database.version(&slot),
            path: slot,
        }));
        // web runs on node 2 (the runtime facts), so the move picks node 1, its next preferred.
        assert!(update.ops.contains(&Op::Put {
            path: crate::core::db::Path::parse("groups/web/target").expect("path"),
            value: Value::U64(1),
        }));
    }

    #[test]
    fn refusals_come_back_as_messages() {
        let mut database = sample();
        let cases: [(&[&str], &str); 6] = [
            (&["group", "add", "web"], "group \"web\" already exists"),
            (
                &["group", "add", "mail", "--preferred", "7"],
                "--preferred: node 7 is not in the node table (configured: 1,2,3)",
            ),
            (
                &["group", "remove", "web"],
                "group \"web\" still has resources: \"app\", \"ip\"",
            ),
            (
                &["resource", "remove", "ip"],
                "resource \"ip\" is needed by \"app\"",
            ),
            (
                &[
                    "resource",
                    "add",
                    "x",
                    "--group",
                    "nope",
                    "--type",
                    "process",
                    "--param",
                    "command=y",
                ],
                "unknown group \"nope\"",
            ),
            (
                &["resource", "add", "x", "--group", "web", "--type"],
                "flag '--type' needs a value",
            ),
        ];
        for (words, why) in cases {
            let error = run(&mut database, words).expect_err("refused");
            assert!(error.contains(why), "{words:?}: {error}");
        }
        let error =
            answer(&database, &["resource", "online", "a\\q"], &runtime()).expect_err("bad escape");
        assert!(error.contains("bad escape"), "{error}");
    }

    #[test]
    fn groups_and_resources_as_tables() {
        let mut database = sample();
        let groups = run(&mut database, &["groups"]).expect("a listing");
        let lines: Vec<&str> = groups.lines().collect();
        assert_eq!(lines.len(), 3, "{groups}");
        let columns = |line: &str| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            columns(lines[0]),
            [
                "NAME",
                "SLOT",
                "OWNER",
                "STATE",
                "PREFERRED",
                "POSSIBLE",
                "FAILBACK",
                "FAILOVERS",
                "TARGET",
                "RESOURCES"
            ]
        );
        assert_eq!(
            columns(lines[1]),
            ["data", "2", "-", "-", "-", "1,3", "off", "10/6h", "-", "-"]
        );
        assert_eq!(
            columns(lines[2]),
            [
                "web",
                "1",
                "2",
                "online",
                "2,1",
                "all",
                "immediate",
                "10/6h",
                "-",
                "app,ip"
            ]
        );
        // Columns line up.
        let at = |line: &str| line.find("SLOT").or_else(|| line.find(char::is_numeric));
        assert_eq!(at(lines[0]), at(lines[1]));

        let resources = run(&mut database, &["resources"]).expect("a listing");
        let lines: Vec<&str> = resources.lines().collect();
        assert_eq!(lines.len(), 3, "{resources}");
        assert!(lines[1].starts_with("app "), "{resources}");
        assert!(lines[1].contains(" online "), "{resources}");
        assert!(
            lines[1].ends_with(r#"command="app --name \"my app\"\t; echo $HOME""#),
            "{resources}"
        );
        assert!(
            lines[2].ends_with("address=198.18.0.5/24 interface=eth0"),
            "{resources}"
        );
        assert!(
            columns(lines[2]).contains(&"default".to_string()),
            "{resources}"
        );

        assert_eq!(
            run(&mut Database::default(), &["groups"]),
            Ok("no groups\n".to_string())
        );
    }

    #[test]
    fn groups_and_resources_as_json() {
        let mut database = sample();
        // A hand-edited key the reader leaves out is listed as a problem.
        let stray = Update::put(
            crate::core::db::Path::parse("resources/ghost/group").expect("path"),
            Value::Text("nowhere".into()),
        );
        let sequence = database.sequence() + 1;
        database.apply(sequence, &stray).expect("applies");

        let text = run(&mut database, &["groups", "--json"]).expect("a listing");
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let groups = json["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1]["name"], "web");
        assert_eq!(groups[1]["owner"], 2);
        assert_eq!(groups[1]["state"], "online");
        assert_eq!(groups[1]["preferred"], serde_json::json!([2, 1]));
        assert_eq!(groups[1]["resources"], serde_json::json!(["app", "ip"]));
        assert!(groups[1].get("possible").is_none(), "every node");
        assert_eq!(groups[0]["possible"], serde_json::json!([1, 3]));
        assert!(groups[0].get("owner").is_none(), "not known here");
        assert_eq!(groups[0]["failover_period_s"], 21600);
        let problems = json["problems"].as_array().expect("problems");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].as_str().is_some_and(|p| p.contains("ghost")));

        let text = run(&mut database, &["resources", "--json"]).expect("a listing");
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let app = &json["resources"][0];
        assert_eq!(app["name"], "app");
        assert_eq!(app["group"], "web");
        assert_eq!(app["type"], "process");
        assert_eq!(app["params"][0]["key"], "command");
        assert_eq!(
            app["params"][0]["value"],
            "app --name \"my app\"\t; echo $HOME"
        );
        assert_eq!(app["depends"], serde_json::json!(["ip"]));
        assert_eq!(app["timeout_s"], 30);
        assert_eq!(app["role"], "online");
        assert_eq!(app["affects_group"], true);
        assert_eq!(app["state"], "online");
        let ip = &json["resources"][1];
        assert!(ip.get("timeout_s").is_none(), "the type's default");
        assert!(ip.get("state").is_none(), "not known here");
    }
}
