//! `wolfpack disk format|dump|check`: write a fresh shared disk, print it, check it.
//!
//! `dump` and `check` open the disk read-only and never write. `format` writes the superblock
//! last, after everything else is flushed, so an interrupted format leaves no valid superblock.
use super::{dump, parse, parse_flags, CommandError, UsageError, EXIT_FAILURE, EXIT_OK};
use crate::disk::storage::{self, Access, DiskIo, Storage};
use disklayout::inspect::{inspect, Inspection};
use disklayout::{decode, format_blocks, Geometry, Superblock, Timing, WatchdogPolicy, BLOCK_SIZE};
use std::path::Path;

const DISK_HELP: &str = "\
Usage:
  wolfpack disk format PATH --cluster-name NAME --node ID=NAME@ADDR:PORT[,ADDR:PORT...] [--node ...]
                       [--size BYTES] [--resource-leases N] [--force] [--disk-io mmap|direct]
                       [--heartbeat-interval-ms MS] [--lease-renew-interval-ms MS]
                       [--lease-expiry-ms MS] [--fence-timeout-ms MS] [--clock-drift-ppm-max PPM]
                       [--watchdog required|optional]
  wolfpack disk dump PATH [--json] [--disk-io mmap|direct]
  wolfpack disk check PATH [--disk-io mmap|direct]

format   Creates PATH if missing (a sparse file of --size, default 64M; a block device is used
         whole) and writes an empty cluster: the superblock with the shared timing parameters and
         the node table. One --node per node; each address after the first is the node's address
         on another network. Refuses a disk that already holds data unless --force is given.
dump     Prints every region and every non-empty record, decoded; bad records are marked BAD with
         their region, index and byte offset. --json prints one JSON document. Exit 1 when any
         record is bad.
check    Checks every record; prints each bad one with its region, index and byte offset. Exit 0
         when every record is valid or empty, 1 otherwise.

