//! The catalog: groups and resources as the cluster database stores them, and the typed view
//! every node reads from its replica. GUM orders every change, so every member reads the same
//! catalog after the same sequence number; placement (`core::groups`) and the daemon's group
//! runner (`crate::runner`) both read it from here and nowhere else.
//!
//! **Schema** (paths of `core::db`; names are `[a-z0-9._-]`, 1 to 64 bytes):
//!
//! | path                                  | value    | meaning                                   |
//! |---------------------------------------|----------|-------------------------------------------|
//! | `groups/G/slot`                       | U64      | the core's group number, 1..=64, unique    |
//! | `groups/G/preferred`                  | Text     | node ids in order of preference, "2,1"    |
//! | `groups/G/possible`                   | NodeList | nodes allowed to host it; absent = all    |
//! | `groups/G/failback`                   | Text     | `off`, `immediate` or `window=H-H`        |
//! | `groups/G/failover-threshold`         | U64      | failovers allowed per period              |
//! | `groups/G/failover-period`            | U64      | seconds                                   |
//! | `groups/G/target`                     | U64      | `group move --to`: pinned node; absent = none |
//! | `groups/G/failures`                   | Text     | unix seconds of failures that moved it, "t1,t2" |
//! | `groups/G/refused/N`                  | Text     | node N refuses it until unix second U: "U reason" |
//! | `groups/G/cleanup`                    | U64      | bumped by `group cleanup` and `resource cleanup` |
//! | `resources/R/group`                   | Text     | the group it belongs to                    |
//! | `resources/R/type`                    | Text     | `process`, `ip`, `ocf:P:A`, ...            |
//! | `resources/R/params/K`                | Text     | a parameter, passed verbatim (no shell); K: `param_segment` |
//! | `resources/R/depends`                 | Text     | resources of its group it needs, "a,b"    |
//! | `resources/R/restart-threshold`       | U64      | restarts in place allowed per period      |
//! | `resources/R/restart-period`          | U64      | seconds                                   |
//! | `resources/R/looksalive`              | U64      | seconds between LooksAlive checks         |
//! | `resources/R/isalive`                 | U64      | seconds between IsAlive checks            |
//! | `resources/R/timeout`                 | U64      | seconds each operation may take           |
//! | `resources/R/affects-group`           | Bool     | whether its failure fails the group       |
//! | `resources/R/role`                    | Text     | `online` or `offline` (administrator's)   |
//! | `resources/R/cleanup`                 | U64      | bumped by `resource cleanup`              |
//! | `cluster/group-slots/S`               | Text     | the group that claimed slot S (`edit.rs`) |
//!
//! Absent optional keys take the defaults below. Reading never fails: an entry that does not
//! make sense (a slot out of range, a resource of an unknown group) is left out and named in
//! `Catalog::problems`, so one bad key cannot stop the rest of the cluster from running.
//!
//! The administrator's commands change the catalog through `edit.rs` (one update each, with
//! preconditions, so concurrent contradicting edits cannot both land) after `validate.rs`
//! (names, nodes, ranges, types and their parameters, dependencies). A slot claim is only a
//! lock for `group add`; the reader ignores it, and `groups/G/slot` stays the one truth. Every
//! resource add and remove writes its group's `slot` again (same value), so the slot key's
//! version is also the version of the group's membership.

mod edit;
mod edit_error;
mod read;
pub mod validate;

#[cfg(test)]
mod edit_tests;

pub use edit::SLOT_CLAIMS;
pub use edit::{add_group, add_resource, cleanup_group, cleanup_resource};
pub use edit::{clear_group_target, move_group};
pub use edit::{remove_group, remove_resource, set_resource_role, NewGroup, NewResource};
pub use edit::{update_resource, ResourceChange};
pub use edit_error::EditError;
pub use read::{node_ids, read};

/// A parameter key (`[A-Za-z0-9_]`, as an agent's meta-data spells it) as the database path
/// segment it is stored under (`[a-z0-9._-]`): each upper-case letter is written as '-' and
/// its lower case, `InstanceName` → `-instance-name`. Keys without upper case are stored as
/// they are ('-' is no key character, so the two never meet).
pub fn param_segment(key: &str) -> String {
    let mut segment = String::with_capacity(key.len() + 4);
    for character in key.chars() {
        if character.is_ascii_uppercase() {
            segment.push('-');
        }
        segment.push(character.to_ascii_lowercase());
    }
    segment
}

