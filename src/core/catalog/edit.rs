//! The administrator's commands (`ctl group ...`, `ctl resource ...`) as database updates.
//!
//! Each function validates the command against the catalog of one replica and returns the
//! update that makes the change, with `Op::Require` preconditions on every key whose version
//! the decision read. GUM orders updates, so of two concurrent edits that contradict each
//! other the second lands on a database where a precondition no longer holds, and changes
//! nothing (the daemon answers "conflicting change, nothing changed; retry"); retried, it is
//! validated again against the new catalog.
//!
//! What the preconditions stand on:
//! - A group's `groups/G/slot` is also the version of its structure: every resource add and
//!   remove in the group writes it again (same value), and every edit of the group requires
//!   it. So `group remove` cannot land after a concurrent `resource add` into the group, nor
//!   `resource remove` after a concurrent `resource add` that depends on it (dependencies stay
//!   within a group).
//! - A slot is claimed by `cluster/group-slots/S` (see the schema in `mod.rs`), written with the
//!   group: two concurrent `group add`s that picked the same free slot require the same claim
//!   at the same version, so only one lands.
//! - A resource's `resources/R/group` is its existence: a new resource requires it absent, and
//!   edits of a resource require it at the version read.

use super::edit_error::{join, EditError};
use super::validate::{check_dependencies, check_name, check_nodes, check_range};
use super::validate::{check_type_and_params, CHECK_INTERVAL_S_RANGE, PERIOD_S_RANGE};
use super::validate::{THRESHOLD_RANGE, TIMEOUT_S_RANGE};
use super::{read, Catalog, Failback, GroupSpec, ResourceSpec};
use super::{IS_ALIVE_S_DEFAULT, LOOKS_ALIVE_S_DEFAULT};
use crate::core::db::{Database, Op, Path, Update, Value};
use crate::core::NODES_MAX;
use std::ops::RangeInclusive;

/// Where slot S's claim lives: `cluster/group-slots/S`, the name of the group holding it.
pub const SLOT_CLAIMS: &str = "cluster/group-slots";

/// `group add`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    /// Node ids, most preferred first; empty = no preference.
    pub preferred: Vec<u8>,
    /// Nodes allowed to host it; `None` = every node.
    pub possible: Option<Vec<u8>>,
    /// `None`: the default (off), left to the reader.
    pub failback: Option<Failback>,
    pub failover_threshold: Option<u32>,
    pub failover_period_s: Option<u32>,
}

/// `resource add`. Numbers left `None` are not written, so the reader's defaults apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewResource {
    pub name: String,
    pub group: String,
    pub kind: String,
    /// Stored verbatim, in the order given (the database keeps them in key order).
    pub params: Vec<(String, String)>,
    pub depends: Vec<String>,
    pub restart_threshold: Option<u32>,
    pub restart_period_s: Option<u32>,
    pub looks_alive_s: Option<u32>,
    pub is_alive_s: Option<u32>,
    pub timeout_s: Option<u32>,
    pub affects_group: bool,
}

impl NewResource {
    /// A resource with no parameters, dependencies or settings of its own.
    pub fn new(name: &str, group: &str, kind: &str) -> NewResource {
        NewResource {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            params: Vec::new(),
            depends: Vec::new(),
            restart_threshold: None,
            restart_period_s: None,
            looks_alive_s: None,
            is_alive_s: None,
            timeout_s: None,
            affects_group: true,
        }
    }
}

/// `resource update`: what changes of an existing resource; `None` and empty lists change
/// nothing. Its name, group, type and dependencies stay (remove and add it to change those).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceChange {
    pub name: String,
    /// Parameters set: added, or replacing the value of the key.
    pub set_params: Vec<(String, String)>,
    /// Parameters removed (each must be one it has).
    pub remove_params: Vec<String>,
    pub restart_threshold: Option<u32>,
    pub restart_period_s: Option<u32>,
    pub looks_alive_s: Option<u32>,
    pub is_alive_s: Option<u32>,
    pub timeout_s: Option<u32>,
    pub affects_group: Option<bool>,
}

impl ResourceChange {
    /// Whether it changes nothing at all.
    pub fn is_empty(&self) -> bool {
        *self
            == ResourceChange {
                name: self.name.clone(),
                ..ResourceChange::default()
            }
    }
}

