//! The admin socket: how `wolfpack ctl` talks to a running node.
//!
//! Protocol (one connection per command): the client sends one request line, the command's words
//! joined by tabs; the server answers with a status line, `ok` or `error MESSAGE`, then the body,
//! and closes the connection. A streaming command (`events --follow`) keeps sending body lines
//! until the client hangs up. An answer may wait in the event loop (`update` for GUM's
//! acknowledgement, `events` for the peers' events) without blocking it.
//!
//! **Invariant:** the socket file has mode 0600 and every connection's peer is checked with
//! SO_PEERCRED: only root or the daemon's own user is served.
//!
//! The words of a request are escaped on the way (`words.rs`) and parsed once into a typed
//! `AdminRequest` (`request.rs`, the catalog's commands in `catalog_grammar.rs`), by `ctl`
//! before it sends and by the daemon when it answers.
pub mod catalog_grammar;
pub mod client;
pub mod request;
pub mod server;
pub mod words;

pub use catalog_grammar::CatalogCommand;
pub use request::{AdminRequest, Fault, RequestError};

/// The longest request line accepted; a longer one is refused, not buffered without bound.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;

#[cfg(test)]
mod tests;

/// Where `wolfpack node` listens and `wolfpack ctl` connects unless told otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/wolfpack/admin.sock";
/// Overrides the default socket path for `ctl` (one node per shell in a testbed).
pub const SOCKET_ENVIRONMENT_VARIABLE: &str = "WOLFPACK_SOCKET";
