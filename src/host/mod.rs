//! The host of one node: the protocol core, the group runner and the glue between them and the
//! resource monitor, sans-IO. The daemon (`src/node/daemon.rs`) drives it with sockets, the
//! disk thread, the monitor process and CLOCK_MONOTONIC; the simulator (`src/sim`) drives the
//! very same type with a simulated network, disk and monitor. So every rule below runs in
//! every simulated seed, as it runs in production:
//! - the dead-man rule: the monitor is pinged only when the core re-arms its dead-man (after
//!   a lease renewal) or while the core holds no group, so a core that cannot renew its lease
//!   lets the monitor stop the resources even while its driver keeps running;
//! - the stop bookkeeping: the core hears `GroupStopped` only for a stop it asked for, and
//!   only once every resource of the group is confirmed offline;
//! - a group given up here (`GroupFailed`) is refused for its resources' longest restart
//!   period and its failure is recorded in the database for the failover threshold;
//! - a failed stop under `StopFailure::Leave` makes the node leave (`Leave`), keeping the
//!   blocked group, so the dead-man rule above lets its watchdog reset it.
//!
//! **Invariant:** one place turns the core's `Output`s into actions (`drive`); the drivers only
//! carry `HostOutput`s to the outside world and bring the answers back.

mod groups;
mod output;

pub use groups::{test_group_of, test_group_resource};
pub use output::HostOutput;

use crate::core::catalog::Catalog;
use crate::core::{self, Input};
use crate::monitor::{self, Command};
use crate::runner::{Runner, RunnerMutation, StopFailure};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What a host is built from.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub core: core::Config,
    /// The core's PRNG seed (from the OS in production, from the run's seed in the simulator).
    pub seed: u64,
    /// The command each built-in test group runs (group id = its home node id). A test group
    /// without a command runs nothing: its stop is confirmed at once.
    pub test_groups: Vec<(u8, String)>,
    /// Longest a node refuses a group that failed on it (ms). Production: no bound beyond the
    /// resources' restart periods; the simulator bounds it so a run can converge.
    pub refuse_ms_max: u64,
    /// A rule of the runner broken on purpose (the simulator's mutation tests).
    pub runner_mutation: RunnerMutation,
    /// What a failed stop does besides blocking (`Leave` only with a watchdog).
    pub stop_failure: StopFailure,
}

/// One node: core, runner and glue. See the module docs.
pub struct Host {
    core: core::Node,
    runner: Runner,
    config: HostConfig,
    /// The catalog the runner was last given, shared with the driver (`HostOutput::Catalog`).
    runner_catalog: Arc<Catalog>,
    /// Groups the core told this node to hold (bit g-1).
    holding: u64,
    /// Test groups' resources told to stop whose stop the monitor has not yet confirmed.
    stopping_test_resources: BTreeSet<String>,
    /// When the monitor was last pinged (the driver's monotonic ms).
    last_ping_ms: u64,
    ping_sequence: u64,
    /// `runner.next_deadline_ms()` as of its last input (it changes only with one, and is
    /// costly to compute on every tick).
    runner_due_ms: Option<u64>,
    /// The runner had an input since `runner_due_ms` was computed.
    runner_moved: bool,
    /// The last wall clock the driver gave (unix seconds) and its monotonic time.
    wall_clock: Option<(u64, u64)>,
    /// Requests this host proposed itself (failure records), not the driver.
    own_requests: BTreeSet<u64>,
    outputs: std::collections::VecDeque<HostOutput>,
}

impl Host {
    pub fn new(config: HostConfig) -> Host {
        let core = core::Node::new(config.core.clone(), config.seed);
        let mut runner = Runner::new(config.core.node_id);
        runner.set_mutation(config.runner_mutation);
        runner.set_stop_failure(config.stop_failure);
        Host {
            core,
            runner,
            runner_catalog: Arc::new(Catalog::default()),
            holding: 0,
            stopping_test_resources: BTreeSet::new(),
            last_ping_ms: 0,
            ping_sequence: 0,
            runner_due_ms: None,
            runner_moved: false,
            wall_clock: None,
            own_requests: BTreeSet::new(),
            outputs: std::collections::VecDeque::new(),
            config,
        }
    }

    /// The clock moved on: the core ticks, the runner when one of its deadlines passed, and
    /// an idle monitor is pinged.
    pub fn tick(&mut self, now_ms: u64) {
        self.core.step(Input::Tick { now_ms });
        self.drive(now_ms);
        if self.runner_due_ms.is_some_and(|due_ms| due_ms <= now_ms) {
            self.runner.tick(now_ms);
            self.runner_moved = true;
            self.drive(now_ms);
        }
        self.keep_monitor_armed(now_ms);
    }

    /// Any other input of the core: a message, a disk completion, the wall clock, an
    /// administrator's command.
    pub fn step(&mut self, now_ms: u64, input: Input<'_>) {
        match input {
            Input::Tick { now_ms } => return self.tick(now_ms),
            Input::WallClock { unix_s, .. } => self.wall_clock = Some((unix_s, now_ms)),
            _ => {}
        }
        self.core.step(input);
        self.drive(now_ms);
    }

    /// Proposes a database update (`db::Update` encoded); the outcome arrives as
    /// `Event::GumAcknowledged` with the returned request id.
    pub fn submit(&mut self, now_ms: u64, update: Vec<u8>) -> Result<u64, core::gum::SubmitError> {
        let result = self.core.submit(update);
        self.drive(now_ms);
        result
    }

