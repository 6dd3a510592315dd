//! What a host asks its driver to do, and what it tells it, in order.

use crate::core::catalog::Catalog;
use crate::core::{self, disk_records::BLOCK_SIZE};
use crate::monitor::Command;
use crate::runner::State;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum HostOutput {
    /// Send `payload` to node `to` on `network` (best effort, may be lost).
    Send {
        to: u8,
        network: u8,
        payload: Vec<u8>,
    },
    /// Read the block at `offset_bytes`; answer with `Input::DiskDone { op }`.
    DiskRead { op: u64, offset_bytes: u64 },
    /// Write the block durably; answer with `Input::DiskDone { op }`.
    DiskWrite {
        op: u64,
        offset_bytes: u64,
        block: Box<[u8; BLOCK_SIZE]>,
    },
    /// Send this to the resource monitor (answers come back through `Host::monitor_event`).
    Monitor(Command),
    /// The core's decision about group `slot` here, already carried out (for the logs).
    Group { slot: u8, online: bool },
    /// The core armed its dead-man for this local time; the host pinged the monitor, whose
    /// own timeout ends no later (for the logs and the simulator's trace).
    DeadmanArmed { stop_resources_at_ms: u64 },
    /// The shared-disk lease of a filesystem resource, already given to the runner.
    ResourceLease { resource: String, held: bool },
    /// The catalog the runner now acts on (before the commands that follow from it).
    Catalog(Arc<Catalog>),
    /// A state change of the core.
    Event(core::Event),
    /// A resource or group changed state in the runner.
    Transition {
        group: String,
        resource: Option<String>,
        from: State,
        to: State,
        reason: String,
    },
    /// This node gave group `slot` up; the core was told to refuse it for `refuse_ms`.
    GroupFailed {
        slot: u8,
        reason: String,
        refuse_ms: u64,
    },
    /// The host proposed an update itself (a group's failure record): `request_id` and its
    /// encoded body, for whoever tracks proposals.
    Proposed { request_id: u64, body: Vec<u8> },
    /// A stop failed under `StopFailure::Leave`: the node leaves the cluster now and keeps the
    /// blocked group until its watchdog resets it (the driver must not exit gracefully: a
    /// graceful shutdown disarms the watchdog).
    Leaving { reason: String },
    /// A group's failure could not be recorded (why, for the log): its failover threshold
    /// then counts one failure fewer, which errs toward moving it once more.
    FailureNotRecorded { group: String, why: String },
}
