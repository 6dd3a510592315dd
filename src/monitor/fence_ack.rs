//! The monitor's fast-path fence acknowledgement.
//!
//! When the monitor fences (its daemon died, hung, or stopped renewing) and every resource's
//! processes are confirmed gone, it writes a fence acknowledgement for its node's incarnation
//! that covers every request (`Acknowledged::Every`). Survivors that fenced this
//! node accept it at once instead of waiting for its lease to expire on disk.
//!
//! Why this is safe: the monitor exits right after fencing, resources are started only through
//! the monitor, and a daemon whose monitor is gone exits too. So this incarnation can never hold
//! a resource again, which is exactly what the acknowledgement claims. A later incarnation
//! carries a larger number and is not covered.
use crate::disk::storage::{self, Access, DiskIo};
use disklayout::{decode, encode, Acknowledged, FenceAck, Sealed, BLOCK_SIZE};
use std::path::PathBuf;

/// Where and as whom to acknowledge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceAckTarget {
    pub disk: PathBuf,
    pub disk_io: Option<DiskIo>,
    /// The node's fence-ack block.
    pub offset_bytes: u64,
    pub cluster_id: u64,
    pub node_id: u8,
    pub incarnation: u64,
}

impl FenceAckTarget {
    /// Writes the blanket acknowledgement durably. Called only after a fence left no survivor.
    pub fn write(&self) -> Result<(), String> {
        let mut disk = storage::open(&self.disk, self.disk_io, Access::ReadWrite)
            .map_err(|error| error.to_string())?;
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        disk.read_at(self.offset_bytes, &mut block[..])
            .map_err(|error| error.to_string())?;
        let previous = match decode::<FenceAck>(&block[..]) {
            Ok(Some(sealed)) if sealed.cluster_id == self.cluster_id => sealed.sequence,
            _ => 0,
        };
        let record = FenceAck {
            node_id: self.node_id,
            incarnation: self.incarnation,
            acknowledged: Acknowledged::Every,
            resources_stopped: true,
        };
        let sealed = Sealed {
            cluster_id: self.cluster_id,
            // Decoded, so at most COUNTER_MAX: + 1 cannot overflow (past it, encode refuses).
            sequence: previous + 1,
            record,
        };
        encode(&sealed, &mut block).map_err(|error| error.to_string())?;
        disk.write_at(self.offset_bytes, &block[..])
            .map_err(|error| error.to_string())?;
        disk.flush().map_err(|error| error.to_string())
    }
}
