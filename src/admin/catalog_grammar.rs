//! The grammar of `wolfpack ctl group|resource|groups|resources`: the administrator's words
//! turned into a `CatalogCommand` (not yet validated against a catalog; the daemon does that,
//! `node/catalog_commands.rs`).
//!
//! Commands (NAME, G, R: `[a-z0-9._-]`, 1 to 64 bytes; N: a node id; S: seconds):
//!
//! ```text
//! group add NAME [--preferred N,M] [--possible N,M] [--failback off|immediate|window=H-H]
//!                [--failover-threshold N] [--failover-period S]
//! group move NAME [--to N] | group move NAME --clear
//! group remove NAME
//! group cleanup NAME
//! resource add NAME --group G --type TYPE [--param KEY=VALUE]... [--depends R[,R]]...
//!                [--restart-threshold N] [--restart-period S] [--looksalive S] [--isalive S]
//!                [--timeout S] [--no-affect-group] [--force]
//! resource update NAME [--param KEY=VALUE]... [--remove-param KEY]...
//!                [--restart-threshold N] [--restart-period S] [--looksalive S] [--isalive S]
//!                [--timeout S] [--affect-group | --no-affect-group] [--force]
//! resource online|offline|remove|cleanup NAME
//! groups [--json]
//! resources [--json]
//! ```
//!
//! `parse` is `ctl`'s and the daemon's (through `request::AdminRequest::parse`): ctl refuses a
//! malformed command line before it contacts the node; the daemon parses again (it trusts no
//! client) and validates against its replica. `--force` is for ctl, which checks OCF
//! parameters against the agent's meta-data (`cli/ctl.rs`); the daemon ignores it.

use crate::core::catalog::{self, Failback, NewGroup, NewResource, ResourceChange};

/// The first words of every catalog command.
pub const COMMAND_WORDS: [&str; 4] = ["group", "resource", "groups", "resources"];

/// One administrator's catalog command, parsed (not yet validated against a catalog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogCommand {
    AddGroup(NewGroup),
    MoveGroup {
        name: String,
        to: Option<u8>,
    },
    ClearGroupTarget {
        name: String,
    },
    RemoveGroup {
        name: String,
    },
    /// `force`: ctl adds it even if the agent's meta-data does not declare its parameters.
    AddResource {
        resource: NewResource,
        force: bool,
    },
    /// `resource update`; `force` as for `AddResource`.
    UpdateResource {
        change: ResourceChange,
        force: bool,
    },
    SetResourceRole {
        name: String,
        online: bool,
    },
    RemoveResource {
        name: String,
    },
    CleanupResource {
        name: String,
    },
    CleanupGroup {
        name: String,
    },
    ShowGroups {
        json: bool,
    },
    ShowResources {
        json: bool,
    },
}

