//! The cluster database and the pure pieces of its log: what the global update manager
//! (`core::gum`) replicates, logs, checkpoints and recovers. No I/O here: blocks come in and
//! go out as bytes.
//!
//! - `path.rs`, `value.rs`: keys ('/'-separated, under five namespaces) and typed values.
//! - `update.rs`: an update is a list of operations applied atomically, with its encoding (one
//!   update fits one log entry).
//! - `database.rs`: the tree of keys, each with the sequence of its last change; `apply`.
//! - `snapshot.rs`: the whole database as CRC-checked bytes (join hand-over, checkpoints).
//! - `log_block.rs`: packing updates into log blocks (FORMAT.md §10, group commit).
//! - `codec.rs`: the bounds-checked reader every decoder here uses.
//!
//! **Invariants.** Decoding never panics and never trusts: every length is checked before it
//! is used. A `Database` only ever holds valid paths and values, so its snapshot decodes on any
//! node to an equal database with an equal digest. `apply` changes all or nothing.

mod codec;
mod database;
mod log_block;
mod path;
mod snapshot;
mod update;
mod value;

pub use codec::{FieldError, FieldProblem};
pub use database::{ApplyError, Database, Limits, Outcome, ENTRIES_MAX, SNAPSHOT_BYTES_MAX};
pub use log_block::{encode_log_block, log_block_fits, LogBlockBuilder};
pub use path::{Namespace, Path, PathError, PATH_BYTES_MAX, PATH_DEPTH_MAX, SEGMENT_BYTES_MAX};
pub use snapshot::SnapshotError;
pub use update::{Op, Update, UpdateDecodeError, UpdateError, UPDATE_BYTES_MAX};
pub use value::{Value, ValueError, VALUE_BYTES_MAX};
