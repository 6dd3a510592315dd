//! `wolfpack node`: runs this machine's cluster node until SIGTERM or SIGINT.
use super::{parse, parse_flags, CommandError, UsageError, EXIT_OK};
use crate::admin::DEFAULT_SOCKET_PATH;
use crate::disk::storage::DiskIo;
use crate::node::daemon::{self, NodeOptions};
use crate::node::log_file::LogFile;
use crate::runner::StopFailure;
use std::path::PathBuf;

pub const NODE_HELP: &str = "\
Usage: wolfpack node --disk PATH --node-id N --key FILE [--disk-io mmap|direct]
                     [--admin-socket PATH] [--event-log PATH] [--resource-log-dir DIR]
                     [--ocf-state-dir DIR] [--watchdog DEV] [--stop-failure block|leave]
                     [--log-file PATH] [--test-group G=COMMAND ...] [--allow-fault-injection]

Runs node N of the cluster whose shared disk is PATH (the node table, addresses and timing are
read from the disk; see 'wolfpack disk format'). Logs go to stderr or --log-file (RUST_LOG=debug
for more). SIGTERM or SIGINT stops every resource and exits; SIGHUP reopens the log file.

Flags:
  --disk PATH             the shared disk (file, image or block device)
  --node-id N             this node's id in the disk's node table, 1 to 64
  --key FILE              the cluster key (see 'wolfpack keygen'); must be mode 0600
  --disk-io mmap|direct   I/O backend (default: direct for block devices, mmap for files)
  --admin-socket PATH     where 'wolfpack ctl' reaches this node (default /run/wolfpack/admin.sock)
  --event-log PATH        resource online/offline transitions with CLOCK_MONOTONIC times
                          (default /var/log/wolfpack/events.log)
  --resource-log-dir DIR  each resource's output (default /var/log/wolfpack/resources)
  --ocf-state-dir DIR     HA_RSCTMP and HA_VARRUN for OCF agents (their state and pid files);
                          for testbeds whose nodes share one filesystem (default: the agents')
  --watchdog DEV          also feed this Linux watchdog device while the node is healthy
  --stop-failure block|leave
                          when a resource's stop fails (it may still run): 'block' keeps its
                          group here, blocked, until the stop is confirmed; 'leave' also leaves
                          the cluster so the watchdog resets this node and the others take the
                          group over. Default: leave with --watchdog, block without ('leave'
                          needs --watchdog)
  --log-file PATH         log here instead of stderr; SIGHUP reopens it (for log rotation)
  --test-group G=COMMAND  test mode: every configured node N has a built-in group N (home node
                          N) and G runs COMMAND, kept running on whichever node holds it; give
                          the same flags on every node. Real groups are 'wolfpack ctl group add'.
  --allow-fault-injection obey 'wolfpack ctl fault ...' (tests only: a disk stall on demand);
                          without it every fault command is refused
";

pub fn run(words: &[&str]) -> Result<i32, CommandError> {
    if matches!(words.first(), Some(&"-h") | Some(&"--help")) {
        print!("{NODE_HELP}");
        return Ok(EXIT_OK);
    }
    let mut options = getopts::Options::new();
    options.reqopt("", "disk", "", "PATH");
    options.reqopt("", "node-id", "", "N");
    options.reqopt("", "key", "", "FILE");
    options.optopt("", "disk-io", "", "mmap|direct");
    options.optopt("", "admin-socket", "", "PATH");
    options.optopt("", "event-log", "", "PATH");
    options.optopt("", "resource-log-dir", "", "DIR");
    options.optopt("", "ocf-state-dir", "", "DIR");
    options.optopt("", "watchdog", "", "DEV");
    options.optopt("", "stop-failure", "", "block|leave");
    options.optmulti("", "test-group", "", "G=COMMAND");
    options.optopt("", "log-file", "", "PATH");
    options.optflag("", "allow-fault-injection", "");
    let matches = parse_flags(&options, words, "node")?;
    if let Some(extra) = matches.free.first() {
        return Err(UsageError(format!("node: unexpected argument '{extra}'")).into());
    }
    let text = |flag: &str| matches.opt_str(flag).unwrap_or_default();
    let node_id: u8 = parse::number("node-id", &text("node-id"))?;
    if !disklayout::is_node_id(node_id) {
        return Err(UsageError(format!("--node-id {node_id} is not in 1..=64")).into());
    }
    let disk_io =
        match matches.opt_str("disk-io") {
            None => None,
            Some(name) => Some(DiskIo::parse(&name).ok_or_else(|| {
                UsageError(format!("--disk-io '{name}' is neither mmap nor direct"))
            })?),
        };
    let mut test_groups = Vec::new();
    for spec in matches.opt_strs("test-group") {
        let (group, command) = spec
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--test-group '{spec}': expected G=COMMAND")))?;
        let group: u8 = parse::number("test-group", group)?;
        if !disklayout::is_node_id(group) || command.trim().is_empty() {
            return Err(UsageError(format!(
                "--test-group '{spec}': G must be 1 to 64 and COMMAND not empty"
            ))
            .into());
        }
        test_groups.push((group, command.to_string()));
    }
    let watchdog = matches.opt_str("watchdog").map(PathBuf::from);
    let stop_failure = match matches.opt_str("stop-failure") {
        None if watchdog.is_some() => StopFailure::Leave,
        None => StopFailure::Block,
        Some(name) => StopFailure::from_name(&name).ok_or_else(|| {
            UsageError(format!(
                "--stop-failure '{name}' is neither block nor leave"
            ))
        })?,
    };
    if stop_failure == StopFailure::Leave && watchdog.is_none() {
        return Err(UsageError(
            "--stop-failure leave needs --watchdog DEV: without a watchdog, a resource whose \
             stop failed may still run when the other nodes take its group over"
                .to_string(),
        )
        .into());
    }
    let path = |flag: &str, default: &str| {
        PathBuf::from(matches.opt_str(flag).unwrap_or_else(|| default.to_string()))
    };
    let options = NodeOptions {
        disk: PathBuf::from(text("disk")),
        disk_io,
        node_id,
        key: PathBuf::from(text("key")),
        admin_socket: path("admin-socket", DEFAULT_SOCKET_PATH),
        watchdog,
        event_log: path("event-log", "/var/log/wolfpack/events.log"),
        resource_log_dir: path("resource-log-dir", "/var/log/wolfpack/resources"),
        ocf_state_dir: matches.opt_str("ocf-state-dir").map(PathBuf::from),
        test_groups,
        log_file: None,
        allow_fault_injection: matches.opt_present("allow-fault-injection"),
        stop_failure,
    };
    let directories = [
        options.admin_socket.parent(),
        options.event_log.parent(),
        Some(options.resource_log_dir.as_path()),
        options.ocf_state_dir.as_deref(),
    ];
    for directory in directories.into_iter().flatten() {
        if !directory.as_os_str().is_empty() {
            std::fs::create_dir_all(directory).map_err(|error| {
                CommandError::Failed(format!("cannot create {}: {error}", directory.display()))
            })?;
        }
    }
    let mut options = options;
    let mut logger = env_logger::Builder::new();
    logger
        .filter_level(log::LevelFilter::Info)
        .parse_default_env();
    if let Some(path) = matches.opt_str("log-file") {
        let log_file = LogFile::open(std::path::Path::new(&path)).map_err(|error| {
            CommandError::Failed(format!("cannot open --log-file {path}: {error}"))
        })?;
        logger.target(env_logger::Target::Pipe(Box::new(log_file.clone())));
        options.log_file = Some(log_file);
    }
    let _ = logger.try_init();
    daemon::run(options).map_err(CommandError::Failed)?;
    Ok(EXIT_OK)
}