/// `group add`: the group in the lowest free slot. `configured_nodes` is the node table (a
/// bitmap), which every node id given must be in.
pub fn add_group(
    database: &Database,
    group: &NewGroup,
    configured_nodes: u64,
) -> Result<Update, EditError> {
    let name = group.name.as_str();
    check_name("group", name)?;
    check_node_list("--preferred", &group.preferred, configured_nodes)?;
    if let Some(possible) = &group.possible {
        if possible.is_empty() {
            return Err(EditError::PossibleEmpty);
        }
        check_node_list("--possible", possible, configured_nodes)?;
        if let Some(id) = group.preferred.iter().find(|id| !possible.contains(id)) {
            return Err(EditError::PreferredNotPossible {
                node: *id,
                possible: possible.clone(),
            });
        }
    }
    if let Some(threshold) = group.failover_threshold {
        check_range("--failover-threshold", threshold, &THRESHOLD_RANGE)?;
    }
    if let Some(period) = group.failover_period_s {
        check_range("--failover-period", period, &PERIOD_S_RANGE)?;
    }
    let catalog = read(database);
    if catalog.group(name).is_some() {
        return Err(EditError::GroupExists {
            group: name.to_string(),
        });
    }
    refuse_left_over_keys(database, "groups", name)?;
    let used = catalog.slots();
    let slot = (1..=NODES_MAX as u8)
        .find(|slot| used & crate::core::bit(*slot) == 0)
        .ok_or(EditError::NoFreeSlot)?;
    let claim = slot_claim(slot)?;
    let mut ops = vec![
        require(group_key(name, "slot")?, 0),
        require(claim.clone(), database.version(&claim)),
        put(group_key(name, "slot")?, Value::U64(u64::from(slot))),
        put(claim, Value::Text(name.to_string())),
    ];
    if !group.preferred.is_empty() {
        ops.push(put(
            group_key(name, "preferred")?,
            Value::Text(join(&group.preferred)),
        ));
    }
    if let Some(possible) = &group.possible {
        let mut ascending = possible.clone();
        ascending.sort_unstable();
        ops.push(put(
            group_key(name, "possible")?,
            Value::NodeList(ascending),
        ));
    }
    if let Some(failback) = group.failback {
        ops.push(put(
            group_key(name, "failback")?,
            Value::Text(failback.render()),
        ));
    }
    let numbers = [
        ("failover-threshold", group.failover_threshold),
        ("failover-period", group.failover_period_s),
    ];
    for (key, number) in numbers {
        if let Some(number) = number {
            ops.push(put(group_key(name, key)?, Value::U64(u64::from(number))));
        }
    }
    finish(ops)
}

/// `group move NAME [--to N]`: pins the group to a node (`groups/G/target`). Without `to`,
/// the first node of its preferred list, then the lowest configured node, that is a possible
/// owner and not `current_owner` (0 = it has none).
pub fn move_group(
    database: &Database,
    name: &str,
    to: Option<u8>,
    configured_nodes: u64,
    current_owner: u8,
) -> Result<Update, EditError> {
    let catalog = read(database);
    let group = existing_group(database, &catalog, name)?;
    let possible = possible_owners(group, configured_nodes);
    let target = match to {
        Some(id) => {
            check_nodes("--to", &[id], configured_nodes)?;
            if possible & crate::core::bit(id) == 0 {
                return Err(EditError::NotPossibleOwner {
                    group: name.to_string(),
                    node: id,
                    possible,
                });
            }
            id
        }
        None => group
            .preferred
            .iter()
            .copied()
            .chain(crate::core::ids(configured_nodes))
            .filter(|id| (1..=NODES_MAX as u8).contains(id))
            .find(|&id| id != current_owner && possible & crate::core::bit(id) != 0)
            .ok_or_else(|| EditError::NoOtherNode {
                group: name.to_string(),
                possible,
            })?,
    };
    finish(vec![
        require_group(database, name)?,
        put(group_key(name, "target")?, Value::U64(u64::from(target))),
    ])
}

/// `group move NAME --clear`: placement is free again.
pub fn clear_group_target(database: &Database, name: &str) -> Result<Update, EditError> {
    let catalog = read(database);
    existing_group(database, &catalog, name)?;
    finish(vec![
        require_group(database, name)?,
        Op::Delete {
            path: group_key(name, "target")?,
        },
    ])
}