/// The parameter key stored under `segment` (`param_segment`'s inverse), or `None` if the
/// segment is not one `param_segment` writes (a hand edit).
pub fn param_key(segment: &str) -> Option<String> {
    let mut key = String::with_capacity(segment.len());
    let mut bytes = segment.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'-' => match bytes.next() {
                Some(letter) if letter.is_ascii_lowercase() => {
                    key.push(char::from(letter.to_ascii_uppercase()))
                }
                _ => return None,
            },
            b'a'..=b'z' | b'0'..=b'9' | b'_' => key.push(char::from(byte)),
            _ => return None,
        }
    }
    crate::monitor::protocol::is_param_key(&key).then_some(key)
}

/// Restarts in place allowed per period before the group fails over (MSCS: 3).
pub const RESTART_THRESHOLD_DEFAULT: u32 = 3;
/// The restart period, seconds (MSCS: 900).
pub const RESTART_PERIOD_S_DEFAULT: u32 = 900;
/// LooksAlive interval, seconds (MSCS: 5).
pub const LOOKS_ALIVE_S_DEFAULT: u32 = 5;
/// IsAlive interval, seconds (MSCS: 60).
pub const IS_ALIVE_S_DEFAULT: u32 = 60;
/// Failovers of a group allowed per period before it stays Failed (MSCS: 10 per 6 hours).
pub const FAILOVER_THRESHOLD_DEFAULT: u32 = 10;
/// The failover period, seconds.
pub const FAILOVER_PERIOD_S_DEFAULT: u32 = 6 * 3600;

/// Everything the database says about groups and resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// By name.
    pub groups: Vec<GroupSpec>,
    /// By name.
    pub resources: Vec<ResourceSpec>,
    /// Entries left out, each with why (for `ctl groups` and the log).
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    /// The core's number for it, 1..=64.
    pub slot: u8,
    /// Node ids, most preferred first.
    pub preferred: Vec<u8>,
    /// Bitmap of nodes allowed to host it (`core::bit`); 0 = every node.
    pub possible: u64,
    pub failback: Failback,
    pub failover_threshold: u32,
    pub failover_period_s: u32,
    /// The node an administrator moved it to (0 = none): placed there whenever it can be.
    pub target: u8,
    /// Wall-clock seconds of the failures that moved it (oldest first): more than
    /// `failover_threshold` of them within `failover_period_s` leave it Failed.
    pub failures: Vec<u64>,
    /// Nodes that gave it up after it failed there, by node id (the node's own record).
    pub refusals: Vec<Refusal>,
    /// Bumped by every cleanup of the group or of one of its resources: a node forgets a
    /// refusal it made under an older generation.
    pub cleanup: u64,
}

/// A node's refusal of a group after the group failed there, as it recorded it in the
/// database: every node shows it (`ctl groups`: who, until when, why), the node itself honours
/// it after a restart, and a cleanup deletes it everywhere at once. Only the refusing node
/// compares `until_s` with its own wall clock (wall clocks are never compared between nodes);
/// the others learn what it refuses from its heartbeats and regroup statuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub node: u8,
    /// Unix seconds, by the refusing node's wall clock, when the refusal ends.
    pub until_s: u64,
    pub reason: String,
}

/// Longest reason kept in a refusal record (bytes; longer ones are cut at a char boundary).
pub const REFUSAL_REASON_MAX: usize = 240;

impl Refusal {
    /// `groups/G/refused/N`'s value.
    pub fn render(&self) -> String {
        format!("{} {}", self.until_s, self.reason)
    }

    /// Reads `groups/G/refused/N` (node N, text "U reason").
    pub fn parse(node: u8, text: &str) -> Option<Refusal> {
        let (until, reason) = text.split_once(' ').unwrap_or((text, ""));
        Some(Refusal {
            node,
            until_s: until.parse().ok()?,
            reason: reason.to_string(),
        })
    }
}

/// Most failure times kept per group.
pub const FAILURES_KEPT_MAX: usize = 32;

impl GroupSpec {
    /// Failures within the period ending at `now_s`.
    /// The nodes whose refusal is still in force at wall-clock `now_s`.
    pub fn refused_at(&self, now_s: u64) -> u64 {
        self.refusals
            .iter()
            .filter(|refusal| refusal.until_s > now_s)
            .fold(0, |nodes, refusal| nodes | crate::core::bit(refusal.node))
    }

    pub fn failures_within_period(&self, now_s: u64) -> usize {
        let since = now_s.saturating_sub(u64::from(self.failover_period_s));
        self.failures.iter().filter(|at| **at > since).count()
    }

