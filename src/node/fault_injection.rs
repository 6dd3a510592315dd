//! `ctl fault ...`: faults a test injects into a running node. A production node refuses every
//! one of them: only a node started with `--allow-fault-injection` obeys.
//!
//! - `fault disk-stall MS`: every shared-disk operation of this node waits MS ms before it runs
//!   (the disk worker's stall; see `disk_worker.rs`). Heartbeats go on, since the disk has its
//!   own thread, but the lease cannot be renewed: a stall longer than the lease makes the core
//!   stop its groups, and its monitor fences it, so the others take over.
//! - `fault disk-stall off`: the disk answers again at once.
use super::disk_worker::DiskWorker;
use crate::admin::Fault;

/// Obeys `fault` (parsed by `crate::admin::request`, which bounds the stall).
pub fn answer(
    allowed: bool,
    node_id: u8,
    disk: &DiskWorker,
    fault: &Fault,
) -> Result<String, String> {
    if !allowed {
        return Err(
            "fault injection is disabled on this node (start it with --allow-fault-injection)"
                .into(),
        );
    }
    match *fault {
        Fault::DiskStallOff => {
            disk.set_stall_ms(0);
            log::warn!("node={node_id} fault injection: disk stall cleared");
            Ok("disk stall cleared\n".into())
        }
        Fault::DiskStall { stall_ms } => {
            disk.set_stall_ms(stall_ms);
            log::warn!("node={node_id} fault injection: every disk operation waits {stall_ms} ms");
            Ok(format!("every disk operation now waits {stall_ms} ms\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::storage::MemoryStorage;
    use std::sync::Arc;

    fn worker() -> (mio::Poll, DiskWorker) {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(1)).expect("waker"));
        let worker = DiskWorker::spawn(Box::new(MemoryStorage::new(4096)), waker).expect("spawn");
        (poll, worker)
    }

    #[test]
    fn a_node_started_without_the_flag_refuses_every_fault() {
        let (_poll, disk) = worker();
        let stall = Fault::DiskStall { stall_ms: 3000 };
        let error = answer(false, 1, &disk, &stall).expect_err("refused");
        assert!(error.contains("--allow-fault-injection"), "{error}");
        assert_eq!(disk.stall_ms(), 0);
    }

    #[test]
    fn disk_stall_sets_and_clears_the_workers_stall() {
        let (_poll, disk) = worker();
        let stall = Fault::DiskStall { stall_ms: 3000 };
        assert!(answer(true, 1, &disk, &stall).is_ok());
        assert_eq!(disk.stall_ms(), 3000);
        assert!(answer(true, 1, &disk, &Fault::DiskStallOff).is_ok());
        assert_eq!(disk.stall_ms(), 0);
    }
}
