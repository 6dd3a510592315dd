//! One simulated cluster: the same `host::Host` as production (core, group runner and their
//! glue), driven tick by tick with simulated I/O.
//!
//! Each tick: faults start and end, due packets are delivered, due disk operations complete,
//! every running node's host ticks with its own drifting clock, the simulated monitors move on
//! and fire their dead-man switches. Every output is routed at once, and the checker runs after
//! every step.

use std::collections::BTreeMap;

use super::checker::{Checker, Finding, Violation, ViolationKind};
use super::disk::{Completion, DiskOp, SimDisk};
use super::gum_checker::GumChecker;
use super::monitor_sim::SimMonitor;
use super::network::{Network, Packet};
use super::resource_checker::{self, ResourceChecker};
use super::workload::Fault;
use super::{Params, Report};
use crate::core::catalog::Catalog;
use crate::core::disk_records::{decode, Geometry, QuorumLease, Timing, BLOCK_SIZE};
use crate::core::timeout::{Timeouts, TICK_MS};
use crate::core::{bit, Config, DiskError, Event, Input, Node};
use crate::host::{Host, HostConfig, HostOutput};
use crate::prng::Prng;
use std::sync::Arc;

/// Size of the simulated shared disk.
const SIM_DISK_SIZE_BYTES: u64 = 64 << 20;
/// Resource lease blocks (`disk format --resource-leases`): the group workload names at most
/// 8 leased resources; the rest absorb blocks a crash tore and bindings abandoned in a race.
pub const SIM_RESOURCE_LEASE_BLOCKS: u32 = 16;
/// A small disk for half the seeds: 80 spare blocks, so a ring of 60 blocks and checkpoint slots
/// of 10: the log wraps and checkpoints within one run.
const SIM_SMALL_DISK_SIZE_BYTES: u64 = (258 + SIM_RESOURCE_LEASE_BLOCKS as u64 + 80) * 4096;

/// The wall clock's reading at local time 0 (unix seconds, in 2027).
const SIM_WALL_CLOCK_START_S: u64 = 1_800_000_000;
/// How often a running node's driver reports the wall clock (the daemon: every 10 s).
const WALL_CLOCK_EVERY_TICKS: u64 = 100;

/// Longest a node refuses a group its runner gave up (ms): the restart periods of the
/// workload's resources reach 900 s, which would outlast a run; the core's refusal logic is the
/// same whatever the length.
const REFUSE_MS_MAX: u64 = 4_000;

pub struct SimNode {
    /// The node's host while its daemon runs.
    pub host: Option<Host>,
    pub incarnation: u64,
    /// The daemon is not stepped (a pause or a freeze).
    pub paused: bool,
    /// The whole node is stopped: its monitor too (a freeze; `paused` is set as well).
    pub frozen: bool,
    /// When the node's watchdog was last fed (real ms): its monitor's open arms it, each ping
    /// feeds it (`Params::watchdog_ms`).
    pub(super) watchdog_fed_ms: u64,
    held_packets: Vec<Packet>,
    held_completions: Vec<Completion>,
    clock_offset_ms: u64,
    drift_ppm: i64,
    /// The groups the host holds (online, or stopping and not confirmed), nothing once its
    /// monitor fenced: what may run here (the monitor's `held` is the resources' truth).
    pub online: u64,
    quorum_valid_until_ms: u64,
    /// When the node was last paused (meaningful while `paused`).
    pub(crate) paused_at_tick: u64,
    /// Resource leases the driver was told are held (`Output::ResourceLease`), each with the
    /// local time its validity ends: what may be mounted here.
    pub leases: BTreeMap<String, u64>,
    /// The node's resource monitor (`node_monitor.rs`); it outlives a pause, not a crash.
    pub(super) monitor: Option<SimMonitor>,
    /// The catalog the node's runner acts on, as its host last announced it.
    pub(super) catalog: Arc<Catalog>,
}

impl SimNode {
    /// The node's protocol core, while its daemon runs.
    pub fn core(&self) -> Option<&Node> {
        self.host.as_ref().map(Host::core)
    }
}

pub struct Cluster {
    pub params: Params,
    pub nodes: Vec<SimNode>,
    pub network: Network,
    pub disk: SimDisk,
    pub prng: Prng,
    pub tick: u64,
    pub checker: Checker,
    pub faults: Vec<Fault>,
    pub report: Report,
    pub(crate) link_down_since: BTreeMap<(u8, u8), u64>,
    /// When a datagram of each directed link was last handed to its receiver: one sent before a
    /// cut may arrive after it (late, or held while the receiver was paused), and the link looks
    /// up to the receiver until then.
    last_delivered: BTreeMap<(u8, u8), u64>,
    /// Every pause that ended: (node, paused at, resumed at). Datagrams that reached a paused
    /// node are handed to it when it resumes, so a link cut while its receiver was paused may
    /// look up to the receiver until then: the connectivity checker counts from the resume.
    pub(crate) pauses_ended: Vec<(u8, u64, u64)>,
    /// Memberships (epoch, members) decided by exactly half of their view (by the quorum),
    /// not yet stabilized. Two coordinators may decide one epoch differently; one stabilizes.
    decided_by_quorum: std::collections::BTreeSet<(u64, u64)>,
    timeouts: Timeouts,
    /// Print every event (WOLFPACK_SIM_TRACE=1), for debugging one seed.
    pub trace: bool,
    pub gum_checker: GumChecker,
    /// Updates submitted: (node, incarnation, request id) → the update's digest.
    pub submitted: BTreeMap<(u8, u64, u64), u64>,
    /// Per node, the number of its current GUM life (see `on_event`).
    gum_lives: Vec<u64>,
    /// Leases no longer in use (taken back, crashed, stopped by the dead-man) that still count
    /// until their validity ends: the node, the resource, the first real tick it no longer
    /// counts (see `checker::check_resource_leases`).
    lingering_leases: Vec<(u8, String, u64)>,
    pub resource_checker: ResourceChecker,
    /// When `Some`, every event and every quorum record write is recorded here with its tick
    /// (`timeline.rs` reads a failover's milestones from it).
    pub recorded: Option<Vec<Recorded>>,
    /// `drain`'s outputs of one step, kept for the next so it need not allocate.
    output_buffer: Vec<HostOutput>,
    /// `check_instant`'s quorum owners and groups online per node, kept for the next step.
    check_instant_buffers: (Vec<u8>, Vec<(u8, u64)>),
}

