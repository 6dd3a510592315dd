//! The typed catalog from a database replica. Tolerant: what does not make sense is left out
//! and named, never a panic (a replica is trusted to be the cluster's, not to be sensible).

use super::{Catalog, Failback, GroupSpec, Refusal, ResourceSpec};
use super::{FAILOVER_PERIOD_S_DEFAULT, FAILOVER_THRESHOLD_DEFAULT};
use super::{IS_ALIVE_S_DEFAULT, LOOKS_ALIVE_S_DEFAULT};
use super::{RESTART_PERIOD_S_DEFAULT, RESTART_THRESHOLD_DEFAULT};
use crate::core::db::{Database, Path, Value};
use crate::core::NODES_MAX;
use std::collections::BTreeMap;

/// A name's keys (`rest...` → value), borrowed from the database: the catalog is re-read on
/// every change of its namespaces, and copying every key and value showed in the profile.
type Keys<'a> = BTreeMap<&'a str, &'a Value>;
type Fields<'a> = BTreeMap<&'a str, Keys<'a>>;

/// The catalog as `database` states it.
pub fn read(database: &Database) -> Catalog {
    let mut catalog = Catalog::default();
    let groups = fields(database, "groups");
    for (name, keys) in &groups {
        match group(name, keys) {
            Ok(spec) => {
                if let Some(other) = catalog.groups.iter().find(|g| g.slot == spec.slot) {
                    catalog.problems.push(format!(
                        "group '{name}' left out: slot {} is group '{}'s",
                        spec.slot, other.name
                    ));
                } else {
                    catalog.groups.push(spec);
                }
            }
            Err(why) => catalog
                .problems
                .push(format!("group '{name}' left out: {why}")),
        }
    }
    let resources = fields(database, "resources");
    for (name, keys) in &resources {
        match resource(name, keys) {
            Ok(spec) if catalog.group(&spec.group).is_some() => catalog.resources.push(spec),
            Ok(spec) => catalog.problems.push(format!(
                "resource '{name}' left out: its group '{}' does not exist",
                spec.group
            )),
            Err(why) => catalog
                .problems
                .push(format!("resource '{name}' left out: {why}")),
        }
    }
    catalog
}

/// `namespace/NAME/rest...` → NAME → rest → value.
fn fields<'a>(database: &'a Database, namespace: &str) -> Fields<'a> {
    let mut by_name = Fields::new();
    let Ok(prefix) = Path::parse(namespace) else {
        return by_name;
    };
    // `Database::list` without tying what it yields to the local `prefix`.
    let listed = database
        .entries()
        .range(&prefix..)
        .take_while(|(path, _)| path.is_within(&prefix));
    for (path, entry) in listed {
        let value = &entry.value;
        let mut parts = path.as_str().splitn(3, '/');
        let (Some(_namespace), Some(name), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        by_name.entry(name).or_default().insert(rest, value);
    }
    by_name
}

fn group(name: &str, keys: &Keys<'_>) -> Result<GroupSpec, String> {
    let slot = match keys.get("slot") {
        Some(Value::U64(slot)) if (1..=NODES_MAX as u64).contains(slot) => *slot as u8,
        Some(_) => return Err("slot is not a number in 1..=64".into()),
        None => return Err("no slot".into()),
    };
    let preferred = match keys.get("preferred") {
        Some(Value::Text(text)) => node_ids(text)?,
        Some(_) => return Err("preferred is not text".into()),
        None => Vec::new(),
    };
    let possible = match keys.get("possible") {
        Some(Value::NodeList(ids)) => ids.iter().fold(0, |bits, id| bits | crate::core::bit(*id)),
        Some(_) => return Err("possible is not a node list".into()),
        None => 0,
    };
    let failback = match keys.get("failback") {
        Some(Value::Text(text)) => Failback::parse(text)?,
        Some(_) => return Err("failback is not text".into()),
        None => Failback::Off,
    };
    let target = match keys.get("target") {
        Some(Value::U64(id)) if (1..=NODES_MAX as u64).contains(id) => *id as u8,
        Some(_) => return Err("target is not a node id".into()),
        None => 0,
    };
    let failures = match keys.get("failures") {
        Some(Value::Text(text)) => text
            .split(',')
            .filter(|word| !word.is_empty())
            .map(|word| word.parse::<u64>())
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| "failures is not a list of seconds".to_string())?,
        Some(_) => return Err("failures is not text".into()),
        None => Vec::new(),
    };
    let mut refusals = Vec::new();
    for (key, value) in keys {
        // A refusal that does not parse is left out, not the group: it only keeps a node away.
        let Some(node) = key.strip_prefix("refused/") else {
            continue;
        };
        let node = node
            .parse::<u8>()
            .ok()
            .filter(|id| (1..=NODES_MAX as u8).contains(id));
        if let (Some(node), Value::Text(text)) = (node, value) {
            refusals.extend(Refusal::parse(node, text));
        }
    }
    let cleanup = match keys.get("cleanup") {
        Some(Value::U64(generation)) => *generation,
        Some(_) => return Err("cleanup is not a number".into()),
        None => 0,
    };
    Ok(GroupSpec {
        failures,
        refusals,
        cleanup,
        name: name.to_string(),
        slot,
        preferred,
        possible,
        failback,
        failover_threshold: number(keys, "failover-threshold", FAILOVER_THRESHOLD_DEFAULT)?,
        failover_period_s: number(keys, "failover-period", FAILOVER_PERIOD_S_DEFAULT)?,
        target,
    })
}