/// `group remove NAME`: refused while the group has resources.
pub fn remove_group(database: &Database, name: &str) -> Result<Update, EditError> {
    let catalog = read(database);
    let group = existing_group(database, &catalog, name)?;
    let resources: Vec<String> = catalog
        .resources
        .iter()
        .filter(|resource| resource.group == name)
        .map(|resource| resource.name.clone())
        .collect();
    if !resources.is_empty() {
        return Err(EditError::GroupHasResources {
            group: name.to_string(),
            resources,
        });
    }
    let mut ops = vec![
        require_group(database, name)?,
        Op::Delete {
            path: named("groups", name)?,
        },
    ];
    let claim = slot_claim(group.slot)?;
    if database.get(&claim).is_some() {
        ops.push(Op::Delete { path: claim });
    }
    finish(ops)
}

/// `resource add`.
pub fn add_resource(database: &Database, resource: &NewResource) -> Result<Update, EditError> {
    let name = resource.name.as_str();
    let group_name = resource.group.as_str();
    check_name("resource", name)?;
    check_name("group", group_name)?;
    for needed in &resource.depends {
        check_name("resource", needed)?;
    }
    check_type_and_params(name, &resource.kind, &resource.params)?;
    let numbers = Numbers {
        restart_threshold: resource.restart_threshold,
        restart_period_s: resource.restart_period_s,
        looks_alive_s: resource.looks_alive_s,
        is_alive_s: resource.is_alive_s,
        timeout_s: resource.timeout_s,
    };
    numbers.check(LOOKS_ALIVE_S_DEFAULT, IS_ALIVE_S_DEFAULT)?;
    let catalog = read(database);
    let group = existing_group(database, &catalog, group_name)?;
    if let Some(existing) = catalog.resource(name) {
        return Err(EditError::ResourceExists {
            resource: name.to_string(),
            group: existing.group.clone(),
        });
    }
    refuse_left_over_keys(database, "resources", name)?;
    check_dependencies(&catalog, name, group_name, &resource.depends)?;

    let mut ops = touch_group(database, group)?;
    ops.push(require(resource_key(name, "group")?, 0));
    for needed in &resource.depends {
        let key = resource_key(needed, "group")?;
        ops.push(require(key.clone(), database.version(&key)));
    }
    ops.push(put(
        resource_key(name, "group")?,
        Value::Text(group_name.to_string()),
    ));
    ops.push(put(
        resource_key(name, "type")?,
        Value::Text(resource.kind.clone()),
    ));
    for (key, value) in &resource.params {
        ops.push(put(param_path(name, key)?, Value::Text(value.clone())));
    }
    if !resource.depends.is_empty() {
        ops.push(put(
            resource_key(name, "depends")?,
            Value::Text(resource.depends.join(",")),
        ));
    }
    ops.extend(numbers.puts(name)?);
    if !resource.affects_group {
        ops.push(put(
            resource_key(name, "affects-group")?,
            Value::Bool(false),
        ));
    }
    finish(ops).map_err(|error| EditError::InResource {
        resource: name.to_string(),
        error: Box::new(error),
    })
}

/// A resource's numbers as `resource add` or `resource update` gives them (`None`: not given).
struct Numbers {
    restart_threshold: Option<u32>,
    restart_period_s: Option<u32>,
    looks_alive_s: Option<u32>,
    is_alive_s: Option<u32>,
    timeout_s: Option<u32>,
}

impl Numbers {
    /// (flag, key, value, range) of each.
    fn fields(
        &self,
    ) -> [(
        &'static str,
        &'static str,
        Option<u32>,
        &RangeInclusive<u32>,
    ); 5] {
        [
            (
                "--restart-threshold",
                "restart-threshold",
                self.restart_threshold,
                &THRESHOLD_RANGE,
            ),
            (
                "--restart-period",
                "restart-period",
                self.restart_period_s,
                &PERIOD_S_RANGE,
            ),
            (
                "--looksalive",
                "looksalive",
                self.looks_alive_s,
                &CHECK_INTERVAL_S_RANGE,
            ),
            (
                "--isalive",
                "isalive",
                self.is_alive_s,
                &CHECK_INTERVAL_S_RANGE,
            ),
            ("--timeout", "timeout", self.timeout_s, &TIMEOUT_S_RANGE),
        ]
    }