    /// Why the group must stay Failed at wall-clock `now_s`, if it must.
    pub fn failover_blocked(&self, now_s: u64) -> Option<String> {
        let count = self.failures_within_period(now_s);
        (count > self.failover_threshold as usize).then(|| {
            format!(
                "failed {count} times in the last {} s (failover threshold {}); it stays \
                 failed until the oldest failure is older than the period",
                self.failover_period_s, self.failover_threshold
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    Off,
    Immediate,
    /// Only while the local hour of day h satisfies from <= h < to (or, when from > to, the
    /// window that wraps midnight).
    Window {
        from_hour: u8,
        to_hour: u8,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    pub name: String,
    pub group: String,
    /// `process`, `script`, `ip`, `filesystem` or `ocf:PROVIDER:AGENT`.
    pub kind: String,
    /// In key order.
    pub params: Vec<(String, String)>,
    /// Names of resources of the same group this one needs online first.
    pub depends: Vec<String>,
    pub restart_threshold: u32,
    pub restart_period_s: u32,
    pub looks_alive_s: u32,
    pub is_alive_s: u32,
    /// Per operation; None = the type's default.
    pub timeout_s: Option<u32>,
    pub affects_group: bool,
    /// The administrator's wish (`resource online|offline`).
    pub role_online: bool,
    /// Bumped by `resource cleanup`: a runner that sees a newer value forgets the failures.
    pub cleanup: u64,
}

impl Failback {
    /// Whether failback may happen at local hour `hour` (0..=23).
    pub fn allows(self, hour: u8) -> bool {
        match self {
            Failback::Off => false,
            Failback::Immediate => true,
            Failback::Window { from_hour, to_hour } if from_hour <= to_hour => {
                from_hour <= hour && hour < to_hour
            }
            Failback::Window { from_hour, to_hour } => hour >= from_hour || hour < to_hour,
        }
    }

    /// `off`, `immediate` or `window=H-H` (hours 0..=24... as written by `parse`).
    pub fn parse(text: &str) -> Result<Failback, String> {
        match text {
            "off" => return Ok(Failback::Off),
            "immediate" => return Ok(Failback::Immediate),
            _ => {}
        }
        let bad = || format!("'{text}' is not off, immediate or window=H-H (hours 0 to 24)");
        let window = text.strip_prefix("window=").ok_or_else(bad)?;
        let (from, to) = window.split_once('-').ok_or_else(bad)?;
        let from_hour: u8 = from.parse().map_err(|_| bad())?;
        let to_hour: u8 = to.parse().map_err(|_| bad())?;
        if from_hour > 24 || to_hour > 24 || from_hour == to_hour {
            return Err(bad());
        }
        Ok(Failback::Window {
            from_hour: from_hour % 24,
            to_hour,
        })
    }

    pub fn render(self) -> String {
        match self {
            Failback::Off => "off".into(),
            Failback::Immediate => "immediate".into(),
            Failback::Window { from_hour, to_hour } => format!("window={from_hour}-{to_hour}"),
        }
    }
}

impl Catalog {
    pub fn group(&self, name: &str) -> Option<&GroupSpec> {
        self.groups.iter().find(|group| group.name == name)
    }

    pub fn group_by_slot(&self, slot: u8) -> Option<&GroupSpec> {
        self.groups.iter().find(|group| group.slot == slot)
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceSpec> {
        self.resources.iter().find(|resource| resource.name == name)
    }

    /// The resources of `group`, dependencies before dependents (by name among equals), so
    /// starting in this order and stopping in reverse keeps every dependency. A resource in a
    /// cycle (which validation refuses, but a hand-edited database may hold) is left out.
    pub fn start_order(&self, group: &str) -> Vec<&ResourceSpec> {
        let members: Vec<&ResourceSpec> = self
            .resources
            .iter()
            .filter(|resource| resource.group == group)
            .collect();
        let mut ordered: Vec<&ResourceSpec> = Vec::with_capacity(members.len());
        loop {
            let ready = members.iter().find(|resource| {
                !ordered.iter().any(|done| done.name == resource.name)
                    && resource.depends.iter().all(|needed| {
                        ordered.iter().any(|done| &done.name == needed)
                            || !members.iter().any(|member| &member.name == needed)
                    })
            });
            match ready {
                Some(resource) => ordered.push(resource),
                None => return ordered,
            }
        }
    }

    /// Bitmap of the slots of every group.
    pub fn slots(&self) -> u64 {
        self.groups
            .iter()
            .fold(0, |bits, group| bits | super::bit(group.slot))
    }
}