Flags:
  --cluster-name NAME         a name for people, 1 to 63 bytes
  --node SPEC                 ID=NAME@ADDR:PORT[,ADDR:PORT...], ID 1..64, one address per network
  --size BYTES                disk size for a new file, e.g. 64M, 1G (default: the file's size, or 64M)
  --resource-leases N         lease slots for exclusive disk resources (default 256)
  --force                     overwrite a disk that already holds a wolfpack cluster or other data
  --disk-io mmap|direct       I/O backend (default: direct for block devices, mmap for files)
  --heartbeat-interval-ms MS  default 50; at least 10
  --lease-renew-interval-ms MS  default 100; at least 10
  --lease-expiry-ms MS        default 1000; the lease a renewal gives (about 88% of it, after
                              the I/O, stop and drift margins) must exceed two renewals
  --fence-timeout-ms MS       default 500; at most that lease less one disk I/O (750 ms for
                              the defaults); a watchdog's timeout must not exceed it
  --clock-drift-ppm-max PPM   default 1000
  --watchdog required|optional
                              default optional. required: a node without a working hardware
                              watchdog (wolfpack node --watchdog DEV) refuses to start. Choose
                              it where every node has one (appliances): only a watchdog resets
                              a node frozen past its lease before the survivors take over
  --json                      (dump) print JSON
";

const DEFAULT_SIZE_BYTES: u64 = 64 << 20;
const DEFAULT_RESOURCE_LEASES: u32 = 256;
const ZEROING_CHUNK_BYTES: usize = 1 << 20;

pub fn run(words: &[&str]) -> Result<i32, CommandError> {
    match words.first().copied() {
        Some("format") => format(&words[1..]),
        Some("dump") => dump(&words[1..]),
        Some("check") => check(&words[1..]),
        Some("-h") | Some("--help") | Some("help") => {
            print!("{DISK_HELP}");
            Ok(EXIT_OK)
        }
        Some(other) => Err(UsageError(format!("disk: unknown subcommand '{other}'")).into()),
        None => Err(UsageError("disk: missing subcommand (format, dump or check)".into()).into()),
    }
}

/// Takes the one PATH operand of a disk subcommand.
fn the_path(matches: &getopts::Matches, command: &str) -> Result<String, UsageError> {
    match matches.free.as_slice() {
        [path] => Ok(path.clone()),
        [] => Err(UsageError(format!("{command}: missing PATH"))),
        [_, extra, ..] => Err(UsageError(format!(
            "{command}: unexpected argument '{extra}'"
        ))),
    }
}

fn disk_io_flag(matches: &getopts::Matches) -> Result<Option<DiskIo>, UsageError> {
    match matches.opt_str("disk-io") {
        None => Ok(None),
        Some(text) => match DiskIo::parse(&text) {
            Some(io) => Ok(Some(io)),
            None => Err(UsageError(format!(
                "--disk-io '{text}' is neither mmap nor direct"
            ))),
        },
    }
}

fn failed(error: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(error.to_string())
}

fn format(words: &[&str]) -> Result<i32, CommandError> {
    let mut options = getopts::Options::new();
    options.reqopt("", "cluster-name", "", "NAME");
    options.optmulti("", "node", "", "SPEC");
    options.optopt("", "size", "", "BYTES");
    options.optopt("", "resource-leases", "", "N");
    options.optflag("", "force", "");
    options.optopt("", "disk-io", "", "mmap|direct");
    options.optopt("", "heartbeat-interval-ms", "", "MS");
    options.optopt("", "lease-renew-interval-ms", "", "MS");
    options.optopt("", "lease-expiry-ms", "", "MS");
    options.optopt("", "fence-timeout-ms", "", "MS");
    options.optopt("", "clock-drift-ppm-max", "", "PPM");
    options.optopt("", "watchdog", "", "required|optional");
    let matches = parse_flags(&options, words, "disk format")?;
    let path = the_path(&matches, "disk format")?;
    let io = disk_io_flag(&matches)?;
    let cluster_name = matches.opt_str("cluster-name").unwrap_or_default();
    if cluster_name.is_empty()
        || cluster_name.len() >= disklayout::CLUSTER_NAME_BYTES_MAX
        || cluster_name.contains('\0')
    {
        return Err(UsageError("--cluster-name must be 1 to 63 bytes".into()).into());
    }
    let nodes = matches
        .opt_strs("node")
        .iter()
        .map(|spec| parse::node_spec(spec))
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err(UsageError(
            "disk format: missing required flag '--node' (one per node)".into(),
        )
        .into());
    }
    for (index, node) in nodes.iter().enumerate() {
        if nodes[..index]
            .iter()
            .any(|earlier| earlier.node_id == node.node_id)
        {
            return Err(
                UsageError(format!("--node: node id {} is given twice", node.node_id)).into(),
            );
        }
    }
    let timing = timing_flags(&matches)?;
    let watchdog = match matches.opt_str("watchdog") {
        None => WatchdogPolicy::Optional,
        Some(word) => WatchdogPolicy::from_name(&word).ok_or_else(|| {
            UsageError(format!(
                "--watchdog must be 'required' or 'optional', not '{word}'"
            ))
        })?,
    };
    let resource_leases = match matches.opt_str("resource-leases") {
        Some(text) => parse::number::<u32>("resource-leases", &text)?,
        None => DEFAULT_RESOURCE_LEASES,
    };
    let requested_size = match matches.opt_str("size") {
        Some(text) => Some(parse::size_bytes("size", &text)?),
        None => None,
    };
    if requested_size.is_some_and(|size| size % BLOCK_SIZE as u64 != 0) {
        return Err(UsageError(format!("--size must be a multiple of {BLOCK_SIZE} bytes")).into());
    }

    let existing_size = existing_size_bytes(Path::new(&path), io)?;
    let size_bytes = requested_size
        .or(existing_size.filter(|&size| size > 0))
        .unwrap_or(DEFAULT_SIZE_BYTES);
    let geometry = Geometry::for_disk(size_bytes - size_bytes % BLOCK_SIZE as u64, resource_leases)
        .map_err(|error| UsageError(format!("--size: {error}")))?;
    let mut disk = storage::create(Path::new(&path), size_bytes, io).map_err(failed)?;
    let disk_size_bytes = disk.size_bytes().min(size_bytes);
    let geometry = match disk_size_bytes == size_bytes {
        true => geometry,
        false => Geometry::for_disk(disk_size_bytes, resource_leases).map_err(failed)?,
    };
    if !matches.opt_present("force") {
        refuse_existing_data(&mut *disk, &path)?;
    }
    let cluster_id = random_cluster_id().map_err(failed)?;
    let superblock = Superblock {
        cluster_name: cluster_name.clone(),
        disk_size_bytes,
        geometry,
        timing,
        watchdog,
    };
    let blocks = format_blocks(cluster_id, &superblock, &nodes)
        .map_err(|error| UsageError(error.to_string()))?;
    zero_layout(&mut *disk, geometry.end_bytes()).map_err(failed)?;
    for (offset_bytes, block) in blocks.iter().filter(|(offset_bytes, _)| *offset_bytes != 0) {
        disk.write_at(*offset_bytes, &block[..]).map_err(failed)?;
    }
    disk.flush().map_err(failed)?;
    let (_, superblock_block) = &blocks[0];
    disk.write_at(0, &superblock_block[..]).map_err(failed)?;
    disk.flush().map_err(failed)?;
    println!(
        "formatted {path} ({} backend): cluster \"{cluster_name}\" id {cluster_id:#018x}, {disk_size_bytes} bytes, {} nodes, {} log blocks",
        disk.io().name(),
        nodes.len(),
        geometry.log_blocks()
    );
    Ok(EXIT_OK)
}

/// The size of what is at `path` now: a regular file's length, a block device's capacity, or
/// `None` when nothing is there yet.
fn existing_size_bytes(path: &Path, io: Option<DiskIo>) -> Result<Option<u64>, CommandError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_block_device() => {
            let device = storage::open(path, io, Access::ReadOnly).map_err(failed)?;
            Ok(Some(device.size_bytes()))
        }
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        _ => Ok(None),
    }
}

