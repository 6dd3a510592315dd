//! `wolfpack node`: the event loop that drives the node's `host::Host` with real I/O.
//!
//! One thread runs the loop (mio); the shared disk has its own worker thread; resources run in
//! the monitor process. Every iteration: handle readiness (signals, disk completions, monitor
//! events, datagrams, admin connections), tick the host with CLOCK_MONOTONIC, carry out its
//! outputs, answer admin requests.
//!
//! **Invariant:** this file decides nothing about groups, leases or the monitor's dead-man: the
//! host does (`src/host`), and the simulator runs the same host. What is here is I/O: sockets,
//! the disk thread, the monitor's socket, the clock, logs and metrics.
use super::conflict_watch::{self, ConflictWatch};
use super::disk_worker::{DiskCompletion, DiskRequest, DiskWorker};
use super::event_exchange::{self, EventExchange};
use super::event_record::{EventKind, Transition};
use super::report::{self, EventRing, LinkTable, Metrics};
use super::signals::Signals;
use super::startup::{read_disk_config, DiskConfig};
use super::time_service;
use super::transport::Transport;
use crate::admin::server::{AdminServer, RequestLine};
use crate::admin::AdminRequest;
use crate::core::{self, Input};
use crate::disk::storage::{self, Access, DiskIo};
use crate::host::{Host, HostConfig, HostOutput};
use crate::monitor::{self, MonitorClient, MonitorConfig};
use crate::runner::{RunnerMutation, StopFailure};
use crate::wire::{ClusterKey, Opener, Sealer};
use disklayout::WatchdogPolicy;

mod groups;
use mio::{Events, Interest, Poll, Token};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const SIGNALS: Token = Token(0);
const DISK: Token = Token(1);
const MONITOR: Token = Token(2);
const ADMIN_LISTENER: Token = Token(3);
const FIRST_NETWORK_TOKEN: usize = 16;
const FIRST_ADMIN_CONNECTION_TOKEN: usize = 1024;
/// A core message (the time service's frames are kind 2, the event exchange's 3).
const FRAME_KIND_CORE: u8 = 1;
/// How long a graceful leave may take before the daemon exits anyway (its monitor then stops
/// whatever is left; the survivors wait for the lease instead).
const LEAVE_GRACE_MS: u64 = 3000;
/// How long a SIGTERM waits for the monitor to stop every resource.
const LEAVE_STOP_WAIT: Duration = Duration::from_secs(60);

/// What `wolfpack node` was told on its command line.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub disk: PathBuf,
    pub disk_io: Option<DiskIo>,
    pub node_id: u8,
    pub key: PathBuf,
    pub admin_socket: PathBuf,
    pub watchdog: Option<PathBuf>,
    /// Where resource online/offline transitions are appended (CLOCK_MONOTONIC µs).
    pub event_log: PathBuf,
    /// Where each resource's output goes.
    pub resource_log_dir: PathBuf,
    /// HA_RSCTMP/HA_VARRUN for OCF agents (`--ocf-state-dir`), for testbeds whose nodes
    /// share one filesystem.
    pub ocf_state_dir: Option<PathBuf>,
    /// The command each test group runs (group id = its home node id): `--test-group` puts the
    /// cluster in test mode, one built-in group per node beside the catalog's.
    pub test_groups: Vec<(u8, String)>,
    /// The log file SIGHUP reopens; `None` when logging to stderr.
    pub log_file: Option<super::log_file::LogFile>,
    /// Obey `ctl fault ...` (tests only; see `fault_injection.rs`).
    pub allow_fault_injection: bool,
    /// What a failed stop does besides blocking (`--stop-failure`; `Leave` needs `watchdog`).
    pub stop_failure: StopFailure,
}

