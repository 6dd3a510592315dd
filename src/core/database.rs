//! The cluster database as the join hands it over: a versioned key/value map.
//!
//! The global update manager (a later issue) will replace the replication, not the interface:
//! the sponsor snapshots its copy into `Install`, the joiner installs it.

use std::collections::BTreeMap;

/// What the membership protocol needs of the cluster database.
pub trait Database {
    /// Number of updates applied so far.
    fn version(&self) -> u64;
    /// Every entry, in key order.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)>;
    /// Replaces the whole content (join).
    fn install(&mut self, version: u64, entries: Vec<(String, Vec<u8>)>);
    /// Applies one update locally.
    fn put(&mut self, key: &str, value: &[u8]);
}

/// A `BTreeMap` with a version counter: deterministic iteration order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionedMap {
    version: u64,
    entries: BTreeMap<String, Vec<u8>>,
}

impl Database for VersionedMap {
    fn version(&self) -> u64 {
        self.version
    }
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
    fn install(&mut self, version: u64, entries: Vec<(String, Vec<u8>)>) {
        self.version = version;
        self.entries = entries.into_iter().collect();
    }
    fn put(&mut self, key: &str, value: &[u8]) {
        self.entries.insert(key.to_string(), value.to_vec());
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_replaces_content_and_version() {
        let mut sponsor = VersionedMap::default();
        sponsor.put("b", b"2");
        sponsor.put("a", b"1");
        let mut joiner = VersionedMap::default();
        joiner.put("stale", b"x");
        joiner.install(sponsor.version(), sponsor.snapshot());
        assert_eq!(joiner, sponsor);
        assert_eq!(joiner.snapshot()[0].0, "a");
    }
}