/// Something a node did, as `Cluster::recorded` keeps it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub tick: u64,
    pub node: u8,
    pub what: RecordedKind,
}

#[derive(Clone, Debug)]
pub enum RecordedKind {
    Event(Event),
    /// A write of the quorum record issued: who it names as owner and as challenger.
    QuorumWrite {
        owner: u8,
        challenger: u8,
    },
    /// A group's resources asked online or offline.
    Resource {
        group: u8,
        online: bool,
    },
}

impl Cluster {
    pub fn new(params: Params, prng: &mut Prng) -> Cluster {
        let mut nodes = Vec::new();
        for index in 0..params.node_count {
            let drift_bound = i64::from(Timing::default().clock_drift_ppm_max);
            let drift_ppm = prng.range_inclusive(0, 2 * drift_bound as u64) as i64 - drift_bound;
            nodes.push(SimNode {
                host: None,
                incarnation: 0,
                paused: false,
                frozen: false,
                watchdog_fed_ms: 0,
                held_packets: Vec::new(),
                held_completions: Vec::new(),
                clock_offset_ms: prng.below(1_000_000),
                drift_ppm,
                online: 0,
                quorum_valid_until_ms: 0,
                paused_at_tick: 0,
                leases: BTreeMap::new(),
                monitor: None,
                catalog: Arc::new(Catalog::default()),
            });
            let _ = index;
        }
        let mut cluster = Cluster {
            network: Network::new(params.network.clone()),
            disk: SimDisk::new(params.disk.clone()),
            prng: prng.fork(),
            tick: 0,
            checker: Checker::default(),
            faults: Vec::new(),
            report: Report::default(),
            link_down_since: BTreeMap::new(),
            last_delivered: BTreeMap::new(),
            pauses_ended: Vec::new(),
            decided_by_quorum: std::collections::BTreeSet::new(),
            timeouts: Timeouts::new(&Timing::default()),
            trace: std::env::var_os("WOLFPACK_SIM_TRACE").is_some(),
            gum_checker: GumChecker::default(),
            submitted: BTreeMap::new(),
            gum_lives: vec![0; usize::from(params.node_count)],
            lingering_leases: Vec::new(),
            resource_checker: ResourceChecker::default(),
            recorded: None,
            output_buffer: Vec::new(),
            check_instant_buffers: (Vec::new(), Vec::new()),
            nodes,
            params,
        };
        for id in 1..=cluster.params.node_count {
            // Nodes boot at staggered times, like real machines.
            if id == 1 || cluster.prng.chance(1, 2) {
                cluster.boot(id);
            }
        }
        cluster
    }

    pub fn config(&self, id: u8, incarnation: u64) -> Config {
        Config {
            node_id: id,
            cluster_id: 0x5741_4C46,
            incarnation,
            networks: self.params.networks.clone(),
            timing: Timing::default(),
            geometry: Geometry::for_disk(
                if self.params.small_disk {
                    SIM_SMALL_DISK_SIZE_BYTES
                } else {
                    SIM_DISK_SIZE_BYTES
                },
                SIM_RESOURCE_LEASE_BLOCKS,
            )
            .expect("the simulated disk is large enough"),
            mutation: self.params.mutation,
            digest_every_update: true,
            builtin_groups: if self.params.catalog_groups {
                0
            } else {
                self.all_nodes()
            },
        }
    }

    /// Every node of the run, as a bitmap.
    pub fn all_nodes(&self) -> u64 {
        self.params
            .networks
            .iter()
            .enumerate()
            .filter(|(_, networks)| **networks > 0)
            .fold(0, |set, (index, _)| set | (1u64 << index))
    }

