//! `wolfpack ctl group|resource|groups|resources`, the daemon's side: a parsed
//! `CatalogCommand` (`crate::admin::catalog_grammar`) turned into a catalog edit
//! (`core::catalog`, one GUM update with preconditions) or a listing of the catalog with what
//! this node knows at run time (`catalog_render.rs`).

use super::catalog_render::{render_groups, render_resources};
use crate::admin::CatalogCommand;
use crate::core::catalog::{self, EditError, GroupSpec, ResourceSpec};
use crate::core::db::{Database, Update};

/// The answer when GUM applied the edit's update but a precondition no longer held: another
/// edit landed between reading the catalog and applying, so this one changed nothing.
pub const CONFLICT: &str = "conflicting change, nothing changed; retry";

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

/// The daemon's side: a catalog command to an update to propose or a listing of the catalog
/// in `database`.
pub fn answer(
    database: &Database,
    command: &CatalogCommand,
    runtime: &Runtime,
) -> Result<Answer, String> {
    match command {
        CatalogCommand::ShowGroups { json } => Ok(Answer::Show(render_groups(
            &catalog::read(database),
            &runtime.group,
            *json,
        ))),
        CatalogCommand::ShowResources { json } => Ok(Answer::Show(render_resources(
            &catalog::read(database),
            &runtime.resource,
            *json,
        ))),
        edit => {
            let update = update_for(database, edit, runtime).map_err(|why| why.to_string())?;
            let encoded = update
                .encode()
                .map_err(|why| format!("the change cannot be encoded: {why}"))?;
            Ok(Answer::Propose(encoded))
        }
    }
}

/// The update an edit makes to `database` (validated against its catalog), or why not.
fn update_for(
    database: &Database,
    command: &CatalogCommand,
    runtime: &Runtime,
) -> Result<Update, EditError> {
    let configured = runtime.configured_nodes;
    match command {
        CatalogCommand::AddGroup(group) => catalog::add_group(database, group, configured),
        CatalogCommand::MoveGroup { name, to } => {
            let current_owner = catalog::read(database)
                .group(name)
                .and_then(|group| (runtime.group)(group).owner)
                .unwrap_or(0);
            catalog::move_group(database, name, *to, configured, current_owner)
        }
        CatalogCommand::ClearGroupTarget { name } => catalog::clear_group_target(database, name),
        CatalogCommand::RemoveGroup { name } => catalog::remove_group(database, name),
        // `force` is ctl's: the meta-data check it overrides runs there.
        CatalogCommand::AddResource { resource, .. } => catalog::add_resource(database, resource),
        CatalogCommand::UpdateResource { change, .. } => catalog::update_resource(database, change),
        CatalogCommand::SetResourceRole { name, online } => {
            catalog::set_resource_role(database, name, *online)
        }
        CatalogCommand::RemoveResource { name } => catalog::remove_resource(database, name),
        CatalogCommand::CleanupResource { name } => catalog::cleanup_resource(database, name),
        CatalogCommand::CleanupGroup { name } => catalog::cleanup_group(database, name),
        CatalogCommand::ShowGroups { .. } | CatalogCommand::ShowResources { .. } => {
            Err(EditError::Rule("a listing changes nothing".to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::words::encode_word;
    use crate::admin::AdminRequest;
    use crate::core::db::{Op, Value};

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

    /// The words as ctl sends them (escaped), through the daemon's parser and `answer`.
    fn answer_words(database: &Database, words: &[&str]) -> Result<Answer, String> {
        let encoded: Vec<String> = words.iter().map(|word| encode_word(word)).collect();
        match AdminRequest::parse_received(&encoded).map_err(|why| why.to_string())? {
            AdminRequest::Catalog(command) => answer(database, &command, &runtime()),
            other => Err(format!("not a catalog command: {other:?}")),
        }
    }

    /// Runs `words` through `answer` and applies what it proposes.
    fn run(database: &mut Database, words: &[&str]) -> Result<String, String> {
        match answer_words(database, words)? {
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
        let Ok(Answer::Propose(bytes)) = answer_words(&database, &words) else {
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
        let raw = ["resource".to_string(), "online".into(), "a\\q".into()];
        let error = AdminRequest::parse_received(&raw).expect_err("bad escape");
        assert!(error.text().contains("bad escape"), "{error}");
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