/// Runs the node until SIGTERM/SIGINT. `Err` is one line for the user; nothing was written to
/// the disk when start-up fails.
pub fn run(options: NodeOptions) -> Result<(), String> {
    let key = ClusterKey::load(&options.key).map_err(|error| error.to_string())?;
    let disk_path = options.disk.display().to_string();
    let mut disk = storage::open(&options.disk, options.disk_io, Access::ReadWrite)
        .map_err(|e| e.to_string())?;
    let backend = disk.io().name();
    let now_ms = monitor::event_log::monotonic_micros() / 1000;
    let config = read_disk_config(&mut *disk, &disk_path, options.node_id, realtime_ms())
        .map_err(|error| error.to_string())?;
    let watchdog_timeout_ms = match &options.watchdog {
        Some(device) => check_watchdog(device, &config.superblock.timing)?,
        None if config.superblock.watchdog == WatchdogPolicy::Required => {
            return Err(format!(
                "this cluster requires a hardware watchdog ('disk format --watchdog required' on {disk_path}): start the node with --watchdog DEV, for example /dev/watchdog0"
            ));
        }
        None => {
            log::warn!(
                "node={} runs without a hardware watchdog: {WITHOUT_WATCHDOG}",
                options.node_id
            );
            None
        }
    };
    let mut poll = Poll::new().map_err(|error| format!("cannot create the event loop: {error}"))?;
    let transport = Transport::bind(
        &config.own,
        &config.nodes,
        poll.registry(),
        FIRST_NETWORK_TOKEN,
    )
    .map_err(|error| error.to_string())?;
    let admin = AdminServer::bind(
        &options.admin_socket,
        poll.registry(),
        ADMIN_LISTENER,
        FIRST_ADMIN_CONNECTION_TOKEN,
    )
    .map_err(|error| error.to_string())?;
    let signals = Signals::register(poll.registry(), SIGNALS)
        .map_err(|error| format!("cannot install signal handlers: {error}"))?;
    let mut monitor_config = MonitorConfig::new(
        options.node_id,
        config.superblock.timing.fence_timeout_ms,
        options.event_log.clone(),
    );
    monitor_config.node_name = Some(config.own.name.clone());
    monitor_config.resource_log_dir = options.resource_log_dir.clone();
    monitor_config.watchdog = options.watchdog.clone();
    monitor_config.watchdog_timeout_max_ms = config.superblock.timing.watchdog_timeout_max_ms();
    monitor_config.ocf_state_dir = options.ocf_state_dir.clone();
    monitor_config.fence_ack = Some(monitor::fence_ack::FenceAckTarget {
        disk: options.disk.clone(),
        disk_io: options.disk_io,
        offset_bytes: config.superblock.geometry.fence_ack_offset(options.node_id),
        cluster_id: config.cluster_id,
        node_id: options.node_id,
        incarnation: config.incarnation,
    });
    let executable = std::env::current_exe()
        .map_err(|error| format!("cannot find the wolfpack binary: {error}"))?;
    let mut monitor =
        MonitorClient::spawn(&executable, monitor_config).map_err(|error| error.to_string())?;
    poll.registry()
        .register(
            monitor.socket(),
            MONITOR,
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|error| format!("cannot register the monitor socket: {error}"))?;
    let waker = Arc::new(
        mio::Waker::new(poll.registry(), DISK)
            .map_err(|e| format!("cannot create a waker: {e}"))?,
    );
    let disk_worker = DiskWorker::spawn(disk, waker)
        .map_err(|error| format!("cannot start the disk thread: {error}"))?;
    let host = Host::new(HostConfig {
        core: core_config(&config, !options.test_groups.is_empty()),
        seed: random_seed()?,
        test_groups: options.test_groups.clone(),
        refuse_ms_max: u64::MAX,
        runner_mutation: RunnerMutation::None,
        stop_failure: options.stop_failure,
    });
    let peers: Vec<u8> = config
        .nodes
        .iter()
        .map(|node| node.node_id)
        .filter(|&id| id != options.node_id)
        .collect();
    let mut opener = Opener::new(&key, config.cluster_id, options.node_id);
    opener.set_peers(&peers);
    for &(peer, incarnation) in &config.peer_incarnations {
        opener.set_incarnation_min(peer, incarnation);
    }
    log::info!(
        "node={} incarnation={} starting on {} ({} backend), {} networks, cluster \"{}\"",
        options.node_id,
        config.incarnation,
        disk_path,
        backend,
        transport.networks(),
        config.superblock.cluster_name
    );
    // Request ids from the incarnation up, so no reply to a previous incarnation's request
    // matches one of ours.
    let event_exchange = EventExchange::new(config.incarnation << 16);
    let conflicts = ConflictWatch::for_table(&config.nodes, options.node_id);
    let mut daemon = Daemon {
        event_exchange,
        events: EventRing::new(options.node_id),
        sealer: Sealer::new(&key, config.cluster_id, options.node_id, config.incarnation),
        opener,
        links: LinkTable::new(&config.nodes, options.node_id, now_ms),
        config,
        options,
        host,
        transport,
        admin,
        signals,
        monitor,
        disk_worker,
        metrics: Metrics::default(),
        outgoing: Vec::with_capacity(crate::wire::FRAME_BYTES_MAX),
        first_frame_sent: false,
        waiting_updates: std::collections::BTreeMap::new(),
        finished_updates: Vec::new(),
        time: time_service::TimeService::default(),
        leaving_since_ms: None,
        wall_clock_told_ms: None,
        conflicts,
        watchdog_timeout_ms,
        last_pong_ms: None,
    };
    daemon.run(&mut poll)?;
    daemon.leave()
}