    pub fn boot(&mut self, id: u8) {
        let index = usize::from(id - 1);
        let incarnation = self.nodes[index].incarnation + 1;
        let seed = self.prng.next_u64();
        let monitor_seed = self.prng.next_u64();
        let config = self.config(id, incarnation);
        // Test groups run one process each, as `--test-group` does.
        let test_groups = crate::core::ids(config.builtin_groups)
            .map(|group| (group, format!("serve group {group}")))
            .collect();
        let fence_timeout_ms = u64::from(config.timing.fence_timeout_ms);
        let host = Host::new(HostConfig {
            core: config,
            seed,
            test_groups,
            refuse_ms_max: REFUSE_MS_MAX,
            runner_mutation: self.params.runner_mutation,
            stop_failure: self.params.stop_failure,
        });
        let sim_node = &mut self.nodes[index];
        let stuck_stops = self.params.stuck_stops;
        sim_node.monitor = Some(SimMonitor::new(monitor_seed, fence_timeout_ms, stuck_stops));
        sim_node.catalog = Arc::new(Catalog::default());
        sim_node.incarnation = incarnation;
        sim_node.host = Some(host);
        sim_node.paused = false;
        sim_node.frozen = false;
        sim_node.watchdog_fed_ms = self.tick * TICK_MS;
        sim_node.online = 0;
        sim_node.quorum_valid_until_ms = 0;
        sim_node.leases.clear();
        let wall_clock = self.wall_clock(id);
        self.step(id, wall_clock);
    }

