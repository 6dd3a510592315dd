//! Rules of the runner broken on purpose, so the simulator can prove that its resource checkers
//! catch them (`wolfpack simulate --mutate NAME`, `tests/sim_mutations.rs`). Production runs
//! `RunnerMutation::None`; nothing outside the simulator sets another.

/// One deliberately broken rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunnerMutation {
    #[default]
    None,
    /// A stop counts as confirmed as soon as it is sent: the monitor's answer is not awaited,
    /// so `GroupStopped` and the stop of a dependency can come while the resource still runs.
    StopUnconfirmed,
    /// A resource starts without waiting for its dependencies to be online.
    StartBeforeDependencies,
    /// A failed stop counts as confirmed once its retries are spent (instead of blocking):
    /// the group is reported stopped while the resource may still run.
    FailedStopReleases,
}

impl RunnerMutation {
    /// The mutation named on the command line, if `name` names one of the runner's.
    pub fn from_name(name: &str) -> Option<RunnerMutation> {
        match name {
            "runner-stop-unconfirmed" => Some(RunnerMutation::StopUnconfirmed),
            "runner-start-before-dependencies" => Some(RunnerMutation::StartBeforeDependencies),
            "runner-failed-stop-releases" => Some(RunnerMutation::FailedStopReleases),
            _ => None,
        }
    }
}