fn timing_flags(matches: &getopts::Matches) -> Result<Timing, UsageError> {
    let mut timing = Timing::default();
    let fields: [(&str, &mut u32); 5] = [
        ("heartbeat-interval-ms", &mut timing.heartbeat_interval_ms),
        (
            "lease-renew-interval-ms",
            &mut timing.lease_renew_interval_ms,
        ),
        ("lease-expiry-ms", &mut timing.lease_expiry_ms),
        ("fence-timeout-ms", &mut timing.fence_timeout_ms),
        ("clock-drift-ppm-max", &mut timing.clock_drift_ppm_max),
    ];
    for (flag, field) in fields {
        if let Some(text) = matches.opt_str(flag) {
            *field = parse::number(flag, &text)?;
        }
    }
    timing.validate().map_err(|error| match error {
        disklayout::EncodeError::InvalidField { field, problem } => {
            UsageError(format!("--{} {problem}", field.replace('_', "-")))
        }
    })?;
    Ok(timing)
}

/// Refuses to format over a wolfpack disk or any other data in block 0, saying what is there.
fn refuse_existing_data(disk: &mut dyn Storage, path: &str) -> Result<(), CommandError> {
    let mut block = vec![0u8; BLOCK_SIZE];
    disk.read_at(0, &mut block).map_err(failed)?;
    let found = match decode::<Superblock>(&block) {
        Ok(None) => return Ok(()),
        Ok(Some(existing)) => format!(
            "{path} already holds wolfpack cluster \"{}\" (id {:#018x}, formatted for {} bytes)",
            existing.record.cluster_name, existing.cluster_id, existing.record.disk_size_bytes
        ),
        Err(disklayout::DecodeError::UnsupportedVersion { found, .. }) => {
            format!("{path} holds a wolfpack disk of layout version {found}")
        }
        Err(_) => {
            format!("{path} is not empty: block 0 holds data that is not a wolfpack superblock")
        }
    };
    Err(CommandError::Failed(format!(
        "{found}; refusing to overwrite it without --force"
    )))
}

fn zero_layout(disk: &mut dyn Storage, end_bytes: u64) -> Result<(), storage::StorageError> {
    let zeros = vec![0u8; ZEROING_CHUNK_BYTES];
    let mut offset_bytes = 0;
    while offset_bytes < end_bytes {
        let length = (end_bytes - offset_bytes).min(ZEROING_CHUNK_BYTES as u64) as usize;
        disk.write_at(offset_bytes, &zeros[..length])?;
        offset_bytes += length as u64;
    }
    Ok(())
}

/// A fresh cluster id from the OS: it tells records of this format from earlier ones.
fn random_cluster_id() -> Result<u64, String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    let mut source = std::fs::File::open("/dev/urandom")
        .map_err(|error| format!("cannot open /dev/urandom: {error}"))?;
    loop {
        source
            .read_exact(&mut bytes)
            .map_err(|error| format!("cannot read /dev/urandom: {error}"))?;
        let id = u64::from_le_bytes(bytes);
        if id != 0 {
            return Ok(id);
        }
    }
}

fn open_and_inspect(
    matches: &getopts::Matches,
    command: &str,
) -> Result<(String, DiskIo, Inspection), CommandError> {
    let path = the_path(matches, command)?;
    let io = disk_io_flag(matches)?;
    let mut disk = storage::open(Path::new(&path), io, Access::ReadOnly).map_err(failed)?;
    let size_bytes = disk.size_bytes();
    let mut read = |offset_bytes: u64, block: &mut disklayout::Block| {
        disk.read_at(offset_bytes, &mut block[..])
            .map_err(|error| error.to_string())
    };
    let inspection =
        inspect(size_bytes, &mut read).map_err(|error| failed(format!("{path}: {error}")))?;
    Ok((path, disk.io(), inspection))
}

fn dump(words: &[&str]) -> Result<i32, CommandError> {
    let mut options = getopts::Options::new();
    options.optflag("", "json", "");
    options.optopt("", "disk-io", "", "mmap|direct");
    let matches = parse_flags(&options, words, "disk dump")?;
    let (path, io, inspection) = open_and_inspect(&matches, "disk dump")?;
    match matches.opt_present("json") {
        true => println!("{}", dump::json(&path, io, &inspection).render()),
        false => print!("{}", dump::text(&path, io, &inspection)),
    }
    Ok(if inspection.problems().next().is_some() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}

fn check(words: &[&str]) -> Result<i32, CommandError> {
    let mut options = getopts::Options::new();
    options.optopt("", "disk-io", "", "mmap|direct");
    let matches = parse_flags(&options, words, "disk check")?;
    let (path, _, inspection) = open_and_inspect(&matches, "disk check")?;
    let problems: Vec<_> = inspection.problems().collect();
    for problem in &problems {
        println!("{}", dump::problem_line(problem));
    }
    let valid = inspection.blocks.len() - problems.len();
    println!("{path}: {valid} valid records, {} bad", problems.len());
    Ok(if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    })
}