struct Daemon {
    options: NodeOptions,
    config: DiskConfig,
    host: Host,
    transport: Transport,
    sealer: Sealer,
    opener: Opener,
    admin: AdminServer,
    signals: Signals,
    monitor: MonitorClient,
    disk_worker: DiskWorker,
    events: EventRing,
    /// `ctl events` gathering the peers' events, and answering theirs.
    event_exchange: EventExchange,
    metrics: Metrics,
    links: LinkTable,
    outgoing: Vec<u8>,
    /// Whether the "first frame sent" event was pushed.
    first_frame_sent: bool,
    /// `ctl update` connections waiting for GUM's acknowledgement, by request id, with the
    /// time (µs) of the proposal and the answer if the database rejects it (None: the generic
    /// one; a catalog edit's preconditions failed: `catalog_commands::CONFLICT`).
    waiting_updates: std::collections::BTreeMap<u64, (mio::Token, u64, Option<&'static str>)>,
    /// Answers to send once the registry is at hand.
    finished_updates: Vec<(mio::Token, Result<String, String>)>,
    time: time_service::TimeService,
    /// When SIGTERM asked this node to leave (monotonic ms).
    leaving_since_ms: Option<u64>,
    /// When the core was last told the wall clock (monotonic ms).
    wall_clock_told_ms: Option<u64>,
    /// Nodes of our table heard alive in another cluster (another disk or key).
    conflicts: ConflictWatch,
    /// The watchdog device's timeout as set and read back (`None`: no device, or a file or
    /// FIFO standing in for one).
    watchdog_timeout_ms: Option<u64>,
    /// When the monitor last answered a ping (monotonic ms): it feeds the watchdog on each.
    last_pong_ms: Option<u64>,
}

impl Daemon {
    fn run(&mut self, poll: &mut Poll) -> Result<(), String> {
        let mut events = Events::with_capacity(256);
        let tick_ms = core::timeout::TICK_MS;
        loop {
            let now_ms = monitor::event_log::monotonic_micros() / 1000;
            let timeout = Duration::from_millis(tick_ms - now_ms % tick_ms);
            if let Err(error) = poll.poll(&mut events, Some(timeout)) {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("event loop failed: {error}"));
                }
            }
            // Before anything else: a daemon resumed after a long stop whose monitor fenced
            // meanwhile must not act on what it knew before (the monitor stopped everything
            // and the survivors may have moved on).
            self.exit_if_monitor_gone()?;
            let mut more_datagrams = Vec::new();
            for event in events.iter() {
                match event.token() {
                    SIGNALS => self.signals.drain(),
                    DISK => self.disk_completions(),
                    MONITOR => self.monitor_ready(),
                    token if self.admin.owns(token) => self.admin.ready(poll.registry(), token),
                    token => {
                        if let Some(network) = self.transport.network_of(token) {
                            if self.receive(network) {
                                more_datagrams.push(network);
                            }
                        }
                    }
                }
            }
            for network in more_datagrams {
                self.receive(network);
            }
            if self.signals.take_hangup() {
                self.reopen_log();
            }
            if self.signals.take_terminate() && self.leaving_since_ms.is_none() {
                // Leave gracefully: the core stops the groups, writes a non-member slot and
                // tells the members, so the survivors take over without waiting for a lease.
                let now_ms = monitor::event_log::monotonic_micros() / 1000;
                self.leaving_since_ms = Some(now_ms);
                log::info!("node={} leaving the cluster", self.options.node_id);
                self.host.leave(now_ms);
                self.dispatch_outputs(now_ms);
            }
            if self.leaving_since_ms.is_none() && self.host.left() {
                // Left on a failed stop (`HostOutput::Leaving`), and the stop was confirmed
                // after all: nothing runs here and this run never rejoins, so it ends as a
                // graceful leave does (a supervisor starts the node afresh).
                log::warn!(
                    "node={} left the cluster after a failed stop; every resource is stopped now, exiting",
                    self.options.node_id
                );
                return Ok(());
            }
            if let Some(since_ms) = self.leaving_since_ms {
                let now_ms = monitor::event_log::monotonic_micros() / 1000;
                if self.host.left() || now_ms >= since_ms + LEAVE_GRACE_MS {
                    return Ok(());
                }
            }
            let now_ms = monitor::event_log::monotonic_micros() / 1000;
            self.tell_wall_clock(now_ms);
            self.host.tick(now_ms);
            self.dispatch_outputs(now_ms);
            while let Some(request) = self.admin.next_request() {
                self.answer(poll, request, now_ms);
            }
            for (connection, result) in std::mem::take(&mut self.finished_updates) {
                self.admin.respond(poll.registry(), connection, result);
            }
            self.events
                .flush_followers(&mut self.admin, poll.registry());
            self.send_time(now_ms);
            self.exchange_events(poll.registry(), now_ms);
            self.exit_if_monitor_gone()?;
        }
    }

    fn exit_if_monitor_gone(&mut self) -> Result<(), String> {
        match self.monitor.try_wait() {
            Ok(Some(status)) => Err(format!(
                "the resource monitor exited ({status}); stopping so the cluster fences this node"
            )),
            _ => Ok(()),
        }
    }

    /// Reads datagrams on `network`; true when more may be waiting (fairness bound reached).
    fn receive(&mut self, network: u8) -> bool {
        let Daemon {
            transport,
            opener,
            host,
            links,
            metrics,
            time,
            events,
            event_exchange,
            options,
            config,
            conflicts,
            ..
        } = self;
        let now_ms = monitor::event_log::monotonic_micros() / 1000;
        let mut notices = Vec::new();
        let more = transport.receive(network, |datagram, from| {
            match opener.open_on(network, datagram) {
                Ok(frame) if frame.header.kind == FRAME_KIND_CORE => {
                    if let Some(gap) = links.heard(frame.header.sender, network, now_ms) {
                        *metrics.frame_gaps_ms.entry(gap).or_insert(0) += 1;
                    }
                    host.step(
                        now_ms,
                        Input::Message {
                            network,
                            payload: frame.payload,
                        },
                    );
                }
                Ok(frame) if frame.header.kind == time_service::FRAME_KIND_TIME => {
                    let own_wall_ms = time_service::wall_ms();
                    let own_incarnation = config.incarnation;
                    let sender = frame.header.sender;
                    match time.on_frame(sender, frame.payload, own_incarnation, own_wall_ms, now_ms)
                    {
                        Ok(Some(line)) => {
                            log::warn!("node={} {line}", options.node_id);
                            events.push(EventKind::Node, line);
                        }
                        Ok(None) => {}
                        Err(refusal) => {
                            metrics.time_frames_refused += 1;
                            log::debug!("time frame from node {sender} refused: {refusal}");
                        }
                    }
                }
                Ok(frame) if frame.header.kind == event_exchange::FRAME_KIND_EVENTS => {
                    let sender = frame.header.sender;
                    event_exchange.on_frame(
                        sender,
                        network,
                        frame.payload,
                        events,
                        metrics,
                        now_ms,
                    );
                }
                // A peer of our own cluster thinks we conflict (a notice sent before its
                // disk or key was fixed): nothing to learn.
                Ok(frame) if frame.header.kind == conflict_watch::FRAME_KIND_CONFLICT => {}
                Ok(_) => metrics.unknown_frame_kinds += 1,
                Err(reason) => {
                    let Some(dropped) = conflicts.dropped(reason, datagram, from, now_ms) else {
                        return;
                    };
                    if dropped.notice {
                        notices.push((dropped.node, network));
                    }
                    if let Some(line) = dropped.verdict.log {
                        log::error!("node={} {line}", options.node_id);
                        events.push(EventKind::Node, line);
                    }
                    if dropped.verdict.conflict {
                        host.step(now_ms, Input::PeerConflict { node: dropped.node });
                    }
                }
            }
        });
        for (node, network) in notices {
            let kind = conflict_watch::FRAME_KIND_CONFLICT;
            self.sealer
                .seal(kind, node, network, &[], &mut self.outgoing);
            self.transport.send(node, network, &self.outgoing);
        }
        more
    }

    /// Tells every peer our wall clock once a second (the time service).
    fn tell_wall_clock(&mut self, now_ms: u64) {
        let due = self
            .wall_clock_told_ms
            .is_none_or(|told| now_ms >= told + super::wall_clock::WALL_CLOCK_EVERY_MS);
        if due {
            self.wall_clock_told_ms = Some(now_ms);
            if let Some(reading) = super::wall_clock::reading() {
                self.host.step(now_ms, reading);
            }
        }
    }

    fn send_time(&mut self, now_ms: u64) {
        if !self.time.due(now_ms) {
            return;
        }
        let wall_ms = time_service::wall_ms();
        let peers: Vec<u8> = self
            .config
            .nodes
            .iter()
            .map(|node| node.node_id)
            .filter(|id| *id != self.options.node_id)
            .collect();
        for to in peers {
            // A peer not heard yet is told next second, once its incarnation is known.
            let Some(receiver_incarnation) = self.opener.incarnation_of(to) else {
                continue;
            };
            let payload = time_service::payload(wall_ms, receiver_incarnation);
            self.sealer.seal(
                time_service::FRAME_KIND_TIME,
                to,
                0,
                &payload,
                &mut self.outgoing,
            );
            self.transport.send(to, 0, &self.outgoing);
        }
    }

    /// `ctl events`: answers the gatherings that finished and sends the exchange's frames.
    fn exchange_events(&mut self, registry: &mio::Registry, now_ms: u64) {
        for collected in self.event_exchange.finished(now_ms) {
            let time = &self.time;
            let body = super::event_merge::render(
                self.options.node_id,
                self.events.up_to(collected.own_newest),
                &collected,
                |node| time.skew(node).map(|skew| skew.skew_ms),
            );
            self.admin.respond(registry, collected.connection, Ok(body));
        }
        for frame in self.event_exchange.take_outgoing() {
            self.sealer.seal(
                event_exchange::FRAME_KIND_EVENTS,
                frame.to,
                frame.network,
                &frame.payload,
                &mut self.outgoing,
            );
            self.transport.send(frame.to, frame.network, &self.outgoing);
        }
    }

    fn disk_completions(&mut self) {
        while let Some(DiskCompletion {
            op,
            result,
            latency_us,
        }) = self.disk_worker.try_completion()
        {
            let now_ms = monitor::event_log::monotonic_micros() / 1000;
            self.metrics.disk_operations += 1;
            self.metrics.disk_latency_us_sum += latency_us;
            self.metrics.disk_latency_us_max = self.metrics.disk_latency_us_max.max(latency_us);
            match result {
                Ok(block) => self.host.step(
                    now_ms,
                    Input::DiskDone {
                        op,
                        result: Ok(&block),
                    },
                ),
                Err(error) => {
                    self.metrics.disk_errors += 1;
                    log::warn!(
                        "node={} disk operation {op} failed: {error}",
                        self.options.node_id
                    );
                    self.host.step(
                        now_ms,
                        Input::DiskDone {
                            op,
                            result: Err(core::DiskError),
                        },
                    );
                }
            }
        }
    }

    fn monitor_ready(&mut self) {
        if self.monitor.flush().is_err() {
            return;
        }
        while let Ok(Some(event)) = self.monitor.try_recv() {
            self.log_test_group_event(&event);
            let now_ms = monitor::event_log::monotonic_micros() / 1000;
            if matches!(event, monitor::Event::Pong { .. }) {
                self.last_pong_ms = Some(now_ms);
            }
            self.host.monitor_event(now_ms, &event);
            self.dispatch_outputs(now_ms);
        }
    }

    /// The runner's resources have their transitions logged (`HostOutput::Transition`); a test
    /// group's one resource has its monitor events logged here.
    fn log_test_group_event(&mut self, event: &monitor::Event) {
        let node = self.options.node_id;
        match event {
            monitor::Event::Done {
                resource,
                operation,
                outcome,
                elapsed_ms,
            } if self.host.is_test_group_resource(resource) => {
                let text =
                    format!("resource {resource} {operation:?} {outcome:?} in {elapsed_ms} ms");
                if *outcome != monitor::Outcome::Success {
                    log::warn!("node={node} {text}");
                }
                self.events.push(EventKind::Resource, text);
            }
            monitor::Event::ResourceFailed {
                resource, reason, ..
            } if self.host.is_test_group_resource(resource) => {
                log::warn!("node={node} resource {resource} failed: {reason}");
                let text = format!("resource {resource} failed: {reason}");
                self.events.push(EventKind::Resource, text);
            }
            _ => {}
        }
    }

    /// Carries out what the host asked for, in order.
    fn dispatch_outputs(&mut self, now_ms: u64) {
        let node = self.options.node_id;
        self.events.set_epoch(self.host.core().epoch());
        while let Some(output) = self.host.poll_output() {
            match output {
                HostOutput::Send {
                    to,
                    network,
                    payload,
                } => {
                    if payload.len() > crate::wire::PAYLOAD_BYTES_MAX {
                        self.metrics.oversized_messages += 1;
                        continue;
                    }
                    self.sealer
                        .seal(FRAME_KIND_CORE, to, network, &payload, &mut self.outgoing);
                    self.transport.send(to, network, &self.outgoing);
                    if !self.first_frame_sent {
                        // Why: the join benchmark times a joiner from its first word on the
                        // network, which excludes process start-up and reading the disk.
                        self.first_frame_sent = true;
                        self.events.push(EventKind::Node, "first frame sent".into());
                    }
                }
                HostOutput::DiskRead { op, offset_bytes } => {
                    let _ = self
                        .disk_worker
                        .submit(DiskRequest::Read { op, offset_bytes });
                }
                HostOutput::DiskWrite {
                    op,
                    offset_bytes,
                    block,
                } => {
                    let _ = self.disk_worker.submit(DiskRequest::Write {
                        op,
                        offset_bytes,
                        block,
                    });
                }
                HostOutput::Monitor(command) => {
                    if let Err(error) = self.monitor.send(&command) {
                        log::error!("node={node} cannot reach the resource monitor: {error}");
                    }
                }
                HostOutput::Group { slot, online } => {
                    let transition = if online { "online" } else { "offline" };
                    let epoch = self.host.core().epoch();
                    log::info!("node={node} epoch={epoch} group slot {slot} {transition} (core)");
                    if self.host.is_test_group(slot) {
                        let text = format!("group {slot} {transition} here");
                        self.events.push(EventKind::Group, text);
                    }
                }
                HostOutput::DeadmanArmed { .. } | HostOutput::Proposed { .. } => {}
                HostOutput::ResourceLease { resource, held } => {
                    let text = format!("resource lease of {resource} {}", held_text(held));
                    log::info!("node={node} {text}");
                    self.events.push(EventKind::Resource, text);
                }
                HostOutput::Catalog(catalog) => {
                    for problem in &catalog.problems {
                        log::warn!("node={node} catalog: {problem}");
                    }
                }
                HostOutput::Event(event) => self.core_event(event),
                HostOutput::Transition {
                    group,
                    resource,
                    from,
                    to,
                    reason,
                } => {
                    let subject = match &resource {
                        Some(resource) => format!("resource {group}/{resource}"),
                        None => format!("group {group}"),
                    };
                    let epoch = self.host.core().epoch();
                    log::info!("node={node} epoch={epoch} {subject} {from} -> {to}: {reason}");
                    self.events.push_transition(&Transition {
                        group,
                        resource,
                        from: from.name().to_string(),
                        to: to.name().to_string(),
                        reason,
                    });
                }
                HostOutput::GroupFailed {
                    slot,
                    reason,
                    refuse_ms,
                } => log::warn!(
                    "node={node} group slot {slot} failed here: {reason}; refused here for {refuse_ms} ms"
                ),
                HostOutput::Leaving { reason } => {
                    // No graceful exit (it would disarm the watchdog): the monitor's dead-man
                    // fires with no ping to restart it, and this daemon exits with it.
                    let text = format!(
                        "leaving the cluster: {reason}; the watchdog resets this node before \
                         the survivors take its groups over"
                    );
                    log::error!("node={node} {text}");
                    self.events.push(EventKind::Node, text);
                }
                HostOutput::FailureNotRecorded { group, why } => {
                    log::warn!("node={node} cannot record the failure of group {group}: {why}");
                }
            }
        }
        let _ = now_ms;
    }

    fn core_event(&mut self, event: core::Event) {
        let node = self.options.node_id;
        let epoch = self.host.core().epoch();
        match &event {
            core::Event::Stabilized { .. } => self.metrics.regroups += 1,
            // One per update: counted, not logged.
            core::Event::GumApplied { .. } => {
                self.metrics.updates_applied += 1;
                return;
            }
            core::Event::GumAcknowledged {
                request_id,
                sequence,
                rejected,
            } => {
                self.update_acknowledged(*request_id, *sequence, *rejected);
                return;
            }
            _ => {}
        }
        let text = report::describe_event(&event);
        log::info!("node={node} epoch={epoch} {text}");
        self.events.push(report::event_kind(&event), text);
    }

    fn update_acknowledged(&mut self, request_id: u64, sequence: u64, rejected: bool) {
        let Some((connection, proposed_us, rejection)) = self.waiting_updates.remove(&request_id)
        else {
            return;
        };
        let latency_us = monitor::event_log::monotonic_micros().saturating_sub(proposed_us);
        self.metrics.updates_acknowledged += 1;
        self.metrics.update_latency_us_sum += latency_us;
        self.metrics.update_latency_us_max = self.metrics.update_latency_us_max.max(latency_us);
        let result = if rejected {
            Err(rejection.map(str::to_string).unwrap_or_else(|| {
                format!("update rejected by the database (sequence {sequence}); nothing changed")
            }))
        } else {
            Ok(format!("committed at sequence {sequence}\n"))
        };
        self.finished_updates.push((connection, result));
    }

    fn reopen_log(&self) {
        let node = self.options.node_id;
        let Some(log_file) = &self.options.log_file else {
            log::info!("node={node} SIGHUP: logging to stderr; nothing to reopen");
            return;
        };
        match log_file.reopen() {
            Ok(()) => log::info!("node={node} SIGHUP: reopened {}", log_file.path().display()),
            Err(error) => log::error!("node={node} SIGHUP: cannot reopen the log: {error}"),
        }
    }

    fn answer(&mut self, poll: &Poll, line: RequestLine, now_ms: u64) {
        use super::catalog_commands::{self as catalog, Answer};
        let registry = poll.registry();
        let request = match AdminRequest::parse_received(&line.words) {
            Ok(request) => request,
            Err(error) => {
                self.admin
                    .respond(registry, line.connection, Err(error.to_string()));
                return;
            }
        };
        let status = self.host.core().status();
        // What to answer, or the update to propose and the answer if the database rejects it.
        let (answer, rejected) = match request {
            AdminRequest::Status { json } => (
                Ok(Answer::Show(report::status(
                    &status,
                    &self.config,
                    &self.links,
                    &self.time,
                    &report::StatusExtras {
                        holding: self.host.online_groups(),
                        conflicts: self.conflicts.lines(now_ms),
                        watchdog: report::WatchdogView {
                            device: self
                                .options
                                .watchdog
                                .as_ref()
                                .map(|d| d.display().to_string()),
                            timeout_ms: self.watchdog_timeout_ms,
                            last_fed_ms_ago: self.last_pong_ms.map(|at| now_ms.saturating_sub(at)),
                            policy: self.config.superblock.watchdog,
                        },
                        stop_failure: self.options.stop_failure,
                        blocked: self.blocked_groups(),
                    },
                    now_ms,
                    json,
                ))),
                None,
            ),
            AdminRequest::Nodes { json } => (
                Ok(Answer::Show(report::nodes(
                    &status,
                    &self.config,
                    &self.links,
                    now_ms,
                    json,
                ))),
                None,
            ),
            AdminRequest::Metrics => (
                Ok(Answer::Show(report::metrics(
                    &status,
                    &self.metrics,
                    &self.transport,
                    &self.opener,
                    self.options.node_id,
                ))),
                None,
            ),
            AdminRequest::Events {
                follow: true, json, ..
            } => {
                self.events
                    .follow(&mut self.admin, registry, line.connection, json);
                return;
            }
            AdminRequest::Events {
                local: true, json, ..
            } => (Ok(Answer::Show(self.events.render(json))), None),
            AdminRequest::Events { json, .. } => {
                // Answered by `exchange_events` once the peers answered or a second passed.
                let peers = event_exchange::peers(
                    &self.config.nodes,
                    self.options.node_id,
                    self.transport.networks(),
                );
                let own_newest = self.events.newest_sequence();
                self.event_exchange
                    .start(line.connection, json, own_newest, &peers, now_ms);
                return;
            }
            AdminRequest::Update { path, value } => (
                super::updates::encode(&path, Some(&value)).map(Answer::Propose),
                None,
            ),
            AdminRequest::Delete { path } => (
                super::updates::encode(&path, None).map(Answer::Propose),
                None,
            ),
            AdminRequest::Catalog(command) => {
                let runtime = self.catalog_runtime(&status);
                let answer = catalog::answer(self.host.core().database(), &command, &runtime);
                (answer, Some(catalog::CONFLICT))
            }
            AdminRequest::Get { path, json } => (
                Ok(Answer::Show(super::updates::render_get(
                    self.host.core().database(),
                    &path,
                    json,
                ))),
                None,
            ),
            AdminRequest::Fault(fault) => (
                super::fault_injection::answer(
                    self.options.allow_fault_injection,
                    self.options.node_id,
                    &self.disk_worker,
                    &fault,
                )
                .map(Answer::Show),
                None,
            ),
        };
        let result = match answer {
            Ok(Answer::Show(text)) => Ok(text),
            Ok(Answer::Propose(update)) => match self.host.submit(now_ms, update) {
                Ok(request_id) => {
                    // Answered when GUM acknowledges it (durable, applied everywhere).
                    let proposed_us = monitor::event_log::monotonic_micros();
                    self.waiting_updates
                        .insert(request_id, (line.connection, proposed_us, rejected));
                    self.dispatch_outputs(now_ms);
                    return;
                }
                Err(error) => Err(format!("update refused: {error}")),
            },
            Err(error) => Err(error),
        };
        self.admin.respond(registry, line.connection, result);
    }

    /// After the core left (or `LEAVE_GRACE_MS` passed): the monitor stops whatever still runs
    /// and exits, then so does the daemon. The members took the groups over when the core
    /// told them it left; after the grace they wait for this node's lease instead.
    fn leave(self) -> Result<(), String> {
        log::info!(
            "node={} leaving: stopping every resource",
            self.options.node_id
        );
        match self.monitor.shutdown(LEAVE_STOP_WAIT) {
            Ok((status, _)) if status.success() => Ok(()),
            Ok((status, _)) => Err(format!(
                "the resource monitor ended with {status} while stopping resources"
            )),
            Err(error) => Err(format!("stopping resources failed: {error}")),
        }
    }
}

