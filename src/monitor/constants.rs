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
/// Longest parameter key (`[a-z0-9_]`).
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

/// When fencing, how long the resources get between SIGTERM and SIGKILL. Short on purpose: the
/// fence must finish before the node's lease expires on the other nodes, so the deadline beats a
/// graceful stop.
pub const FENCE_GRACE_MS: u64 = 200;
/// How long the monitor waits for SIGKILLed process groups to disappear before it reports that
/// they survived (a process in uninterruptible sleep); the watchdog is the backstop then.
pub const KILL_WAIT_MS_MAX: u64 = 5_000;
/// How often a pending `ready` check of a starting process is retried.
pub const READY_RETRY_MS: u64 = 200;
/// The longest the monitor's loop sleeps; processes are reaped on SIGCHLD, so this only bounds
/// how late a missed wakeup could be noticed.
pub const LOOP_SLEEP_MS_MAX: u64 = 250;
