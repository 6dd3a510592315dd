//! Why an administrator's edit (`edit.rs`) is refused. The daemon answers `ctl` with the
//! `Display` text, which names the flag or the entry at fault.

use super::validate::list_nodes;
use crate::core::db::{PathError, UpdateError};
use std::fmt;

/// Why an edit of the catalog is refused; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// A rule of `validate.rs` (names, node ids, ranges, types and parameters, dependencies);
    /// its text names the flag or the entry.
    Rule(String),
    /// `--possible` given with no node.
    PossibleEmpty,
    /// A preferred node that `--possible` leaves out.
    PreferredNotPossible {
        node: u8,
        possible: Vec<u8>,
    },
    /// A node given twice in a list (`flag`: `--preferred`, `--possible`).
    ListedTwice {
        flag: &'static str,
        node: u8,
    },
    /// Every group slot is taken.
    NoFreeSlot,
    GroupExists {
        group: String,
    },
    /// No such group; `known` lists the catalog's groups.
    UnknownGroup {
        group: String,
        known: Vec<String>,
    },
    /// The group's keys exist but the catalog leaves it out (a hand edit broke it).
    GroupLeftOut {
        group: String,
    },
    /// `group remove` of a group that still has these resources.
    GroupHasResources {
        group: String,
        resources: Vec<String>,
    },
    /// `group move --to` a node that may not host the group (`possible`: a bitmap).
    NotPossibleOwner {
        group: String,
        node: u8,
        possible: u64,
    },
    /// `group move` without `--to`, and no other node may host the group.
    NoOtherNode {
        group: String,
        possible: u64,
    },
    ResourceExists {
        resource: String,
        group: String,
    },
    UnknownResource {
        resource: String,
    },
    /// The resource's keys exist but the catalog leaves it out.
    ResourceLeftOut {
        resource: String,
    },
    /// `resource remove` of a resource these others depend on.
    ResourceNeeded {
        resource: String,
        dependents: Vec<String>,
    },
    /// `resource update --remove-param` of a parameter the resource does not have; `known`
    /// lists the ones it has.
    UnknownParameter {
        resource: String,
        key: String,
        known: Vec<String>,
    },
    /// `resource update` names one parameter twice (set twice, removed twice, or both).
    ParameterGivenTwice {
        resource: String,
        key: String,
    },
    /// `--isalive` more often than `--looksalive` (the intervals, defaults applied).
    ChecksSwapped {
        is_alive_s: u32,
        looks_alive_s: u32,
    },
    /// Keys under `namespace/name` that the catalog does not read, which a new entry would
    /// inherit.
    LeftOverKeys {
        namespace: &'static str,
        name: String,
    },
    /// A key the edit would write is not a valid path (its total length).
    Key {
        key: String,
        why: PathError,
    },
    /// The edit's operations do not fit one database update.
    TooLarge(UpdateError),
    /// `resource add` of `resource` failed with the error inside.
    InResource {
        resource: String,
        error: Box<EditError>,
    },
}

impl From<String> for EditError {
    /// A rule's refusal (`validate.rs` answers in text).
    fn from(text: String) -> EditError {
        EditError::Rule(text)
    }
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Rule(text) => f.write_str(text),
            EditError::PossibleEmpty => f.write_str("--possible: name at least one node"),
            EditError::PreferredNotPossible { node, possible } => write!(
                f,
                "--preferred: node {node} is not one of --possible ({})",
                join(possible)
            ),
            EditError::ListedTwice { flag, node } => {
                write!(f, "{flag}: node {node} is listed twice")
            }
            EditError::NoFreeSlot => write!(
                f,
                "no free group slot: the cluster holds {} groups, the most it can",
                crate::core::NODES_MAX
            ),
            EditError::GroupExists { group } => write!(f, "group {group:?} already exists"),
            EditError::UnknownGroup { group, known } => match known.is_empty() {
                true => write!(f, "unknown group {group:?} (there are no groups yet)"),
                false => write!(f, "unknown group {group:?} (groups: {})", quoted(known)),
            },
            EditError::GroupLeftOut { group } => write!(
                f,
                "group {group:?} is left out of the catalog (see 'ctl groups'); \
                 'ctl delete groups/{group}' removes its keys"
            ),
            EditError::GroupHasResources { group, resources } => write!(
                f,
                "group {group:?} still has resources: {} (remove them first)",
                quoted(resources)
            ),
            EditError::NotPossibleOwner {
                group,
                node,
                possible,
            } => write!(
                f,
                "--to: node {node} is not a possible owner of group {group:?} (possible: {})",
                list_nodes(*possible)
            ),
            EditError::NoOtherNode { group, possible } => write!(
                f,
                "group {group:?} has no other node to move to (possible: {})",
                list_nodes(*possible)
            ),
            EditError::ResourceExists { resource, group } => write!(
                f,
                "resource {resource:?} already exists (in group {group:?})"
            ),
            EditError::UnknownResource { resource } => {
                write!(f, "unknown resource {resource:?}")
            }
            EditError::ResourceLeftOut { resource } => write!(
                f,
                "resource {resource:?} is left out of the catalog (see 'ctl resources'); \
                 'ctl delete resources/{resource}' removes its keys"
            ),
            EditError::ResourceNeeded {
                resource,
                dependents,
            } => write!(
                f,
                "resource {resource:?} is needed by {} (remove or change them first)",
                quoted(dependents)
            ),
            EditError::UnknownParameter {
                resource,
                key,
                known,
            } => match known.is_empty() {
                true => write!(
                    f,
                    "resource {resource:?} has no parameter {key:?} (it has no parameters)"
                ),
                false => write!(
                    f,
                    "resource {resource:?} has no parameter {key:?} (its parameters: {})",
                    quoted(known)
                ),
            },
            EditError::ParameterGivenTwice { resource, key } => write!(
                f,
                "resource {resource:?}: parameter {key:?} is given twice (set or removed once)"
            ),
            EditError::ChecksSwapped {
                is_alive_s,
                looks_alive_s,
            } => write!(
                f,
                "--isalive {is_alive_s} is more often than --looksalive {looks_alive_s}: \
                 IsAlive is the thorough check, LooksAlive the quick one, so IsAlive's interval \
                 must be at least LooksAlive's"
            ),
            EditError::LeftOverKeys { namespace, name } => write!(
                f,
                "{namespace}/{name} already holds keys the catalog leaves out (see \
                 'ctl get {namespace}/{name}'); 'ctl delete {namespace}/{name}' removes them"
            ),
            EditError::Key { key, why } => write!(f, "cannot store {key}: {why}"),
            EditError::TooLarge(why) => {
                write!(f, "the change does not fit one database update: {why}")
            }
            EditError::InResource { resource, error } => {
                write!(f, "resource {resource:?}: {error}")
            }
        }
    }
}

impl std::error::Error for EditError {}

/// Names quoted, comma-separated: `"app", "ip"`.
fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
    quoted.join(", ")
}

pub(super) fn join(ids: &[u8]) -> String {
    ids.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}