    /// Leave the cluster for good: the core stops the groups, writes a non-member slot and
    /// tells the members. `left` says when it is done.
    pub fn leave(&mut self, now_ms: u64) {
        self.core.step(Input::Admin(core::AdminCommand::Leave));
        self.drive(now_ms);
    }

    /// Whether a leave finished: the core left and nothing of this node's runs any more.
    pub fn left(&self) -> bool {
        self.holding == 0
            && self.stopping_test_resources.is_empty()
            && self.core.status().left_cleanly
    }

    /// An event from the resource monitor.
    pub fn monitor_event(&mut self, now_ms: u64, event: &monitor::Event) {
        match event {
            monitor::Event::Pong { .. } | monitor::Event::AllStopped => {}
            monitor::Event::Done { resource, .. }
            | monitor::Event::ResourceFailed { resource, .. }
                if self.is_test_group_resource(resource) =>
            {
                self.test_group_event(event);
            }
            _ => {
                self.runner.monitor_event(event, now_ms);
                self.runner_moved = true;
            }
        }
        self.drive(now_ms);
    }

    pub fn poll_output(&mut self) -> Option<HostOutput> {
        self.outputs.pop_front()
    }

    pub fn core(&self) -> &core::Node {
        &self.core
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// The catalog the runner acts on.
    pub fn runner_catalog(&self) -> &Arc<Catalog> {
        &self.runner_catalog
    }

    /// The groups the core told this node to hold (online; not those stopping).
    pub fn online_groups(&self) -> u64 {
        self.holding
    }

    /// The groups this node may run anything of: online, or stopping and not confirmed.
    pub fn holding_groups(&self) -> u64 {
        self.holding | self.core.stopping_groups()
    }

    /// Whether this request id was proposed by the host itself (a failure record).
    pub fn proposed_itself(&self, request_id: u64) -> bool {
        self.own_requests.contains(&request_id)
    }

    /// The one driver of the core's outputs: everything the core and the runner ask for,
    /// until neither asks for more. Monitor commands, messages and disk operations go out
    /// as `HostOutput`s in the order they were asked.
    fn drive(&mut self, now_ms: u64) {
        loop {
            let mut moved = false;
            while let Some(output) = self.core.poll_output() {
                moved = true;
                self.core_output(output, now_ms);
            }
            while let Some(output) = self.runner.poll_output() {
                moved = true;
                self.runner_output(output, now_ms);
            }
            if !moved {
                break;
            }
        }
        if std::mem::take(&mut self.runner_moved) {
            self.runner_due_ms = self.runner.next_deadline_ms();
        }
    }

    fn core_output(&mut self, output: core::Output, now_ms: u64) {
        match output {
            core::Output::Send {
                to,
                network,
                payload,
            } => self.outputs.push_back(HostOutput::Send {
                to,
                network,
                payload,
            }),
            core::Output::DiskRead { op, offset_bytes } => {
                self.outputs
                    .push_back(HostOutput::DiskRead { op, offset_bytes });
            }
            // The core itself holds back every write that claims our groups stopped (fence
            // acknowledgement, non-member slot) until `Input::GroupStopped`.
            core::Output::DiskWrite {
                op,
                offset_bytes,
                block,
            } => self.outputs.push_back(HostOutput::DiskWrite {
                op,
                offset_bytes,
                block,
            }),
            core::Output::Resource { group, online } => self.group(group, online, now_ms),
            core::Output::ArmDeadman {
                stop_resources_at_ms,
            } => {
                self.outputs.push_back(HostOutput::DeadmanArmed {
                    stop_resources_at_ms,
                });
                self.ping_monitor(now_ms);
            }
            core::Output::ResourceLease { resource, held } => {
                self.runner.set_lease(&resource, held, now_ms);
                self.runner_moved = true;
                self.outputs
                    .push_back(HostOutput::ResourceLease { resource, held });
            }
            core::Output::Event(core::Event::CatalogChanged) => {
                // What the runner asked under the catalog it had goes out before the new one
                // (simulator seed 2926099: a start decided under the old catalog, routed after
                // the new one, looked like a start before a dependency the new one added).
                while let Some(output) = self.runner.poll_output() {
                    self.runner_output(output, now_ms);
                }
                let catalog = Arc::new(self.core.catalog().clone());
                self.runner.set_catalog(&catalog, now_ms);
                self.runner_moved = true;
                self.runner_catalog = Arc::clone(&catalog);
                // The catalog first: the runner's commands that follow act on it.
                self.outputs.push_back(HostOutput::Catalog(catalog));
                self.outputs
                    .push_back(HostOutput::Event(core::Event::CatalogChanged));
            }
            core::Output::Event(event) => self.outputs.push_back(HostOutput::Event(event)),
        }
    }

    /// Pings the idle monitor: nothing is held, so nothing can outlast a lease by it.
    /// Groups still stopping count as held: a stop after a lost lease must not be allowed to
    /// outlast the lease because the driver kept the monitor armed.
    fn keep_monitor_armed(&mut self, now_ms: u64) {
        let quarter_ms = u64::from(self.config.core.timing.fence_timeout_ms) / 4;
        let idle = self.core.holding_groups() == 0
            || self.config.core.mutation == core::Mutation::WatchdogFeedPastLease;
        if idle && now_ms.saturating_sub(self.last_ping_ms) >= quarter_ms {
            self.ping_monitor(now_ms);
        }
    }

    fn ping_monitor(&mut self, now_ms: u64) {
        self.last_ping_ms = now_ms;
        self.ping_sequence += 1;
        self.outputs.push_back(HostOutput::Monitor(Command::Ping {
            sequence: self.ping_sequence,
        }));
    }
}

#[cfg(test)]
mod tests;