    /// Node `id`'s wall clock as its driver reports it: its local clock (offset and drift
    /// included) from a fixed epoch, so refusals and failure records recorded by one node's
    /// clock end by another's, as between real hosts. Noon all day: failback policies apply
    /// (windows are `groups.rs`'s unit tests).
    fn wall_clock(&self, id: u8) -> Input<'static> {
        Input::WallClock {
            unix_s: SIM_WALL_CLOCK_START_S + self.local_ms(id) / 1000,
            local_hour: 12,
        }
    }

    pub fn crash(&mut self, id: u8) {
        let index = usize::from(id - 1);
        if let Some(node) = self.nodes[index].core() {
            self.report.add_dropped(&node.status().dropped);
        }
        // A crashed node mounts nothing, but its lease stays its own until it would have
        // expired.
        let leases = std::mem::take(&mut self.nodes[index].leases);
        for (resource, valid_until_ms) in leases {
            self.report.count_lease("held at a crash");
            self.linger(id, resource, valid_until_ms);
        }
        let run = (id, self.gum_lives[index]);
        self.gum_checker.forget(run);
        self.gum_lives[index] += 1;
        let sim_node = &mut self.nodes[index];
        sim_node.host = None;
        // Its monitor kills every resource at once (the daemon's socket closed).
        sim_node.monitor = None;
        sim_node.online = 0;
        self.resource_checker.holding_changed = true;
        let sim_node = &mut self.nodes[index];
        sim_node.paused = false;
        sim_node.frozen = false;
        sim_node.held_packets.clear();
        sim_node.held_completions.clear();
        sim_node.quorum_valid_until_ms = 0;
        // A crash may tear any block it was writing, a power loss of every node at once too
        // (`sim::disk::tear`: a worse medium than the format assumes, on purpose). Control
        // records survive by their mirror copy (FORMAT.md §3); the log by its CRC.
        self.disk.crash(id, &mut self.prng);
    }

    /// The node's own clock: real time scaled by its drift, plus an arbitrary offset.
    pub fn local_ms(&self, id: u8) -> u64 {
        let sim_node = &self.nodes[usize::from(id - 1)];
        let real_ms = self.tick * TICK_MS;
        let drifted = real_ms as i64 + real_ms as i64 * sim_node.drift_ppm / 1_000_000;
        sim_node.clock_offset_ms + drifted as u64
    }

    fn real_tick_of(&self, id: u8, local_ms: u64) -> u64 {
        let sim_node = &self.nodes[usize::from(id - 1)];
        let since_zero = local_ms.saturating_sub(sim_node.clock_offset_ms) as i64;
        let real_ms = since_zero * 1_000_000 / (1_000_000 + sim_node.drift_ppm);
        (real_ms.max(0) as u64) / TICK_MS
    }

    /// One simulated tick.
    pub fn run_tick(&mut self) {
        self.tick += 1;
        for packet in self.network.due(self.tick) {
            self.deliver_packet(packet);
        }
        for completion in self.disk.complete(self.tick) {
            self.deliver_completion(completion);
        }
        for id in 1..=self.params.node_count {
            let sim_node = &self.nodes[usize::from(id - 1)];
            if sim_node.host.is_some() && !sim_node.paused {
                let now_ms = self.local_ms(id);
                self.step(id, Input::Tick { now_ms });
                if self.tick.is_multiple_of(WALL_CLOCK_EVERY_TICKS) {
                    let wall_clock = self.wall_clock(id);
                    self.step(id, wall_clock);
                }
            }
        }
        self.advance_monitors();
        self.fire_watchdogs();
        self.check_instant();
    }

    /// Whether node `id`'s watchdog went unfed for its timeout by now.
    pub(super) fn watchdog_due(&self, id: u8) -> bool {
        let fed_ms = self.nodes[usize::from(id - 1)].watchdog_fed_ms;
        self.params
            .watchdog_ms
            .is_some_and(|watchdog_ms| self.tick * TICK_MS >= fed_ms + watchdog_ms)
    }

    /// A node whose watchdog went unfed for its timeout is reset by the hardware, frozen or
    /// not, its daemon gone or not: everything on it stops at once, and it boots again.
    fn fire_watchdogs(&mut self) {
        if self.params.watchdog_ms.is_none() {
            return;
        }
        for id in 1..=self.params.node_count {
            // A monitor, even a fenced one, means the machine runs (a crash drops it).
            if self.nodes[usize::from(id - 1)].monitor.is_none() || !self.watchdog_due(id) {
                continue;
            }
            *self.report.resources.entry("watchdog resets").or_insert(0) += 1;
            if self.trace {
                println!("tick={} node={id} reset by its watchdog", self.tick);
            }
            let index = usize::from(id - 1);
            let frozen = self.nodes[index].frozen;
            self.crash(id);
            self.boot(id);
            if frozen {
                // The freeze's end finds it running again: nothing to thaw.
                self.nodes[index].frozen = false;
            }
        }
    }

    fn deliver_packet(&mut self, packet: Packet) {
        let sim_node = &mut self.nodes[usize::from(packet.to - 1)];
        if sim_node.host.is_none() {
            return;
        }
        if sim_node.paused {
            sim_node.held_packets.push(packet);
            return;
        }
        self.last_delivered
            .insert((packet.from, packet.to), self.tick);
        self.step(
            packet.to,
            Input::Message {
                network: packet.network,
                payload: &packet.payload,
            },
        );
    }

    fn deliver_completion(&mut self, completion: Completion) {
        let sim_node = &mut self.nodes[usize::from(completion.node - 1)];
        if sim_node.host.is_none() {
            return;
        }
        if sim_node.paused {
            sim_node.held_completions.push(completion);
            return;
        }
        let result = match &completion.result {
            Ok(block) => Ok(&**block),
            Err(()) => Err(DiskError),
        };
        self.step(
            completion.node,
            Input::DiskDone {
                op: completion.op,
                result,
            },
        );
    }

    /// How long a membership lease and a quorum ownership last, in ticks.
    pub fn lease_hold_ticks(&self) -> u64 {
        self.timeouts.lease_hold_ticks
    }

    /// Resumes a paused node: a Tick first (the driver reads the clock on every wakeup),
    /// then what arrived meanwhile.
    pub fn resume(&mut self, id: u8) {
        let index = usize::from(id - 1);
        if self.nodes[index].host.is_none() || !self.nodes[index].paused {
            return;
        }
        if self.monitor_fenced(id) {
            // Its monitor fenced while it was paused: the daemon exits as soon as it runs.
            return self.restart_after_fence(id);
        }
        self.nodes[index].paused = false;
        self.pauses_ended
            .push((id, self.nodes[index].paused_at_tick, self.tick));
        let now_ms = self.local_ms(id);
        self.step(id, Input::Tick { now_ms });
        let completions = std::mem::take(&mut self.nodes[index].held_completions);
        for completion in completions {
            self.deliver_completion(completion);
        }
        let packets = std::mem::take(&mut self.nodes[index].held_packets);
        for packet in packets {
            self.deliver_packet(packet);
        }
        self.deliver_monitor_events(id);
    }

    /// Steps one node's host and routes everything it asks for.
    pub fn step(&mut self, id: u8, input: Input<'_>) {
        let now_ms = self.local_ms(id);
        let index = usize::from(id - 1);
        let Some(host) = self.nodes[index].host.as_mut() else {
            return;
        };
        host.step(now_ms, input);
        self.drain(id);
    }

    /// Submits a database update at node `id` (the workload).
    pub fn submit(&mut self, id: u8, body: Vec<u8>) {
        let index = usize::from(id - 1);
        let incarnation = self.nodes[index].incarnation;
        let now_ms = self.local_ms(id);
        let Some(host) = self.nodes[index].host.as_mut() else {
            return;
        };
        let digest_body = body.clone();
        match host.submit(now_ms, body) {
            Ok(request_id) => {
                let digest =
                    crate::core::gum::entry_digest(id, incarnation, request_id, &digest_body);
                self.submitted.insert((id, incarnation, request_id), digest);
                self.report.count_gum("submitted");
            }
            Err(_) => self.report.count_gum("refused (outbox full)"),
        }
        self.drain(id);
    }

    /// Routes everything node `id` asked for.
    pub(super) fn drain(&mut self, id: u8) {
        let index = usize::from(id - 1);
        let Some(host) = self.nodes[index].host.as_mut() else {
            return;
        };
        // A buffer kept between steps: most steps output a few things, allocating for them
        // every time showed in the profile. (Routing may step a node again: that drain finds
        // the buffer taken and starts a new one.)
        let mut outputs = std::mem::take(&mut self.output_buffer);
        outputs.extend(std::iter::from_fn(|| host.poll_output()));
        let node = host.core();
        let leases_valid_until = node.resource_leases_held();
        let quorum_valid_until_ms = node.quorum_valid_until_ms();
        let unaccounted = node.log_blocks_unaccounted();
        if self.trace && self.nodes[index].quorum_valid_until_ms != quorum_valid_until_ms {
            println!(
                "tick={} node={id} local_ms={} quorum_valid_until_ms={quorum_valid_until_ms}",
                self.tick,
                self.local_ms(id),
            );
        }
        self.nodes[index].quorum_valid_until_ms = quorum_valid_until_ms;
        if unaccounted > 0 {
            let description = format!(
                "locker {id}: {unaccounted} log block(s) before its next write neither applied \
                 nor discarded (no checkpoint can start)"
            );
            self.checker.violations.push(Violation {
                tick: self.tick,
                kind: ViolationKind::LogBlocksUnaccounted,
                description,
            });
        }
        for output in outputs.drain(..) {
            self.route(id, output);
        }
        self.output_buffer = outputs;
        for (resource, valid_until_ms) in leases_valid_until {
            if let Some(until) = self.nodes[index].leases.get_mut(&resource) {
                *until = valid_until_ms;
            }
        }
        let sim_node = &mut self.nodes[index];
        if let Some(host) = sim_node.host.as_ref() {
            let fenced = sim_node.monitor.as_ref().is_some_and(SimMonitor::is_fenced);
            let online = if fenced { 0 } else { host.holding_groups() };
            if online != sim_node.online {
                sim_node.online = online;
                self.resource_checker.holding_changed = true;
            }
        }
        self.report.steps += 1;
        self.check_instant();
    }

    fn route(&mut self, id: u8, output: HostOutput) {
        let index = usize::from(id - 1);
        match output {
            HostOutput::Send {
                to,
                network,
                payload,
            } => {
                self.network.send(
                    Packet {
                        from: id,
                        to,
                        network,
                        payload,
                    },
                    self.tick,
                    &mut self.prng,
                );
            }
            HostOutput::DiskRead { op, offset_bytes } => {
                let op = DiskOp {
                    node: id,
                    op,
                    offset_bytes,
                    block: None,
                    fails: false,
                };
                self.disk.submit(op, self.tick, &mut self.prng);
            }
            HostOutput::DiskWrite {
                op,
                offset_bytes,
                block,
            } => {
                self.record_quorum_write(id, offset_bytes, &block);
                if self.trace {
                    self.trace_fence_write(id, &block);
                }
                let op = DiskOp {
                    node: id,
                    op,
                    offset_bytes,
                    block: Some(block),
                    fails: false,
                };
                self.disk.submit(op, self.tick, &mut self.prng);
            }
            HostOutput::Monitor(command) => self.send_to_monitor(id, command),
            HostOutput::Group { slot, online } => {
                self.record(
                    id,
                    RecordedKind::Resource {
                        group: slot,
                        online,
                    },
                );
                self.fold_digest(format_args!("{id} group {slot} online={online}"));
                if self.trace {
                    println!("tick={} node={id} group {slot} online={online}", self.tick);
                }
            }
            HostOutput::DeadmanArmed {
                stop_resources_at_ms,
            } => {
                if self.trace {
                    let local_ms = self.local_ms(id);
                    println!(
                        "tick={} node={id} local_ms={local_ms} dead-man at {stop_resources_at_ms}",
                        self.tick
                    );
                }
            }
            HostOutput::Catalog(catalog) => {
                let sim_node = &mut self.nodes[index];
                if let Some(monitor) = sim_node.monitor.as_mut() {
                    // Resources running stop requiring dependencies the catalog dropped.
                    monitor.catalog_changed(|name| {
                        catalog.resource(name).map(|spec| spec.depends.as_slice())
                    });
                }
                sim_node.catalog = catalog;
            }
            HostOutput::Event(event) => self.on_event(id, event),
            HostOutput::Transition {
                group,
                resource,
                to,
                reason,
                ..
            } => {
                if to == crate::runner::State::Blocked && resource.is_some() {
                    *self
                        .report
                        .resources
                        .entry("resources blocked by a failed stop")
                        .or_insert(0) += 1;
                }
                self.fold_digest(format_args!("{id} {group}/{resource:?} {to}: {reason}"));
                if self.trace {
                    println!(
                        "tick={} node={id} {group}/{resource:?} {to}: {reason}",
                        self.tick
                    );
                }
            }
            HostOutput::GroupFailed { slot, reason, .. } => {
                self.report.count_gum("groups failed by the runner");
                *self
                    .report
                    .resources
                    .entry("groups given up by a runner")
                    .or_insert(0) += 1;
                self.fold_digest(format_args!("{id} runner gave up slot {slot}: {reason}"));
                if self.trace {
                    println!(
                        "tick={} node={id} runner gave up slot {slot}: {reason}",
                        self.tick
                    );
                }
            }
            HostOutput::Proposed { request_id, body } => {
                let incarnation = self.nodes[index].incarnation;
                let digest = crate::core::gum::entry_digest(id, incarnation, request_id, &body);
                self.submitted.insert((id, incarnation, request_id), digest);
                self.report.count_gum("failures recorded");
            }
            HostOutput::FailureNotRecorded { .. } => {
                self.report.count_gum("failures not recorded");
            }
            HostOutput::Leaving { reason } => {
                *self
                    .report
                    .resources
                    .entry("nodes left on a failed stop")
                    .or_insert(0) += 1;
                self.fold_digest(format_args!("{id} leaves: {reason}"));
                if self.trace {
                    println!("tick={} node={id} leaves: {reason}", self.tick);
                }
            }
            HostOutput::ResourceLease { resource, held } => {
                self.fold_digest(format_args!("{id} lease {resource} held={held}"));
                if self.trace {
                    println!("tick={} node={id} lease {resource} held={held}", self.tick);
                }
                self.report
                    .count_lease(if held { "announced held" } else { "taken back" });
                let leases = &mut self.nodes[index].leases;
                if held {
                    // The validity comes with the node's state after this step (`drain`).
                    leases.insert(resource, u64::MAX);
                } else if let Some(valid_until_ms) = leases.remove(&resource) {
                    self.linger(id, resource, valid_until_ms);
                }
            }
        }
    }

    /// Folds the tick and `text` into the run's digest. The text is hashed as it is
    /// formatted, never built as a string: this runs on every event.
    pub(super) fn fold_digest(&mut self, text: std::fmt::Arguments<'_>) {
        let mut digest = DigestFold(if self.report.digest == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.report.digest
        });
        digest.fold(&self.tick.to_le_bytes());
        let _ = std::fmt::Write::write_fmt(&mut digest, text);
        self.report.digest = digest.0;
    }

    fn record(&mut self, node: u8, what: RecordedKind) {
        let tick = self.tick;
        if let Some(recorded) = self.recorded.as_mut() {
            recorded.push(Recorded { tick, node, what });
        }
    }

    fn record_quorum_write(&mut self, id: u8, offset_bytes: u64, block: &[u8; BLOCK_SIZE]) {
        if self.recorded.is_none() || offset_bytes != self.config(id, 1).geometry.quorum_offset() {
            return;
        }
        if let Ok(Some(sealed)) = decode::<QuorumLease>(&block[..]) {
            let (owner, challenger) = (sealed.record.0.owner, sealed.record.0.challenger);
            self.record(id, RecordedKind::QuorumWrite { owner, challenger });
        }
    }

    /// A membership that survived by the quorum stabilizes only with its epoch in the quorum
    /// record: a later owner from the other half reads it there and knows its half is stale
    /// (ARBITRATION.md §3.3; simulator seed 116273 found both halves living).
    fn check_quorum_record_names(&mut self, epoch: u64) {
        let offset = self.config(1, 1).geometry.quorum_offset();
        let named = match decode::<QuorumLease>(&self.disk.read(offset)[..]) {
            Ok(Some(sealed)) => sealed.record.0.owner_epoch,
            _ => 0,
        };
        if named < epoch {
            self.checker.violations.push(Violation {
                tick: self.tick,
                kind: ViolationKind::QuorumRecordMissesHalfEpoch,
                description: format!(
                    "epoch {epoch} survived by the quorum and stabilized while the quorum record \
                     names epoch {named}"
                ),
            });
        }
    }

    /// Fence requests and acknowledgements are where survivors and a lost node meet: tracing
    /// them shows who confirmed whom stopped, and with which numbers.
    fn trace_fence_write(&self, id: u8, block: &[u8; BLOCK_SIZE]) {
        use crate::core::disk_records::{FenceAck, FenceRequest};
        if let Ok(Some(sealed)) = decode::<FenceRequest>(&block[..]) {
            println!(
                "tick={} node={id} writes fence request {} {:?}",
                self.tick, sealed.sequence, sealed.record
            );
        } else if let Ok(Some(sealed)) = decode::<FenceAck>(&block[..]) {
            println!(
                "tick={} node={id} writes fence ack {:?}",
                self.tick, sealed.record
            );
        }
    }

    /// A member's confirmation that a peer stopped is what lets it take the peer's groups over:
    /// it must be true of every run it covers. If the peer's current run is one of them, its
    /// monitor runs nothing at that instant (it stopped, or fenced, or the run crashed and its
    /// resources died with it). A newer run is not covered: it may hold groups of its own. Nor
    /// is a confirmation a node completes after it left its membership (an acknowledgement read
    /// late): the peer may have taken a new lease since, in a membership of its own, which is
    /// what this node's leaving made room for (simulator seed 19294703 `--nodes 2`).
    fn check_confirmed_stopped(&mut self, id: u8, peer: u8, incarnation: u64, how: &str) {
        let confirmer_is_member = self.nodes[usize::from(id - 1)]
            .core()
            .is_some_and(|core| core.status().stabilized);
        if !confirmer_is_member {
            return;
        }
        let peer_node = &self.nodes[usize::from(peer - 1)];
        if peer_node.incarnation > incarnation {
            return;
        }
        let Some(monitor) = peer_node.monitor.as_ref() else {
            return;
        };
        if monitor.is_fenced() || !monitor.holds_anything() {
            return;
        }
        let running: Vec<&String> = monitor.held().keys().collect();
        let description = format!(
            "node {id} confirmed node {peer} stopped ({how}, runs up to {incarnation}) while its run {} runs {running:?}",
            peer_node.incarnation
        );
        self.checker.violations.push(Violation {
            tick: self.tick,
            kind: ViolationKind::FalseConfirmationPeerStopped,
            description,
        });
    }

    fn on_event(&mut self, id: u8, event: Event) {
        if self.recorded.is_some() {
            self.record(id, RecordedKind::Event(event.clone()));
        }
        self.fold_digest(format_args!("{id} {event:?}"));
        if self.trace {
            println!("tick={} node={id} {event:?}", self.tick);
        }
        let incarnation = self.nodes[usize::from(id - 1)].incarnation;
        // A GUM life ends at a crash or when the node forgets its replica on leaving.
        let life = self.gum_lives[usize::from(id - 1)];
        match event {
            Event::Stabilized { epoch, members } => {
                self.report.stabilizations += 1;
                self.checker
                    .on_stabilized(self.tick, id, incarnation, epoch, members);
                if self.decided_by_quorum.remove(&(epoch, members)) {
                    self.check_quorum_record_names(epoch);
                }
            }
            Event::Decided {
                members,
                basis,
                epoch,
                round_started_ms,
                ..
            } => {
                // Exactly half of the view survived: by the quorum.
                let kept = (members & basis).count_ones();
                if basis != 0 && kept * 2 == basis.count_ones() {
                    self.decided_by_quorum.insert((epoch, members));
                }
                self.checker.note_decided_by_regroup(epoch, members);
                let round_started_tick = self.real_tick_of(id, round_started_ms);
                // A status that says whom its sender hears may itself arrive late: what it
                // says stood when it was sent (simulator seed 24104 --nodes 2).
                let delay_max = match self.params.network.late_per_mille {
                    0 => self.params.network.delay_ticks_max,
                    _ => super::network::LATE_TICKS_MAX,
                };
                let knowable = self.timeouts.peer_silence_ticks + delay_max + 2;
                let links = self.link_down_since.clone();
                let delay = self.params.network.delay_ticks_max;
                let pauses = &self.pauses_ended;
                let last_delivered = &self.last_delivered;
                // A datagram sent before the cut and held while its receiver was paused
                // arrives at the resume, and a late one arrives whenever it does: the link
                // looks up to the receiver until then.
                let seen_down_since = |a: u8, b: u8| {
                    let since = *links.get(&(a, b))?;
                    let held_until = pauses
                        .iter()
                        .filter(|(node, paused, resumed)| {
                            *node == b && *paused <= since + delay && *resumed > since
                        })
                        .map(|(_, _, resumed)| *resumed)
                        .max();
                    let heard_until = last_delivered.get(&(a, b)).copied().unwrap_or(0);
                    Some(held_until.unwrap_or(since).max(since).max(heard_until))
                };
                self.checker.on_decided(
                    self.tick,
                    round_started_tick,
                    members,
                    knowable,
                    seen_down_since,
                );
            }
            Event::PeerPartitioned { .. } => self.report.partitions_detected += 1,
            Event::PeerStopped {
                peer,
                incarnation,
                how,
            } => {
                *self.report.peers_stopped_by.entry(how).or_insert(0) += 1;
                self.check_confirmed_stopped(id, peer, incarnation, how);
            }
            Event::Left { reason } => {
                *self.report.leaves_by_reason.entry(reason).or_insert(0) += 1;
            }
            Event::CatalogChanged
            | Event::PeerSilent { .. }
            | Event::QuorumOwner { .. }
            | Event::FormHeldByConflict { .. } => {}
            Event::PlacementChanged { .. } => self.report.count_gum("placement regroup"),
            Event::GroupRefused { .. } => self.report.count_gum("group refused"),
            Event::ResourceLeaseUnavailable { .. } => self.report.count_lease("unavailable"),
            Event::GumApplied {
                sequence,
                digest,
                state_digest,
                ..
            } => {
                let result =
                    self.gum_checker
                        .on_applied((id, life), sequence, digest, state_digest);
                self.gum_result(result);
            }
            Event::GumAcknowledged {
                request_id,
                sequence,
                ..
            } => {
                self.report.count_gum("acknowledged");
                let result = match self.submitted.get(&(id, incarnation, request_id)) {
                    Some(&digest) => self.gum_checker.on_acknowledged(id, sequence, digest),
                    None => Err(Finding::new(
                        ViolationKind::GumAcknowledgedUnsentRequest,
                        format!("node {id} acknowledged request {request_id} it never sent"),
                    )),
                };
                self.gum_result(result);
            }
            Event::GumSnapshotInstalled {
                sequence,
                state_digest,
            } => {
                self.report.count_gum("snapshots installed");
                let result = self
                    .gum_checker
                    .on_snapshot((id, life), sequence, state_digest);
                self.gum_result(result);
            }
            Event::GumReset => {
                self.gum_checker.forget((id, life));
                self.gum_lives[usize::from(id - 1)] += 1;
            }
            Event::GumLocker { ready, .. } => {
                if ready {
                    self.report.count_gum("takeovers");
                }
            }
            Event::GumCheckpoint { .. } => self.report.count_gum("checkpoints"),
            Event::GumRecovery { what, .. } => self.report.count_gum(what),
            Event::GumTrouble { what } => self.report.count_gum(what),
        }
    }

    /// Keeps a lease that `id` no longer uses counted until its validity ends.
    pub(super) fn linger(&mut self, id: u8, resource: String, valid_until_ms: u64) {
        if valid_until_ms == u64::MAX {
            // Taken back in the step that announced it: no validity was ever reported.
            return;
        }
        let until_tick = self.real_tick_of(id, valid_until_ms) + 1;
        if until_tick > self.tick {
            self.lingering_leases.push((id, resource, until_tick));
        }
    }

    fn gum_result(&mut self, result: Result<(), Finding>) {
        if let Err(finding) = result {
            self.checker.violations.push(finding.at(self.tick));
        }
    }

    fn check_instant(&mut self) {
        // Buffers kept between steps: this runs after every step, and allocating showed in
        // the profile.
        let (mut owners, mut online) = std::mem::take(&mut self.check_instant_buffers);
        owners.clear();
        online.clear();
        for id in 1..=self.params.node_count {
            let sim_node = &self.nodes[usize::from(id - 1)];
            if sim_node.host.is_none() {
                continue;
            }
            // A node that never held the quorum reports 0, below any clock: skip the clock.
            let valid_until_ms = sim_node.quorum_valid_until_ms;
            if valid_until_ms > 0 && valid_until_ms > self.local_ms(id) {
                owners.push(id);
            }
            online.push((id, sim_node.online));
        }
        self.checker.check_instant(self.tick, &owners, &online);
        self.check_instant_buffers = (owners, online);
        let tick = self.tick;
        self.lingering_leases.retain(|(_, _, until)| tick < *until);
        // Most seeds lease nothing: then there is no holder to count.
        let some_lease = !self.lingering_leases.is_empty()
            || self
                .nodes
                .iter()
                .any(|sim_node| !sim_node.leases.is_empty());
        if some_lease {
            self.check_resource_leases();
        }
        self.check_resources();
    }

    /// At most one holder per resource lease, counting lingering ones (`checker`).
    fn check_resource_leases(&mut self) {
        // The few (node, resource) pairs are compared in place first: the holder map the
        // checker reports from is built only when two nodes share a resource, so a step
        // that finds nothing allocates nothing.
        let holdings = || lease_holdings(&self.lingering_leases, &self.nodes);
        let shared = holdings().enumerate().any(|(index, (id, resource))| {
            holdings()
                .skip(index + 1)
                .any(|(other_id, other)| other == resource && other_id != id)
        });
        if !shared {
            return;
        }
        let mut holders: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for (id, resource) in lease_holdings(&self.lingering_leases, &self.nodes) {
            let nodes = holders.entry(resource).or_default();
            if !nodes.contains(&id) {
                nodes.push(id);
            }
        }
        self.checker.check_resource_leases(self.tick, &holders);
    }

    /// True when every node runs, stabilized in one epoch with everyone, with the same
    /// database version (joiners received the database), and every group is online on
    /// exactly one node.
    pub fn converged(&self) -> bool {
        let all = (1..=self.params.node_count).fold(0u64, |set, id| set | bit(id));
        let mut epoch = None;
        let mut database_version = None;
        let mut online = 0u64;
        for sim_node in &self.nodes {
            let Some(node) = sim_node.core() else {
                return false;
            };
            let status = node.status();
            if sim_node.paused || !status.stabilized || status.regrouping || status.members != all {
                return false;
            }
            if *epoch.get_or_insert(status.epoch) != status.epoch {
                return false;
            }
            if *database_version.get_or_insert(status.database_version) != status.database_version {
                return false;
            }
            // GUM caught up: a valid replica (the same state everywhere: `same_replicas`),
            // every proposal acknowledged, every acknowledged update held.
            let gum = &status.gum;
            if !gum.valid || gum.outbox != 0 || gum.applied < self.gum_checker.acked_max() {
                return false;
            }
            if online & sim_node.online != 0 || status.refusing_groups != 0 {
                return false;
            }
            online |= sim_node.online;
        }
        let placed = if self.params.catalog_groups {
            super::group_workload::placed_as_the_rule_says(self, online)
                && super::group_workload::leases_held_by_the_holders(self)
                && resource_checker::converged(self)
        } else {
            online == all && self.test_groups_up()
        };
        // Last, because it hashes every replica in full: the rest is cheap and usually false.
        placed && self.same_replicas()
    }

    /// Whether each node runs exactly the test groups its host holds, each up (seeds without a
    /// catalog; every node runs: `converged`).
    fn test_groups_up(&self) -> bool {
        self.nodes.iter().all(|sim_node| {
            let Some(monitor) = sim_node.monitor.as_ref() else {
                return false;
            };
            let held = monitor.held();
            held.len() == sim_node.online.count_ones() as usize
                && crate::core::ids(sim_node.online).all(|group| {
                    held.get(&crate::host::test_group_resource(group))
                        .is_some_and(|resource| resource.is_up())
                })
        })
    }

    /// Whether every node's replica has the same digest (every node runs: `converged`).
    fn same_replicas(&self) -> bool {
        let mut digests = self
            .nodes
            .iter()
            .filter_map(SimNode::core)
            .map(Node::replica_digest);
        let first = digests.next();
        digests.all(|digest| Some(digest) == first)
    }
}

/// Every (node, resource) whose lease counts now: the lingering ones, then those in use.
fn lease_holdings<'a>(
    lingering_leases: &'a [(u8, String, u64)],
    nodes: &'a [SimNode],
) -> impl Iterator<Item = (u8, &'a str)> {
    let lingering = lingering_leases
        .iter()
        .map(|(id, resource, _)| (*id, resource.as_str()));
    let in_use = nodes.iter().enumerate().flat_map(|(index, sim_node)| {
        let id = index as u8 + 1;
        sim_node
            .leases
            .keys()
            .map(move |resource| (id, resource.as_str()))
    });
    lingering.chain(in_use)
}

/// FNV-1a over bytes as they come (`Cluster::fold_digest`).
struct DigestFold(u64);

impl DigestFold {
    fn fold(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::fmt::Write for DigestFold {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.fold(text.as_bytes());
        Ok(())
    }
}
