//! What every network-namespace test shares: the binary under test and the root rule (skip
//! loudly without root, except under CI, where these tests must run).
use std::path::PathBuf;

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wolfpack"))
}

/// False (after a loud SKIPPED) when the test cannot run here.
pub fn may_run(test: &str) -> bool {
    if wolfpack::testbed::host::is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: the netns testbed needs root, and CI=true requires it to run");
    }
    eprintln!("SKIPPED {test}: the netns testbed needs root (network namespaces, nftables)");
    false
}
