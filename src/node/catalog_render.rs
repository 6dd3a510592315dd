//! `ctl groups` and `ctl resources`: the catalog rendered as a table or as JSON, with what
//! the daemon knows at run time (`catalog_commands::Runtime`).

use super::catalog_commands::{GroupRuntime, ResourceRuntime};
use crate::core::catalog::{self, Catalog, GroupSpec, ResourceSpec};
use crate::json::Json;

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
