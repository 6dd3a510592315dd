//! The node daemon: the only code that does I/O on behalf of the protocol core. It drives
//! `core::Node` from a mio event loop: UDP sockets per network, timers, signals, the disk worker
//! thread and the resource monitor.
pub mod catalog_commands;
pub mod catalog_render;
pub mod conflict_watch;
pub mod daemon;
pub mod disk_worker;
pub mod event_codec;
pub mod event_exchange;
pub mod event_merge;
pub mod event_record;
pub mod event_ring;
pub mod fault_injection;
pub mod log_file;
pub mod report;
pub mod signals;
pub mod startup;
pub mod time_service;
pub mod transport;
pub mod updates;
pub mod wall_clock;