/// The command the words say (decoded words, the command word first), or what is wrong with
/// them, naming the command and the flag.
pub fn parse(words: &[&str]) -> Result<CatalogCommand, String> {
    match words {
        ["groups", rest @ ..] => Ok(CatalogCommand::ShowGroups {
            json: listing_flags("groups", rest)?,
        }),
        ["resources", rest @ ..] => Ok(CatalogCommand::ShowResources {
            json: listing_flags("resources", rest)?,
        }),
        ["group", "add", rest @ ..] => parse_group_add(rest),
        ["group", "move", rest @ ..] => parse_group_move(rest),
        ["group", "remove", rest @ ..] => Ok(CatalogCommand::RemoveGroup {
            name: only_name("group remove", rest)?,
        }),
        ["resource", "add", rest @ ..] => parse_resource_add(rest),
        ["resource", "update", rest @ ..] => parse_resource_update(rest),
        ["resource", verb @ ("online" | "offline"), rest @ ..] => {
            Ok(CatalogCommand::SetResourceRole {
                name: only_name(&format!("resource {verb}"), rest)?,
                online: *verb == "online",
            })
        }
        ["resource", "remove", rest @ ..] => Ok(CatalogCommand::RemoveResource {
            name: only_name("resource remove", rest)?,
        }),
        ["resource", "cleanup", rest @ ..] => Ok(CatalogCommand::CleanupResource {
            name: only_name("resource cleanup", rest)?,
        }),
        ["group", "cleanup", rest @ ..] => Ok(CatalogCommand::CleanupGroup {
            name: only_name("group cleanup", rest)?,
        }),
        ["group", other, ..] => Err(format!(
            "group: unknown subcommand '{other}' (add, move, remove, cleanup)"
        )),
        ["resource", other, ..] => Err(format!(
            "resource: unknown subcommand '{other}' (add, update, online, offline, remove, \
             cleanup)"
        )),
        ["group"] => Err("group: missing subcommand (add, move, remove, cleanup)".to_string()),
        ["resource"] => Err(
            "resource: missing subcommand (add, update, online, offline, remove, cleanup)"
                .to_string(),
        ),
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

fn parse_group_add(rest: &[&str]) -> Result<CatalogCommand, String> {
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
    Ok(CatalogCommand::AddGroup(NewGroup {
        name,
        preferred: node_list("preferred")?.unwrap_or_default(),
        possible: node_list("possible")?,
        failback,
        failover_threshold: number(COMMAND, &matches, "failover-threshold")?,
        failover_period_s: number(COMMAND, &matches, "failover-period")?,
    }))
}

fn parse_group_move(rest: &[&str]) -> Result<CatalogCommand, String> {
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
        (None, true) => Ok(CatalogCommand::ClearGroupTarget { name }),
        (to, false) => Ok(CatalogCommand::MoveGroup { name, to }),
    }
}

/// The numeric settings `resource add` and `resource update` both take (`--FLAG N`).
const RESOURCE_SETTING_FLAGS: [&str; 5] = [
    "restart-threshold",
    "restart-period",
    "looksalive",
    "isalive",
    "timeout",
];

fn parse_resource_add(rest: &[&str]) -> Result<CatalogCommand, String> {
    const COMMAND: &str = "resource add";
    let mut options = getopts::Options::new();
    for flag in ["group", "type"].into_iter().chain(RESOURCE_SETTING_FLAGS) {
        options.optopt("", flag, "", "");
    }
    options.optmulti("", "param", "", "KEY=VALUE");
    options.optmulti("", "depends", "", "R[,R]");
    options.optflag("", "no-affect-group", "");
    options.optflag("", "force", "");
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
    resource.params = params(COMMAND, &matches)?;
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
    Ok(CatalogCommand::AddResource {
        resource,
        force: matches.opt_present("force"),
    })
}

fn parse_resource_update(rest: &[&str]) -> Result<CatalogCommand, String> {
    const COMMAND: &str = "resource update";
    let mut options = getopts::Options::new();
    for flag in RESOURCE_SETTING_FLAGS {
        options.optopt("", flag, "", "");
    }
    options.optmulti("", "param", "", "KEY=VALUE");
    options.optmulti("", "remove-param", "", "KEY");
    options.optflag("", "affect-group", "");
    options.optflag("", "no-affect-group", "");
    options.optflag("", "force", "");
    let matches = flags(&options, COMMAND, rest)?;
    let name = name_operand(COMMAND, &matches)?;
    let affects_group = match (
        matches.opt_present("affect-group"),
        matches.opt_present("no-affect-group"),
    ) {
        (true, true) => {
            return Err(format!(
                "{COMMAND}: --affect-group and --no-affect-group conflict"
            ))
        }
        (true, false) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let change = ResourceChange {
        name,
        set_params: params(COMMAND, &matches)?,
        remove_params: matches.opt_strs("remove-param"),
        restart_threshold: number(COMMAND, &matches, "restart-threshold")?,
        restart_period_s: number(COMMAND, &matches, "restart-period")?,
        looks_alive_s: number(COMMAND, &matches, "looksalive")?,
        is_alive_s: number(COMMAND, &matches, "isalive")?,
        timeout_s: number(COMMAND, &matches, "timeout")?,
        affects_group,
    };
    if change.is_empty() {
        return Err(format!(
            "{COMMAND}: nothing to change (--param, --remove-param, --timeout, --looksalive, \
             --isalive, --restart-threshold, --restart-period, --affect-group, \
             --no-affect-group)"
        ));
    }
    Ok(CatalogCommand::UpdateResource {
        change,
        force: matches.opt_present("force"),
    })
}

/// Every `--param KEY=VALUE`, in the order given (the value may hold '=').
fn params(command: &str, matches: &getopts::Matches) -> Result<Vec<(String, String)>, String> {
    matches
        .opt_strs("param")
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => Ok((key.to_string(), value.to_string())),
            None => Err(format!("{command}: --param: '{pair}' is not KEY=VALUE")),
        })
        .collect()
}

/// getopts' errors as one line naming the command and the flag.
fn flags(
    options: &getopts::Options,
    command: &str,
    words: &[&str],
) -> Result<getopts::Matches, String> {
    flag_errors(options, words).map_err(|text| format!("{command}: {text}"))
}

