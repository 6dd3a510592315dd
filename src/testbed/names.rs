//! Names of everything a run creates. Linux limits interface names to 15 bytes, so the run id
//! is 4 hex digits: `wp-1a2b-n16e1` is the longest name (13 bytes) for 16 nodes.
use std::path::PathBuf;

/// The most nodes a testbed run has (keeps interface names short and addresses simple).
pub const NODES_MAX: u8 = 16;

/// The names of one run.
#[derive(Clone, Debug)]
pub struct RunNames {
    /// `wp-<run>`: every namespace, bridge and veth of the run starts with it.
    pub prefix: String,
}

impl RunNames {
    /// A run id not used by any namespace on this host: derived from our pid and the clock,
    /// then checked against `existing` namespace names.
    pub fn fresh(existing: &[String]) -> RunNames {
        let mut candidate = (std::process::id() as u64) ^ super::micros();
        loop {
            let prefix = format!("wp-{:04x}", candidate & 0xffff);
            let taken = existing
                .iter()
                .any(|name| name.starts_with(&format!("{prefix}-")));
            if !taken && !Self::dir_of(&prefix).exists() {
                return RunNames { prefix };
            }
            candidate = candidate.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }

    fn dir_of(prefix: &str) -> PathBuf {
        std::env::temp_dir().join(prefix)
    }

    /// Where the run keeps its files.
    pub fn dir(&self) -> PathBuf {
        Self::dir_of(&self.prefix)
    }
    pub fn switch_namespace(&self) -> String {
        format!("{}-sw", self.prefix)
    }
    pub fn client_namespace(&self) -> String {
        format!("{}-cl", self.prefix)
    }
    pub fn node_namespace(&self, node: u8) -> String {
        format!("{}-n{node}", self.prefix)
    }
    pub fn bridge(&self, network: u8) -> String {
        format!("{}-br{network}", self.prefix)
    }
    /// Node `node`'s interface on `network`, inside its namespace.
    pub fn node_interface(&self, node: u8, network: u8) -> String {
        format!("{}-n{node}e{network}", self.prefix)
    }
    /// The bridge-side end of that interface's veth, in the switch namespace.
    pub fn switch_port(&self, node: u8, network: u8) -> String {
        format!("{}-s{node}e{network}", self.prefix)
    }
    pub fn client_interface(&self) -> String {
        format!("{}-cle0", self.prefix)
    }
    pub fn client_switch_port(&self) -> String {
        format!("{}-sce0", self.prefix)
    }
    /// The cgroup that holds node `node`'s daemon, monitor and resources.
    pub fn node_cgroup(&self, node: u8) -> String {
        format!("{}-n{node}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_name_fits_linux_limit() {
        let names = RunNames {
            prefix: "wp-ffff".into(),
        };
        for name in [
            names.node_interface(NODES_MAX, 1),
            names.switch_port(NODES_MAX, 1),
            names.bridge(1),
            names.client_interface(),
            names.client_switch_port(),
        ] {
            assert!(name.len() <= 15, "{name}");
        }
    }

    #[test]
    fn a_fresh_run_avoids_existing_prefixes() {
        let first = RunNames::fresh(&[]);
        let second = RunNames::fresh(&[format!("{}-n1", first.prefix)]);
        assert_ne!(first.prefix, second.prefix);
    }
}