    /// Each given number within its range, and the check intervals (those not given being
    /// `looks_alive_s` and `is_alive_s`) in their order.
    fn check(&self, looks_alive_s: u32, is_alive_s: u32) -> Result<(), EditError> {
        for (flag, _, number, range) in self.fields() {
            if let Some(number) = number {
                check_range(flag, number, range)?;
            }
        }
        // IsAlive is the thorough check and LooksAlive the cheap one (MSCS): a thorough check
        // more often than the cheap one means the two were swapped.
        let looks_alive_s = self.looks_alive_s.unwrap_or(looks_alive_s);
        let is_alive_s = self.is_alive_s.unwrap_or(is_alive_s);
        if is_alive_s < looks_alive_s {
            return Err(EditError::ChecksSwapped {
                is_alive_s,
                looks_alive_s,
            });
        }
        Ok(())
    }

    /// A put of each given number.
    fn puts(&self, name: &str) -> Result<Vec<Op>, EditError> {
        let mut ops = Vec::new();
        for (_, key, number, _) in self.fields() {
            if let Some(number) = number {
                ops.push(put(resource_key(name, key)?, Value::U64(u64::from(number))));
            }
        }
        Ok(ops)
    }
}

/// `resource update NAME ...`: the resource's parameters and settings edited in place. The
/// whole parameter set that results is checked as `resource add` checks one, and the update
/// requires every parameter key it read at the version read (absent for a new one), so a
/// concurrent edit of its parameters makes one of the two fail. The group runner restarts the
/// resource (and its dependents) only if its parameters changed (`crate::runner`).
pub fn update_resource(database: &Database, change: &ResourceChange) -> Result<Update, EditError> {
    let name = change.name.as_str();
    check_name("resource", name)?;
    let catalog = read(database);
    let resource = existing_resource(database, &catalog, name)?;
    let mut params = resource.params.clone();
    for (index, key) in change.remove_params.iter().enumerate() {
        let given_twice = change.remove_params[..index].contains(key)
            || change.set_params.iter().any(|(set, _)| set == key);
        if given_twice {
            return Err(EditError::ParameterGivenTwice {
                resource: name.to_string(),
                key: key.clone(),
            });
        }
        let Some(at) = params.iter().position(|(existing, _)| existing == key) else {
            return Err(EditError::UnknownParameter {
                resource: name.to_string(),
                key: key.clone(),
                known: params
                    .iter()
                    .map(|(existing, _)| existing.clone())
                    .collect(),
            });
        };
        params.remove(at);
    }
    for (index, (key, value)) in change.set_params.iter().enumerate() {
        if change.set_params[..index].iter().any(|(set, _)| set == key) {
            return Err(EditError::ParameterGivenTwice {
                resource: name.to_string(),
                key: key.clone(),
            });
        }
        match params.iter_mut().find(|(existing, _)| existing == key) {
            Some(existing) => existing.1 = value.clone(),
            None => params.push((key.clone(), value.clone())),
        }
    }
    check_type_and_params(name, &resource.kind, &params)?;
    let numbers = Numbers {
        restart_threshold: change.restart_threshold,
        restart_period_s: change.restart_period_s,
        looks_alive_s: change.looks_alive_s,
        is_alive_s: change.is_alive_s,
        timeout_s: change.timeout_s,
    };
    numbers.check(resource.looks_alive_s, resource.is_alive_s)?;

    // The parameter set checked is the one read: every key of it at its version, a new one
    // absent (version 0).
    let mut ops = vec![require_resource(database, name)?];
    let read_or_new = resource
        .params
        .iter()
        .chain(&change.set_params)
        .map(|(key, _)| key);
    for key in read_or_new {
        let path = param_path(name, key)?;
        let required = require(path.clone(), database.version(&path));
        if !ops.contains(&required) {
            ops.push(required);
        }
    }
    // The intervals' order was checked against the ones read.
    if change.looks_alive_s.is_some() != change.is_alive_s.is_some() {
        for key in ["looksalive", "isalive"] {
            let path = resource_key(name, key)?;
            ops.push(require(path.clone(), database.version(&path)));
        }
    }
    for key in &change.remove_params {
        ops.push(Op::Delete {
            path: param_path(name, key)?,
        });
    }
    for (key, value) in &change.set_params {
        ops.push(put(param_path(name, key)?, Value::Text(value.clone())));
    }
    ops.extend(numbers.puts(name)?);
    if let Some(affects) = change.affects_group {
        ops.push(put(
            resource_key(name, "affects-group")?,
            Value::Bool(affects),
        ));
    }
    finish(ops).map_err(|error| EditError::InResource {
        resource: name.to_string(),
        error: Box::new(error),
    })
}