/// getopts' errors as one line naming the flag.
pub(super) fn flag_errors(
    options: &getopts::Options,
    words: &[&str],
) -> Result<getopts::Matches, String> {
    options.parse(words).map_err(|error| match error {
        getopts::Fail::UnrecognizedOption(flag) => match flag.len() {
            1 => format!("unknown flag '-{flag}'"),
            _ => format!("unknown flag '--{flag}'"),
        },
        getopts::Fail::ArgumentMissing(flag) => format!("flag '--{flag}' needs a value"),
        getopts::Fail::OptionMissing(flag) => format!("missing flag '--{flag}'"),
        getopts::Fail::OptionDuplicated(flag) => format!("flag '--{flag}' is given twice"),
        getopts::Fail::UnexpectedArgument(flag) => format!("flag '--{flag}' takes no value"),
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
#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Result<CatalogCommand, String> {
        let words: Vec<&str> = line.split(' ').collect();
        parse(&words)
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(
            parsed("group add web --preferred 2,1 --possible 1,2 --failback window=22-6 --failover-threshold 3 --failover-period 600"),
            Ok(CatalogCommand::AddGroup(NewGroup {
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
            Ok(CatalogCommand::MoveGroup {
                name: "web".into(),
                to: Some(3)
            })
        );
        assert_eq!(
            parsed("group move web"),
            Ok(CatalogCommand::MoveGroup {
                name: "web".into(),
                to: None
            })
        );
        assert_eq!(
            parsed("group move web --clear"),
            Ok(CatalogCommand::ClearGroupTarget { name: "web".into() })
        );
        assert_eq!(
            parsed("group remove web"),
            Ok(CatalogCommand::RemoveGroup { name: "web".into() })
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
            Ok(CatalogCommand::AddResource { resource: expected.clone(), force: false })
        );
        assert_eq!(
            parsed("resource add app --force --group web --type process --param command=a=b --param check= --depends ip,disk --depends fs --restart-threshold 2 --restart-period 60 --looksalive 3 --isalive 30 --timeout 20 --no-affect-group"),
            Ok(CatalogCommand::AddResource { resource: expected, force: true })
        );
        assert_eq!(
            parsed("resource update sap --param InstanceName=HA1_ASCS00_sap --param x=a=b --remove-param old --timeout 90 --looksalive 4 --isalive 40 --restart-threshold 1 --restart-period 30 --affect-group --force"),
            Ok(CatalogCommand::UpdateResource {
                change: ResourceChange {
                    name: "sap".into(),
                    set_params: vec![
                        ("InstanceName".into(), "HA1_ASCS00_sap".into()),
                        ("x".into(), "a=b".into()),
                    ],
                    remove_params: vec!["old".into()],
                    restart_threshold: Some(1),
                    restart_period_s: Some(30),
                    looks_alive_s: Some(4),
                    is_alive_s: Some(40),
                    timeout_s: Some(90),
                    affects_group: Some(true),
                },
                force: true,
            })
        );
        assert_eq!(
            parsed("resource update app --no-affect-group"),
            Ok(CatalogCommand::UpdateResource {
                change: ResourceChange {
                    name: "app".into(),
                    affects_group: Some(false),
                    ..ResourceChange::default()
                },
                force: false,
            })
        );
        for (verb, online) in [("online", true), ("offline", false)] {
            assert_eq!(
                parsed(&format!("resource {verb} app")),
                Ok(CatalogCommand::SetResourceRole {
                    name: "app".into(),
                    online
                })
            );
        }
        assert_eq!(
            parsed("resource remove app"),
            Ok(CatalogCommand::RemoveResource { name: "app".into() })
        );
        assert_eq!(
            parsed("resource cleanup app"),
            Ok(CatalogCommand::CleanupResource { name: "app".into() })
        );
        assert_eq!(
            parsed("group cleanup web"),
            Ok(CatalogCommand::CleanupGroup { name: "web".into() })
        );
        assert_eq!(
            parsed("groups"),
            Ok(CatalogCommand::ShowGroups { json: false })
        );
        assert_eq!(
            parsed("resources --json"),
            Ok(CatalogCommand::ShowResources { json: true })
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
            ("resource update app", "resource update: nothing to change"),
            (
                "resource update app --force",
                "resource update: nothing to change",
            ),
            (
                "resource update app --param x",
                "resource update: --param: 'x' is not KEY=VALUE",
            ),
            (
                "resource update app --affect-group --no-affect-group",
                "--affect-group and --no-affect-group conflict",
            ),
            (
                "resource update app --group other",
                "resource update: unknown flag '--group'",
            ),
            (
                "resource update --timeout 5",
                "resource update: takes one operand (NAME), got 0",
            ),
            ("resource online app --force", "unknown flag '--force'"),
            ("groups web", "groups: takes no operands, got 1 (web)"),
            ("status", "not a catalog command: status"),
        ];
        for (line, why) in cases {
            let error = parsed(line).expect_err(line);
            assert!(error.contains(why), "{line}: {error}");
        }
    }
}
