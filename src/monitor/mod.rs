//! The resource monitor: a separate process per node (the same binary, `wolfpack monitor`,
//! internal) that runs resource operations with timeouts and is the node's dead-man switch. If
//! the daemon stops talking to it for the fence timeout, or their connection closes, it stops
//! every resource it holds and exits, so a hung or dead daemon cannot keep a group online past
//! its lease (DESIGN.md §4 item 2).
//!
//! - `client.rs`: the daemon's side, `MonitorClient` (spawn, send, receive, shut down).
//! - `protocol.rs`, `codec.rs`: the messages and their frames.
//! - `server.rs`: the monitor's event loop and the dead-man switch; `holder/`: the resources
//!   it holds, their operations, the order everything stops in and the fence itself;
//!   `resource/`: the resource types; `children.rs`: process groups; `event_log.rs`: the
//!   online/offline evidence; `watchdog.rs`: /dev/watchdog.
pub mod children;
pub mod client;
pub mod codec;
pub mod config;
pub mod constants;
pub mod error;
pub mod event_log;
pub mod fence_ack;
mod holder;
pub mod protocol;
pub mod resource;
mod server;
pub mod watchdog;

pub use client::MonitorClient;
pub use config::MonitorConfig;
pub use error::{CodecError, MonitorError};
pub use protocol::{CheckLevel, Command, Event, Operation, Outcome};

/// The exit code of a monitor that shut down on request.
pub const EXIT_SHUTDOWN: i32 = 0;
/// The exit code of a monitor that fenced (or could not start).
pub const EXIT_FENCED: i32 = 1;
/// The exit code for bad arguments.
pub const EXIT_USAGE: i32 = 2;

/// Entry point of `wolfpack monitor ARGS` (the words after `monitor`); returns the exit code.
pub fn main(words: &[&str]) -> i32 {
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .parse_default_env()
        .try_init();
    match MonitorConfig::from_args(words) {
        Ok((config, socket_fd)) => server::run(&config, socket_fd),
        Err(message) => {
            eprintln!("wolfpack: {message}");
            EXIT_USAGE
        }
    }
}
