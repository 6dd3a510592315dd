//! The node daemon: the only code that does I/O on behalf of the protocol core. It drives
//! `core::Node` from a mio event loop: UDP sockets per network, timers, signals, the disk worker
//! thread and the resource monitor.
pub mod catalog_commands;
pub mod daemon;
pub mod disk_worker;
pub mod log_file;
pub mod report;
pub mod signals;
pub mod startup;
pub mod time_service;
pub mod transport;
pub mod updates;
