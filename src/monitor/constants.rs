//! The monitor's limits and defaults, in one place so the timing argument in
//! `disklayout/ARBITRATION.md` and the daemon can cite them. Units are last in every name.

/// Largest frame body on the daemon–monitor socket. A length above it is a protocol error that
/// ends the connection (and so fences), never an allocation.
pub const FRAME_BYTES_MAX: u32 = 64 * 1024;
/// Longest resource name. Names become file names (`<name>.log`), so they are also restricted
/// to `[A-Za-z0-9_.-]` and may not start with '.'.
pub const RESOURCE_NAME_BYTES_MAX: usize = 64;
/// Longest resource type name, e.g. `ocf:heartbeat:IPaddr2`.
pub const KIND_BYTES_MAX: usize = 64;
/// Most parameters one `Start` may carry.
pub const PARAMS_MAX: usize = 64;
/// Most dependencies one `Start` may name (the catalog refuses a resource with more).
pub const DEPENDS_MAX: usize = 64;
/// Longest parameter key (`[A-Za-z0-9_]`).
pub const PARAM_KEY_BYTES_MAX: usize = 64;
/// Longest parameter value.
pub const PARAM_VALUE_BYTES_MAX: usize = 4096;
/// Longest failure reason; longer reasons are cut at a character boundary when encoded.
pub const REASON_BYTES_MAX: usize = 512;
/// Most resources one monitor holds at once; a `Start` beyond it is rejected.
pub const RESOURCES_MAX: usize = 1024;
/// Most bytes of events the monitor queues for a daemon that does not read; beyond it the
/// daemon counts as gone and the monitor fences.
pub const OUTGOING_BYTES_MAX: usize = 1024 * 1024;

/// Default timeout of `Start` when the command names none (MSCS's PendingTimeout is 180 s;
/// a process resource rarely needs more than this).
pub const START_TIMEOUT_MS_DEFAULT: u32 = 60_000;
/// Default timeout of `Stop`: how long SIGTERM may take before SIGKILL.
pub const STOP_TIMEOUT_MS_DEFAULT: u32 = 20_000;
/// Default timeout of a `LooksAlive` check.
pub const LOOKS_ALIVE_TIMEOUT_MS_DEFAULT: u32 = 5_000;
/// Default timeout of an `IsAlive` check.
pub const IS_ALIVE_TIMEOUT_MS_DEFAULT: u32 = 30_000;

/// When fencing, how long the graceful part of the fence may take in all: the resources stop
/// top-down along their dependencies within it (each stop is told what is left of it), and
/// whatever still runs when it is spent is SIGKILLed at once, out of order. Short on purpose:
/// the fence must finish before the node's lease expires on the other nodes, so the deadline
/// beats a graceful stop; ordering the stops never makes the fence longer than this.
pub const FENCE_GRACE_MS: u64 = 200;
/// How long the monitor waits for SIGKILLed process groups to disappear before it reports that
/// they survived (a process in uninterruptible sleep); the watchdog is the backstop then.
pub const KILL_WAIT_MS_MAX: u64 = 5_000;
/// How often a pending `ready` check of a starting process is retried.
pub const READY_RETRY_MS: u64 = 200;
/// The longest the monitor's loop sleeps; processes are reaped on SIGCHLD, so this only bounds
/// how late a missed wakeup could be noticed.
pub const LOOP_SLEEP_MS_MAX: u64 = 250;

/// The PATH every program a resource runs gets (OCF agents, `script` commands, `ip`, `mount`):
/// they run with a clean environment, so nothing of the monitor's own environment leaks in.
pub const PROGRAM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The OCF root when a resource names none (`wolfpack_ocf_root` overrides it, for tests).
pub const OCF_ROOT_DEFAULT: &str = "/usr/lib/ocf";
/// Most bytes of a step's output (stdout and stderr) kept for its failure reason and the
/// resource log: the tail, so the last words of a failing program are the ones kept.
pub const OUTPUT_BYTES_MAX: usize = 4 * 1024;
/// Most bytes of an OCF agent's meta-data read (its head); IPaddr2's is about 15 KiB.
pub const META_DATA_BYTES_MAX: usize = 256 * 1024;
/// Most bytes of program output quoted in a failure reason (the wire cuts reasons at
/// REASON_BYTES_MAX; the first part says what failed, so the quote comes last and short).
pub const REASON_OUTPUT_BYTES_MAX: usize = 240;
/// A step still running this long before its operation's deadline gets SIGTERM (SIGKILL
/// follows at the deadline): at most this, and at most a quarter of the operation's timeout.
pub const TERM_GRACE_MS_MAX: u64 = 2_000;
/// After a stop confirmed that a resource is stopped, leftovers of its programs' process groups
/// get SIGTERM, then SIGKILL this much later.
pub const REAP_GRACE_MS: u64 = 1_000;
/// After a killed operation (a failed or timed-out start or stop), the resource's stop is run
/// again as a cleanup, each try with STOP_TIMEOUT_MS_DEFAULT, this long apart, until it
/// confirms the resource is stopped; only then is `offline` written.
pub const CLEANUP_RETRY_MS: u64 = 1_000;
/// Gratuitous ARPs / unsolicited neighbour advertisements sent when an `ip` comes online...
pub const ANNOUNCE_COUNT: u32 = 3;
/// ...this far apart.
pub const ANNOUNCE_INTERVAL_MS: u64 = 200;
/// How often a `filesystem` stop tries `umount` (killing the users between tries when
/// `force_unmount` is on) before it fails...
pub const UMOUNT_TRIES: u32 = 5;
/// ...and how long it waits between tries.
pub const UMOUNT_RETRY_MS: u64 = 200;