/// `resource online|offline NAME`: the administrator's wish for it.
pub fn set_resource_role(
    database: &Database,
    name: &str,
    online: bool,
) -> Result<Update, EditError> {
    let catalog = read(database);
    existing_resource(database, &catalog, name)?;
    let role = if online { "online" } else { "offline" };
    finish(vec![
        require_resource(database, name)?,
        put(resource_key(name, "role")?, Value::Text(role.to_string())),
    ])
}

/// `resource remove NAME`: refused while another resource depends on it.
pub fn remove_resource(database: &Database, name: &str) -> Result<Update, EditError> {
    let catalog = read(database);
    let resource = existing_resource(database, &catalog, name)?;
    let dependents: Vec<String> = catalog
        .resources
        .iter()
        .filter(|other| other.depends.iter().any(|needed| needed == name))
        .map(|other| other.name.clone())
        .collect();
    if !dependents.is_empty() {
        return Err(EditError::ResourceNeeded {
            resource: name.to_string(),
            dependents,
        });
    }
    let group = existing_group(database, &catalog, &resource.group)?;
    let mut ops = touch_group(database, group)?;
    ops.push(require_resource(database, name)?);
    ops.push(Op::Delete {
        path: named("resources", name)?,
    });
    finish(ops)
}

/// `resource cleanup NAME`: bumps `resources/R/cleanup`, so its runner forgets its failures,
/// and clears its group's failure history and refusals (`group_cleared`), so the group is
/// placed again at once.
pub fn cleanup_resource(database: &Database, name: &str) -> Result<Update, EditError> {
    let catalog = read(database);
    let resource = existing_resource(database, &catalog, name)?;
    let key = resource_key(name, "cleanup")?;
    let mut ops = vec![
        require_resource(database, name)?,
        require(key.clone(), database.version(&key)),
        put(key, Value::U64(resource.cleanup.saturating_add(1))),
    ];
    if let Some(group) = catalog.group(&resource.group) {
        ops.extend(group_cleared(database, group)?);
    }
    finish(ops)
}

/// `group cleanup NAME`: every resource of the group forgets its failures (as `resource
/// cleanup` of each), and the group's failure history and refusals are cleared.
pub fn cleanup_group(database: &Database, name: &str) -> Result<Update, EditError> {
    let catalog = read(database);
    let group = existing_group(database, &catalog, name)?;
    let mut ops = vec![require_group(database, name)?];
    for resource in catalog
        .resources
        .iter()
        .filter(|resource| resource.group == name)
    {
        let key = resource_key(&resource.name, "cleanup")?;
        ops.push(require(key.clone(), database.version(&key)));
        ops.push(put(key, Value::U64(resource.cleanup.saturating_add(1))));
    }
    ops.extend(group_cleared(database, group)?);
    finish(ops)
}

/// A cleanup's part on the group: a new cleanup generation (every node drops the refusals it
/// made before it), and no refusal records or failure history left (every coordinator places
/// the group again and counts its failovers from zero).
fn group_cleared(database: &Database, group: &GroupSpec) -> Result<Vec<Op>, EditError> {
    let generation = group_key(&group.name, "cleanup")?;
    let mut ops = vec![
        require(generation.clone(), database.version(&generation)),
        put(generation, Value::U64(group.cleanup.saturating_add(1))),
    ];
    let refused = group_key(&group.name, "refused")?;
    if database.list(&refused).next().is_some() {
        ops.push(Op::Delete { path: refused });
    }
    let failures = group_key(&group.name, "failures")?;
    if database.get(&failures).is_some() {
        ops.push(Op::Delete { path: failures });
    }
    Ok(ops)
}