/// `test_mode`: `--test-group` given, so every configured node has a built-in home group (the
/// slot of its id); every node of a cluster must agree on it.
pub fn core_config(config: &DiskConfig, test_mode: bool) -> core::Config {
    let mut networks = vec![0u8; core::NODES_MAX];
    let mut builtin_groups = 0;
    for node in &config.nodes {
        networks[usize::from(node.node_id - 1)] = node.addresses.len() as u8;
        if test_mode {
            builtin_groups |= core::bit(node.node_id);
        }
    }
    core::Config {
        node_id: config.own.node_id,
        cluster_id: config.cluster_id,
        incarnation: config.incarnation,
        networks,
        timing: config.superblock.timing,
        geometry: config.superblock.geometry,
        mutation: core::Mutation::None,
        digest_every_update: false,
        builtin_groups,
    }
}

/// What running without a watchdog risks, for the log and `ctl status`.
pub const WITHOUT_WATCHDOG: &str = "a node frozen past its lease (a paused VM, a kernel stall, a hung storage stack) may run its resources after the survivors took them over, until its monitor notices; only a hardware watchdog resets it in time";

/// A watchdog must reset a node that stops feeding it before any lease the node holds can
/// expire (ARBITRATION.md rule 5): refused, with the timing that would fit, when it cannot.
fn check_watchdog(
    device: &std::path::Path,
    timing: &core::disk_records::Timing,
) -> Result<Option<u64>, String> {
    use crate::monitor::watchdog::{self, WatchdogError};
    let max_ms = timing.watchdog_timeout_max_ms();
    match watchdog::check(device, max_ms) {
        Ok(Some(timeout_ms)) => {
            log::info!(
                "watchdog {}: timeout {timeout_ms} ms (the disk's timing covers {max_ms} ms)",
                device.display()
            );
            Ok(Some(timeout_ms))
        }
        Ok(None) => {
            log::warn!(
                "watchdog {}: not a watchdog device; its timeout is not checked against the lease",
                device.display()
            );
            Ok(None)
        }
        Err(error) => {
            let fit = match &error {
                WatchdogError::TooLong { device_ms, .. } => timing
                    .fitting_watchdog(*device_ms)
                    .map(|fit| (*device_ms, fit)),
                _ => None,
            };
            let fit = match fit {
                Some((device_ms, fit)) => format!(
                    "; a disk formatted with --fence-timeout-ms {} --lease-expiry-ms {} (the smallest lease expiry that fits) covers a {device_ms} ms watchdog",
                    fit.fence_timeout_ms, fit.lease_expiry_ms
                ),
                None => String::new(),
            };
            Err(format!("--watchdog {}: {error}{fit}", device.display()))
        }
    }
}

fn realtime_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The core's PRNG seed: from the OS in production (the simulator picks its own).
fn random_seed() -> Result<u64, String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .map_err(|error| format!("cannot read /dev/urandom: {error}"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn held_text(held: bool) -> &'static str {
    if held {
        "held"
    } else {
        "given up"
    }
}
