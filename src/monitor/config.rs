//! `MonitorConfig`: what the daemon tells its monitor at spawn, and the internal command line
//! that carries it (`wolfpack monitor --fd 3 --node-id N ...`). `to_args` and `from_args` are
//! inverses; the command line is not for humans and is not in `--help`.
use super::fence_ack::FenceAckTarget;
use crate::disk::storage::DiskIo;
use std::ffi::OsString;
use std::os::unix::io::RawFd;
use std::path::PathBuf;

/// The file descriptor number the monitor finds its end of the socketpair at.
pub const MONITOR_SOCKET_FD: RawFd = 3;

/// How the monitor runs. Build it with `MonitorConfig::new` and set the optional fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    /// The node this monitor serves; written on every event-log line. 1 to 64.
    pub node_id: u8,
    /// The node's name in the node table, for OCF agents (OCF_RESKEY_CRM_meta_on_node); `None`:
    /// the node id stands for it.
    pub node_name: Option<String>,
    /// The dead-man switch: with no `Ping` from the daemon for this long, the monitor stops
    /// every resource and exits. Must be shorter than the lease expiry minus FENCE_GRACE_MS and
    /// KILL_WAIT_MS_MAX (see `disklayout/ARBITRATION.md`).
    pub fence_timeout_ms: u32,
    /// The file every online/offline transition is appended to (created if missing).
    pub event_log: PathBuf,
    /// Where each resource's output goes, as `<resource>.log` (created if missing).
    pub resource_log_dir: PathBuf,
    /// A Linux watchdog device fed on every `Ping` from the daemon, if any.
    pub watchdog: Option<PathBuf>,
    /// The longest watchdog timeout the disk's timing covers (`Timing::watchdog_timeout_max_ms`,
    /// ARBITRATION.md rule 5); a device that cannot give one is refused.
    pub watchdog_timeout_max_ms: u64,
    /// Where to acknowledge every fence request once a fence left nothing running, if anywhere.
    pub fence_ack: Option<FenceAckTarget>,
    /// See `resource::Settings::ocf_state_dir`.
    pub ocf_state_dir: Option<PathBuf>,
}

impl MonitorConfig {
    /// A configuration without a watchdog; resource logs go next to the event log.
    pub fn new(node_id: u8, fence_timeout_ms: u32, event_log: PathBuf) -> MonitorConfig {
        let resource_log_dir = match event_log.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        MonitorConfig {
            node_id,
            node_name: None,
            fence_timeout_ms,
            event_log,
            resource_log_dir,
            watchdog: None,
            // Below the fence timeout whatever the drift: the daemon sets the exact bound.
            watchdog_timeout_max_ms: u64::from(fence_timeout_ms) * 9 / 10,
            fence_ack: None,
            ocf_state_dir: None,
        }
    }