fn check_node_list(flag: &'static str, ids: &[u8], configured_nodes: u64) -> Result<(), EditError> {
    check_nodes(flag, ids, configured_nodes)?;
    for (index, id) in ids.iter().enumerate() {
        if ids[..index].contains(id) {
            return Err(EditError::ListedTwice { flag, node: *id });
        }
    }
    Ok(())
}

/// Nodes that may host `group` (a bitmap): its possible owners that are configured.
fn possible_owners(group: &GroupSpec, configured_nodes: u64) -> u64 {
    match group.possible {
        0 => configured_nodes,
        possible => possible & configured_nodes,
    }
}

fn existing_group<'a>(
    database: &Database,
    catalog: &'a Catalog,
    name: &str,
) -> Result<&'a GroupSpec, EditError> {
    if let Some(group) = catalog.group(name) {
        return Ok(group);
    }
    if has_keys(database, "groups", name) {
        return Err(EditError::GroupLeftOut {
            group: name.to_string(),
        });
    }
    let known: Vec<String> = catalog
        .groups
        .iter()
        .map(|group| group.name.clone())
        .collect();
    Err(EditError::UnknownGroup {
        group: name.to_string(),
        known,
    })
}

fn existing_resource<'a>(
    database: &Database,
    catalog: &'a Catalog,
    name: &str,
) -> Result<&'a ResourceSpec, EditError> {
    if let Some(resource) = catalog.resource(name) {
        return Ok(resource);
    }
    if has_keys(database, "resources", name) {
        return Err(EditError::ResourceLeftOut {
            resource: name.to_string(),
        });
    }
    Err(EditError::UnknownResource {
        resource: name.to_string(),
    })
}

/// Keys a hand edit (`ctl update`) left under `namespace/NAME` that the catalog does not
/// read as an entry: a new entry on top of them would inherit them.
fn refuse_left_over_keys(
    database: &Database,
    namespace: &'static str,
    name: &str,
) -> Result<(), EditError> {
    if has_keys(database, namespace, name) {
        return Err(EditError::LeftOverKeys {
            namespace,
            name: name.to_string(),
        });
    }
    Ok(())
}

fn has_keys(database: &Database, namespace: &str, name: &str) -> bool {
    named(namespace, name).is_ok_and(|prefix| database.list(&prefix).next().is_some())
}

/// The group's slot key required at the version read and written again with the same value:
/// the group's structure changed (see the module docs).
fn touch_group(database: &Database, group: &GroupSpec) -> Result<Vec<Op>, EditError> {
    Ok(vec![
        require_group(database, &group.name)?,
        put(
            group_key(&group.name, "slot")?,
            Value::U64(u64::from(group.slot)),
        ),
    ])
}

fn require_group(database: &Database, name: &str) -> Result<Op, EditError> {
    let key = group_key(name, "slot")?;
    Ok(require(key.clone(), database.version(&key)))
}

fn require_resource(database: &Database, name: &str) -> Result<Op, EditError> {
    let key = resource_key(name, "group")?;
    Ok(require(key.clone(), database.version(&key)))
}

fn named(namespace: &str, name: &str) -> Result<Path, EditError> {
    path(&format!("{namespace}/{name}"))
}

fn group_key(name: &str, key: &str) -> Result<Path, EditError> {
    path(&format!("groups/{name}/{key}"))
}

fn resource_key(name: &str, key: &str) -> Result<Path, EditError> {
    path(&format!("resources/{name}/{key}"))
}

fn param_path(name: &str, key: &str) -> Result<Path, EditError> {
    resource_key(name, &format!("params/{}", super::param_segment(key)))
}

fn slot_claim(slot: u8) -> Result<Path, EditError> {
    path(&format!("{SLOT_CLAIMS}/{slot}"))
}

/// Names are checked before any path is built, so this fails only on a rule they do not cover
/// (the path's total length); the message still names the key.
fn path(text: &str) -> Result<Path, EditError> {
    Path::parse(text).map_err(|why| EditError::Key {
        key: text.to_string(),
        why,
    })
}

fn put(path: Path, value: Value) -> Op {
    Op::Put { path, value }
}

fn require(path: Path, version: u64) -> Op {
    Op::Require { path, version }
}

fn finish(ops: Vec<Op>) -> Result<Update, EditError> {
    let update = Update::new(ops);
    update.validate().map_err(EditError::TooLarge)?;
    Ok(update)
}
