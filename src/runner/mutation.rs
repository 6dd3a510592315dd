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
}

impl RunnerMutation {
    /// The mutation named on the command line, if `name` names one of the runner's.
    pub fn from_name(name: &str) -> Option<RunnerMutation> {
        match name {
            "runner-stop-unconfirmed" => Some(RunnerMutation::StopUnconfirmed),
            "runner-start-before-dependencies" => Some(RunnerMutation::StartBeforeDependencies),
            _ => None,
        }
    }
}