    /// The arguments after `wolfpack monitor` that `from_args` turns back into this config.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--fd".into(),
            MONITOR_SOCKET_FD.to_string().into(),
            "--node-id".into(),
            self.node_id.to_string().into(),
            "--fence-timeout-ms".into(),
            self.fence_timeout_ms.to_string().into(),
            "--event-log".into(),
            self.event_log.clone().into_os_string(),
            "--log-dir".into(),
            self.resource_log_dir.clone().into_os_string(),
        ];
        if let Some(device) = &self.watchdog {
            args.push("--watchdog".into());
            args.push(device.clone().into_os_string());
            args.push("--watchdog-timeout-max-ms".into());
            args.push(self.watchdog_timeout_max_ms.to_string().into());
        }
        if let Some(name) = &self.node_name {
            args.push("--node-name".into());
            args.push(name.into());
        }
        if let Some(directory) = &self.ocf_state_dir {
            args.push("--ocf-state-dir".into());
            args.push(directory.clone().into_os_string());
        }
        if let Some(ack) = &self.fence_ack {
            args.push("--ack-disk".into());
            args.push(ack.disk.clone().into_os_string());
            if let Some(io) = ack.disk_io {
                args.push("--ack-disk-io".into());
                args.push(io.name().into());
            }
            for (flag, value) in [
                ("--ack-offset", ack.offset_bytes),
                ("--ack-cluster-id", ack.cluster_id),
                ("--ack-incarnation", ack.incarnation),
            ] {
                args.push(flag.into());
                args.push(value.to_string().into());
            }
        }
        args
    }

    /// Parses the arguments after `wolfpack monitor`: the config and the socket's fd number.
    /// The error is one line that names the flag.
    pub fn from_args(words: &[&str]) -> Result<(MonitorConfig, RawFd), String> {
        let mut options = getopts::Options::new();
        options.reqopt("", "fd", "", "FD");
        options.reqopt("", "node-id", "", "N");
        options.reqopt("", "fence-timeout-ms", "", "MS");
        options.reqopt("", "event-log", "", "PATH");
        options.reqopt("", "log-dir", "", "DIR");
        options.optopt("", "watchdog", "", "DEV");
        options.optopt("", "watchdog-timeout-max-ms", "", "MS");
        options.optopt("", "node-name", "", "NAME");
        options.optopt("", "ocf-state-dir", "", "DIR");
        options.optopt("", "ack-disk", "", "PATH");
        options.optopt("", "ack-disk-io", "", "mmap|direct");
        options.optopt("", "ack-offset", "", "BYTES");
        options.optopt("", "ack-cluster-id", "", "ID");
        options.optopt("", "ack-incarnation", "", "N");
        let matches = options
            .parse(words)
            .map_err(|error| format!("monitor: {error}"))?;
        if let Some(extra) = matches.free.first() {
            return Err(format!("monitor: unexpected argument '{extra}'"));
        }
        let number = |flag: &str| -> Result<u64, String> {
            let text = matches.opt_str(flag).unwrap_or_default();
            text.parse()
                .map_err(|_| format!("monitor: --{flag} '{text}' is not a whole number"))
        };
        let fd = RawFd::try_from(number("fd")?).map_err(|_| "monitor: --fd too large")?;
        let node_id = match u8::try_from(number("node-id")?) {
            Ok(node_id @ 1..=64) => node_id,
            _ => return Err("monitor: --node-id must be 1 to 64".to_string()),
        };
        let fence_timeout_ms = match u32::try_from(number("fence-timeout-ms")?) {
            Ok(timeout @ 1..) => timeout,
            _ => return Err("monitor: --fence-timeout-ms must be 1 to 2^32-1".to_string()),
        };
        let watchdog_timeout_max_ms = match matches.opt_present("watchdog-timeout-max-ms") {
            true => number("watchdog-timeout-max-ms")?,
            false => u64::from(fence_timeout_ms) * 9 / 10,
        };
        let path = |flag: &str| PathBuf::from(matches.opt_str(flag).unwrap_or_default());
        let fence_ack = match matches.opt_str("ack-disk") {
            None => None,
            Some(disk) => Some(FenceAckTarget {
                disk: PathBuf::from(disk),
                disk_io: match matches.opt_str("ack-disk-io") {
                    None => None,
                    Some(name) => Some(
                        DiskIo::parse(&name)
                            .ok_or("monitor: --ack-disk-io is neither mmap nor direct")?,
                    ),
                },
                offset_bytes: number("ack-offset")?,
                cluster_id: number("ack-cluster-id")?,
                node_id,
                incarnation: number("ack-incarnation")?,
            }),
        };
        let config = MonitorConfig {
            node_id,
            node_name: matches.opt_str("node-name"),
            fence_timeout_ms,
            event_log: path("event-log"),
            resource_log_dir: path("log-dir"),
            watchdog: matches.opt_str("watchdog").map(PathBuf::from),
            watchdog_timeout_max_ms,
            fence_ack,
            ocf_state_dir: matches.opt_str("ocf-state-dir").map(PathBuf::from),
        };
        Ok((config, fd))
    }
}
