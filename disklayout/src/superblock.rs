//! The superblock (FORMAT.md §4): the cluster's identity, geometry and shared timing.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_string, Reader, Writer};
use crate::geometry::{Geometry, Region};
pub use crate::timing::Timing;
use crate::Record;

/// The cluster name field's size; the name itself is at most one byte less.
pub const CLUSTER_NAME_BYTES_MAX: usize = 64;

/// Whether the cluster's nodes must run with a hardware watchdog (FORMAT.md §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatchdogPolicy {
    /// A node may run without one; `ctl status` says what that risks (a frozen node may run
    /// its resources after its lease).
    #[default]
    Optional,
    /// A node without a working watchdog refuses to start.
    Required,
}

impl WatchdogPolicy {
    fn code(self) -> u32 {
        match self {
            WatchdogPolicy::Optional => 0,
            WatchdogPolicy::Required => 1,
        }
    }

    /// The word `disk format --watchdog` takes and `disk dump` prints.
    pub fn name(self) -> &'static str {
        match self {
            WatchdogPolicy::Optional => "optional",
            WatchdogPolicy::Required => "required",
        }
    }

    /// Parses `required` or `optional`.
    pub fn from_name(name: &str) -> Option<WatchdogPolicy> {
        match name {
            "optional" => Some(WatchdogPolicy::Optional),
            "required" => Some(WatchdogPolicy::Required),
            _ => None,
        }
    }
}

/// Block 0 of the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// A name for people; not used for identity (the header's cluster id is).
    pub cluster_name: String,
    /// The size in bytes the disk was formatted for.
    pub disk_size_bytes: u64,
    /// Where each region lies.
    pub geometry: Geometry,
    /// The shared timing parameters.
    pub timing: Timing,
    /// Whether every node must run with a hardware watchdog.
    pub watchdog: WatchdogPolicy,
}

impl Record for Superblock {
    const MAGIC: [u8; 4] = *b"WPSB";
    const BODY_BYTES: Option<usize> = Some(256);

    fn validate(&self) -> Result<(), EncodeError> {
        check_string(&self.cluster_name, CLUSTER_NAME_BYTES_MAX, "cluster_name")?;
        self.timing.validate()?;
        self.geometry
            .validate(self.disk_size_bytes)
            .map_err(|error| EncodeError::field("geometry", error.to_string()))
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.string(&self.cluster_name, CLUSTER_NAME_BYTES_MAX);
        writer.u64(self.disk_size_bytes);
        writer.u32(crate::BLOCK_SIZE as u32);
        writer.reserved(4);
        for region in &self.geometry.regions {
            writer.u64(region.offset_bytes);
            writer.u64(region.blocks);
        }
        let timing = &self.timing;
        writer.u32(timing.heartbeat_interval_ms);
        writer.u32(timing.lease_renew_interval_ms);
        writer.u32(timing.lease_expiry_ms);
        writer.u32(timing.fence_timeout_ms);
        writer.u32(timing.clock_drift_ppm_max);
        writer.u32(self.watchdog.code());
        writer.reserved(8);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<Superblock, DecodeError> {
        let mut reader = Reader::new(body);
        let cluster_name = reader.string(CLUSTER_NAME_BYTES_MAX, "cluster_name")?;
        let disk_size_bytes = reader.u64("disk_size")?;
        let block_size_at = reader.offset();
        if reader.u32("block_size")? != crate::BLOCK_SIZE as u32 {
            return Err(DecodeError::InvalidField {
                offset: block_size_at,
                field: "block_size",
                problem: "is not 4096",
            });
        }
        reader.reserved(4)?;
        let region_table_at = reader.offset();
        let mut regions = [Region {
            offset_bytes: 0,
            blocks: 0,
        }; 9];
        for region in regions.iter_mut() {
            region.offset_bytes = reader.u64("region_offset")?;
            region.blocks = reader.u64("region_blocks")?;
        }
        let geometry = Geometry { regions };
        if geometry.validate(disk_size_bytes).is_err() {
            return Err(DecodeError::InvalidField {
                offset: region_table_at,
                field: "region_table",
                problem: "regions overlap, leave gaps, have wrong sizes or pass the disk size",
            });
        }
        let timing_at = reader.offset();
        let timing = Timing {
            heartbeat_interval_ms: reader.u32("heartbeat_interval_ms")?,
            lease_renew_interval_ms: reader.u32("lease_renew_interval_ms")?,
            lease_expiry_ms: reader.u32("lease_expiry_ms")?,
            fence_timeout_ms: reader.u32("fence_timeout_ms")?,
            clock_drift_ppm_max: reader.u32("clock_drift_ppm_max")?,
        };
        if timing.validate().is_err() {
            return Err(DecodeError::InvalidField {
                offset: timing_at,
                field: "timing",
                problem: "timing parameters break the relations FORMAT.md section 4 requires",
            });
        }
        let policy_at = reader.offset();
        let watchdog = match reader.u32("watchdog_policy")? {
            0 => WatchdogPolicy::Optional,
            1 => WatchdogPolicy::Required,
            _ => {
                return Err(DecodeError::InvalidField {
                    offset: policy_at,
                    field: "watchdog_policy",
                    problem: "is neither 0 (optional) nor 1 (required)",
                })
            }
        };
        reader.reserved(8)?;
        reader.finish()?;
        Ok(Superblock {
            cluster_name,
            disk_size_bytes,
            geometry,
            timing,
            watchdog,
        })
    }
}
