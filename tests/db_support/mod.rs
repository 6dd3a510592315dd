//! Strategies and a reference model shared by the `db_*` property tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use wolfpack::core::db::{Op, Path, Update, Value};

/// Keys chosen to collide: parents and children, and names that share a prefix without being
/// in one subtree (`a` and `a-b`).
pub const KEYS: [&str; 12] = [
    "properties/a",
    "properties/a/b",
    "properties/a/b/c",
    "properties/a-b",
    "properties/a.b",
    "groups/web",
    "groups/web/owner",
    "groups/webs",
    "nodes/1",
    "nodes/1/name",
    "cluster/name",
    "resources/ip/address",
];

pub fn path(text: &str) -> Path {
    Path::parse(text).expect("a valid path")
}

pub fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-zé ]{0,12}".prop_map(Value::Text),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        any::<bool>().prop_map(Value::Bool),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        any::<u64>().prop_map(|bitmap| Value::NodeList(
            (1..=64u8)
                .filter(|id| bitmap & 1 << (id - 1) != 0)
                .collect()
        )),
    ]
}

/// Values up to their size limit, for encoding tests.
pub fn large_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        value(),
        "[a-z]{1000,1024}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 1000..=1024).prop_map(Value::Bytes),
    ]
}

pub fn op(versions_max: u64) -> impl Strategy<Value = Op> {
    let key = proptest::sample::select(&KEYS[..]).prop_map(path);
    prop_oneof![
        4 => (key.clone(), value()).prop_map(|(path, value)| Op::Put { path, value }),
        1 => key.clone().prop_map(|path| Op::Delete { path }),
        1 => (key, 0..=versions_max).prop_map(|(path, version)| Op::Require { path, version }),
    ]
}

pub fn update(versions_max: u64) -> impl Strategy<Value = Update> {
    proptest::collection::vec(op(versions_max), 1..6).prop_map(Update::new)
}

/// The database stated the slow, obvious way: a map of strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub sequence: u64,
    pub entries: BTreeMap<String, (Value, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelOutcome {
    Applied,
    PreconditionFailed(String),
    Full,
}

impl Model {
    pub fn apply(&mut self, update: &Update, entries_max: usize) -> ModelOutcome {
        let sequence = self.sequence + 1;
        for op in &update.ops {
            if let Op::Require { path, version } = op {
                let current = self.entries.get(path.as_str()).map_or(0, |entry| entry.1);
                if current != *version {
                    self.sequence = sequence;
                    return ModelOutcome::PreconditionFailed(path.to_string());
                }
            }
        }
        let mut next = self.entries.clone();
        for op in &update.ops {
            match op {
                Op::Put { path, value } => {
                    next.insert(path.to_string(), (value.clone(), sequence));
                }
                Op::Delete { path } => {
                    let root = path.to_string();
                    let under = format!("{root}/");
                    next.retain(|key, _| *key != root && !key.starts_with(&under));
                }
                Op::Require { .. } => {}
            }
        }
        if next.len() > entries_max && next.len() > self.entries.len() {
            return ModelOutcome::Full;
        }
        self.entries = next;
        self.sequence = sequence;
        ModelOutcome::Applied
    }
}

/// The database's content in the model's shape.
pub fn contents(database: &wolfpack::core::db::Database) -> Model {
    Model {
        sequence: database.sequence(),
        entries: database
            .iter()
            .map(|(path, value, version)| (path.to_string(), (value.clone(), version)))
            .collect(),
    }
}