fn resource(name: &str, keys: &Keys<'_>) -> Result<ResourceSpec, String> {
    let text = |key: &str| match keys.get(key) {
        Some(Value::Text(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("{key} is not text")),
        None => Ok(None),
    };
    let group = text("group")?.ok_or("no group")?;
    let kind = text("type")?.ok_or("no type")?;
    let mut params = Vec::new();
    for (key, value) in keys {
        if let Some(segment) = key.strip_prefix("params/") {
            let param = super::param_key(segment)
                .ok_or_else(|| format!("params/{segment} does not name a parameter key"))?;
            match value {
                Value::Text(text) => params.push((param, text.clone())),
                _ => return Err(format!("parameter {param} is not text")),
            }
        }
    }
    // In key order (the database's order is the segments').
    params.sort();
    let depends = text("depends")?
        .map(|list| {
            list.split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let timeout_s = match keys.get("timeout") {
        Some(Value::U64(seconds)) => Some(u32::try_from(*seconds).unwrap_or(u32::MAX)),
        Some(_) => return Err("timeout is not a number".into()),
        None => None,
    };
    let affects_group = match keys.get("affects-group") {
        Some(Value::Bool(affects)) => *affects,
        Some(_) => return Err("affects-group is not a bool".into()),
        None => true,
    };
    let role_online = match text("role")?.as_deref() {
        None | Some("online") => true,
        Some("offline") => false,
        Some(other) => return Err(format!("role '{other}' is not online or offline")),
    };
    let cleanup = match keys.get("cleanup") {
        Some(Value::U64(generation)) => *generation,
        Some(_) => return Err("cleanup is not a number".into()),
        None => 0,
    };
    Ok(ResourceSpec {
        name: name.to_string(),
        group,
        kind,
        params,
        depends,
        restart_threshold: number(keys, "restart-threshold", RESTART_THRESHOLD_DEFAULT)?,
        restart_period_s: number(keys, "restart-period", RESTART_PERIOD_S_DEFAULT)?,
        looks_alive_s: number(keys, "looksalive", LOOKS_ALIVE_S_DEFAULT)?,
        is_alive_s: number(keys, "isalive", IS_ALIVE_S_DEFAULT)?,
        timeout_s,
        affects_group,
        role_online,
        cleanup,
    })
}

fn number(keys: &Keys<'_>, key: &str, default: u32) -> Result<u32, String> {
    match keys.get(key) {
        Some(Value::U64(value)) => Ok(u32::try_from(*value).unwrap_or(u32::MAX)),
        Some(_) => Err(format!("{key} is not a number")),
        None => Ok(default),
    }
}

/// "2,1,3": node ids in order, each once, in 1..=64.
pub fn node_ids(text: &str) -> Result<Vec<u8>, String> {
    let mut ids: Vec<u8> = Vec::new();
    for word in text.split(',').filter(|word| !word.is_empty()) {
        let id: u8 = word
            .parse()
            .ok()
            .filter(|id| (1..=NODES_MAX as u8).contains(id))
            .ok_or_else(|| format!("'{word}' is not a node id (1 to 64)"))?;
        if ids.contains(&id) {
            return Err(format!("node {id} is listed twice"));
        }
        ids.push(id);
    }
    Ok(ids)
}
